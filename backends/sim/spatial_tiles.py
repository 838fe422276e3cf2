"""The simulator's tile kernels for the spatial and data-movement kinds of
`dialects/accel_spatial.py` (registered in `executor.TILE_KERNELS`).

Each computes one tile from the operand slices the step loaded, so a wrong slice gives
wrong numbers. The copies, pooling, resize, LRN, trilu and one-hot tiles repeat the
reference kernel's own operations in its order on the tile's elements, so they equal it
bit for bit; conv_transpose and einsum on the PE array sum partial products per input
channel / k tile (float32 summation order, as conv2d and matmul tiles).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from irflow.backends.reference.indexing_kernels import _checked
from irflow.backends.reference.kernels import conv2d
from irflow.backends.sim.executor import (
    TILE_KERNELS,
    VECTOR_KIND,
    Step,
    TileKernel,
    _accumulate,
    _detached,
    _is_quantized,
)
from irflow.diagnostics import SimulationError
from irflow.dialects import accel, nn
from irflow.dialects import accel_spatial as sp
from irflow.dialects.nn.spatial import window_params


def _start(ax: accel.Axis, size: int, lo: int, hi: int) -> int:
    """First row of the slice an axis reads for the loop range [lo, hi)."""
    return ax.range(size, lo, hi)[0][0]


def _no_quant(layer: accel.LayerOp) -> None:
    if _is_quantized(layer):
        raise SimulationError(f"accel.layer '{layer.label.data}': quantized "
                              f"{layer.kind.data} has no tile kernel", layer)


# --------------------------------------------------------------------------------------
# PE array


def conv_transpose_tiles(layer: accel.LayerOp, space: accel.Space) -> TileKernel:
    """The stride-1 convolution of the tile's zero-inserted input window with the
    flipped, transposed weight (docs/accel.md §1); partial sums over c tiles. A 3-D
    tile sums its depth taps' 2-D convolutions (output depth folded into the batch)."""
    _no_quant(layer)
    x_shape, w_shape = nn.shape_of(layer.inputs[0]), nn.shape_of(layer.inputs[1])
    geo = sp.conv_transpose_geometry(layer.params.data, x_shape, w_shape)
    names = sp.SPATIAL_NAMES[len(geo)]
    xa = space.operands[0]
    has_bias = len(layer.inputs) > 2
    nd = len(geo)

    def run(step: Step) -> None:
        x, w = step.operands[0], step.operands[1]  # (n, tg, tc, *in), (tg, tc, tf, *k)
        n, tg, tc = x.shape[:3]
        tf = w.shape[2]
        kernel = w.shape[3:]
        lengths, places, outs = [], [], []
        for (size, s, d, k, p), ax, loop, count in zip(geo, xa.axes[3:], names, x.shape[3:]):
            lo, hi = step.tile[loop]
            at = _start(ax, size, lo, hi) * s - (lo - p)  # local row of the first real row
            lengths.append(hi - lo - 1 + d * (k - 1) + 1)
            places.append(slice(at, at + (count - 1) * s + 1, s) if count else slice(0, 0))
            outs.append(hi - lo)
        u = np.zeros((n, tg * tc, *lengths), x.dtype)
        u[(slice(None), slice(None), *places)] = x.reshape(n, tg * tc, *x.shape[3:])
        flip = (Ellipsis,) + (slice(None, None, -1),) * nd
        wf = np.ascontiguousarray(np.swapaxes(w, 1, 2)[flip]).reshape(tg * tf, tc, *kernel)
        dil = (geo[-2][2], geo[-1][2])
        if nd == 2:
            y = conv2d(u, wf, None, (1, 1), (0, 0, 0, 0), dil, tg)
        else:  # depth taps: each a 2-D conv over the od rows it meets
            dd, od = geo[0][2], outs[0]
            y = None
            for t in range(kernel[0]):
                part = u[:, :, t * dd: t * dd + od].transpose(0, 2, 1, 3, 4)
                part = part.reshape(n * od, tg * tc, *lengths[1:])
                term = conv2d(np.ascontiguousarray(part), np.ascontiguousarray(wf[:, :, t]),
                              None, (1, 1), (0, 0, 0, 0), dil, tg)
                y = term if y is None else y + term
            y = y.reshape(n, od, tg * tf, *outs[1:]).transpose(0, 2, 1, 3, 4)
        _accumulate(step, y.reshape(step.out.shape), has_bias, None,
                    (1, tg, tf) + (1,) * nd)

    return run


def _widened(operands: list[np.ndarray]) -> list[np.ndarray]:
    """Low-precision float tiles (bf16, float8: `ml_dtypes`, which np.einsum cannot take)
    as float32, the way irflow/lowp.py computes on them; others as they are."""
    return [o.astype(np.float32) if o.dtype.kind == "V" else o for o in operands]


