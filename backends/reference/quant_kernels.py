"""Reference kernels for quantized IR: the `quant` casts and nn ops on `!quant.uniform` tensors.

An nn op whose operands carry quantized element types runs in integers, through
`irflow.intmath` (the written-down semantics; the simulator calls the same
functions on its tiles):

    %y = nn.conv2d %x, %w, %b {act = "relu"} : (tensor<1x1x8x8x!quant.uniform<i8:f32, 0.004:-128>>,
         tensor<16x1x3x3x!quant.uniform<i8<-127:127>:f32:0, {...}>>,
         tensor<16x!quant.uniform<i32:f32:0, {...}>>)
         -> tensor<1x16x6x6x!quant.uniform<i8:f32, 0.02:-128>>

- conv2d / linear / matmul: exact accumulation of `(q_x − z_x)(q_w − z_w)` plus the
  int32 bias (whose scale must be `s_x · s_w`), then either requantization to the
  int8/int4 result type with the fused relu/relu6 as a clamp, or — when the result
  type is `i32` with scale `s_x · s_w` — the accumulator itself (consumers
  dequantize it: the last layer keeps full precision that way);
- add: TFLite's integer add (`intmath.add`);
- relu / relu6 / clip: clamps in the integer domain;
- global_avg_pool, avgpool without padding: integer window sums, requantized;
- maxpool, reshape, flatten, transpose, slice, split, concat, gather: the float
  kernels already move storage integers unchanged (types in = types out).

Every nn op kernel here wraps the float factory of `kernels.py`: an op without
quantized operands still gets the float kernel.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from xdsl.ir import Operation, SSAValue

from irflow import intmath
from irflow.backends.reference import kernels as K
from irflow.backends.reference.kernels import Kernel, KernelFactory, kernel_factory, register_kernel
from irflow.diagnostics import ExecutionError
from irflow.dialects import nn, quant
from irflow.dialects.quant import UniformQuantizedType, quant_type
from irflow.weights import numpy_dtype

# --------------------------------------------------------------------------------------
# Helpers


def _params(q: UniformQuantizedType, rank: int, axis_to: int | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """(scale, zero point) arrays shaped to broadcast against a rank-`rank` tensor.

    `axis_to` moves a per-axis type's parameters to another axis (e.g. the weight's
    output-channel axis 0 onto the conv result's channel axis 1)."""
    scale, zp = q.scale_values(), q.zero_point_values()
    if not q.is_per_axis:
        return scale.reshape((1,) * rank), zp.reshape((1,) * rank)
    ax = q.quantized_axis if axis_to is None else axis_to
    shape = tuple(-1 if d == ax else 1 for d in range(rank))
    return scale.reshape(shape), zp.reshape(shape)


def _rank(value: SSAValue) -> int:
    return len(nn.shape_of(value))


def _fail(op: Operation, message: str) -> ExecutionError:
    return ExecutionError(f"{op.name} {message}", op)


def _per_tensor(op: Operation, role: str, q: UniformQuantizedType | None
                ) -> UniformQuantizedType:
    if q is None or q.is_per_axis:
        raise _fail(op, f"expects a per-tensor quantized {role}, got {q}")
    return q


def _any_quantized(op: Operation) -> bool:
    return any(quant_type(v) is not None for v in (*op.operands, *op.results))


def quantized_variant(*op_classes: type[Operation]
                      ) -> Callable[[KernelFactory], KernelFactory]:
    """Register `factory` for ops with quantized operands/results; others keep the float one."""

    def decorate(factory: KernelFactory) -> KernelFactory:
        for cls in op_classes:
            float_factory = kernel_factory(cls)

            def dispatch(op: Operation, _float: KernelFactory | None = float_factory) -> Kernel:
                if _any_quantized(op):
                    return factory(op)
                if _float is None:
                    raise _fail(op, "has no float kernel")
                return _float(op)

            register_kernel(cls)(dispatch)
        return factory

    return decorate


# --------------------------------------------------------------------------------------
# The casts


@register_kernel(quant.QuantizeOp)
def _quantize(op: quant.QuantizeOp) -> Kernel:
    q = quant_type(op.output)
    assert q is not None
    scale, zp = _params(q, _rank(op.output))
    dtype = numpy_dtype(q)
    return lambda x: intmath.quantize(x, scale, zp, q.qmin, q.qmax, dtype)


@register_kernel(quant.DequantizeOp)
def _dequantize(op: quant.DequantizeOp) -> Kernel:
    q = quant_type(op.input)
    assert q is not None
    scale, zp = _params(q, _rank(op.input))
    return lambda x: intmath.dequantize(x, scale, zp)


