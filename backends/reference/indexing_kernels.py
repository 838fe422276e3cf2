"""Kernels of `dialects/nn/indexing.py`: expand, tile, pad, trilu, depth/space
rearrangements, gather/scatter by elements and by N-d index, one-hot."""

from __future__ import annotations

import numpy as np
from xdsl.ir import Operation

from irflow.backends.reference.kernels import Kernel, register_kernel
from irflow.diagnostics import ExecutionError
from irflow.dialects import nn
from irflow.dialects.nn import indexing as ix


@register_kernel(ix.ExpandOp)
def _expand(op: Operation) -> Kernel:
    shape = nn.shape_of(op.results[0])
    return lambda x: np.broadcast_to(x, shape).copy()


@register_kernel(ix.TileOp)
def _tile(op: Operation) -> Kernel:
    reps = nn.prop_ints(op, "repeats", ())
    return lambda x: np.tile(x, reps)


_NP_PAD_MODE = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}


@register_kernel(ix.PadOp)
def _pad(op: Operation) -> Kernel:
    pads = nn.prop_ints(op, "pads", ())
    mode = nn.prop_str(op, "mode", "constant")
    value = nn.prop_float(op, "value", 0.0)
    rank = len(pads) // 2
    widths = [(max(pads[i], 0), max(pads[i + rank], 0)) for i in range(rank)]
    crop = tuple(slice(max(-pads[i], 0), None if pads[i + rank] >= 0 else pads[i + rank])
                 for i in range(rank))

    def pad(x: np.ndarray) -> np.ndarray:
        x = x[crop]
        if mode == "constant":
            return np.pad(x, widths, mode="constant",
                          constant_values=np.asarray(value).astype(x.dtype))
        return np.pad(x, widths, mode=_NP_PAD_MODE[mode])  # type: ignore[call-overload]

    return pad


@register_kernel(ix.TriluOp)
def _trilu(op: Operation) -> Kernel:
    upper, k = nn.prop_int(op, "upper", 1), nn.prop_int(op, "k", 0)
    return (lambda x: np.triu(x, k)) if upper else (lambda x: np.tril(x, k))


@register_kernel(ix.DepthToSpaceOp)
def _depth_to_space(op: Operation) -> Kernel:
    b = nn.prop_int(op, "blocksize", 1)
    crd = nn.prop_str(op, "mode", "DCR") == "CRD"

    def d2s(x: np.ndarray) -> np.ndarray:
        n, c, h, w = x.shape
        if crd:
            y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
        else:
            y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
        return y.reshape(n, c // (b * b), h * b, w * b)

    return d2s


@register_kernel(ix.SpaceToDepthOp)
def _space_to_depth(op: Operation) -> Kernel:
    b = nn.prop_int(op, "blocksize", 1)
    perm = (0, 1, 3, 5, 2, 4) if nn.prop_str(op, "mode", "DCR") == "CRD" else (0, 3, 5, 1, 2, 4)

    def s2d(x: np.ndarray) -> np.ndarray:
        n, c, h, w = x.shape
        y = x.reshape(n, c, h // b, b, w // b, b).transpose(perm)
        return y.reshape(n, c * b * b, h // b, w // b)

    return s2d


def _checked(op: Operation, idx: np.ndarray, size: int | np.ndarray) -> np.ndarray:
    """Indices with negatives counted from the end; out of range is an error."""
    idx = np.asarray(idx, np.int64)
    if idx.size and (np.any(idx < -size) or np.any(idx >= size)):
        raise ExecutionError(f"{op.name}: an index is out of range (size {size})", op)
    return np.where(idx < 0, idx + size, idx)


@register_kernel(ix.GatherElementsOp)
def _gather_elements(op: Operation) -> Kernel:
    axis = nn.prop_int(op, "axis", 0)

    def gather(x: np.ndarray, i: np.ndarray) -> np.ndarray:
        return np.take_along_axis(x, _checked(op, i, x.shape[axis]), axis=axis)

    return gather


@register_kernel(ix.GatherNDOp)
def _gather_nd(op: Operation) -> Kernel:
    b = nn.prop_int(op, "batch_dims", 0)
    out_shape = nn.shape_of(op.results[0])

    def gather_nd(x: np.ndarray, i: np.ndarray) -> np.ndarray:
        last = i.shape[-1]
        batch = int(np.prod(x.shape[:b], dtype=np.int64))
        xs = x.reshape((batch,) + x.shape[b:])
        ii = i.reshape((batch, -1, last))
        ii = _checked(op, ii, np.asarray(x.shape[b:b + last]))
        bidx = np.arange(batch).reshape(batch, 1)
        y = xs[(bidx, *np.moveaxis(ii, -1, 0))]
        return y.reshape(out_shape)

    return gather_nd


_REDUCE_AT = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


@register_kernel(ix.ScatterElementsOp)
def _scatter_elements(op: Operation) -> Kernel:
    axis = nn.prop_int(op, "axis", 0)
    reduction = nn.prop_str(op, "reduction", "none")

    def scatter(x: np.ndarray, i: np.ndarray, u: np.ndarray) -> np.ndarray:
        a = axis % x.ndim
        i = _checked(op, i, x.shape[a])
        y = x.copy()
        grid = list(np.indices(i.shape, sparse=True))
        grid[a] = i
        if reduction == "none":
            y[tuple(grid)] = u
        else:
            _REDUCE_AT[reduction].at(y, tuple(grid), u)
        return y

    return scatter


@register_kernel(ix.ScatterNDOp)
def _scatter_nd(op: Operation) -> Kernel:
    reduction = nn.prop_str(op, "reduction", "none")

    def scatter_nd(x: np.ndarray, i: np.ndarray, u: np.ndarray) -> np.ndarray:
        last = i.shape[-1]
        i = _checked(op, i, np.asarray(x.shape[:last]))
        y = x.copy()
        index = tuple(np.moveaxis(i, -1, 0))
        if reduction == "none":
            y[index] = u
        else:
            _REDUCE_AT[reduction].at(y, index, u)
        return y

    return scatter_nd


@register_kernel(ix.OneHotOp)
def _one_hot(op: Operation) -> Kernel:
    depth = nn.prop_int(op, "depth", 1)
    axis = nn.prop_int(op, "axis", -1)

    def one_hot(i: np.ndarray, values: np.ndarray) -> np.ndarray:
        idx = np.asarray(i).astype(np.int64)
        idx = np.where(idx < 0, idx + depth, idx)
        a = axis % (idx.ndim + 1)
        hot = np.expand_dims(idx, a) == np.arange(depth).reshape(
            (-1,) + (1,) * (idx.ndim - a))
        return np.where(hot, values[1], values[0]).astype(values.dtype)

    return one_hot