def einsum_tiles(layer: accel.LayerOp, space: accel.Space) -> TileKernel:
    _no_quant(layer)
    equation = nn.prop_str(layer.params.data, "equation", "").replace(" ", "")
    shapes = [nn.shape_of(v) for v in layer.inputs]
    dtype = layer.output.type.element_type  # type: ignore[attr-defined]
    from irflow.weights import numpy_dtype

    out_dtype = numpy_dtype(dtype)
    if space.unit == "pe":  # a contraction over the b, m, n, k group views
        groups = sp.einsum_groups(equation, shapes)

        def contract(step: Step) -> None:
            y = np.einsum(groups, *_widened(step.operands))
            _accumulate(step, y.reshape(step.out.shape), False, None, ())

        return contract
    optimize = len(shapes) > 2

    def run(step: Step) -> None:
        y = np.asarray(np.einsum(equation, *_widened(step.operands), optimize=optimize),
                       out_dtype)
        step.out[...] = y.reshape(step.out.shape)

    return run


# --------------------------------------------------------------------------------------
# Vector unit


def pool_tiles(layer: accel.LayerOp, space: accel.Space) -> TileKernel:
    """The reference pool's taps on the padded tile window, in its order; the average's
    divisor per output position from its absolute coordinates."""
    _no_quant(layer)
    params = layer.params.data
    mode = nn.prop_str(params, "mode", "max")
    kernel = nn.prop_ints(params, "kernel", ())
    nd = len(kernel)
    strides, pads, dil = window_params(params, nd)
    include_pad = bool(nn.prop_int(params, "count_include_pad", 0))
    p = nn.prop_int(params, "p", 2)
    in_spatial = nn.shape_of(layer.inputs[0])[2:]
    names = sp.SPATIAL_NAMES[nd]

    def count(i: int, lo: int, hi: int) -> np.ndarray:
        rows = (np.arange(lo, hi)[:, None] * strides[i] - pads[i]
                + np.arange(kernel[i])[None, :] * dil[i])
        low, high = (-pads[i], in_spatial[i] + pads[nd + i]) if include_pad else (
            0, in_spatial[i])
        return ((rows >= low) & (rows < high)).sum(axis=1).astype(np.float64)

    def taps(xp: np.ndarray, out: Sequence[int]):  # type: ignore[no-untyped-def]
        for tap in itertools.product(*(range(k) for k in kernel)):
            yield xp[(slice(None), slice(None)) + tuple(
                slice(t * d, t * d + (o - 1) * s + 1, s)
                for t, d, s, o in zip(tap, dil, strides, out))]

    def run(step: Step) -> None:
        x = step.operands[0]
        width = [(0, 0), (0, 0), *step.pads[0][2:]]
        out = [step.tile[d][1] - step.tile[d][0] for d in names]
        if mode == "max":
            fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
            views = taps(np.pad(x, width, constant_values=fill), out)
            y = next(views).copy()
            for v in views:
                np.maximum(y, v, out=y)
        elif mode == "avg":
            views = taps(np.pad(x, width), out)
            y = next(views).copy()
            for v in views:
                y += v
            div = np.ones((1, 1) + (1,) * nd)
            for i, d in enumerate(names):
                shape = [1] * (nd + 2)
                shape[2 + i] = -1
                div = div * count(i, *step.tile[d]).reshape(shape)
            y = (y / div).astype(x.dtype)
        else:
            y = sum(taps(np.pad(np.abs(x) ** p, width), out))
            y = np.power(y, 1.0 / p).astype(x.dtype)
        step.out[...] = y

    return run


def resize_tiles(layer: accel.LayerOp, space: accel.Space) -> TileKernel:
    """The reference resize, axis by axis, on the tile's input rows (indices shifted to
    the slice): the same gathers and weighted sums per output element."""
    _no_quant(layer)
    params = layer.params.data
    shape_in = nn.shape_of(layer.inputs[0])
    nearest = nn.prop_str(params, "mode", "nearest") == "nearest"
    extrapolation = nn.prop_float(params, "extrapolation_value", 0.0)
    plans = sp.resize_source_rows(shape_in, params)
    axes = space.operands[0].axes

    def run(step: Step) -> None:
        x = step.operands[0]
        y = x.astype(np.float64)
        for axis, idx, coeffs, extrapolated in plans:
            lo, hi = step.tile[f"d{axis}"]
            rows = idx[lo:hi] - _start(axes[axis], shape_in[axis], lo, hi)
            if nearest:
                y = np.take(y, rows, axis=axis)
            else:
                gathered = np.take(y, rows, axis=axis)
                shape = (1,) * axis + (hi - lo, coeffs.shape[1]) + (1,) * (y.ndim - axis - 1)
                y = (gathered * coeffs[lo:hi].reshape(shape)).sum(axis=axis + 1)
            if extrapolated is not None and extrapolated[lo:hi].any():
                mask = extrapolated[lo:hi].reshape((1,) * axis + (-1,) + (1,) * (y.ndim - axis - 1))
                y = np.where(mask, extrapolation, y)
        if x.dtype.kind in "iu":
            info = np.iinfo(x.dtype)
            y = np.clip(np.rint(y), info.min, info.max)
        step.out[...] = y.astype(x.dtype)

    return run


