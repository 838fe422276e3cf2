"""Winograd F(4×4, 3×3) and F(2×2, 3×3) for float 3×3, stride-1, undilated, ungrouped
convolutions (numba transforms, numpy/OpenBLAS batched GEMM); `conv.py` decides when.

An A×A input tile d (A = m + 2) gives an m×m output tile Y = Aᵀ[(G w Gᵀ) ⊙ (Bᵀ d B)]A
(Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016; F(4, 3) with
interpolation points 0, ±1, ±2, ∞): A² multiplications per tile and channel pair
instead of 9·m² (36 vs 144 for m = 4, 16 vs 36 for m = 2). Summed over the input
channels, the A² element-wise products become A² independent GEMMs, one per transform
position p:

    M[p] (T × K) = V[p] (T × C) @ U[p] (C × K)

with T the tiles of all images, V the transformed input tiles and U the transformed
weight (computed once per weight array in float64, then rounded: `transform_weight`).
Both transforms run channels-last, so their inner loops run over C (or K) and vectorize
for any image size; the input is copied into a zero-bordered (H, W, C) buffer once per
image, and the output transform adds the bias, applies relu/relu6 and writes NCHW.

The result is the convolution's, rounded differently: F(4, 3)'s transform constants (up
to 8 in Aᵀ, 5 in Bᵀ) grow the float32 rounding error to about 10× the direct sum's;
F(2, 3)'s (0 and ±1 only in Aᵀ and Bᵀ) keep it at the direct sum's (both bounded in
`tests/test_winograd.py`). Importing this module raises ImportError without numba.
"""

from __future__ import annotations

import numba
import numpy as np

from irflow.backends.reference.conv_jit import ACT_CODES
from irflow.backends.reference.layout_jit import to_channels_first, to_channels_first_add

G4 = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
               [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], np.float64)
"""F(4×4, 3×3)'s weight transform (6 × 3)."""

G2 = np.array([[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]],
              np.float64)
"""F(2×2, 3×3)'s weight transform (4 × 3)."""


def transform_weight(w: np.ndarray, tile: int = 4) -> np.ndarray:
    """U (A², C, K) = G w Gᵀ per (K, C) pair of w (K, C, 3, 3), in float64, then w's
    dtype; A = tile + 2, position p = A·a + b for row a and column b of the A×A tile."""
    k, c = w.shape[:2]
    g = G4 if tile == 4 else G2
    a = tile + 2
    gw = np.tensordot(g, w.astype(np.float64), axes=(1, 2))  # (A a, K, C, 3 j): one GEMM
    u = np.tensordot(gw, g, axes=(3, 1))  # (A a, K, C, A b)
    return np.ascontiguousarray(u.transpose(0, 3, 2, 1).reshape(a * a, c, k).astype(w.dtype))


@numba.njit(inline="always")
def _bt(d0, d1, d2, d3, d4, d5, o0, o1, o2, o3, o4, o5):  # pragma: no cover - jitted
    """o = Bᵀ d over six 1-D views, one loop per output (few pointers per loop: LLVM's
    alias checks stay cheap and each loop vectorizes)."""
    for k in range(d0.size):
        o0[k] = 4 * d0[k] - 5 * d2[k] + d4[k]
    for k in range(d0.size):
        o1[k] = d3[k] + d4[k] - 4 * (d1[k] + d2[k])
    for k in range(d0.size):
        o2[k] = d4[k] - d3[k] + 4 * (d1[k] - d2[k])
    for k in range(d0.size):
        o3[k] = d4[k] - d2[k] + 2 * (d3[k] - d1[k])
    for k in range(d0.size):
        o4[k] = d4[k] - d2[k] + 2 * (d1[k] - d3[k])
    for k in range(d0.size):
        o5[k] = 4 * d1[k] - 5 * d3[k] + d5[k]


@numba.njit(inline="always")
def _at(m0, m1, m2, m3, m4, m5, o0, o1, o2, o3):  # pragma: no cover - jitted
    """o = Aᵀ m over six 1-D views, one loop per output."""
    for k in range(m0.size):
        o0[k] = m0[k] + m1[k] + m2[k] + m3[k] + m4[k]
    for k in range(m0.size):
        o1[k] = m1[k] - m2[k] + 2 * (m3[k] - m4[k])
    for k in range(m0.size):
        o2[k] = m1[k] + m2[k] + 4 * (m3[k] + m4[k])
    for k in range(m0.size):
        o3[k] = m1[k] - m2[k] + 8 * (m3[k] - m4[k]) + m5[k]


