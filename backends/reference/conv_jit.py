"""Optional numba kernels for the reference convolution (the `fast` extra: `pip install
irflow[fast]`); `conv.py` falls back to numpy without them.

**Depthwise.** Per channel, the zero-padded input plane is split into sh·sw phase planes
(row phase R mod sh, column phase C mod sw) of Wq = ceil(Wp / sw) columns, and the output
is accumulated on a "wide" grid of OH × Wq: tap (i, j) then reads one phase plane at a
fixed offset, so every tap is a single flat multiply-add over OH·Wq contiguous elements
(the columns ≥ OW read the next row and are dropped), which LLVM vectorizes — for any
stride and dilation. The sum per output element is the one of
`conv._depthwise_numpy`, in the same order (taps in (i, j) order, padding included as
zeros, each product rounded, then the bias), so the two agree bit for bit
(`tests/test_conv_kernels.py`).

Rows of at most 14 outputs with at least 8× as many channels go channels-last instead
(`_depthwise_nhwc`): per output pixel and tap, one multiply-add over the channels
(MobileNetV2: 14×14×384 0.26 → 0.18 ms, 14×14×576 0.39 → 0.21, the stride-2
28×28×192 0.22 → 0.13).

**Epilogue.** Bias and relu/relu6 in one pass over a convolution's output, instead of
one pass each.

Activation codes: 0 none, 1 relu (max(x, 0)), 2 relu6 (clip to [0, 6]); NaN passes
through both, and -0.0 becomes +0.0 under relu but stays under relu6, as with numpy's
maximum and clip. Compiled once per dtype and cached on
disk by numba. Importing this module raises ImportError when numba is not installed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from irflow.backends.reference.layout_jit import to_channels_first

ACT_CODES = {None: 0, "relu": 1, "relu6": 2}

NHWC_MAX_WIDTH = 14
"""Depthwise layers with at most this many output columns (and at least 16× as many
channels) run channels-last (`_depthwise_nhwc`)."""

NHWC_MIN_RATIO = 8
"""See `NHWC_MAX_WIDTH`: channels per output column."""


@numba.njit(cache=True, nogil=True)
def _fill(planes, x, sh, sw, top, left, wq, size):  # pragma: no cover - jitted
    """Scatter one (H, W) plane into the interior of the phase planes (a function of its
    own: inlined, the strided branch kept LLVM from vectorizing the tap loops)."""
    h, wd = x.shape
    phase, row = top % sh, top // sh  # of padded row top + r, kept without divisions
    for r in range(h):
        base = phase * sw * size + row * wq
        phase += 1
        if phase == sh:
            phase, row = 0, row + 1
        src = x[r]
        if sw == 1:
            d1 = planes[base + left: base + left + wd]
            for t in range(wd):
                d1[t] = src[t]
            continue
        if sw == 2:  # a constant stride: LLVM vectorizes the de-interleave
            for pc in range(2):
                c_first = (pc - left) % 2
                if c_first >= wd:
                    continue
                count = (wd - 1 - c_first) // 2 + 1
                d0 = base + pc * size + (left + c_first) // 2
                dst = planes[d0: d0 + count]
                for t in range(count):
                    dst[t] = src[c_first + 2 * t]
            continue
        for pc in range(sw):
            c_first = (pc - left) % sw  # first input column of this phase
            if c_first >= wd:
                continue
            count = (wd - 1 - c_first) // sw + 1
            d0 = base + pc * size + (left + c_first) // sw
            dst = planes[d0: d0 + count]
            s = src[c_first: c_first + (count - 1) * sw + 1: sw]
            for t in range(count):
                dst[t] = s[t]


@numba.njit(inline="always")
def _tap_offset(k, kw, sh, sw, dh, dw, wq, size):  # pragma: no cover - jitted
    """Where tap k's flat run starts: its phase plane, then its row and column offset."""
    ri, cj = (k // kw) * dh, (k % kw) * dw
    return ((ri % sh) * sw + cj % sw) * size + (ri // sh) * wq + cj // sw


@numba.njit(cache=True, nogil=True)
def _depthwise(x, w, b, has_bias, act, zero, six, kh, kw, sh, sw, dh, dw, top, left, hq, wq,
               y):  # pragma: no cover - jitted
    n, c, h, wd = x.shape
    oh, ow = y.shape[2], y.shape[3]
    size = hq * wq
    planes = np.zeros(sh * sw * size, y.dtype)  # borders stay zero: only the interior is
    flat = oh * wq                              # ever written (1-D: slices stay 'C' layout)
    acc = np.empty(flat, y.dtype)
    for ni in range(n):
        for ci in range(c):
            _fill(planes, x[ni, ci], sh, sw, top, left, wq, size)
            taps = kh * kw
            if taps == 9:  # 3×3: all nine taps in one pass (the same additions, in order)
                _nine_taps(planes, w[ci], kw, sh, sw, dh, dw, wq, size, acc)
                taps = 0
            k = 0
            while k < taps:  # three taps per pass over acc where possible: the same
                o0 = _tap_offset(k, kw, sh, sw, dh, dw, wq, size)  # additions, in order
                s0, w0 = planes[o0: o0 + flat], w[ci, k]
                if k + 3 <= taps:
                    o1 = _tap_offset(k + 1, kw, sh, sw, dh, dw, wq, size)
                    o2 = _tap_offset(k + 2, kw, sh, sw, dh, dw, wq, size)
                    s1, w1 = planes[o1: o1 + flat], w[ci, k + 1]
                    s2, w2 = planes[o2: o2 + flat], w[ci, k + 2]
                    if k == 0:
                        for t in range(flat):
                            acc[t] = s0[t] * w0 + s1[t] * w1 + s2[t] * w2
                    else:
                        for t in range(flat):
                            acc[t] = acc[t] + s0[t] * w0 + s1[t] * w1 + s2[t] * w2
                    k += 3
                else:
                    if k == 0:
                        for t in range(flat):
                            acc[t] = s0[t] * w0
                    else:
                        for t in range(flat):
                            acc[t] += s0[t] * w0
                    k += 1
            bv = b[ci] if has_bias else zero
            for r in range(oh):  # bias and activation on the way out (no pass over acc)
                _finish_copy(acc[r * wq: r * wq + ow], y[ni, ci, r], bv, has_bias, act, zero,
                             six)


@numba.njit(cache=True, nogil=True)
def _nine_taps(planes, wc, kw, sh, sw, dh, dw, wq, size, acc):  # pragma: no cover - jitted
    """acc[t] = Σ_k planes[o_k + t] · wc[k] over the nine taps of a 3×3 kernel, added
    left to right as the three-tap passes of `_depthwise` add them, in one pass over acc
    (the sum stays in a register: 3.5× fewer loads and stores of acc)."""
    flat = acc.size
    o0 = _tap_offset(0, kw, sh, sw, dh, dw, wq, size)
    o1 = _tap_offset(1, kw, sh, sw, dh, dw, wq, size)
    o2 = _tap_offset(2, kw, sh, sw, dh, dw, wq, size)
    o3 = _tap_offset(3, kw, sh, sw, dh, dw, wq, size)
    o4 = _tap_offset(4, kw, sh, sw, dh, dw, wq, size)
    o5 = _tap_offset(5, kw, sh, sw, dh, dw, wq, size)
    o6 = _tap_offset(6, kw, sh, sw, dh, dw, wq, size)
    o7 = _tap_offset(7, kw, sh, sw, dh, dw, wq, size)
    o8 = _tap_offset(8, kw, sh, sw, dh, dw, wq, size)
    s0, s1, s2 = planes[o0: o0 + flat], planes[o1: o1 + flat], planes[o2: o2 + flat]
    s3, s4, s5 = planes[o3: o3 + flat], planes[o4: o4 + flat], planes[o5: o5 + flat]
    s6, s7, s8 = planes[o6: o6 + flat], planes[o7: o7 + flat], planes[o8: o8 + flat]
    w0, w1, w2, w3, w4, w5, w6, w7, w8 = wc[0], wc[1], wc[2], wc[3], wc[4], wc[5], wc[6], \
        wc[7], wc[8]
    for t in range(flat):
        acc[t] = (s0[t] * w0 + s1[t] * w1 + s2[t] * w2 + s3[t] * w3 + s4[t] * w4
                  + s5[t] * w5 + s6[t] * w6 + s7[t] * w7 + s8[t] * w8)


@numba.njit(cache=True, nogil=True)
def _depthwise_nhwc(xt, wt, b, has_bias, act, zero, six, kh, kw, sh, sw, dh, dw,
                    yt):  # pragma: no cover - jitted
    """Channels-last: xt one zero-padded image (HP, WP, C), wt (KH·KW, C), yt (OH, OW, C);
    per output pixel and tap one multiply-add over the C channels (contiguous,
    vectorized) — for images of at most 14 columns with at least 8× as many channels,
    where the per-channel planes would be a few dozen to a few hundred elements (the
    copies around it: numpy's in, `layout_jit` out)."""
    oh, ow, c = yt.shape
    nine = kh * kw == 9
    for r in range(oh):
        for q in range(ow):
            a = yt[r, q]
            if nine:  # 3×3: the nine taps in one pass over the channels (same order)
                _nhwc_nine(xt, wt, r * sh, q * sw, dh, dw, a)
            for k in range(0 if nine else kh * kw):
                src = xt[r * sh + (k // kw) * dh, q * sw + (k % kw) * dw]
                wk = wt[k]
                if k == 0:
                    for ci in range(c):
                        a[ci] = src[ci] * wk[ci]
                else:
                    for ci in range(c):
                        a[ci] += src[ci] * wk[ci]
            if has_bias:
                for ci in range(c):
                    a[ci] += b[ci]
            if act == 1:
                for ci in range(c):
                    v = a[ci]
                    a[ci] = zero if v <= zero else v
            elif act == 2:
                for ci in range(c):
                    v = a[ci]
                    v = zero if v < zero else v
                    a[ci] = six if v > six else v


@numba.njit(inline="always")
def _nhwc_nine(xt, wt, r0, q0, dh, dw, a):  # pragma: no cover - jitted
    """a[c] = Σ_k tap_k[c] · wt[k, c] over a 3×3 kernel's taps at input (r0, q0), added
    left to right as `_depthwise_nhwc`'s tap-by-tap loop adds them."""
    x0, x1, x2 = xt[r0, q0], xt[r0, q0 + dw], xt[r0, q0 + 2 * dw]
    x3, x4, x5 = xt[r0 + dh, q0], xt[r0 + dh, q0 + dw], xt[r0 + dh, q0 + 2 * dw]
    x6, x7, x8 = xt[r0 + 2 * dh, q0], xt[r0 + 2 * dh, q0 + dw], xt[r0 + 2 * dh, q0 + 2 * dw]
    w0, w1, w2, w3, w4, w5, w6, w7, w8 = wt[0], wt[1], wt[2], wt[3], wt[4], wt[5], wt[6], \
        wt[7], wt[8]
    for ci in range(a.size):
        a[ci] = (x0[ci] * w0[ci] + x1[ci] * w1[ci] + x2[ci] * w2[ci] + x3[ci] * w3[ci]
                 + x4[ci] * w4[ci] + x5[ci] * w5[ci] + x6[ci] * w6[ci] + x7[ci] * w7[ci]
                 + x8[ci] * w8[ci])


@numba.njit(cache=True, nogil=True)
def _finish(a, bv, has_bias, act, zero, six):  # pragma: no cover - jitted
    """In place on a 1-D run: a = act(a + bv); one loop per case, so each vectorizes."""
    if has_bias:
        if act == 0:
            for t in range(a.size):
                a[t] += bv
        elif act == 1:
            for t in range(a.size):
                v = a[t] + bv
                a[t] = zero if v <= zero else v
        else:
            for t in range(a.size):
                v = a[t] + bv
                v = zero if v < zero else v
                a[t] = six if v > six else v
    elif act == 1:
        for t in range(a.size):
            v = a[t]
            a[t] = zero if v <= zero else v
    elif act == 2:
        for t in range(a.size):
            v = a[t]
            v = zero if v < zero else v
            a[t] = six if v > six else v


@numba.njit(inline="always")
def _finish_copy(a, out, bv, has_bias, act, zero, six):  # pragma: no cover - jitted
    """out = act(a + bv) (`_finish`'s values, a left as it is); one loop per case."""
    if has_bias:
        if act == 0:
            for t in range(out.size):
                out[t] = a[t] + bv
        elif act == 1:
            for t in range(out.size):
                v = a[t] + bv
                out[t] = zero if v <= zero else v
        else:
            for t in range(out.size):
                v = a[t] + bv
                v = zero if v < zero else v
                out[t] = six if v > six else v
    elif act == 0:
        for t in range(out.size):
            out[t] = a[t]
    elif act == 1:
        for t in range(out.size):
            v = a[t]
            out[t] = zero if v <= zero else v
    else:
        for t in range(out.size):
            v = a[t]
            v = zero if v < zero else v
            out[t] = six if v > six else v


@numba.njit(cache=True, nogil=True)
def _epilogue(y, b, has_bias, act, zero, six):  # pragma: no cover - jitted
    n, f = y.shape[0], y.shape[1]
    for ni in range(n):
        for fi in range(f):
            _finish(y[ni, fi], b[fi] if has_bias else zero, has_bias, act, zero, six)


@numba.njit(cache=True, nogil=True)
def _add_act(a, b, act, zero, six, out):  # pragma: no cover - jitted
    """out = act(a + b) over flat arrays, one loop per case (each vectorizes)."""
    if act == 1:
        for t in range(out.size):
            v = a[t] + b[t]
            out[t] = zero if v <= zero else v
    elif act == 2:
        for t in range(out.size):
            v = a[t] + b[t]
            v = zero if v < zero else v
            out[t] = six if v > six else v
    else:
        for t in range(out.size):
            out[t] = a[t] + b[t]


def _bounds(y: np.ndarray) -> tuple[np.generic, np.generic]:
    """0 and 6 in y's type (so relu/relu6 stay in float32)."""
    return y.dtype.type(0), y.dtype.type(6)


def depthwise_into(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                   kernel: Sequence[int], strides: Sequence[int], pads: Sequence[int],
                   dilations: Sequence[int], act: str | None, y: np.ndarray) -> None:
    """y[n, c] = act(sum over taps k of tap_k(pad(x))[n, c] · w[c, k] (+ b[c])); x (N, C,
    H, W) and w (C, KH·KW) C-contiguous, of y's dtype."""
    top, left, bottom, right = pads
    sh, sw = strides
    bias = np.zeros(0, y.dtype) if b is None else np.ascontiguousarray(b)
    if y.shape[3] <= NHWC_MAX_WIDTH and x.shape[1] >= NHWC_MIN_RATIO * y.shape[3]:
        n, c, h, wd = x.shape
        xt = np.zeros((top + h + bottom, left + wd + right, c), y.dtype)  # the border stays 0
        wt = np.ascontiguousarray(w.T)
        yt = np.empty((y.shape[2], y.shape[3], c), y.dtype)
        for ni in range(n):
            xt[top: top + h, left: left + wd] = x[ni].transpose(1, 2, 0)
            _depthwise_nhwc(xt, wt, bias, b is not None, ACT_CODES[act], *_bounds(y),
                            kernel[0], kernel[1], sh, sw, dilations[0], dilations[1], yt)
            to_channels_first(yt.reshape(-1, c), y[ni].reshape(c, -1))
        return
    wq = -(-(left + x.shape[3] + right) // sw)
    # rows of a phase plane: the padded height, plus the wide grid's overrun past the
    # last tap (at most one row of Wq, and the last tap's row offset)
    hq = -(-(top + x.shape[2] + bottom) // sh) + 2
    _depthwise(x, w, bias, b is not None, ACT_CODES[act], *_bounds(y), kernel[0],
               kernel[1], sh, sw, dilations[0], dilations[1], top, left, hq, wq, y)


def epilogue(y: np.ndarray, b: np.ndarray | None, act: str | None) -> None:
    """In place on a C-contiguous (N, F, …) y: y = act(y + b[f])."""
    n, f = y.shape[:2]
    bias = np.zeros(0, y.dtype) if b is None else np.ascontiguousarray(b, y.dtype)
    _epilogue(y.reshape(n, f, -1), bias, b is not None, ACT_CODES[act], *_bounds(y))


@numba.njit(cache=True, nogil=True)
def _epilogue_residual(y, b, has_bias, r, act, zero, six):  # pragma: no cover - jitted
    """Per plane (in L1/L2): y = act((y + b[f]) + r), the bias pass then the add."""
    n, f = y.shape[0], y.shape[1]
    for ni in range(n):
        for fi in range(f):
            a = y[ni, fi]
            if has_bias:
                _finish(a, b[fi], True, 0, zero, six)
            _add_act(a, r[ni, fi], act, zero, six, a)


def epilogue_residual(y: np.ndarray, b: np.ndarray | None, r: np.ndarray,
                      act: str | None) -> None:
    """In place on a C-contiguous (N, F, …) y: y = act((y + b[f]) + r), r C-contiguous
    of y's shape and dtype — a conv's epilogue and the residual add after it, one pass
    over memory (`residual.py`)."""
    n, f = y.shape[:2]
    bias = np.zeros(0, y.dtype) if b is None else np.ascontiguousarray(b, y.dtype)
    _epilogue_residual(y.reshape(n, f, -1), bias, b is not None, r.reshape(n, f, -1),
                       ACT_CODES[act], *_bounds(y))


def add_act(a: np.ndarray, b: np.ndarray, act: str | None) -> np.ndarray:
    """act(a + b) in one pass; a and b C-contiguous, of one shape and float dtype."""
    out = np.empty_like(a)
    zero, six = _bounds(out)
    _add_act(a.reshape(-1), b.reshape(-1), ACT_CODES[act], zero, six, out.reshape(-1))
    return out
