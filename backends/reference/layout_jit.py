"""A numba copy from channels-last (pixels, C) to channels-first (C, pixels), for the
kernels that work channels-last inside the NCHW executor (Winograd, narrow depthwise
layers) and write NCHW at the end.

numpy's `dst[...] = src.T` walks the destination in order and reads the source with a
large stride, one element at a time; copying eight channels of each source pixel into
eight destination rows is 2.5–5× faster (1 thread: ResNet's 56×56×64 Winograd output
190 → 41 µs, 28×28×128 99 → 21 µs; MobileNetV2's 14×14×384 depthwise output 72 →
19 µs), except for few pixels, where numpy stays (`MIN_PIXELS`). A plain copy: the
values are the same. Importing this module raises ImportError without numba.
"""

from __future__ import annotations

import numba
import numpy as np

MIN_PIXELS = 64
"""Below this many pixels (7×7 images), numpy's transposed copy is as fast."""


@numba.njit(cache=True, nogil=True)
def _to_channels_first(src, dst):  # pragma: no cover - jitted
    p, c = src.shape
    c8 = c - c % 8
    for c0 in range(0, c8, 8):
        d0, d1, d2, d3 = dst[c0], dst[c0 + 1], dst[c0 + 2], dst[c0 + 3]
        d4, d5, d6, d7 = dst[c0 + 4], dst[c0 + 5], dst[c0 + 6], dst[c0 + 7]
        for pi in range(p):
            s = src[pi]
            d0[pi], d1[pi], d2[pi], d3[pi] = s[c0], s[c0 + 1], s[c0 + 2], s[c0 + 3]
            d4[pi], d5[pi], d6[pi], d7[pi] = s[c0 + 4], s[c0 + 5], s[c0 + 6], s[c0 + 7]
    for ci in range(c8, c):
        d = dst[ci]
        for pi in range(p):
            d[pi] = src[pi, ci]


@numba.njit(cache=True, nogil=True)
def _to_channels_first_add(src, r, act, zero, six, dst):  # pragma: no cover - jitted
    """dst[c, p] = act(src[p, c] + r[c, p]), eight channels per source pixel."""
    p, c = src.shape
    c8 = c - c % 8
    for c0 in range(0, c8, 8):
        for pi in range(p):
            s = src[pi]
            for k in range(8):
                dst[c0 + k, pi] = s[c0 + k] + r[c0 + k, pi]
    for ci in range(c8, c):
        for pi in range(p):
            dst[ci, pi] = src[pi, ci] + r[ci, pi]
    if act == 1:
        for ci in range(c):
            d = dst[ci]
            for pi in range(p):
                v = d[pi]
                d[pi] = zero if v <= zero else v
    elif act == 2:
        for ci in range(c):
            d = dst[ci]
            for pi in range(p):
                v = d[pi]
                v = zero if v < zero else v
                d[pi] = six if v > six else v


def to_channels_first_add(src: np.ndarray, r: np.ndarray, act: int, dst: np.ndarray) -> None:
    """dst[c, p] = act(src[p, c] + r[c, p]) (act: 0 none, 1 relu, 2 relu6, as
    `conv_jit.ACT_CODES`): the copy back to channels-first with a residual add and its
    activation on the way (np.add's then the activation's bits); src (P, C), r and dst
    (C, P), C-contiguous, of one dtype."""
    _to_channels_first_add(src, r, act, dst.dtype.type(0), dst.dtype.type(6), dst)


def to_channels_first(src: np.ndarray, dst: np.ndarray) -> None:
    """dst[c, p] = src[p, c]: src (P, C) and dst (C, P), both C-contiguous and of one
    dtype."""
    if src.shape[0] < MIN_PIXELS:
        dst[...] = src.T
    else:
        _to_channels_first(src, dst)
