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

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation

from irflow import lowp

# The activation functions (activations.py), re-exported: other kernel families, the
# simulator and tests import them from here.
from irflow.backends.reference.activations import (
    UNARY,
    Unary,  # noqa: F401
    _clip_fn,
    erf,  # noqa: F401
    fused_activation,  # noqa: F401
    gelu_fn,
    hardsigmoid_fn,
    hardswish,  # noqa: F401
    relu,  # noqa: F401
    relu6,  # noqa: F401
    sigmoid,  # noqa: F401
    silu,  # noqa: F401
    tanh,  # noqa: F401
    with_activation,
)
from irflow.backends.reference.conv import (
    EPILOGUE_ACTS,
    JIT_MIN_MACS,
    WeightCache,
    add_act,
    conv2d,
    pad_nchw,
    preload,
    tap_views,
)
from irflow.backends.reference.pooling import _pool_planner, max_pool
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
# Unary elementwise (the functions: activations.py)


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
    act = nn.fused_act(op)
    if type(op) is nn.AddOp and act in EPILOGUE_ACTS:  # residual add + relu: one pass
        plain = with_activation(op, fn)
        return lambda a, b: (y if (y := add_act(a, b, act)) is not None else plain(a, b))
    return with_activation(op, fn)


# --------------------------------------------------------------------------------------
# Contractions


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

    cache = WeightCache()  # the Winograd-transformed weight (conv.py), kept across runs

    def kernel(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        if x.dtype == np.float16:  # accumulate in float32, round once (as onnxruntime)
            wide = conv2d(x.astype(np.float32), w.astype(np.float32),
                          None if b is None else b.astype(np.float32), strides, pads, dil,
                          groups, inner)
            return wide.astype(np.float16)
        return conv2d(x, w, b, strides, pads, dil, groups, inner, cache)

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
# Pooling (the geometry: pooling.py)


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
            return max_pool(x, pl.pads, k, s, pl.out_hw, fill)
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
