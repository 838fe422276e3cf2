"""The coordinate plan of `nn.resize` (dialects/nn/spatial.py): for every axis the op
changes, which input rows each output row reads and with what weights — ONNX's reference
algorithm (`_interpolate_1d_along_axis`), vectorized. Part of the op's definition: the
reference kernel, its VJP and the simulator's tiles all read the same plans.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from xdsl.ir import Attribute, Operation

from irflow.dialects import nn
from irflow.dialects.nn.spatial import prop_floats


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


