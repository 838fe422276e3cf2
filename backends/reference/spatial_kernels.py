"""Reference kernels of the n-D spatial ops (`dialects/nn/spatial.py`): transposed
convolution, max/average/Lp pooling, resize, LRN.

Every kernel loops over kernel taps or axes (a handful), never over elements: a tap is one
strided view of the (padded) array, an axis of a resize one gather and weighted sum.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from irflow.backends.reference.conv import tap_views
from irflow.backends.reference.kernels import Kernel, register_kernel
from irflow.dialects import nn
from irflow.dialects.nn.resize_plan import (  # noqa: F401 (re-exported)
    ResizePlan,
    resize_axis_plan,
    resize_plans,
    resize_plans_of,
)
from irflow.dialects.nn.spatial import (
    BitcastOp,
    ConvTransposeOp,
    EinsumOp,
    LRNOp,
    PoolOp,
    ResizeOp,
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
        count = sum(tap_views(valid, kernel, strides, dil, out))

    def pool(x: np.ndarray) -> np.ndarray:
        if mode == "max":
            fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
            views = tap_views(_pad(x, lo, hi, fill), kernel, strides, dil, out)
            y = next(views).copy()
            for v in views:
                np.maximum(y, v, out=y)
            return y
        if mode == "avg":
            views = tap_views(_pad(x, lo, hi, 0.0), kernel, strides, dil, out)
            y = next(views).copy()
            for v in views:
                y += v
            return (y / count).astype(x.dtype)
        xp = _pad(np.abs(x) ** p, lo, hi, 0.0)
        y = sum(tap_views(xp, kernel, strides, dil, out))
        return np.power(y, 1.0 / p).astype(x.dtype)  # type: ignore[no-any-return]

    return pool


# --------------------------------------------------------------------------------------
# Resize: separable, one axis at a time (the plans: dialects/nn/resize_plan.py)


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
