"""`quantize-groups`: group-wise weight-only quantization (round to nearest), as on-device
LLM checkpoints store their weights: int4 or int8 integers with one scale (and, with
`zero-point=true`, one zero point) per group of `group` weights along the reduction axis.

Every `nn.linear` whose weight is a constant becomes a `irq.block_linear` on the
quantized weight and its scales (a bias becomes an `nn.add` after it); activations stay
float (f16 after `convert-float{to=f16}`: w4a16, w8a16), or with `act-bits=8` become
int8 per tensor in front of every block linear, from the ranges `calibrate` recorded
(w4a8: `quant.quantize` + integer group sums).

    %w = nn.constant #nn.weight<"fc.weight"> : tensor<32x64xf16>
    %y = nn.linear %x, %w : (tensor<1x8x64xf16>, tensor<32x64xf16>) -> tensor<1x8x32xf16>
becomes, with `quantize-groups{bits=4 group=32}`,
    %q = nn.constant #nn.weight<"fc.weight.q4g32">
         : tensor<32x64x!quant.uniform<i4<-7:7>:f16:{1:32}>>
    %s = nn.constant #nn.weight<"fc.weight.scales"> : tensor<32x2xf16>
    %y = irq.block_linear %x, %q, %s : (...) -> tensor<1x8x32xf16>

Symmetric (default): s = max|w| / qmax over the group, q = clamp(round_half_even(w / s),
−qmax, qmax) with qmax = 7 (int4) or 127 (int8), a narrow range like `quantize`.
Asymmetric: s = (max − min) / (2^bits − 1), z = round(−min / s) + qmin, stored as int8.
Scales are stored in the activations' float type (float16 rounding included when they are
f16). Each weight is quantized as the pass reaches it and the float array is dropped from
the weight store when nothing else uses it, so a large model never holds both copies.
A group size that does not divide a layer's reduction axis is a `PassError` naming the
layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import IntegerType, ModuleOp, TensorType
from xdsl.ir import Operation
from xdsl.passes import ModulePass

from irflow.diagnostics import PassError
from irflow.dialects import nn
from irflow.dialects.quant import QuantizeOp, UniformQuantizedType, quant_type
from irflow.dialects.quant_block import BlockLinearOp
from irflow.passes.calibrate import recorded_range
from irflow.passes.quantize import activation_type
from irflow.weights import WeightStore, constant_value, numpy_dtype, weights_of

_CHUNK_BYTES = 1 << 20
"""Rows are quantized a block at a time, ~1 MiB of float64 each: the working set stays in
the CPU cache and the float64 copy never exists for the whole weight (a 1 B model's
largest linear is 65 M weights)."""


def quantize_groups(w: np.ndarray, bits: int, group: int, zero_point: bool
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """RTN group-wise quantization of w [N, K]: (integers [N, K] int8, scales [N, K/g]
    float64, zero points [N, K/g] int8 or None). Computed in float64 from the weight's
    float16/float32 values (other dtypes are rounded to float32 first)."""
    n, k = w.shape
    q = np.empty((n, k), np.int8)
    scale = np.empty((n, k // group), np.float64)
    zps = np.empty((n, k // group), np.int8) if zero_point else None
    rows = max(1, _CHUNK_BYTES // (8 * max(k, 1)))
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        src = w[r0:r1]
        if src.dtype not in (np.float16, np.float32):
            src = np.asarray(src, np.float32)
        wg = src.reshape(r1 - r0, k // group, group).astype(np.float64)
        if zero_point:
            assert zps is not None
            qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
            lo, hi = np.minimum(wg.min(-1), 0.0), np.maximum(wg.max(-1), 0.0)
            sc = np.where(hi > lo, (hi - lo) / (qmax - qmin), 1.0)
            zp = np.clip(np.round(qmin - lo / sc), qmin, qmax)
            wg /= sc[..., None]
            np.rint(wg, out=wg)
            wg += zp[..., None]
            np.clip(wg, qmin, qmax, out=wg)
            zps[r0:r1] = zp
        else:
            qmax = (1 << (bits - 1)) - 1
            amax = np.abs(wg).max(-1)
            sc = np.where(amax > 0, amax / qmax, 1.0)
            wg /= sc[..., None]
            np.rint(wg, out=wg)
            np.clip(wg, -qmax, qmax, out=wg)
        q[r0:r1] = wg.reshape(r1 - r0, k)
        scale[r0:r1] = sc
    return q, scale, zps


@dataclass(frozen=True)
class QuantizeGroupsPass(ModulePass):
    """Group-wise weight-only quantization of every linear (module docstring)."""

    name = "quantize-groups"

    bits: int = 4
    group: int = 32
    zero_point: bool = False
    act_bits: int = 0  # 8: int8 activations into every block linear (w4a8; needs calibrate)

    def apply(self, ctx: Context, module: ModuleOp) -> None:
        if self.bits not in (4, 8):
            raise PassError(f"quantize-groups: bits must be 4 or 8, got {self.bits}")
        if self.group < 1:
            raise PassError(f"quantize-groups: group must be >= 1, got {self.group}")
        if self.act_bits not in (0, 8):
            raise PassError(f"quantize-groups: act-bits must be 0 (float) or 8, got "
                            f"{self.act_bits}")
        store = weights_of(module)
        for fn in module.ops:
            if isinstance(fn, func.FuncOp):
                for op in list(fn.body.walk()):
                    if isinstance(op, nn.LinearOp) and isinstance(op.operands[1].owner,
                                                                  nn.ConstantOp):
                        self._rewrite(op, store)
                if self.act_bits:
                    for op in list(fn.body.walk()):
                        if isinstance(op, BlockLinearOp) and quant_type(op.input) is None:
                            self._quantize_input(op)

    def _quantize_input(self, op: BlockLinearOp) -> None:
        """int8 per-tensor activations from the calibrated range of the input (w4a8)."""
        x = op.input
        rng = recorded_range(x)
        if rng is None:
            raise PassError("quantize-groups: act-bits=8 needs calibrated ranges (run "
                            "calibrate first): the input of this block linear has none", op)
        t = activation_type(*rng, symmetric=False, bits=8)
        qt = UniformQuantizedType.make(8, t.scale, t.zero_point, signed=t.signed,
                                       expressed=nn.value_element_type(x))
        cast = QuantizeOp(x, TensorType(qt, nn.shape_of(x)))
        cast.location = op.location
        block = op.parent_block()
        assert block is not None
        block.insert_op_before(cast, op)
        op.operands[0] = cast.output

    def _rewrite(self, op: nn.LinearOp, store: WeightStore) -> None:
        const = op.operands[1].owner
        assert isinstance(const, nn.ConstantOp)
        n, k = nn.shape_of(const.output)
        name = const.value.key if isinstance(const.value, nn.WeightAttr) else "linear.weight"
        act_name = nn.fused_act(op)
        if act_name is not None:
            raise PassError(f"quantize-groups: linear '{name}' has a fused {act_name}; run it "
                            "before fuse-activation", op)
        if k % self.group:
            raise PassError(f"quantize-groups: group size {self.group} does not divide the "
                            f"reduction axis ({k}) of linear '{name.removesuffix('.weight')}'",
                            op)
        act = nn.value_element_type(op.operands[0])
        q, scale, zp = quantize_groups(np.asarray(constant_value(const, store)),
                                       self.bits, self.group, self.zero_point)
        qmax = (1 << (self.bits - 1)) - 1
        qt = UniformQuantizedType.make(
            self.bits, (), signed=True, axis=1, block=self.group, expressed=act,
            storage_range=None if self.zero_point else (-qmax, qmax))
        tag = f".q{self.bits}g{self.group}"
        before = op
        block = op.parent_block()
        assert block is not None

        def constant(suffix: str, array: np.ndarray, element_type: object) -> Operation:
            new = nn.ConstantOp(nn.WeightAttr(store.add(name + suffix, array)),
                                TensorType(element_type, array.shape))  # type: ignore[arg-type]
            new.location = const.location
            block.insert_op_before(new, before)
            return new

        wq = constant(tag, q, qt)
        sc = constant(".scales", scale.astype(numpy_dtype(act)), act)
        zc = constant(".zero_points", zp, IntegerType(8)) if zp is not None else None
        new = BlockLinearOp(op.operands[0], wq.results[0], sc.results[0],
                            zc.results[0] if zc is not None else None)
        new.location = op.location
        block.insert_op_before(new, op)
        y = new.output
        if len(op.operands) > 2:
            add = nn.AddOp.make([y, op.operands[2]])
            add.location = op.location
            block.insert_op_before(add, op)
            y = add.results[0]
        y.name_hint = op.results[0].name_hint
        op.results[0].replace_all_uses_with(y)
        op.detach()
        op.erase()
        if not const.output.uses:
            const.detach()
            const.erase()
            if isinstance(const.value, nn.WeightAttr) and const.value.key in store:
                del store[const.value.key]


__all__ = ["QuantizeGroupsPass", "quantize_groups"]
