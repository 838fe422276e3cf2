"""The numeric core: one table from op class to a numpy kernel factory.

A *kernel factory* reads an op's properties once (at compile time) and returns the
function run on every call:

    @register_kernel(nn.SoftmaxOp)
    def _softmax(op):
        axis = op.axis.value.data          # read once
        return lambda x: softmax(x, axis)  # run per call

The executor (`executor.py`), constant folding (`irflow.passes.fold_constants`) and
the simulator (for its tiles) all evaluate ops through this table, so it is the
executable semantics of the `nn` dialect. Semantics follow ONNX for the op of the
same name; float tensors are computed in float32 (accumulating in float32, as
onnxruntime does), never silently promoted to float64.

Edge cases live in named helpers (`erf`, `conv2d`, `_pool_planner`, ...); a later
dialect adds its kernels with `@register_kernel(OpClass)`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation

from irflow import lowp
from irflow.backends.reference.conv import (
    EPILOGUE_ACTS,
    JIT_MIN_MACS,
    conv2d,
    pad_nchw,
    preload,
    tap_views,
)
from irflow.diagnostics import ExecutionError, IrflowError
from irflow.dialects import nn
from irflow.weights import WeightStore, constant_value, numpy_dtype, weights_of

Kernel = Callable[..., Any]  # (*arrays) -> ndarray | tuple[ndarray, ...]
KernelFactory = Callable[[Any], Kernel]

KERNELS: dict[type[Operation], KernelFactory] = {}
"""Op class -> kernel factory. Looked up by exact class, then along the MRO."""


def register_kernel(*op_classes: type[Operation]) -> Callable[[KernelFactory], KernelFactory]:
    """Register a kernel factory for one or more op classes (later registrations win)."""

    def decorate(factory: KernelFactory) -> KernelFactory:
        for cls in op_classes:
            KERNELS[cls] = factory
        return factory

    return decorate


def kernel_factory(op_class: type[Operation]) -> KernelFactory | None:
    """The factory registered for `op_class` or its nearest registered base class."""
    for cls in op_class.__mro__:
        factory = KERNELS.get(cls)  # type: ignore[arg-type]
        if factory is not None:
            return factory
    return None


def make_kernel(op: Operation) -> Kernel:
    """Build the per-call kernel for `op` (raises `ExecutionError` if there is none)."""
    factory = kernel_factory(type(op))
    if factory is None:
        raise ExecutionError(f"no reference kernel for op '{op.name}'", op)
    try:
        return _low_precision(op, factory(op))
    except IrflowError:
        raise
    except Exception as e:  # a malformed property, caught at compile time
        raise ExecutionError(f"cannot compile {op.name}: {type(e).__name__}: {e}", op) from e


def _low_precision(op: Operation, kernel: Kernel) -> Kernel:
    """An op on bf16/f8/f4 values (`irflow.lowp`) computes in float32 and rounds each
    result to its declared type, as onnx's reference does; other ops are unchanged."""
    types = [getattr(v.type, "element_type", None) for v in (*op.operands, *op.results)]
    if not any(t is not None and lowp.numpy_dtype_of(t) is not None for t in types):
        return kernel
    outs = [lowp.numpy_dtype_of(getattr(r.type, "element_type", None)) for r in op.results]
    if isinstance(op, nn.MATH_OPS["cast"]):
        return kernel  # the cast itself converts (and saturates)

    def widened(*xs: Any) -> Any:
        args = [x.astype(np.float32) if isinstance(x, np.ndarray) and lowp.is_low_precision(
            x.dtype) else x for x in xs]
        res = as_results(kernel(*args))
        res = [r.astype(d) if d is not None else r for r, d in zip(res, outs)]
        return res[0] if len(res) == 1 else tuple(res)

    return widened


def as_results(value: Any) -> list[np.ndarray]:
    """A kernel's return value as a list of arrays (one per op result)."""
    if isinstance(value, tuple | list):
        return [np.asarray(v) for v in value]
    return [np.asarray(value)]


