"""`irq.block_linear`: a linear layer on a group-wise quantized weight (weight-only
quantization as on-device LLM checkpoints store it: w4a16, w8a16).

    %y = irq.block_linear %x, %w, %s
         : (tensor<1x8x64xf16>, tensor<32x64x!quant.uniform<i4<-7:7>:f16:{1:32}>>,
            tensor<32x2xf16>) -> tensor<1x8x32xf16>

y[..., n] = Σ_k x[..., k] · (w[n, k] − z[n, k // g]) · s[n, k // g] for a weight [N, K]
quantized in groups of g along K (its type's block, axis 1), scales s [N, K/g] (float)
and optional zero points z [N, K/g] (integers; symmetric when absent). With an int8
input (per tensor, scale s_x, zero point z_x: w4a8) the group sums are integers,
y = s_x · Σ_g s[n, g] · Σ_{k∈g} (q_x − z_x)(q_w − z), and the result is the input's
expressed float type. The scales are
an operand because there are N·K/g of them (the type stays printable). On the
accelerator the weight streams packed (int4: two per byte) with its scales and is
dequantized in the PE datapath: each group's partial sum is scaled once per output
(`iteration_space`: g MACs + 1 scale multiply per group and output row).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from xdsl.dialects.builtin import Float16Type, Float32Type, IntegerType, TensorType
from xdsl.ir import Attribute, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from irflow.dialects.quant import quant_type


def _shape(v: SSAValue | Attribute) -> tuple[int, ...]:
    ty = v.type if isinstance(v, SSAValue) else v
    assert isinstance(ty, TensorType)
    return tuple(ty.get_shape())


@irdl_op_definition
class BlockLinearOp(IRDLOperation):
    """Linear layer on a group-wise quantized weight (module docstring)."""

    name = "irq.block_linear"
    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    scales = operand_def(TensorType)
    zero_points = opt_operand_def(TensorType)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = ("$input `,` $weight `,` $scales (`,` $zero_points^)? attr-dict `:` "
                       "functional-type(operands, results)")

    def __init__(self, x: SSAValue, w: SSAValue, scales: SSAValue,
                 zero_points: SSAValue | None = None):
        xt = x.type
        assert isinstance(xt, TensorType)
        qx = quant_type(x)
        out = TensorType(qx.expressed if qx is not None else xt.element_type,
                         [*_shape(x)[:-1], _shape(w)[0]])
        super().__init__(operands=[x, w, scales, [zero_points] if zero_points else []],
                         result_types=[out])

    @property
    def group(self) -> int:
        q = quant_type(self.weight)
        assert q is not None
        return q.block_size

    def verify_(self) -> None:
        q = quant_type(self.weight)
        w, x = _shape(self.weight), _shape(self.input)
        if q is None or not q.block_size or q.block_axis != 1 or len(w) != 2:
            raise VerifyException(
                f"{self.name} expects a weight [N, K] quantized in groups along axis 1, got "
                f"{self.weight.type}")
        g = q.block_size
        if w[1] % g:
            raise VerifyException(
                f"{self.name} expects the group size {g} to divide the reduction axis {w[1]}")
        if not x or x[-1] != w[1]:
            raise VerifyException(
                f"{self.name} expects input [..., {w[1]}] for weight {list(w)}, got {list(x)}")
        xe = self.input.type.element_type  # type: ignore[attr-defined]
        qx = quant_type(self.input)
        if qx is not None:  # w4a8: int8 activations, per tensor
            if qx.is_per_axis or qx.block_size or qx.bits != 8:
                raise VerifyException(f"{self.name} expects a per-tensor 8-bit quantized "
                                      f"input, got {xe}")
            xe = qx.expressed
        if not isinstance(xe, Float16Type | Float32Type):
            raise VerifyException(f"{self.name} expects a float16/float32 input, got {xe}")
        groups = (w[0], w[1] // g)
        if _shape(self.scales) != groups:
            raise VerifyException(
                f"{self.name} expects scales of shape {list(groups)}, got "
                f"{list(_shape(self.scales))}")
        if self.zero_points is not None and (
                _shape(self.zero_points) != groups
                or not isinstance(self.zero_points.type.element_type, IntegerType)):  # type: ignore[attr-defined]
            raise VerifyException(
                f"{self.name} expects integer zero points of shape {list(groups)}, got "
                f"{self.zero_points.type}")
        want = [*x[:-1], w[0]]
        if list(_shape(self.output)) != want or self.output.type.element_type != xe:  # type: ignore[attr-defined]
            raise VerifyException(
                f"{self.name} expects result tensor {want} of {xe}, got {self.output.type}")


def iteration_space(shapes: Sequence[tuple[int, ...]], out: tuple[int, ...],
                    params: Mapping[str, Attribute], group: int) -> object:
    """The accel iteration space: loops b, m, n, kb (groups of K); a step's weight slice
    is whole groups, so its scales are the matching [n, kb] slice."""
    from irflow.dialects import accel

    x, w = shapes[0], shapes[1]
    n_out, k = w
    m, kb = math.prod(x[:-1]), k // group
    on, full, zero = accel.on, accel.FULL, accel.ZERO
    ops = [accel.Access((1, m, kb, group), (zero, on("m"), on("kb"), full)),
           accel.Access((n_out, kb, group), (on("n"), on("kb"), full)),
           accel.Access((n_out, kb), (on("n"), on("kb")))]
    if len(shapes) > 3:
        ops.append(accel.Access((n_out, kb), (on("n"), on("kb"))))
    ext = {"b": 1, "m": m, "n": n_out, "kb": kb}
    y = accel.Access((1, m, n_out), (zero, on("m"), on("n")))
    return accel.Space("irq.block_linear", "pe", tuple(ext), ext, tuple(ops), y,
                       frozenset({"kb"}), macs_per_point=group + 1)
