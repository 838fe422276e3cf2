"""Im2col convolution in bands of output rows, for a layer whose column matrix is much
larger than the L2 cache while its weight is small (ResNet's 7×7 stride-2 stem: 147 ×
12544 floats, 7.4 MB, weight 37 KB); numba kernels, numpy's/OpenBLAS's GEMM.

The whole-image path (`conv.im2col`, one matmul, then the epilogue) writes the column
matrix to memory and reads it back, and the output once more for the bias and
activation; on this 2-core VM memory streams at ~7–10 GB/s per core, so the stem took
5.2 ms in the network against 3.2 ms with warm caches. Here a band of output rows at a
time has its columns written into one small buffer (`_band_columns`), multiplied by the
weight into a second one, and the epilogue writes the band's output rows from there
(`_band_epilogue`): only the input and the output go to memory. Each GEMM repacks the
weight, so bands only pay off for small weights (`conv.BAND_MAX_WEIGHT_BYTES`): ResNet's
stride-2 3×3 layers were 1.3–2× slower in bands.

Each output element is the same dot product as in the whole-image GEMM, then the same
bias and activation; `tests/test_conv_kernels.py` checks the result against the
whole-image path. Importing this module raises ImportError without numba.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from irflow.backends.reference.conv_jit import ACT_CODES, _bounds, _finish

BAND_BYTES = 1 << 19
"""A band's column buffer holds at most about this many bytes (it and the band's GEMM
result stay in L2; 256 KiB and 1 MiB bands were slower on the stem)."""


@numba.njit(cache=True, nogil=True)
def _band_columns(x, kh, kw, sh, sw, dh, dw, top, left, r0, r1, ow,
                  cols):  # pragma: no cover - jitted
    """cols[(c·KH + i)·KW + j, (r − r0)·OW + q] = x[c, r·sh + i·dh − top, q·sw + j·dw −
    left] (0 in the padding) for output rows r0 ≤ r < r1; x (C, H, W).

    Each input row a tap row reads is copied once into a zero-padded row and split into
    its sw column phases; every tap's run is then one contiguous copy from a phase
    (vectorized), not a strided gather (the stem's columns: 1.3 → 0.4 ms)."""
    c, h, wd = x.shape
    wp = max(left + wd, (ow - 1) * sw + (kw - 1) * dw + 1)
    wq = (wp + sw - 1) // sw
    prow = np.zeros(wq * sw, x.dtype)  # the padding cells are never written: they stay 0
    phases = np.zeros((sw, wq), x.dtype)  # phases[p, q] = prow[q·sw + p]
    interior = prow[left: left + wd]
    for ci in range(c):
        for i in range(kh):
            base = (ci * kh + i) * kw
            for r in range(r0, r1):
                o = (r - r0) * ow
                ir = r * sh + i * dh - top
                if ir < 0 or ir >= h:
                    for j in range(kw):
                        dst = cols[base + j, o: o + ow]
                        for q in range(ow):
                            dst[q] = 0
                    continue
                src = x[ci, ir]
                for t in range(wd):
                    interior[t] = src[t]
                for ph in range(sw):
                    pr = phases[ph]
                    for q in range(wq):
                        pr[q] = prow[q * sw + ph]
                for j in range(kw):
                    off = j * dw
                    run = phases[off % sw, off // sw: off // sw + ow]
                    dst = cols[base + j, o: o + ow]
                    for q in range(ow):
                        dst[q] = run[q]


@numba.njit(cache=True, nogil=True)
def _band_epilogue(tmp, b, has_bias, act, zero, six, y, p0):  # pragma: no cover - jitted
    """y[f, p0 + t] = act(tmp[f, t] + b[f]); tmp (F, T) the band's GEMM result, y (F, P)."""
    f, t = tmp.shape
    for fi in range(f):
        src = tmp[fi]
        _finish(src, b[fi] if has_bias else zero, has_bias, act, zero, six)
        dst = y[fi, p0: p0 + t]
        for k in range(t):
            dst[k] = src[k]


def conv_bands(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Sequence[int],
               pads: Sequence[int], dilations: Sequence[int], out_hw: Sequence[int],
               act: str | None) -> np.ndarray:
    """act(conv(x, w) + b) for an ungrouped conv, x (N, C, H, W) and w (F, C, KH, KW) of
    one float dtype (b too, or None), in bands of output rows (module docstring)."""
    n, c = x.shape[:2]
    f, _, kh, kw = w.shape
    oh, ow = out_hw
    k = c * kh * kw
    rows = max(1, min(oh, BAND_BYTES // (k * ow * x.dtype.itemsize)))
    wm = np.ascontiguousarray(w.reshape(f, k))
    bias = np.zeros(0, x.dtype) if b is None else np.ascontiguousarray(b, x.dtype)
    zero, six = _bounds(x)
    y = np.empty((n, f, oh, ow), x.dtype)
    cols_buf = np.empty(k * rows * ow, x.dtype)  # flat: a shorter last band takes a
    tmp_buf = np.empty(f * rows * ow, x.dtype)  # C-contiguous prefix
    for ni in range(n):
        xi = np.ascontiguousarray(x[ni])
        yi = y[ni].reshape(f, oh * ow)
        for r0 in range(0, oh, rows):
            r1 = min(oh, r0 + rows)
            t = (r1 - r0) * ow
            cols, tmp = cols_buf[: k * t].reshape(k, t), tmp_buf[: f * t].reshape(f, t)
            _band_columns(xi, kh, kw, strides[0], strides[1], dilations[0], dilations[1],
                          pads[0], pads[1], r0, r1, ow, cols)
            np.matmul(wm, cols, out=tmp)
            _band_epilogue(tmp, bias, b is not None, ACT_CODES[act], zero, six, yi, r0 * ow)
    return y
