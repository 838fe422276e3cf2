"""The simulator's tile kernels: what one step of a layer computes on its slices.

`TILE_KERNELS` maps a layer kind to a factory `(layer, space) -> step function`; a step
(`Step`) gets the tile's loop ranges, the operand slices (with their zero padding) and
the result slice to write. Conv/matmul partial sums over the reduction loop accumulate
in the output; bias and fused activation are applied after the last reduction step;
kinds without an entry call the reference kernel on the slice (`_reference_kernel`).
The executor (`executor.py`) walks the loop nest and calls these; other families
register theirs (`block_tiles`, `llm_tiles`, `spatial_tiles`, `vector_tiles`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.ir import Block, Operation

from irflow.backends.reference.kernels import conv2d, fused_activation, make_kernel
from irflow.backends.reference.quant_kernels import ContractionPlan, contraction_plan
from irflow.dialects import accel, nn, quant
from irflow.dialects.quant import quant_type

NN_OPS: dict[str, type[Operation]] = {
    op.name: op for op in (*nn.NN.operations, *quant.QUANT.operations, *quant.IRQ.operations)}
"""Layer kinds -> op classes (nn ops and the quant casts) for the reference kernels."""


@dataclass
class Step:
    """One tile step handed to a tile kernel."""

    tile: dict[str, tuple[int, int]]
    operands: list[np.ndarray]  # operand slices (views into DRAM), clipped to the tensor
    pads: list[list[tuple[int, int]]]  # per operand, per view axis: (before, after) zeros
    # the kernel must add around the slice (a window crossing the tensor's edge)
    out: np.ndarray  # the result slice (a view into DRAM) to write
    first: bool  # first step of the reduction for this output tile
    last: bool  # last step of the reduction


TileKernel = Callable[[Step], None]


def _detached(layer: accel.LayerOp) -> Operation:
    """The layer's computation as a free-standing nn op / quant cast (for the reference
    kernels; a tile's per-channel requantization: `contraction_plan(op, channels)`)."""
    cls = NN_OPS[layer.kind.data]
    block = Block(arg_types=[v.type for v in layer.inputs])
    return cls.create(operands=list(block.args), result_types=[layer.output.type],
                      properties=dict(layer.params.data))


def _is_quantized(layer: accel.LayerOp) -> bool:
    return any(quant_type(v) is not None for v in (*layer.inputs, layer.output))


class _IntAccumulator:
    """Integer contraction tiles through `contraction_plan` (the reference kernel's own
    three steps): exact int64 partial sums per K-tile, kept per output tile (the PE
    array's int32 accumulators) until the last K-tile; then the int32 bias,
    requantization to the result type (or the int32 accumulator) and the store.
    Plans are made per output-channel range, so per-channel multipliers follow the tile."""

    def __init__(self, layer: accel.LayerOp, out_dims: Sequence[str]):
        self.layer = layer
        self.out_dims = tuple(out_dims)
        self.plans: dict[tuple, ContractionPlan] = {}
        self.partial: dict[tuple, np.ndarray] = {}
        self.op: Operation | None = None  # the layer as an nn op, made once

    def plan(self, key: tuple, channels: Callable[[], np.ndarray]) -> ContractionPlan:
        got = self.plans.get(key)
        if got is None:
            if self.op is None:
                self.op = _detached(self.layer)
            got = self.plans[key] = contraction_plan(self.op, channels())
        return got

    def step(self, step: Step, plan: ContractionPlan, fn: Callable[..., np.ndarray],
             x: np.ndarray, w: np.ndarray, shape: tuple[int, ...]) -> None:
        part = plan.accumulate(fn, x, w)
        key = tuple(step.tile[d] for d in self.out_dims)
        if step.first:
            self.partial[key] = part
        else:
            self.partial[key] += part
        if step.last:
            total = self.partial.pop(key).reshape(shape)
            bias = step.operands[2].reshape(-1) if len(step.operands) > 2 else None
            step.out[...] = plan.finish(total, bias).reshape(step.out.shape)


