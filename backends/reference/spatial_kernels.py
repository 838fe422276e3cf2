"""Reference kernels of the n-D spatial ops (`dialects/nn/spatial.py`): transposed
convolution, max/average/Lp pooling, resize, LRN.

Every kernel loops over kernel taps or axes (a handful), never over elements: a tap is one
strided view of the (padded) array, an axis of a resize one gather and weighted sum.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from xdsl.ir import Attribute, Operation

from irflow.backends.reference.kernels import Kernel, register_kernel
from irflow.dialects import nn
from irflow.dialects.nn.spatial import (
    BitcastOp,
    ConvTransposeOp,
    EinsumOp,
    LRNOp,
    PoolOp,
    ResizeOp,
    prop_floats,
    window_params,
)
from irflow.weights import numpy_dtype

# --------------------------------------------------------------------------------------
# Transposed convolution


def conv_transpose(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                   strides: Sequence[int], pads: Sequence[int], dilations: Sequence[int],
                   out_spatial: Sequence[int], groups: int) -> np.ndarray:
    """ONNX ConvTranspose: one matmul (input channels → output channels × taps), then
    each tap's columns added into its strided place of the uncropped output."""
    n, c = x.shape[:2]
    spatial_in = x.shape[2:]
    k = w.shape[2:]
    nd = len(k)
    fg = w.shape[1]
    cg = c // groups
    taps = math.prod(k)
    length = math.prod(spatial_in)
    # (G, FG·taps, CG) @ (N, G, CG, L) -> (N, G, FG·taps, L)
    wt = w.reshape(groups, cg, fg * taps).transpose(0, 2, 1)
    cols = np.matmul(np.ascontiguousarray(wt), x.reshape(n, groups, cg, length))
    cols = cols.reshape(n, groups, fg, *k, *spatial_in)
    full = [max((spatial_in[i] - 1) * strides[i] + (k[i] - 1) * dilations[i] + 1,
                pads[i] + out_spatial[i]) for i in range(nd)]
    acc = np.zeros((n, groups, fg, *full), dtype=np.result_type(x, w))
    for tap in itertools.product(*(range(s) for s in k)):
        where = tuple(slice(t * d, t * d + (size - 1) * s + 1, s)
                      for t, d, s, size in zip(tap, dilations, strides, spatial_in))
        acc[(slice(None),) * 3 + where] += cols[(slice(None),) * 3 + tap]
    crop = tuple(slice(pads[i], pads[i] + out_spatial[i]) for i in range(nd))
    y = acc[(slice(None),) * 3 + crop].reshape(n, groups * fg, *out_spatial)
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * nd)
    return np.ascontiguousarray(y, dtype=x.dtype)