def evaluate_op(op: Operation, operands: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Evaluate one op on concrete operand arrays; one array per result.

    Spatial kernels (conv2d, pools, flatten) size their output from the arrays given,
    so a tile smaller than the op's declared operands works. To evaluate the same op
    many times, build its kernel once with `make_kernel(op)` and call that.

    >>> evaluate_op(relu_op, [np.array([-1.0, 2.0], np.float32)])
    [array([0., 2.], dtype=float32)]
    """
    kernel = make_kernel(op)
    try:
        return as_results(kernel(*operands))
    except IrflowError:
        raise
    except Exception as e:
        raise ExecutionError(f"while executing {op.name}: {type(e).__name__}: {e}", op) from e


# --------------------------------------------------------------------------------------
# Property readers are nn's (`nn.prop_ints(op, name, default)`): an absent property
# means the op's declared default.


def _result_shape(op: Operation, i: int = 0) -> tuple[int, ...]:
    return nn.shape_of(op.results[i])


# --------------------------------------------------------------------------------------
# Constants


@register_kernel(nn.ConstantOp)
def _constant(op: nn.ConstantOp) -> Kernel:
    top = op.get_toplevel_object()
    store = weights_of(top) if isinstance(top, ModuleOp) else WeightStore()
    value = constant_value(op, store)
    return lambda: value


# --------------------------------------------------------------------------------------
# Unary elementwise. Each takes an optional `out` so a fused activation can run in place.

Unary = Callable[..., np.ndarray]  # (x, out=None) -> ndarray


def _f(x: np.ndarray, v: float) -> np.generic:
    """The scalar `v` in x's element type (keeps float32 math in float32)."""
    return x.dtype.type(v)


def _into(value: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """Write `value` into `out` when given (for functions without an `out=`)."""
    if out is None:
        return value
    out[...] = value
    return out


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.maximum(x, _f(x, 0.0), out=out)


def relu6(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.clip(x, _f(x, 0.0), _f(x, 6.0), out=out)


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 / (1 + exp(-x)), without overflow: exp of -|x| only."""
    e = np.exp(-np.abs(x))
    num = np.where(x >= 0, _f(x, 1.0), e)
    e += _f(x, 1.0)
    return np.divide(num, e, out=out)


def tanh(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.tanh(x, out=out)


def silu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    s = sigmoid(x)
    return np.multiply(x, s, out=out)


def hardsigmoid_fn(alpha: float, beta: float) -> Unary:
    """ONNX HardSigmoid: max(0, min(1, alpha·x + beta))."""

    def hardsigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        y = x * _f(x, alpha)
        y += _f(x, beta)
        return np.clip(y, _f(x, 0.0), _f(x, 1.0), out=out)

    return hardsigmoid


def hardswish(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """x * max(0, min(1, x/6 + 1/2)) (ONNX HardSwish: alpha = 1/6, beta = 0.5)."""
    return np.multiply(x, hardsigmoid_fn(1.0 / 6.0, 0.5)(x), out=out)


# Rational approximation of erf, coefficients from Eigen's `generic_fast_erf_float`
# (SpecialFunctionsImpl.h): a 9/12-degree odd/even rational interpolant for float32.
# Evaluated in float64 and rounded once, it is within 1 ulp of the true erf in float32
# (Eigen's float32 evaluation: ~6 ulp). Eigen returns sign(x) from |x| >= 3.8325; here x
# is clipped to ±3.9, where the interpolant is monotone and just above 1, and the result
# clipped to [-1, 1] — the same values without a (slow) masked select.
_ERF_CLAMP = 3.9
_ERF_ALPHA = (1.128379143519084, 0.18520832239976145, 0.050955695062380861,
              0.0034082910107109506, 0.00022905065861350646)
_ERF_BETA = (1.0, 0.49746925110067538, 0.11098505178285362, 0.014070470171167667,
             0.0010179625278914885, 0.000023547966471313185, -1.1791602954361697e-7)


_BLOCK = 1 << 14
"""Elements per block of the many-pass elementwise kernels (erf, gelu): the float64
temporaries stay in the CPU cache instead of streaming whole tensors ~15 times."""


def _blockwise(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dtype: np.dtype,
               out: np.ndarray | None) -> np.ndarray:
    """`fn` (elementwise) applied block by block: the same numbers as `fn(x)`."""
    if x.size <= _BLOCK:
        return _into(fn(x), out)
    flat = np.ascontiguousarray(x).reshape(-1)
    res = np.empty(flat.size, dtype)
    for i in range(0, flat.size, _BLOCK):
        res[i: i + _BLOCK] = fn(flat[i: i + _BLOCK])
    return _into(res.reshape(x.shape), out)


def erf(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Vectorized erf for float arrays (float32 results within 1 ulp of `math.erf`)."""
    x = np.asarray(x)
    return _blockwise(_erf, x, x.dtype if x.dtype.kind == "f" else np.dtype(np.float32), out)


def _erf(x: np.ndarray) -> np.ndarray:
    xc = np.clip(x, -_ERF_CLAMP, _ERF_CLAMP, dtype=np.float64)  # no ±inf in the polynomials
    x2 = xc * xc
    p = _horner(x2, _ERF_ALPHA)
    p *= xc
    p /= _horner(x2, _ERF_BETA)
    np.clip(p, -1.0, 1.0, out=p)
    return p.astype(x.dtype if x.dtype.kind == "f" else np.float32)


def _horner(t: np.ndarray, coeffs: Sequence[float]) -> np.ndarray:
    """sum(coeffs[i] * t**i), in place on one temporary."""
    acc = t * coeffs[-1]
    acc += coeffs[-2]
    for c in reversed(coeffs[:-2]):
        acc *= t
        acc += c
    return acc


def gelu_fn(approximate: str) -> Unary:
    """ONNX Gelu: exact 0.5·x·(1 + erf(x/√2)), or the tanh approximation."""
    if approximate == "tanh":
        def gelu_tanh(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
            inner = x * x
            inner *= _f(x, 0.044715)
            inner += _f(x, 1.0)
            inner *= x
            inner *= _f(x, math.sqrt(2.0 / math.pi))
            np.tanh(inner, out=inner)
            inner += _f(x, 1.0)
            inner *= _f(x, 0.5)
            return np.multiply(x, inner, out=out)

        return gelu_tanh

    def gelu_block(x: np.ndarray) -> np.ndarray:
        e = _erf(x * _f(x, 1.0 / math.sqrt(2.0)))
        e += _f(x, 1.0)
        e *= _f(x, 0.5)
        return np.multiply(x, e)

    def gelu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if x.dtype.kind != "f":
            return _into(gelu_block(x), out)
        return _blockwise(gelu_block, x, x.dtype, out)

    return gelu


def _clip_fn(lo: float | None, hi: float | None) -> Unary:
    def clip(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.clip(x, None if lo is None else _f(x, lo), None if hi is None else _f(x, hi),
                       out=out)

    return clip


def _ufunc(fn: Callable[..., np.ndarray]) -> Unary:
    return lambda x, out=None: fn(x, out=out)


# Parameterless unary kernels; fused `act` properties reuse exactly these functions.
UNARY: dict[type[Operation], Unary] = {
    nn.ReluOp: relu,
    nn.Relu6Op: relu6,
    nn.SigmoidOp: sigmoid,
    nn.TanhOp: tanh,
    nn.SiluOp: silu,
    nn.HardSwishOp: hardswish,
    nn.ErfOp: erf,
    nn.SqrtOp: _ufunc(np.sqrt),
    nn.ExpOp: _ufunc(np.exp),
    nn.NegOp: _ufunc(np.negative),
}


@register_kernel(*UNARY)
def _unary(op: Operation) -> Kernel:
    return UNARY[type(op)]


@register_kernel(nn.ClipOp)
def _clip(op: nn.ClipOp) -> Kernel:
    lo = None if op.min is None else op.min.value.data
    hi = None if op.max is None else op.max.value.data
    return _clip_fn(lo, hi)


@register_kernel(nn.HardSigmoidOp)
def _hardsigmoid(op: nn.HardSigmoidOp) -> Kernel:
    return hardsigmoid_fn(nn.prop_float(op, "alpha", 0.2), nn.prop_float(op, "beta", 0.5))


@register_kernel(nn.GeluOp)
def _gelu(op: nn.GeluOp) -> Kernel:
    return gelu_fn(nn.prop_str(op, "approximate", "none"))


def fused_activation(op: Operation) -> Unary | None:
    """The unary function named by the op's `act` property (None when absent)."""
    name = nn.fused_act(op)
    if name is None:
        return None
    if name not in nn.FUSABLE_ACTIVATIONS:
        raise ExecutionError(
            f"{op.name} has act '{name}', expected one of {sorted(nn.FUSABLE_ACTIVATIONS)}", op
        )
    return UNARY[nn.FUSABLE_ACTIVATIONS[name]]


def with_activation(op: Operation, kernel: Kernel) -> Kernel:
    """Wrap `kernel` so the op's fused activation runs in place on its fresh result."""
    act = fused_activation(op)
    if act is None:
        return kernel

    def fused(*args: np.ndarray) -> np.ndarray:
        y = kernel(*args)  # the kernels that take `act` always return a fresh array
        return act(y, out=y) if isinstance(y, np.ndarray) else act(y)

    return fused


# --------------------------------------------------------------------------------------
# Binary elementwise (numpy broadcasting = ONNX multidirectional broadcasting)


def _pow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX Pow: the result has the base's element type."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "f":
        return np.power(a, b.astype(a.dtype, copy=False))
    return np.power(a, b).astype(a.dtype, copy=False)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX Div: true division for floats; integer division truncates toward zero (C)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        q = np.floor_divide(a, b)
        q += (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
        return q
    return np.divide(a, b)


BINARY: dict[type[Operation], Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    nn.AddOp: np.add,
    nn.SubOp: np.subtract,
    nn.MulOp: np.multiply,
    nn.DivOp: _div,
    nn.PowOp: _pow,
}


@register_kernel(*BINARY)
def _binary(op: Operation) -> Kernel:
    fn = BINARY[type(op)]
    return with_activation(op, fn)


# --------------------------------------------------------------------------------------
# Contractions


def _windows(xp: np.ndarray, kernel: Sequence[int], strides: Sequence[int],
             dilations: Sequence[int], out_hw: Sequence[int]) -> np.ndarray:
    """View (N, C, OH, OW, KH, KW) of the windows of a padded NCHW array (no copy)."""
    kh, kw = kernel
    sh, sw = strides
    dh, dw = dilations
    oh, ow = out_hw
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    v = sliding_window_view(xp, (span_h, span_w), axis=(2, 3))
    return v[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw, ::dh, ::dw]


def _preload_jit(op: nn.Conv2dOp) -> None:
    """Load the numba conv kernels at compile time when this layer is large enough to
    use them (`conv.JIT_MIN_MACS`), instead of inside its first run."""
    out, w = nn.shape_of(op.results[0]), nn.shape_of(op.operands[1])
    if math.prod(out) * math.prod(w[1:]) < JIT_MIN_MACS:
        return
    try:
        dtype = numpy_dtype(op.results[0].type.element_type)  # type: ignore[attr-defined]
    except (IrflowError, AttributeError):
        return
    preload(dtype)


@register_kernel(nn.Conv2dOp)
def _conv2d(op: nn.Conv2dOp) -> Kernel:
    strides, pads, dil, groups = nn.conv2d_params(op)
    act = nn.fused_act(op)  # relu/relu6 run inside conv2d, with the bias (one pass)
    inner = act if act in EPILOGUE_ACTS else None
    _preload_jit(op)

    def kernel(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        if x.dtype == np.float16:  # accumulate in float32, round once (as onnxruntime)
            wide = conv2d(x.astype(np.float32), w.astype(np.float32),
                          None if b is None else b.astype(np.float32), strides, pads, dil,
                          groups, inner)
            return wide.astype(np.float16)
        return conv2d(x, w, b, strides, pads, dil, groups, inner)

    return kernel if inner is not None else with_activation(op, kernel)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX MatMul. Operands are made C-contiguous first: BLAS rounds differently for
    transposed layouts, and a result must not depend on whether an operand is a view
    (e.g. before and after `fold-constants` materializes a transpose)."""
    return np.matmul(np.ascontiguousarray(a), np.ascontiguousarray(b))


@register_kernel(nn.MatmulOp)
def _matmul(op: nn.MatmulOp) -> Kernel:
    return with_activation(op, matmul)


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """x · Wᵀ + b; operands made C-contiguous first, as in `matmul`."""
    y = np.matmul(np.ascontiguousarray(x), np.ascontiguousarray(w).T)
    if b is not None:
        y += b
    return y


@register_kernel(nn.LinearOp)
def _linear(op: nn.LinearOp) -> Kernel:
    return with_activation(op, linear)


# --------------------------------------------------------------------------------------
# Normalization and reductions


@register_kernel(nn.BatchNormOp)
def _batchnorm(op: nn.BatchNormOp) -> Kernel:
    eps = nn.prop_float(op, "epsilon", 1e-5)

    def batchnorm(x: np.ndarray, scale: np.ndarray, bias: np.ndarray, mean: np.ndarray,
                  var: np.ndarray) -> np.ndarray:
        # y = x·a + (bias − mean·a), a = scale / sqrt(var + eps): two passes over x, and
        # the same association as onnxruntime's CPU kernel.
        bshape = (1, -1) + (1,) * (x.ndim - 2)
        a = scale / np.sqrt(var + var.dtype.type(eps))
        y = x * a.reshape(bshape)
        y += (bias - mean * a).reshape(bshape)
        return y

    return batchnorm


@register_kernel(nn.LayerNormOp)
def _layernorm(op: nn.LayerNormOp) -> Kernel:
    eps = nn.prop_float(op, "epsilon", 1e-5)
    rank = len(nn.shape_of(op.operands[0]))
    axes = tuple(range(nn.prop_int(op, "axis", -1) % rank, rank))

    def layernorm(x: np.ndarray, scale: np.ndarray, bias: np.ndarray | None = None
                  ) -> np.ndarray:
        d = x - x.mean(axis=axes, keepdims=True)
        var = np.mean(d * d, axis=axes, keepdims=True)
        var += x.dtype.type(eps)
        d /= np.sqrt(var)
        d *= scale
        if bias is not None:
            d += bias
        return d

    return layernorm


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """Numerically stable softmax (max subtracted first)."""
    y = x - x.max(axis=axis, keepdims=True)
    np.exp(y, out=y)
    y /= y.sum(axis=axis, keepdims=True)
    return y


@register_kernel(nn.SoftmaxOp)
def _softmax(op: nn.SoftmaxOp) -> Kernel:
    axis = nn.prop_int(op, "axis", -1)
    return lambda x: softmax(x, axis)


@register_kernel(nn.ReduceMeanOp)
def _reduce_mean(op: nn.ReduceMeanOp) -> Kernel:
    rank = len(nn.shape_of(op.operands[0]))
    axes = tuple(sorted({a % rank for a in nn.prop_ints(op, "axes", ())}))
    keep = bool(nn.prop_int(op, "keepdims", 1))
    return lambda x: np.mean(x, axis=axes, keepdims=keep, dtype=x.dtype)


# --------------------------------------------------------------------------------------
# Pooling


@dataclass(frozen=True)
class _PoolPlan:
    pads: tuple[int, int, int, int]  # explicit pads + the ceil_mode extra at bottom/right
    out_hw: tuple[int, int]
    count: np.ndarray | None  # average pooling's divisor per output cell


def _pool_planner(op: Operation, average: bool) -> Callable[[int, int], _PoolPlan]:
    """The geometry of a pool for an input of H×W, computed once per input size.

    ceil_mode may need extra bottom/right padding so the last window exists; those cells
    are never counted. The average divisor counts the window's cells inside the input,
    plus, with count_include_pad, those in the explicit padding (onnxruntime's rule).
    Plans depend on the actual input size, so the kernel also runs on tiles.
    """
    (kh, kw), (sh, sw), p, ceil, include_pad = nn.pool2d_params(op)

    @functools.lru_cache(maxsize=16)
    def plan(h: int, w: int) -> _PoolPlan:
        oh = nn.window_out(h, kh, sh, p[0], p[2], 1, ceil)
        ow = nn.window_out(w, kw, sw, p[1], p[3], 1, ceil)
        extra_h = max(0, (oh - 1) * sh + kh - (h + p[0] + p[2]))
        extra_w = max(0, (ow - 1) * sw + kw - (w + p[1] + p[3]))
        pads = (p[0], p[1], p[2] + extra_h, p[3] + extra_w)
        count = None
        if average:
            valid = np.zeros((1, 1, h + pads[0] + pads[2], w + pads[1] + pads[3]), np.float32)
            if include_pad:
                valid[..., : h + p[0] + p[2], : w + p[1] + p[3]] = 1
            else:
                valid[..., p[0] : p[0] + h, p[1] : p[1] + w] = 1
            count = _windows(valid, (kh, kw), (sh, sw), (1, 1), (oh, ow)).sum(axis=(4, 5))
        return _PoolPlan(pads, (oh, ow), count)

    return plan


def _separable_max(xp: np.ndarray, kernel: Sequence[int], strides: Sequence[int],
                   out_hw: Sequence[int]) -> np.ndarray:
    """The max over each KH×KW window of the padded xp: the max over KH strided row
    views, then over KW strided column views of that — the same values as the max over
    all taps (max is exact and NaN-propagating in any order)."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, strides, out_hw
    rows = [xp[:, :, i: i + (oh - 1) * sh + 1: sh] for i in range(kh)]
    m = rows[0].copy()
    for r in rows[1:]:
        np.maximum(m, r, out=m)
    cols = [m[..., j: j + (ow - 1) * sw + 1: sw] for j in range(kw)]
    y = cols[0].copy()
    for c in cols[1:]:
        np.maximum(y, c, out=y)
    return y


@register_kernel(nn.MaxPoolOp, nn.AvgPoolOp)
def _pool(op: nn.Pool2dOp) -> Kernel:
    """Max or average over the KH·KW taps; padding is -inf (max) or 0 and not counted
    (average, see `_pool_planner`)."""
    average = isinstance(op, nn.AvgPoolOp)
    plan = _pool_planner(op, average)
    k, s, *_ = nn.pool2d_params(op)
    combine = np.add if average else np.maximum

    def pool(x: np.ndarray) -> np.ndarray:
        pl = plan(x.shape[2], x.shape[3])
        fill = 0.0 if average else -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        if not average:  # max is exact: rows, then columns (4 passes for 3x3, not 8)
            return _separable_max(pad_nchw(x, pl.pads, fill), k, s, pl.out_hw)
        taps = tap_views(pad_nchw(x, pl.pads, fill), k, s, (1, 1), pl.out_hw)
        y = next(taps).copy()
        for tap in taps:
            combine(y, tap, out=y)
        if average:
            y /= pl.count.astype(x.dtype)  # type: ignore[union-attr]
        return y

    return pool


@register_kernel(nn.GlobalAvgPoolOp)
def _global_avg_pool(op: nn.GlobalAvgPoolOp) -> Kernel:
    rank = len(nn.shape_of(op.operands[0]))
    axes = tuple(range(2, rank))
    return lambda x: np.mean(x, axis=axes, keepdims=True, dtype=x.dtype)


# --------------------------------------------------------------------------------------
# Data movement


@register_kernel(nn.ReshapeOp)
def _reshape(op: Operation) -> Kernel:
    shape = _result_shape(op)
    return lambda x: x.reshape(shape)


@register_kernel(nn.FlattenOp)
def _flatten(op: nn.FlattenOp) -> Kernel:
    axis = nn.prop_int(op, "axis", 1)

    def flatten(x: np.ndarray) -> np.ndarray:
        a = axis + x.ndim if axis < 0 else axis
        return x.reshape(math.prod(x.shape[:a]), math.prod(x.shape[a:]))

    return flatten


@register_kernel(nn.TransposeOp)
def _transpose(op: nn.TransposeOp) -> Kernel:
    perm = nn.prop_ints(op, "perm", ())
    return lambda x: np.transpose(x, perm)


@register_kernel(nn.ConcatOp)
def _concat(op: nn.ConcatOp) -> Kernel:
    axis = nn.prop_int(op, "axis", 0)
    return lambda *xs: np.concatenate(xs, axis=axis)


@register_kernel(nn.SliceOp)
def _slice(op: nn.SliceOp) -> Kernel:
    rank = len(nn.shape_of(op.operands[0]))
    starts, ends = nn.prop_ints(op, "starts", ()), nn.prop_ints(op, "ends", ())
    axes = nn.prop_ints(op, "axes", ())
    steps = nn.prop_ints(op, "steps", (1,) * len(axes))
    index: list[slice] = [slice(None)] * rank
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        index[ax % rank] = slice(st, en, sp)  # Python clamping = ONNX clamping
    key = tuple(index)
    return lambda x: x[key]


@register_kernel(nn.SplitOp)
def _split(op: nn.SplitOp) -> Kernel:
    axis = nn.prop_int(op, "axis", 0)
    bounds = np.cumsum(nn.prop_ints(op, "sizes", ()))[:-1].tolist()
    return lambda x: tuple(np.split(x, bounds, axis=axis))


@register_kernel(nn.GatherOp)
def _gather(op: nn.GatherOp) -> Kernel:
    axis = nn.prop_int(op, "axis", 0)
    rank = len(nn.shape_of(op.operands[0]))
    size = nn.shape_of(op.operands[0])[axis % rank]

    def gather(data: np.ndarray, indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < -size or idx.max() >= size):
            bad = idx[(idx < -size) | (idx >= size)].flat[0]
            raise ExecutionError(
                f"nn.gather index {int(bad)} is out of range [{-size}, {size}) on axis {axis}", op
            )
        return np.take(data, idx, axis=axis)  # negative indices count from the end (ONNX)

    return gather