@numba.njit(cache=True, nogil=True)
def _input_tiles(xt, t0, th, tw, v):  # pragma: no cover - jitted
    """v[p, t] = (Bᵀ d B)[p] for tile t = t0 + ty·tw + tx, d the 6×6 tile at (4·ty, 4·tx)
    of xt (one image, zero-padded, channels-last, (H, W·C)); v (36, T, C).

    Loops index 1-D views with the loop counter only: numba's negative-index handling
    of a computed flat index keeps LLVM from vectorizing."""
    c = v.shape[2]
    tmp = np.empty((6, xt.shape[1]), xt.dtype)  # Bᵀ d of one tile row, (a, W·C)
    for ty in range(th):
        r = ty * 4
        _bt(xt[r], xt[r + 1], xt[r + 2], xt[r + 3], xt[r + 4], xt[r + 5],
            tmp[0], tmp[1], tmp[2], tmp[3], tmp[4], tmp[5])
        for tx in range(tw):
            t = t0 + ty * tw + tx
            for a in range(6):  # (Bᵀ d) B per row a: v[6a + b] = (Bᵀ d B)[a, b]
                e = tmp[a, tx * 4 * c: (tx * 4 + 6) * c]
                _bt(e[:c], e[c: 2 * c], e[2 * c: 3 * c], e[3 * c: 4 * c], e[4 * c: 5 * c],
                    e[5 * c:], v[6 * a, t], v[6 * a + 1, t], v[6 * a + 2, t],
                    v[6 * a + 3, t], v[6 * a + 4, t], v[6 * a + 5, t])


@numba.njit(cache=True, nogil=True)
def _output_tiles(m, t0, th, tw, b4, has_bias, act, zero, six, yt):  # pragma: no cover - jitted
    """yt[4·ty + r, (4·tx + s)·K: …] = act((Aᵀ M A)[r, s] + b) for tiles t = t0 + ty·tw +
    tx, M[p] = m[p, t] (m (36, T, K)); yt one image channels-last, (OH', OW'·K); b4 the
    bias repeated 4 times (one output row of a tile: 4 cells of K channels)."""
    kk = m.shape[2]
    tmp = np.empty((6, 4 * kk), m.dtype)  # (a, (s, K))
    out = np.empty((4, 4 * kk), m.dtype)  # (r, (s, K))
    for ty in range(th):
        for tx in range(tw):
            t = t0 + ty * tw + tx
            for a in range(6):  # along the tile columns: tmp[a, s] = (M A)[a, s]
                ta = tmp[a]
                _at(m[6 * a, t], m[6 * a + 1, t], m[6 * a + 2, t], m[6 * a + 3, t],
                    m[6 * a + 4, t], m[6 * a + 5, t], ta[:kk], ta[kk: 2 * kk],
                    ta[2 * kk: 3 * kk], ta[3 * kk:])
            # then along the tile rows, all four columns s at once: out[r] = (Aᵀ tmp)[r]
            _at(tmp[0], tmp[1], tmp[2], tmp[3], tmp[4], tmp[5], out[0], out[1], out[2],
                out[3])
            for r in range(4):  # bias and activation, into the 4 cells (contiguous in yt)
                _finish(out[r], yt[ty * 4 + r, tx * 4 * kk: (tx * 4 + 4) * kk], b4, has_bias,
                        act, zero, six)


@numba.njit(inline="always")
def _finish(o, dst, bias, has_bias, act, zero, six):  # pragma: no cover - jitted
    """dst = act(o + bias) for one output row of tiles (act 1 relu, 2 relu6, else none)."""
    if has_bias:
        for k in range(o.size):
            o[k] += bias[k]
    if act == 1:
        for k in range(o.size):
            dst[k] = zero if o[k] <= zero else o[k]
    elif act == 2:
        for k in range(o.size):
            vv = zero if o[k] < zero else o[k]
            dst[k] = six if vv > six else vv
    else:
        for k in range(o.size):
            dst[k] = o[k]


@numba.njit(inline="always")
def _bt2(d0, d1, d2, d3, o0, o1, o2, o3):  # pragma: no cover - jitted
    """o = Bᵀ d for F(2, 3) over four 1-D views."""
    for k in range(d0.size):
        o0[k] = d0[k] - d2[k]
    for k in range(d0.size):
        o1[k] = d1[k] + d2[k]
    for k in range(d0.size):
        o2[k] = d2[k] - d1[k]
    for k in range(d0.size):
        o3[k] = d1[k] - d3[k]


@numba.njit(inline="always")
def _at2(m0, m1, m2, m3, o0, o1):  # pragma: no cover - jitted
    """o = Aᵀ m for F(2, 3) over four 1-D views."""
    for k in range(m0.size):
        o0[k] = m0[k] + m1[k] + m2[k]
    for k in range(m0.size):
        o1[k] = m1[k] - m2[k] - m3[k]