def lrn_tiles(layer: accel.LayerOp, space: accel.Space) -> TileKernel:
    params = layer.params.data
    size = nn.prop_int(params, "size", 1)
    alpha = nn.prop_float(params, "alpha", 1e-4)
    beta = nn.prop_float(params, "beta", 0.75)
    bias = nn.prop_float(params, "bias", 1.0)
    before = (size - 1) // 2

    def run(step: Step) -> None:
        x = step.operands[0]
        lo, hi = step.tile["d1"]
        t = hi - lo
        sq = np.pad(x.astype(np.float64) ** 2,
                    [(0, 0), step.pads[0][1]] + [(0, 0)] * (x.ndim - 2))
        total = sum(sq[:, i:i + t] for i in range(size))
        own = x[:, min(before, lo): min(before, lo) + t]
        step.out[...] = (own / (bias + alpha / size * total) ** beta).astype(x.dtype)

    return run


def trilu_tiles(layer: accel.LayerOp, space: accel.Space) -> TileKernel:
    upper = nn.prop_int(layer.params.data, "upper", 1)
    k = nn.prop_int(layer.params.data, "k", 0)
    r = len(space.dims)

    def run(step: Step) -> None:
        shift = k - step.tile[f"d{r - 1}"][0] + step.tile[f"d{r - 2}"][0]
        x = step.operands[0]
        step.out[...] = np.triu(x, shift) if upper else np.tril(x, shift)

    return run


# --------------------------------------------------------------------------------------
# DMA copies


def index_copy_tiles(layer: accel.LayerOp, space: accel.Space) -> TileKernel:
    """expand / tile / pad: each output element copies the input element its per-axis
    source indices name (constant padding: the pad value)."""
    kind = layer.kind.data
    params = layer.params.data
    out_shape = nn.shape_of(layer.output)
    acc = space.operands[0]
    src = sp.copy_sources(kind, nn.shape_of(layer.inputs[0]), out_shape, params)

    def run(step: Step) -> None:
        x = step.operands[0]
        fill = np.asarray(nn.prop_float(params, "value", 0.0)).astype(x.dtype)
        index, masks = [], []
        for i, (s, ax, size) in enumerate(zip(src, acc.axes, acc.view)):
            lo, hi = step.tile[f"d{i}"]
            part = s[lo:hi]
            local = np.zeros_like(part) if ax.kind == "zero" else part - _start(ax, size, lo,
                                                                                   hi)
            missing = part < 0
            index.append(np.where(missing, 0, local))
            shape = [1] * len(src)
            shape[i] = -1
            masks.append(missing.reshape(shape))
        if x.size == 0:
            step.out[...] = fill
            return
        y = x[np.ix_(*index)]
        if any(m.any() for m in masks):
            y = np.where(np.logical_or.reduce(np.broadcast_arrays(*masks)), fill, y)
        step.out[...] = y

    return run


def rearrange_tiles(layer: accel.LayerOp, space: accel.Space) -> TileKernel:
    _, _, perm = sp.rearrange_views(layer.kind.data, nn.shape_of(layer.inputs[0]),
                                    layer.params.data)

    def run(step: Step) -> None:
        step.out[...] = step.operands[0].transpose(perm)

    return run


def gather_nd_tiles(layer: accel.LayerOp, space: accel.Space) -> TileKernel:
    """The reference gather_nd on the tile's rows (its result shape is the tile's)."""
    b = nn.prop_int(layer.params.data, "batch_dims", 0)
    op = _detached(layer)

    def run(step: Step) -> None:
        x, i = step.operands
        last = i.shape[-1]
        batch = int(np.prod(x.shape[:b], dtype=np.int64))
        xs = x.reshape((batch,) + x.shape[b:])
        ii = _checked(op, i.reshape((batch, -1, last)), np.asarray(x.shape[b:b + last]))
        y = xs[(np.arange(batch).reshape(batch, 1), *np.moveaxis(ii, -1, 0))]
        step.out[...] = y.reshape(step.out.shape)

    return run


TILE_KERNELS.update({
    "nn.conv_transpose": conv_transpose_tiles,
    "nn.einsum": einsum_tiles,
    "nn.pool": pool_tiles,
    "nn.resize": resize_tiles,
    "nn.lrn": lrn_tiles,
    "nn.trilu": trilu_tiles,
    "nn.expand": index_copy_tiles,
    "nn.tile": index_copy_tiles,
    "nn.pad": index_copy_tiles,
    "nn.depth_to_space": rearrange_tiles,
    "nn.space_to_depth": rearrange_tiles,
    "nn.gather_nd": gather_nd_tiles,
})
"""one_hot, gather_elements, scatter_elements and scatter_nd use the reference kernel on
the tile's slices (`executor._reference_kernel`): their indexed axes are whole."""

VECTOR_KIND.update({"nn.pool": "avgpool", "nn.resize": "mul", "nn.lrn": "layernorm",
                    "nn.trilu": "copy", "nn.one_hot": "copy", "nn.einsum": "mul"})
