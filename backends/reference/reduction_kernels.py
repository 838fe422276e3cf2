"""Kernels of `dialects/nn/reductions.py`: the reduce family, arg max/min, log-softmax,
hardmax, cumulative sum/product and top-k."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from xdsl.ir import Operation

from irflow.backends.reference.kernels import Kernel, register_kernel
from irflow.dialects import nn
from irflow.dialects.nn.reductions import REDUCTION_OPS, REDUCTIONS

Reduce = Callable[[np.ndarray, tuple[int, ...], bool], np.ndarray]


def _log_sum_exp(x: np.ndarray, axes: tuple[int, ...], keep: bool) -> np.ndarray:
    if x.size == 0:
        return np.log(np.sum(np.exp(x), axis=axes, keepdims=keep))
    m = np.max(x, axis=axes, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(x.dtype)
    y = np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m
    return y if keep else np.squeeze(y, axis=axes)


def _extreme(fn: Callable[..., np.ndarray], empty: float) -> Reduce:
    """max/min; over an empty axis the identity (-inf / inf, or the integer limits)."""

    def reduce(x: np.ndarray, axes: tuple[int, ...], keep: bool) -> np.ndarray:
        if x.size == 0:
            shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape)
                          if keep or i not in axes)
            if x.dtype.kind == "f":
                return np.full(shape, empty, x.dtype)
            if x.dtype.kind == "b":
                return np.full(shape, empty > 0, x.dtype)
            info = np.iinfo(x.dtype)
            return np.full(shape, info.min if empty < 0 else info.max, x.dtype)
        return fn(x, axis=axes, keepdims=keep)

    return reduce


REDUCE_FNS: dict[str, Reduce] = {
    "reduce_sum": lambda x, a, k: np.sum(x, axis=a, keepdims=k, dtype=x.dtype),
    "reduce_max": _extreme(np.max, -np.inf),
    "reduce_min": _extreme(np.min, np.inf),
    "reduce_prod": lambda x, a, k: np.prod(x, axis=a, keepdims=k, dtype=x.dtype),
    "reduce_l1": lambda x, a, k: np.sum(np.abs(x), axis=a, keepdims=k, dtype=x.dtype),
    "reduce_l2": lambda x, a, k: np.sqrt(np.sum(np.square(x), axis=a, keepdims=k,
                                                dtype=x.dtype)).astype(x.dtype),
    "reduce_log_sum": lambda x, a, k: np.log(np.sum(x, axis=a, keepdims=k, dtype=x.dtype)),
    "reduce_log_sum_exp": _log_sum_exp,
    "reduce_sum_square": lambda x, a, k: np.sum(np.square(x), axis=a, keepdims=k,
                                                dtype=x.dtype),
}
assert set(REDUCE_FNS) == set(REDUCTIONS)


def over_rows(fn: Reduce, x: np.ndarray, axes: tuple[int, ...], keep: bool) -> np.ndarray:
    """`fn` over `axes` computed as rows: the reduced axes moved last and flattened into
    one contiguous row per result element, reduced along it. Each result element then
    depends on its own row only — not on how numpy orders the loops for this array's
    shape — so a tile of the kept axes (the simulator's) gives the same bits."""
    if not axes:
        return fn(x, axes, keep)
    kept = [d for i, d in enumerate(x.shape) if i not in axes]
    size = math.prod(x.shape[a] for a in axes)
    rows = np.ascontiguousarray(np.moveaxis(x, axes, range(-len(axes), 0)))
    y = np.asarray(fn(rows.reshape(math.prod(kept), size), (1,), False))
    return y.reshape([1 if i in axes else d for i, d in enumerate(x.shape)] if keep else kept)


@register_kernel(*(REDUCTION_OPS[s] for s in REDUCTIONS))
def _reduce(op: Operation) -> Kernel:
    fn = REDUCE_FNS[op.name.removeprefix("nn.")]
    rank = len(nn.shape_of(op.operands[0]))
    axes = tuple(sorted({a % rank for a in nn.prop_ints(op, "axes", ())}))
    keep = bool(nn.prop_int(op, "keepdims", 1))
    return lambda x: np.asarray(over_rows(fn, x, axes, keep)).astype(x.dtype, copy=False)


@register_kernel(REDUCTION_OPS["arg_max"], REDUCTION_OPS["arg_min"])
def _arg(op: Operation) -> Kernel:
    find = np.argmax if op.name == "nn.arg_max" else np.argmin
    axis = nn.prop_int(op, "axis", 0)
    keep = bool(nn.prop_int(op, "keepdims", 1))
    last = bool(nn.prop_int(op, "select_last_index", 0))

    def arg(x: np.ndarray) -> np.ndarray:
        if last:
            flipped = np.flip(x, axis=axis)
            i = x.shape[axis] - 1 - find(flipped, axis=axis, keepdims=keep)
        else:
            i = find(x, axis=axis, keepdims=keep)
        return np.asarray(i, np.int64)

    return arg


@register_kernel(REDUCTION_OPS["log_softmax"])
def _log_softmax(op: Operation) -> Kernel:
    axis = nn.prop_int(op, "axis", -1)

    def log_softmax(x: np.ndarray) -> np.ndarray:
        y = x - x.max(axis=axis, keepdims=True)
        a = (axis % x.ndim,)
        return y - np.log(over_rows(lambda r, ax, k: np.sum(r, axis=ax, keepdims=k),
                                    np.exp(y), a, True))

    return log_softmax


@register_kernel(REDUCTION_OPS["hardmax"])
def _hardmax(op: Operation) -> Kernel:
    axis = nn.prop_int(op, "axis", -1)

    def hardmax(x: np.ndarray) -> np.ndarray:
        i = np.argmax(x, axis=axis, keepdims=True)
        y = np.zeros_like(x)
        np.put_along_axis(y, i, 1, axis=axis)
        return y

    return hardmax


@register_kernel(REDUCTION_OPS["cumsum"], REDUCTION_OPS["cumprod"])
def _scan(op: Operation) -> Kernel:
    acc = np.cumsum if op.name == "nn.cumsum" else np.cumprod
    identity = 0 if op.name == "nn.cumsum" else 1
    axis = nn.prop_int(op, "axis", -1)
    exclusive, reverse = nn.prop_int(op, "exclusive", 0), nn.prop_int(op, "reverse", 0)

    def scan(x: np.ndarray) -> np.ndarray:
        a = axis % x.ndim
        y = np.flip(x, a) if reverse else x
        if exclusive:
            pad = np.full_like(np.take(y, [0], axis=a), identity)
            y = np.concatenate([pad, np.take(y, range(y.shape[a] - 1), axis=a)], axis=a)
        y = acc(y, axis=a, dtype=x.dtype)
        return np.flip(y, a) if reverse else y

    return scan


@register_kernel(REDUCTION_OPS["topk"])
def _topk(op: Operation) -> Kernel:
    k = nn.prop_int(op, "k", 1)
    axis = nn.prop_int(op, "axis", -1)
    largest = bool(nn.prop_int(op, "largest", 1))

    def topk(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # A stable sort on the key keeps the lower index first among equal values.
        key = -x if largest else x
        if x.dtype.kind in "u" and largest:
            key = -x.astype(np.int64)
        order = np.argsort(key, axis=axis, kind="stable")
        idx = np.take(order, range(k), axis=axis)
        return np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)

    return topk


__all__ = ["REDUCE_FNS", "over_rows"]