@numba.njit(cache=True, nogil=True)
def _input_tiles2(xt, t0, th, tw, v):  # pragma: no cover - jitted
    """`_input_tiles` for F(2, 3): 4×4 tiles at (2·ty, 2·tx), v (16, T, C)."""
    c = v.shape[2]
    tmp = np.empty((4, xt.shape[1]), xt.dtype)
    for ty in range(th):
        r = ty * 2
        _bt2(xt[r], xt[r + 1], xt[r + 2], xt[r + 3], tmp[0], tmp[1], tmp[2], tmp[3])
        for tx in range(tw):
            t = t0 + ty * tw + tx
            for a in range(4):
                e = tmp[a, tx * 2 * c: (tx * 2 + 4) * c]
                _bt2(e[:c], e[c: 2 * c], e[2 * c: 3 * c], e[3 * c:], v[4 * a, t],
                     v[4 * a + 1, t], v[4 * a + 2, t], v[4 * a + 3, t])


@numba.njit(cache=True, nogil=True)
def _output_tiles2(m, t0, th, tw, b2, has_bias, act, zero, six, yt
                   ):  # pragma: no cover - jitted
    """`_output_tiles` for F(2, 3): m (16, T, K), 2×2 output tiles, b2 the bias twice."""
    kk = m.shape[2]
    tmp = np.empty((4, 2 * kk), m.dtype)  # (a, (s, K))
    out = np.empty((2, 2 * kk), m.dtype)  # (r, (s, K))
    for ty in range(th):
        for tx in range(tw):
            t = t0 + ty * tw + tx
            for a in range(4):
                ta = tmp[a]
                _at2(m[4 * a, t], m[4 * a + 1, t], m[4 * a + 2, t], m[4 * a + 3, t], ta[:kk],
                     ta[kk:])
            _at2(tmp[0], tmp[1], tmp[2], tmp[3], out[0], out[1])
            for r in range(2):
                _finish(out[r], yt[ty * 2 + r, tx * 2 * kk: (tx * 2 + 2) * kk], b2, has_bias,
                        act, zero, six)


def conv3x3(x: np.ndarray, u: np.ndarray, b: np.ndarray | None, pads: tuple[int, ...],
            out_hw: tuple[int, int], act: str | None,
            residual: np.ndarray | None = None) -> np.ndarray:
    """act(conv(x, w) + b) for a 3×3 stride-1 undilated ungrouped w, given as
    U = `transform_weight(w, tile)` (the tile size follows from U: 36 positions for
    F(4×4, 3×3), 16 for F(2×2, 3×3)); x (N, C, H, W) float, pads (top, left, bottom,
    right). With `residual` (C-contiguous, of the output's shape and dtype): act((conv(x,
    w) + b) + residual), the add done while copying the result back to NCHW."""
    n = x.shape[0]
    pos, _, k = u.shape
    tile = 4 if pos == 36 else 2
    inputs, outputs = (_input_tiles, _output_tiles) if tile == 4 else (_input_tiles2,
                                                                        _output_tiles2)
    oh, ow = out_hw
    th, tw = -(-oh // tile), -(-ow // tile)
    c, h, wd = x.shape[1:]
    top, left = pads[0], pads[1]
    tiles = th * tw
    v = np.empty((pos, n * tiles, c), x.dtype)
    xt = np.zeros((th * tile + 2, tw * tile + 2, c), x.dtype)  # the border stays zero
    rows, cols = min(h, xt.shape[0] - top), min(wd, xt.shape[1] - left)
    for ni in range(n):
        xt[top: top + rows, left: left + cols] = x[ni, :, :rows, :cols].transpose(1, 2, 0)
        inputs(xt.reshape(xt.shape[0], -1), ni * tiles, th, tw, v)
    m = np.matmul(v, u)  # (A², T, K): one BLAS GEMM per transform position
    y = np.empty((n, k, oh, ow), x.dtype)
    yt = np.empty((th * tile, tw * tile, k), x.dtype)
    bias = np.zeros(0, x.dtype) if b is None else np.tile(b.astype(x.dtype), tile)
    for ni in range(n):
        outputs(m, ni * tiles, th, tw, bias, b is not None,
                ACT_CODES[act if residual is None else None], x.dtype.type(0),
                x.dtype.type(6), yt.reshape(yt.shape[0], -1))
        if residual is not None:
            src = yt if yt.shape[:2] == (oh, ow) else np.ascontiguousarray(yt[:oh, :ow])
            to_channels_first_add(src.reshape(oh * ow, k), residual[ni].reshape(k, oh * ow),
                                  ACT_CODES[act], y[ni].reshape(k, oh * ow))
        elif yt.shape[:2] == (oh, ow):
            to_channels_first(yt.reshape(oh * ow, k), y[ni].reshape(k, oh * ow))
        else:
            y[ni] = yt[:oh, :ow].transpose(2, 0, 1)
    return y
