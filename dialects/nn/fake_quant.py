"""`nn.fake_quant`: quantize and dequantize in float, for quantization-aware training.

Two modes, each the rounding `quantize` will apply to the same tensor:

    %wq = nn.fake_quant %w {mode = "weight", bits = 4 : i64, axis = 0 : i64}
          : tensor<16x1x3x3xf32>
    %xq = nn.fake_quant %x {mode = "activation", bits = 8 : i64, scale = 0.0039 : f64,
                            zero_point = 0 : i64, signed = 0 : i64} : tensor<32x1x8x8xf32>

- `weight`: symmetric, narrow range (±(2^(bits−1) − 1)), scale max|w| / qmax per slice
  along `axis` (per tensor without it), recomputed from the current weights every call:
  `irflow.passes.quantize.weight_scales` with `minmax`;
- `activation`: a fixed scale and zero point (from calibration), storage range of `bits`
  (`signed`): (clamp(round_half_even(x / s) + z, qmin, qmax) − z) · s.

Its gradient is the straight-through estimator: dy where the value was inside the
representable range, 0 where it was clamped (`nn.fake_quant_grad`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from xdsl.dialects.builtin import I64, IntegerAttr, StringAttr, TensorType
from xdsl.ir import Attribute
from xdsl.irdl import (
    VarConstraint,
    base,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    result_def,
)
from xdsl.utils.exceptions import VerifyException

from irflow.dialects.nn.attributes import F64
from irflow.dialects.nn.base import NNOp
from irflow.dialects.nn.shapes import Shape, normalize_axis, prop_int, prop_str

MODES = ("weight", "activation")


class _FakeQuantBase(NNOp):
    mode = prop_def(StringAttr)
    bits = prop_def(IntegerAttr[I64])
    axis = opt_prop_def(IntegerAttr[I64])
    scale = opt_prop_def(F64)
    zero_point = opt_prop_def(IntegerAttr[I64])
    signed = opt_prop_def(IntegerAttr[I64])

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        mode = prop_str(props, "mode", "")
        if mode not in MODES:
            raise VerifyException(f"{cls.name} expects mode in {list(MODES)}, got '{mode}'")
        bits = prop_int(props, "bits", 0)
        if not 2 <= bits <= 16:
            raise VerifyException(f"{cls.name} expects 2 <= bits <= 16, got {bits}")
        if mode == "weight" and "axis" in props:
            normalize_axis(cls.name, prop_int(props, "axis", 0), len(shapes[0]))
        if mode == "activation" and ("scale" not in props or "zero_point" not in props):
            raise VerifyException(f"{cls.name} in activation mode expects a scale and a "
                                  "zero_point")
        return [shapes[0]]


@irdl_op_definition
class FakeQuantOp(_FakeQuantBase):
    """Quantize-dequantize (see the module docstring)."""

    name = "nn.fake_quant"
    T: ClassVar = VarConstraint("T", base(TensorType))
    input = operand_def(T)
    output = result_def(T)
    assembly_format = "$input attr-dict `:` type($input)"


@irdl_op_definition
class FakeQuantGradOp(_FakeQuantBase):
    """The straight-through gradient of `nn.fake_quant`: `%dx = nn.fake_quant_grad %x, %dy
    {...same properties...}` = dy · [x inside the representable range]."""

    name = "nn.fake_quant_grad"
    T: ClassVar = VarConstraint("T", base(TensorType))
    input = operand_def(T)
    grad = operand_def(T)
    output = result_def(T)
    assembly_format = "$input `,` $grad attr-dict `:` functional-type(operands, results)"


FAKE_QUANT_OPS = [FakeQuantOp, FakeQuantGradOp]
