"""Optional numba kernel for depthwise convolution (the `fast` extra: `pip install
irflow[fast]`); `conv.py` falls back to numpy without it.

Per channel, the input plane is copied into a zero-bordered scratch plane of width
Wp (the padded width, rounded up to the stride), and the output is accumulated on a
"wide" grid of Wq = Wp / sw columns: then every tap, for stride-1 rows, is one flat
multiply-add over OH·Wq contiguous elements (the columns ≥ OW are garbage from the
next row and dropped), which LLVM vectorizes. The sum per output element is the one of
`conv._depthwise_numpy` in the same order (taps in (i, j) order, padding included as
zeros, each product rounded, then the bias), so the two agree bit for bit
(`tests/test_conv_kernels.py`). Compiled once per dtype and cached on disk by numba.
Importing this module raises ImportError when numba is not installed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _kernel(x, w, b, has_bias, kh, kw, sh, sw, dh, dw, top, left, hp, wp,
            y):  # pragma: no cover - jitted
    n, c, h, wd = x.shape
    oh, ow = y.shape[2], y.shape[3]
    wq = wp // sw
    extra = ((kw - 1) * dw) // wp + 2  # zero rows after the plane for the wrapped reads
    plane = np.zeros((hp + extra) * wp, y.dtype)
    flat = oh * wq
    acc = np.empty(flat, y.dtype)
    for ni in range(n):
        for ci in range(c):
            for r in range(h):  # the interior; the zero border is never written
                dst = plane[(top + r) * wp + left: (top + r) * wp + left + wd]
                src = x[ni, ci, r]
                for q in range(wd):
                    dst[q] = src[q]
            for k in range(kh * kw):
                off = (k // kw) * dh * wp + (k % kw) * dw
                wv = w[ci, k]
                if sh == 1:
                    if sw == 1:
                        s1 = plane[off: off + flat]
                        if k == 0:
                            for t in range(flat):
                                acc[t] = s1[t] * wv
                        else:
                            for t in range(flat):
                                acc[t] += s1[t] * wv
                    else:
                        ss = plane[off: off + (flat - 1) * sw + 1: sw]
                        if k == 0:
                            for t in range(flat):
                                acc[t] = ss[t] * wv
                        else:
                            for t in range(flat):
                                acc[t] += ss[t] * wv
                else:
                    for r in range(oh):
                        a = acc[r * wq: (r + 1) * wq]
                        base = off + r * sh * wp
                        sr = plane[base: base + (wq - 1) * sw + 1: sw]
                        if k == 0:
                            for t in range(wq):
                                a[t] = sr[t] * wv
                        else:
                            for t in range(wq):
                                a[t] += sr[t] * wv
            for r in range(oh):
                out = y[ni, ci, r]
                a = acc[r * wq: r * wq + ow]
                if has_bias:
                    bv = b[ci]
                    for q in range(ow):
                        out[q] = a[q] + bv
                else:
                    for q in range(ow):
                        out[q] = a[q]


def depthwise_into(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                   kernel: Sequence[int], strides: Sequence[int], pads: Sequence[int],
                   dilations: Sequence[int], y: np.ndarray) -> None:
    """y[n, c] = sum over taps k of tap_k(pad(x))[n, c] · w[c, k] (+ b[c]); x (N, C, H, W)
    and w (C, KH·KW) C-contiguous, of y's dtype."""
    top, left, bottom, right = pads
    hp = top + x.shape[2] + bottom
    wp = -(-(left + x.shape[3] + right) // strides[1]) * strides[1]
    bias = np.zeros(0, y.dtype) if b is None else np.ascontiguousarray(b)
    _kernel(x, w, bias, b is not None, kernel[0], kernel[1], strides[0], strides[1],
            dilations[0], dilations[1], top, left, hp, wp, y)