@register_kernel(ConvTransposeOp)
def _conv_transpose(op: ConvTransposeOp) -> Kernel:
    nd = len(nn.shape_of(op.operands[0])) - 2
    strides, pads, dil = window_params(op.properties, nd)
    groups = nn.prop_int(op, "groups", 1)
    out_spatial = nn.shape_of(op.results[0])[2:]

    def kernel(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        return conv_transpose(x, w, b, strides, pads, dil, out_spatial, groups)

    return kernel


# --------------------------------------------------------------------------------------
# Pooling


def _pad(x: np.ndarray, lo: Sequence[int], hi: Sequence[int], value: float) -> np.ndarray:
    if not any(lo) and not any(hi):
        return x
    width = [(0, 0), (0, 0), *zip(lo, hi)]
    return np.pad(x, width, constant_values=value)


def _tap_views(xp: np.ndarray, kernel: Sequence[int], strides: Sequence[int],
               dilations: Sequence[int], out: Sequence[int]):  # type: ignore[no-untyped-def]
    for tap in itertools.product(*(range(k) for k in kernel)):
        yield xp[(slice(None), slice(None)) + tuple(
            slice(t * d, t * d + (o - 1) * s + 1, s)
            for t, d, s, o in zip(tap, dilations, strides, out))]


@register_kernel(PoolOp)
def _pool(op: PoolOp) -> Kernel:
    """Max / average / Lp over the window taps. The output size is the op's; padding that
    ceil_mode adds past the explicit pads never counts (onnxruntime's rule)."""
    mode = nn.prop_str(op, "mode", "max")
    kernel = nn.prop_ints(op, "kernel", ())
    nd = len(kernel)
    strides, pads, dil = window_params(op.properties, nd)
    include_pad = bool(nn.prop_int(op, "count_include_pad", 0))
    p = nn.prop_int(op, "p", 2)
    in_spatial = nn.shape_of(op.operands[0])[2:]
    out = nn.shape_of(op.results[0])[2:]
    lo = list(pads[:nd])
    hi = [max(pads[nd + i], (out[i] - 1) * strides[i] + dil[i] * (kernel[i] - 1) + 1
              - in_spatial[i] - lo[i]) for i in range(nd)]
    count = None
    if mode == "avg":
        valid = np.zeros((1, 1, *(in_spatial[i] + lo[i] + hi[i] for i in range(nd))),
                         np.float64)
        if include_pad:  # the explicit pads count, the ceil_mode extension does not
            valid[(0, 0) + tuple(slice(0, in_spatial[i] + lo[i] + pads[nd + i])
                                 for i in range(nd))] = 1
        else:
            valid[(0, 0) + tuple(slice(lo[i], lo[i] + in_spatial[i]) for i in range(nd))] = 1
        count = sum(_tap_views(valid, kernel, strides, dil, out))

    def pool(x: np.ndarray) -> np.ndarray:
        if mode == "max":
            fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
            views = _tap_views(_pad(x, lo, hi, fill), kernel, strides, dil, out)
            y = next(views).copy()
            for v in views:
                np.maximum(y, v, out=y)
            return y
        if mode == "avg":
            views = _tap_views(_pad(x, lo, hi, 0.0), kernel, strides, dil, out)
            y = next(views).copy()
            for v in views:
                y += v
            return (y / count).astype(x.dtype)
        xp = _pad(np.abs(x) ** p, lo, hi, 0.0)
        y = sum(_tap_views(xp, kernel, strides, dil, out))
        return np.power(y, 1.0 / p).astype(x.dtype)  # type: ignore[no-any-return]

    return pool


# --------------------------------------------------------------------------------------
# Resize: separable, one axis at a time (ONNX's reference algorithm, vectorized)


def _nearest(mode: str) -> Callable[[np.ndarray, float], np.ndarray]:
    def coeffs(ratio: np.ndarray, scale: float) -> np.ndarray:
        r = ratio[:, None]
        if mode == "round_prefer_floor":
            c = np.hstack([r <= 0.5, r > 0.5])
        elif mode == "round_prefer_ceil":
            c = np.hstack([r < 0.5, r >= 0.5])
        elif mode == "floor":
            c = np.hstack([np.ones_like(r), np.zeros_like(r)])
        else:
            c = np.hstack([np.zeros_like(r), np.ones_like(r)])
        exact = (ratio == 1.0)[:, None]  # an integer coordinate: the pixel itself
        return np.where(exact, [[0.0, 1.0]], c.astype(np.float64))

    return coeffs


def _linear(ratio: np.ndarray, scale: float) -> np.ndarray:
    return np.stack([1 - ratio, ratio], axis=1)


def _cubic(a: float) -> Callable[[np.ndarray, float], np.ndarray]:
    def coeffs(ratio: np.ndarray, scale: float) -> np.ndarray:
        r = ratio
        return np.stack([
            ((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a,
            ((a + 2) * r - (a + 3)) * r * r + 1,
            ((a + 2) * (1 - r) - (a + 3)) * (1 - r) * (1 - r) + 1,
            ((a * ((1 - r) + 1) - 5 * a) * ((1 - r) + 1) + 8 * a) * ((1 - r) + 1) - 4 * a,
        ], axis=1)

    return coeffs


def _antialias(support: int, filt: Callable[[np.ndarray], np.ndarray]
               ) -> Callable[[np.ndarray, float], np.ndarray]:
    """A filter of `support` taps stretched by 1/scale when downsampling, normalized."""

    def coeffs(ratio: np.ndarray, scale: float) -> np.ndarray:
        scale = min(scale, 1.0)
        start = int(np.floor(-support / 2 / scale) + 1)
        offsets = np.arange(start, 2 - start)
        c = filt(scale * (offsets[None, :] - ratio[:, None]))
        return c / c.sum(axis=1, keepdims=True)

    return coeffs


def _cubic_filter(a: float) -> Callable[[np.ndarray], np.ndarray]:
    def filt(x: np.ndarray) -> np.ndarray:
        x = np.abs(x)
        return np.where(x <= 1, (a + 2) * x**3 - (a + 3) * x**2 + 1,
                        np.where(x < 2, a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a, 0.0))

    return filt


def _coordinates(mode: str, out_len: int, in_len: int, scale: float,
                 roi: tuple[float, float]) -> tuple[np.ndarray, np.ndarray | None]:
    y = np.arange(out_len, dtype=np.float64)
    # ONNX's reference divides by scale · in, not the (floored) output length; its node
    # tests follow it (onnxruntime differs for align_corners when scale · in is fractional)
    width = scale * in_len
    if mode == "align_corners":
        return (np.zeros(out_len) if width == 1 else y * (in_len - 1) / (width - 1)), None
    if mode == "asymmetric":
        return y / scale, None
    if mode == "tf_crop_and_resize":
        x = (np.full(out_len, (roi[1] - roi[0]) * (in_len - 1) / 2) if width == 1
             else y * (roi[1] - roi[0]) * (in_len - 1) / (width - 1))
        x = x + roi[0] * (in_len - 1)
        return x, (x < 0) | (x > in_len - 1)
    if mode == "pytorch_half_pixel":
        return (np.full(out_len, -0.5) if width == 1 else (y + 0.5) / scale - 0.5), None
    if mode == "half_pixel":
        return (y + 0.5) / scale - 0.5, None
    offset = in_len / 2 * (1 - out_len / width)  # half_pixel_symmetric
    return offset + (y + 0.5) / scale - 0.5, None


def resize_axis_plan(mode: str, coord: str, nearest: str, a: float, exclude: bool,
                     antialias: bool, out_len: int, in_len: int, scale: float,
                     roi: tuple[float, float]
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(source indices [out, taps], weights [out, taps], extrapolated mask [out] | None)
    of one axis: ONNX's `_interpolate_1d_along_axis`, computed once per op."""
    x, extrapolated = _coordinates(coord, out_len, in_len, scale, roi)
    base = np.floor(x)
    ratio = np.where(x == base, 1.0, x - base)
    if mode == "nearest":
        get = _nearest(nearest)
    elif mode == "linear":
        get = (_antialias(2, lambda t: np.clip(1 - np.abs(t), 0, 1)) if antialias
               else _linear)
    else:
        get = _antialias(4, _cubic_filter(a)) if antialias else _cubic(a)
    coeffs = get(ratio, scale)
    n = coeffs.shape[1]
    pad = int(np.ceil(n / 2))
    xp = x + pad
    pp = np.floor(xp).astype(np.int64)
    frac = xp - pp
    if n % 2 == 0:
        offset = np.where(frac == 0, -(n // 2), -(n // 2) + 1)
    else:
        offset = np.where(frac <= 0.5, -((n - 1) // 2), -((n - 1) // 2) + 1)
    idx = (pp + offset)[:, None] + np.arange(n)[None, :] - pad
    if exclude:
        coeffs = np.where((idx < 0) | (idx >= in_len), 0.0, coeffs)
        total = coeffs.sum(axis=1, keepdims=True)
        coeffs = coeffs / np.where(total == 0, 1.0, total)
    return np.clip(idx, 0, in_len - 1), coeffs, extrapolated


ResizePlan = tuple[int, np.ndarray, np.ndarray, np.ndarray | None]


def resize_plans(op: Operation) -> list[ResizePlan]:
    """(axis, source indices, weights, extrapolated mask) of every axis `nn.resize`
    changes (identity axes left out): what its kernel and its VJP both apply."""
    return resize_plans_of(nn.shape_of(op.operands[0]), op.properties)


def resize_plans_of(shape_in: Sequence[int], props: Mapping[str, Attribute]
                    ) -> list[ResizePlan]:
    """`resize_plans` from the input shape and the op's properties (the simulator's
    tiles read the same plans)."""
    op = props
    rank = len(shape_in)
    sizes = nn.prop_ints(op, "sizes", ())
    scales = prop_floats(op, "scales", ())
    roi = prop_floats(op, "roi", (0.0,) * rank + (1.0,) * rank)
    plans: list[ResizePlan] = []
    for axis in range(rank):
        if (math.isclose(scales[axis], 1.0) and sizes[axis] == shape_in[axis]
                and math.isclose(roi[axis], 0.0) and math.isclose(roi[axis + rank], 1.0)):
            continue  # identity along this axis
        plans.append((axis, *resize_axis_plan(
            nn.prop_str(op, "mode", "nearest"),
            nn.prop_str(op, "coordinate_transformation_mode", "half_pixel"),
            nn.prop_str(op, "nearest_mode", "round_prefer_floor"),
            nn.prop_float(op, "cubic_coeff_a", -0.75),
            bool(nn.prop_int(op, "exclude_outside", 0)), bool(nn.prop_int(op, "antialias", 0)),
            sizes[axis], shape_in[axis], scales[axis], (roi[axis], roi[axis + rank]))))
    return plans


@register_kernel(ResizeOp)
def _resize(op: ResizeOp) -> Kernel:
    mode = nn.prop_str(op, "mode", "nearest")
    extrapolation = nn.prop_float(op, "extrapolation_value", 0.0)
    plans = resize_plans(op)

    def resize(x: np.ndarray) -> np.ndarray:
        y = x.astype(np.float64)
        for axis, idx, coeffs, extrapolated in plans:
            gathered = np.take(y, idx, axis=axis)  # (..., out, taps, ...)
            shape = (1,) * axis + coeffs.shape + (1,) * (y.ndim - axis - 1)
            if mode == "nearest":  # pick, never multiply (keeps inf and nan exact)
                pick = np.argmax(coeffs, axis=1)
                y = np.take_along_axis(
                    gathered, pick.reshape(shape[:axis + 1] + (1,) + shape[axis + 2:]),
                    axis=axis + 1).squeeze(axis + 1)
            else:
                y = (gathered * coeffs.reshape(shape)).sum(axis=axis + 1)
            if extrapolated is not None and extrapolated.any():
                mask = extrapolated.reshape((1,) * axis + (-1,) + (1,) * (y.ndim - axis - 1))
                y = np.where(mask, extrapolation, y)
        if x.dtype.kind in "iu":
            info = np.iinfo(x.dtype)
            return np.clip(np.rint(y), info.min, info.max).astype(x.dtype)
        return y.astype(x.dtype)

    return resize


# --------------------------------------------------------------------------------------
# LRN


@register_kernel(LRNOp)
def _lrn(op: LRNOp) -> Kernel:
    size = nn.prop_int(op, "size", 1)
    alpha = nn.prop_float(op, "alpha", 1e-4)
    beta = nn.prop_float(op, "beta", 0.75)
    bias = nn.prop_float(op, "bias", 1.0)
    before, after = (size - 1) // 2, -(-(size - 1) // 2)

    def lrn(x: np.ndarray) -> np.ndarray:
        sq = np.pad(x.astype(np.float64) ** 2,
                    [(0, 0), (before, after)] + [(0, 0)] * (x.ndim - 2))
        c = x.shape[1]
        total = sum(sq[:, i:i + c] for i in range(size))
        return (x / (bias + alpha / size * total) ** beta).astype(x.dtype)

    return lrn


# --------------------------------------------------------------------------------------
# Einsum


@register_kernel(EinsumOp)
def _einsum(op: EinsumOp) -> Kernel:
    equation = nn.prop_str(op, "equation", "").replace(" ", "")
    out = numpy_dtype(nn.value_element_type(op.output))
    return lambda *xs: np.asarray(np.einsum(equation, *xs, optimize=len(xs) > 2), dtype=out)


@register_kernel(BitcastOp)
def _bitcast(op: BitcastOp) -> Kernel:
    out = numpy_dtype(nn.value_element_type(op.output))
    return lambda x: np.array(x, order="C").view(out)  # (0-d stays 0-d)
