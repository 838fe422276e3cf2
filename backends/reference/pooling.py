"""The geometry of 2-D max/average pooling: padding, output size and the average's
divisor per input size (`_pool_planner`), and the separable max over windows.

`kernels.py` registers the pool kernels on top of these.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from xdsl.ir import Operation

from irflow.backends.reference.conv import pad_nchw as conv_pad
from irflow.dialects import nn


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


MAX_POOL_JIT_MIN = 1 << 16
"""Input elements from which max pooling runs the numba loop (smaller: numpy)."""


def max_pool(x: np.ndarray, pads: Sequence[int], kernel: Sequence[int],
             strides: Sequence[int], out_hw: Sequence[int], fill: float) -> np.ndarray:
    """Max pooling of NCHW x padded with `fill`: `_separable_max` of the padded copy, or
    for large float inputs with numba installed the same loop compiled, reading x
    unpadded (`pool_jit.py`, the same bits; ResNet's 3×3/2 pool 1.1 → ~0.2 ms)."""
    if x.dtype in (np.float32, np.float64) and x.size >= MAX_POOL_JIT_MIN:
        from irflow.backends.reference import conv

        if conv.jit_mode() != "off" and conv.jit_available():
            from irflow.backends.reference.pool_jit import separable_max

            return separable_max(x, pads, kernel, strides, out_hw)
    return _separable_max(conv_pad(x, pads, fill), kernel, strides, out_hw)