@register_kernel(quant.StorageCastOp)
def _storage_cast(op: quant.StorageCastOp) -> Kernel:
    dtype = numpy_dtype(nn.value_element_type(op.output))
    return lambda x: np.asarray(x).astype(dtype, copy=False)  # the same integers


@register_kernel(quant.RequantizeOp)
def _requantize(op: quant.RequantizeOp) -> Kernel:
    a, b = quant_type(op.input), quant_type(op.output)
    assert a is not None and b is not None
    s_a, z_a = _params(a, _rank(op.input))
    mult = intmath.quantize_multiplier(s_a / b.scale)
    dtype = numpy_dtype(b)
    return lambda x: intmath.requantize(intmath.centered(x, z_a), mult, b.zero_point,
                                        b.qmin, b.qmax, dtype)


# --------------------------------------------------------------------------------------
# Contractions


def _pick(values: np.ndarray, channels: np.ndarray | None) -> np.ndarray:
    """Per-channel parameters restricted to `channels` (per-tensor ones unchanged)."""
    return values if channels is None or values.size <= 1 else values[channels]


def _output_stage(op: Operation, s_acc: np.ndarray, channel_axis: int,
                  channels: np.ndarray | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """acc (int64) -> result storage: requantize to int8/int4, or keep the int32 acc.

    `s_acc` holds s_x · s_w per output channel (length 1 when per-tensor)."""
    qy = quant_type(op.results[0])
    if qy is None:
        raise _fail(op, "with quantized operands expects a quantized result type")
    rank = _rank(op.results[0])
    act = nn.fused_act(op)
    if act is not None and act not in intmath.INTEGER_ACTIVATIONS:
        raise _fail(op, f"cannot apply act '{act}' in integers "
                    f"(supported: {sorted(intmath.INTEGER_ACTIVATIONS)})")
    shape = tuple(-1 if d == channel_axis else 1 for d in range(rank))
    dtype = numpy_dtype(qy)
    if qy.bits == 32:  # the accumulator itself, at scale s_x · s_w
        got = np.broadcast_to(_pick(qy.scale_values(), channels), s_acc.shape)
        if not np.allclose(got, s_acc, rtol=1e-6, atol=0) or np.any(qy.zero_point_values()):
            raise _fail(op, f"expects an i32 result of scale s_x·s_w = {s_acc.tolist()} "
                        f"and zero point 0, got {qy}")
        lo = 0 if act in ("relu", "relu6") else intmath.INT32_MIN
        hi = intmath.INT32_MAX
        if act == "relu6":
            hi = np.floor(6.0 / s_acc + 0.5).astype(np.int64).reshape(shape)
        return lambda acc: np.clip(acc, lo, hi).astype(dtype)
    s_y, z_y = _per_tensor(op, "result", qy).scale, qy.zero_point
    mult = intmath.quantize_multiplier(s_acc / s_y)
    if len(s_acc) > 1:
        mult = mult.reshape(shape)
    lo, hi = intmath.activation_range(act, s_y, z_y, qy.qmin, qy.qmax)
    return lambda acc: intmath.requantize(acc, mult, z_y, lo, hi, dtype)


@dataclass(frozen=True)
class ContractionPlan:
    """How a quantized conv2d / linear / matmul computes, split for tiled execution.

    The simulator runs the same three steps on its tiles: for every K-tile,
    `partial = plan.accumulate(tile_fn, x_tile, w_tile)` (exact int64); the partial
    sums add up exactly; then `plan.finish(total, bias)` adds the int32 bias and
    requantizes (or keeps the int32 accumulator) — bit for bit the reference result.
    """

    x_zero_point: int
    w_zero_point: np.ndarray  # a scalar, or per output channel broadcastable to the weight
    bias_shape: tuple[int, ...] | None  # the bias reshaped onto the output channel axis
    output: Callable[[np.ndarray], np.ndarray]  # int64 accumulator -> result storage
    label: str

    def accumulate(self, linear_fn: Callable[..., np.ndarray], xq: np.ndarray,
                   wq: np.ndarray) -> np.ndarray:
        """Exact int64 `linear_fn(x − z_x, w − z_w)` (a float kernel run on float64)."""
        return intmath.exact_accumulate(linear_fn,
                                        intmath.centered_f64(xq, self.x_zero_point),
                                        intmath.centered_f64(wq, self.w_zero_point))

    def finish(self, acc: np.ndarray, bq: np.ndarray | None = None) -> np.ndarray:
        """Add the int32 bias, check the int32 range, requantize to the result type."""
        if bq is not None and self.bias_shape is not None:
            acc = acc + bq.astype(np.int64).reshape(self.bias_shape)
        if acc.size and max(-int(acc.min()), int(acc.max())) > intmath.INT32_MAX:
            raise ExecutionError(f"{self.label}: int32 accumulator overflow")
        return self.output(acc)


def contraction_plan(op: Operation, channels: np.ndarray | None = None) -> ContractionPlan:
    """The `ContractionPlan` of a quantized nn.conv2d / nn.linear / nn.matmul; with
    `channels`, for those output channels only (a tile's: the per-channel scales, weight
    zero points and multipliers of those channels, the same numbers)."""
    if isinstance(op, nn.Conv2dOp):
        weight_axis, channel_axis = 0, 1
    elif isinstance(op, nn.LinearOp):
        weight_axis, channel_axis = 0, _rank(op.results[0]) - 1
    elif isinstance(op, nn.MatmulOp):
        weight_axis, channel_axis = _rank(op.operands[1]) - 1, _rank(op.results[0]) - 1
    else:
        raise _fail(op, "is not a contraction (conv2d, linear, matmul)")
    x, w = op.operands[0], op.operands[1]
    qx = _per_tensor(op, "input", quant_type(x))
    qw = quant_type(w)
    if qw is None:
        raise _fail(op, f"expects a quantized weight with a quantized input, got {w.type}")
    if qw.is_per_axis and qw.quantized_axis != weight_axis:
        raise _fail(op, f"expects per-axis weight scales on axis {weight_axis}, "
                    f"got axis {qw.quantized_axis}")
    s_acc = qx.scale * _pick(qw.scale_values(), channels)
    _, z_w = _params(qw, _rank(w))
    if np.all(z_w == z_w.flat[0]):  # symmetric weights: one zero point, any weight tile
        z_w = z_w.reshape(-1)[:1].reshape(())
    elif channels is not None:
        z_w = np.take(z_w, channels, axis=weight_axis)
    bias_shape: tuple[int, ...] | None = None
    if len(op.operands) > 2:
        qb = quant_type(op.operands[2])
        if qb is None or qb.bits != 32 or np.any(qb.zero_point_values()) or not np.allclose(
                np.broadcast_to(_pick(qb.scale_values(), channels), s_acc.shape), s_acc,
                rtol=1e-6, atol=0):
            raise _fail(op, f"expects an i32 bias of scale s_x·s_w = {s_acc.tolist()} and "
                        f"zero point 0, got {op.operands[2].type}")
        rank = _rank(op.results[0])
        bias_shape = tuple(-1 if d == channel_axis else 1 for d in range(rank))
    return ContractionPlan(qx.zero_point, z_w, bias_shape,
                           _output_stage(op, s_acc, channel_axis, channels), op.name)


def _contraction(op: Operation, linear_fn: Callable[..., np.ndarray]) -> Kernel:
    plan = contraction_plan(op)

    def kernel(xq: np.ndarray, wq: np.ndarray, bq: np.ndarray | None = None) -> np.ndarray:
        return plan.finish(plan.accumulate(linear_fn, xq, wq), bq)

    return kernel


@quantized_variant(nn.Conv2dOp)
def _qconv2d(op: nn.Conv2dOp) -> Kernel:
    strides, pads, dil, groups = nn.conv2d_params(op)

    def conv(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return K.conv2d(x, w, None, strides, pads, dil, groups)

    return _contraction(op, conv)


@quantized_variant(nn.LinearOp)
def _qlinear(op: nn.LinearOp) -> Kernel:
    return _contraction(op, K.linear)


@quantized_variant(nn.MatmulOp)
def _qmatmul(op: nn.MatmulOp) -> Kernel:
    return _contraction(op, np.matmul)


# --------------------------------------------------------------------------------------
# Elementwise


@quantized_variant(nn.AddOp)
def _qadd(op: nn.AddOp) -> Kernel:
    qa = _per_tensor(op, "lhs", quant_type(op.lhs))
    qb = _per_tensor(op, "rhs", quant_type(op.rhs))
    qy = _per_tensor(op, "result", quant_type(op.output))
    act = nn.fused_act(op)
    if act is not None and act not in intmath.INTEGER_ACTIVATIONS:
        raise _fail(op, f"cannot apply act '{act}' in integers")
    params = intmath.AddParams.make(qa.scale, qb.scale, qy.scale)
    lo, hi = intmath.activation_range(act, qy.scale, qy.zero_point, qy.qmin, qy.qmax)
    dtype = numpy_dtype(qy)
    return lambda a, b: intmath.add(a, qa.zero_point, b, qb.zero_point, params,
                                    qy.zero_point, lo, hi, dtype)


def _same_type(op: Operation) -> UniformQuantizedType:
    q_in, q_out = quant_type(op.operands[0]), quant_type(op.results[0])
    if q_in is None or q_in != q_out:
        raise _fail(op, f"expects the same quantized type in and out, got "
                    f"{op.operands[0].type} and {op.results[0].type}")
    return _per_tensor(op, "input", q_in)


@quantized_variant(nn.ReluOp, nn.Relu6Op)
def _qrelu(op: Operation) -> Kernel:
    q = _same_type(op)
    act = "relu6" if isinstance(op, nn.Relu6Op) else "relu"
    lo, hi = intmath.activation_range(act, q.scale, q.zero_point, q.qmin, q.qmax)
    return lambda x: np.clip(x, lo, hi)


@quantized_variant(nn.ClipOp)
def _qclip(op: nn.ClipOp) -> Kernel:
    q = _same_type(op)
    lo, hi = q.qmin, q.qmax
    if op.min is not None:
        lo = max(lo, q.zero_point + math.ceil(op.min.value.data / q.scale - 1e-9))
    if op.max is not None:
        hi = min(hi, q.zero_point + math.floor(op.max.value.data / q.scale + 1e-9))
    return lambda x: np.clip(x, lo, hi)


# --------------------------------------------------------------------------------------
# Pooling


def _pool_requantizer(op: Operation, count: int) -> Callable[[np.ndarray], np.ndarray]:
    qx = _per_tensor(op, "input", quant_type(op.operands[0]))
    qy = _per_tensor(op, "result", quant_type(op.results[0]))
    mult = intmath.quantize_multiplier(qx.scale / (count * qy.scale))
    dtype = numpy_dtype(qy)
    return lambda total: intmath.requantize(total, mult, qy.zero_point, qy.qmin, qy.qmax, dtype)


@quantized_variant(nn.GlobalAvgPoolOp)
def _qglobal_avg_pool(op: nn.GlobalAvgPoolOp) -> Kernel:
    shape = nn.shape_of(op.input)
    axes = tuple(range(2, len(shape)))
    finish = _pool_requantizer(op, math.prod(shape[2:]))
    z_x = _per_tensor(op, "input", quant_type(op.input)).zero_point

    def pool(x: np.ndarray) -> np.ndarray:
        return finish(intmath.centered(x, z_x).sum(axis=axes, keepdims=True))

    return pool


@quantized_variant(nn.AvgPoolOp)
def _qavgpool(op: nn.AvgPoolOp) -> Kernel:
    (kh, kw), (sh, sw), pads, ceil, _ = nn.pool2d_params(op)
    if any(pads) or ceil:
        raise _fail(op, "runs in integers only without padding and ceil_mode (keep it float)")
    oh, ow = nn.shape_of(op.output)[2:]
    finish = _pool_requantizer(op, kh * kw)
    z_x = _per_tensor(op, "input", quant_type(op.input)).zero_point

    def pool(x: np.ndarray) -> np.ndarray:
        win = sliding_window_view(intmath.centered(x, z_x), (kh, kw), axis=(2, 3))
        win = win[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]
        return finish(win.sum(axis=(4, 5)))

    return pool


_MOVES: tuple[type[Operation], ...] = (nn.MaxPoolOp, nn.ReshapeOp, nn.FlattenOp,
                                      nn.TransposeOp, nn.SliceOp, nn.ConcatOp, nn.SplitOp)
# The float factories, captured before `quantized_variant` wraps them.
_FLOAT_MOVE: dict[type[Operation], KernelFactory | None] = {
    cls: kernel_factory(cls) for cls in _MOVES
}


@quantized_variant(*_MOVES)
def _qmove(op: Operation) -> Kernel:
    """Data movement: storage integers move unchanged, so every type must be the same."""
    types = {quant_type(v) for v in (*op.operands, *op.results)}
    if len(types) != 1 or None in types:
        raise _fail(op, "expects all operands and results to have the same quantized type")
    float_factory = _FLOAT_MOVE[type(op)]
    if float_factory is None:
        raise _fail(op, "has no kernel")
    return float_factory(op)


__all__ = ["quantized_variant", "ContractionPlan", "contraction_plan"]