def _conv_kernel(layer: accel.LayerOp, space: accel.Space) -> TileKernel:
    params = layer.params.data
    strides, _, dil, _ = nn.conv2d_params(params)
    if _is_quantized(layer):
        return _qconv_kernel(layer, space, strides, dil)
    act = fused_activation(_detached(layer))
    has_bias = len(layer.inputs) > 2

    def run(step: Step) -> None:
        x, w = step.operands[0], step.operands[1]
        if x.dtype == np.float16:  # products summed in float32 (the reference's conv, and
            x, w = x.astype(np.float32), w.astype(np.float32)  # onnxruntime's), one rounding
        n, tg, tc, hh, ww = x.shape
        _, tf, _, kh, kw = w.shape
        (ph0, ph1), (pw0, pw1) = step.pads[0][3], step.pads[0][4]
        oh = step.tile["oh"][1] - step.tile["oh"][0]
        ow = step.tile["ow"][1] - step.tile["ow"][0]
        y = conv2d(x.reshape(n, tg * tc, hh, ww), w.reshape(tg * tf, tc, kh, kw), None,
                   strides, (ph0, pw0, ph1, pw1), dil, tg)
        y = y.reshape(n, tg, tf, oh, ow)
        _accumulate(step, y, has_bias, act, bias_shape=(1, tg, tf, 1, 1))

    return run


def _qconv_kernel(layer: accel.LayerOp, space: accel.Space, strides: tuple[int, ...],
                  dil: tuple[int, ...]) -> TileKernel:
    fg = space.extents["f"]
    acc = _IntAccumulator(layer, ("n", "g", "f", "oh", "ow"))

    def run(step: Step) -> None:
        x, w = step.operands[0], step.operands[1]
        n, tg, tc, hh, ww = x.shape
        _, tf, _, kh, kw = w.shape
        (ph0, ph1), (pw0, pw1) = step.pads[0][3], step.pads[0][4]
        (g0, g1), (f0, f1) = step.tile["g"], step.tile["f"]
        plan = acc.plan((g0, g1, f0, f1), lambda: (
            np.arange(g0, g1)[:, None] * fg + np.arange(f0, f1)[None, :]).ravel())
        oh = step.tile["oh"][1] - step.tile["oh"][0]
        ow = step.tile["ow"][1] - step.tile["ow"][0]

        def conv(xx: np.ndarray, wk: np.ndarray) -> np.ndarray:
            return conv2d(xx, wk, None, strides, (ph0, pw0, ph1, pw1), dil, tg)

        acc.step(step, plan, conv, x.reshape(n, tg * tc, hh, ww),
                 w.reshape(tg * tf, tc, kh, kw), (n, tg * tf, oh, ow))

    return run


def _qmatmul_kernel(layer: accel.LayerOp, space: accel.Space) -> TileKernel:
    linear = layer.kind.data == "nn.linear"
    acc = _IntAccumulator(layer, ("b", "m", "n"))

    def fn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.matmul(a, b.T) if linear else np.matmul(a, b)

    def run(step: Step) -> None:
        n0, n1 = step.tile["n"]
        plan = acc.plan((n0, n1), lambda: np.arange(n0, n1))
        acc.step(step, plan, fn, step.operands[0], step.operands[1], step.out.shape)

    return run


def _matmul_kernel(layer: accel.LayerOp, space: accel.Space) -> TileKernel:
    linear = layer.kind.data == "nn.linear"
    if _is_quantized(layer):
        return _qmatmul_kernel(layer, space)
    act = fused_activation(_detached(layer))
    has_bias = linear and len(layer.inputs) > 2

    def run(step: Step) -> None:
        a, b = step.operands[0], step.operands[1]
        y = np.matmul(a, b.T) if linear else np.matmul(a, b)
        _accumulate(step, y.reshape(step.out.shape), has_bias, act, bias_shape=(1, 1, -1))

    return run


def _accumulate(step: Step, partial: np.ndarray, has_bias: bool,
                act: Callable[..., np.ndarray] | None, bias_shape: tuple[int, ...]) -> None:
    out = step.out
    if step.first:
        out[...] = partial
    else:
        out += partial
    if step.last:
        if has_bias:
            out += step.operands[2].reshape(bias_shape)
        if act is not None:
            out[...] = act(np.array(out))


def _pool_kernel(layer: accel.LayerOp, space: accel.Space) -> TileKernel:
    if layer.kind.data == "nn.avgpool" and _is_quantized(layer):
        # integer window sums, requantized: the reference kernel on the tile's windows
        # (quantized average pooling has no padding, so a tile is a smaller pool)
        return _reference_kernel(layer, space)
    params = layer.params.data
    k, s, p, _, include_pad = nn.pool2d_params(params)
    is_max = layer.kind.data == "nn.maxpool"
    _, _, h, w = nn.shape_of(layer.inputs[0])
    x_axes = space.operands[0].axes

    def count(axis: accel.Axis, lo: int, hi: int, size: int, pad_lo: int, pad_hi: int,
              kern: int, stride: int) -> np.ndarray:
        """Per output position along one axis: window cells that count in the divisor."""
        rows = np.arange(lo * stride - axis.offset, (hi - 1) * stride - axis.offset + kern)
        lo_ok, hi_ok = (-pad_lo, size + pad_hi) if include_pad else (0, size)
        valid = ((rows >= lo_ok) & (rows < hi_ok)).astype(np.float32)
        win = np.lib.stride_tricks.sliding_window_view(valid, kern)[::stride]
        return win.sum(axis=1)

    def run(step: Step) -> None:
        x = step.operands[0]
        (ph0, ph1), (pw0, pw1) = step.pads[0][2], step.pads[0][3]
        fill = (-np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min) if is_max else 0
        xp = np.pad(x, ((0, 0), (0, 0), (ph0, ph1), (pw0, pw1)), constant_values=fill)
        oh = step.tile["oh"][1] - step.tile["oh"][0]
        ow = step.tile["ow"][1] - step.tile["ow"][0]
        win = np.lib.stride_tricks.sliding_window_view(xp, k, axis=(2, 3))
        win = win[:, :, : (oh - 1) * s[0] + 1 : s[0], : (ow - 1) * s[1] + 1 : s[1]]
        if is_max:
            step.out[...] = win.max(axis=(4, 5))
            return
        total = win.sum(axis=(4, 5), dtype=x.dtype)
        ch = count(x_axes[2], *step.tile["oh"], h, p[0], p[2], k[0], s[0])
        cw = count(x_axes[3], *step.tile["ow"], w, p[1], p[3], k[1], s[1])
        step.out[...] = total / np.outer(ch, cw).astype(x.dtype)

    return run


def _slice_kernel(layer: accel.LayerOp, space: accel.Space) -> TileKernel:
    def run(step: Step) -> None:
        step.out[...] = step.operands[0]  # the load already took the strided slice

    return run


def _reference_kernel(layer: accel.LayerOp, space: accel.Space) -> TileKernel:
    """Vector and copy kinds: the reference kernel applied to the slices (the loops
    that the kernel reduces over are whole in every tile)."""
    kernel = make_kernel(_detached(layer))

    def run(step: Step) -> None:
        y = kernel(*step.operands)
        step.out[...] = np.asarray(y).reshape(step.out.shape)

    return run


TILE_KERNELS: dict[str, Callable[[accel.LayerOp, accel.Space], TileKernel]] = {
    "nn.conv2d": _conv_kernel,
    "nn.matmul": _matmul_kernel,
    "nn.linear": _matmul_kernel,
    "nn.maxpool": _pool_kernel,
    "nn.avgpool": _pool_kernel,
    "nn.slice": _slice_kernel,
}
"""Kinds with their own tile kernel; every other kind uses `_reference_kernel`."""
