"""ONNX Conv (NCHW input, FCHW weight) for the reference executor, vectorized.

Three paths, chosen from the shapes alone (all compute the same sum; see
`tests/test_conv_kernels.py`, which checks each against a direct formula):

- **pointwise** (1×1, no padding): one matmul over the channels; a stride only
  subsamples the input first.
- **depthwise** (one input channel per group): a sum over the KH·KW taps of broadcast
  multiplies of strided views (`_depthwise_numpy`), or — for large float layers when
  numba is installed (the `fast` extra) — the same loop compiled (`conv_jit.py`),
  bit-identical to the numpy path.
- **Winograd** (`winograd.py`) for large float32 3×3 stride-1 undilated ungrouped
  layers, when the caller passes a `WeightCache` (the reference executor does; the
  simulator's tiles stay direct) and numba is installed: F(4×4, 3×3) on large images
  (36 GEMMs of the transformed tiles, 4× fewer multiplications, about 10× the direct
  sum's float32 rounding error), F(2×2, 3×3) on small ones (16 GEMMs, 2.25× fewer, the
  direct sum's error). `IRFLOW_REFERENCE_WINOGRAD=off` turns it off.
- **im2col** otherwise: the (N, G, C/G·KH·KW, OH·OW) column matrix is written tap by
  tap straight from the unpadded input (the padding cells are zeroed, never copied), then
  one batched matmul with the (G, F/G, C/G·KH·KW) weight. With a `WeightCache` and
  numba, a large column matrix with a small weight (the stems) is built and multiplied
  in bands of output rows instead (`im2col_jit.py`).

A `residual` (a fused residual add, `residual.py`) is added after the bias: by BLAS onto
the skip on the GEMM paths (`gemm_acc.py`), in the copy back to NCHW on Winograd layers,
else in the epilogue pass.

Float tensors accumulate in their own type (float32 stays float32, as onnxruntime does).
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from irflow.dialects import nn

JIT_MIN_MACS = 1 << 18
"""The numba kernels (depthwise, bias+activation epilogue) serve float layers with at
least this much work (MACs; output elements for the epilogue), so a small model never
pays numba's import (~1 s of CPU)."""

JIT_LOADED_MIN = 1 << 12
"""Once the numba kernels are loaded, layers with at least this much work use them."""


def jit_mode() -> str:
    """The IRFLOW_REFERENCE_JIT variable: "auto" (the default: numba for large float
    layers when installed), "off" (numpy only) or "on" (numba whenever the dtype allows).
    Both paths give the same bits; only the time differs."""
    mode = os.environ.get("IRFLOW_REFERENCE_JIT", "auto")
    return mode if mode in ("auto", "on", "off") else "auto"


def winograd_mode() -> str:
    """The IRFLOW_REFERENCE_WINOGRAD variable: "auto" (the default: Winograd for large
    float32 3×3 stride-1 layers when numba is installed and IRFLOW_REFERENCE_JIT is not
    "off") or "off" (the direct sum everywhere)."""
    return "off" if os.environ.get("IRFLOW_REFERENCE_WINOGRAD", "auto") == "off" else "auto"


WINOGRAD_MIN_TILES = 32
"""F(4×4, 3×3) serves layers with at least this many 4×4 output tiles
(N·⌈OH/4⌉·⌈OW/4⌉), F(2×2, 3×3) those with at least `WINOGRAD_MIN_TILES2` 2×2 tiles:
each of the 36 (16) GEMMs has one row per tile and reads the whole transformed weight
(4× (1.8×) the weight). Measured on ResNet's 3×3 layers (1 thread, CPU ms, direct /
F(4,3) / F(2,3)): 56×56×64 2.8 / 1.6 / 2.6, 28×28×128 2.1 / 1.1 / 1.3, 14×14×256
2.0 / 2.0 / 1.35, 7×7×512 2.7 / 5.1 / 2.45."""

WINOGRAD_MIN_TILES2 = 32
"""See `WINOGRAD_MIN_TILES`."""

WINOGRAD_MIN_MACS = 1 << 22
"""... and at least this many MACs (smaller layers: the transforms' fixed costs)."""

WINOGRAD_MIN_CHANNELS = 32
"""... and at least this many input channels: with fewer, each position's GEMM sums
fewer products than the transforms spend additions per tile, and F(4×4, 3×3)'s larger
rounding error (~10× the direct sum's) is not bought with a large gain (the digits CNN's
16-channel layer at batch 360 moved 1.1e-5 from onnxruntime, past its test's 1e-5)."""


class WeightCache:
    """The Winograd-transformed weights of one conv op, kept while the op is given the
    same weight array (the reference executor passes its constants' arrays on every run;
    a new array is transformed again)."""

    def __init__(self) -> None:
        self.weight: np.ndarray | None = None
        self.transformed: dict[int, np.ndarray] = {}

    def get(self, w: np.ndarray, tile: int, transform: Any) -> np.ndarray:
        """`transform(w, tile)`, computed once per weight array and tile size."""
        if self.weight is not w:
            self.weight, self.transformed = w, {}
        if tile not in self.transformed:
            self.transformed[tile] = transform(w, tile)
        return self.transformed[tile]


@functools.cache
def _winograd() -> Any:
    """The `winograd` module, or None without numba."""
    if importlib.util.find_spec("numba") is None:
        return None
    from irflow.backends.reference import winograd

    return winograd


def winograd_tile(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                  strides: Sequence[int], dilations: Sequence[int], groups: int,
                  out_hw: Sequence[int]) -> int:
    """The Winograd output tile (4 or 2) this conv takes, or 0 for the direct path (the
    shapes and dtypes must allow it, the layer be large enough to gain, the modes allow
    it)."""
    if w.shape[2:] != (3, 3) or groups != 1 or tuple(strides) != (1, 1):
        return 0
    if tuple(dilations) != (1, 1) or x.dtype != np.float32 or w.dtype != np.float32:
        return 0
    if b is not None and b.dtype != np.float32:
        return 0
    if x.shape[0] * w.shape[0] * w.shape[1] * 9 * out_hw[0] * out_hw[1] < WINOGRAD_MIN_MACS:
        return 0
    if w.shape[1] < WINOGRAD_MIN_CHANNELS:
        return 0
    if winograd_mode() == "off" or jit_mode() == "off" or _winograd() is None:
        return 0
    for tile, least in ((4, WINOGRAD_MIN_TILES), (2, WINOGRAD_MIN_TILES2)):
        if x.shape[0] * -(-out_hw[0] // tile) * -(-out_hw[1] // tile) >= least:
            return tile
    return 0


BAND_MIN_COLUMN_BYTES = 1 << 20
"""Float convs whose im2col column matrix would exceed this (and whose weight is at most
`BAND_MAX_WEIGHT_BYTES`) run in bands of output rows (`im2col_jit.py`: the stems of
ResNet, 7.4 MB of columns, and MobileNetV2, 1.35 MB)."""

BAND_MAX_WEIGHT_BYTES = 1 << 16
"""See `BAND_MIN_COLUMN_BYTES`: each band's GEMM repacks the weight."""


@functools.cache
def _im2col_jit() -> Any:
    from irflow.backends.reference import im2col_jit

    return im2col_jit


def _use_bands(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, groups: int,
               out_hw: Sequence[int]) -> bool:
    """Whether this conv takes the banded im2col path (the reference executor's kernels
    only, like Winograd; the simulator's tiles stay whole)."""
    if groups != 1 or w.shape[2:] == (1, 1) or w.nbytes > BAND_MAX_WEIGHT_BYTES:
        return False
    cols = x.shape[0] * w[0].size * out_hw[0] * out_hw[1] * x.itemsize
    return cols >= BAND_MIN_COLUMN_BYTES and _use_jit(x, w, b, JIT_MIN_MACS)


EPILOGUE_ACTS = ("relu", "relu6")
"""Fused activations `conv2d` applies itself (with the bias, in one pass when jitted)."""


@functools.cache
def _jit() -> Any:
    """The `conv_jit` module, or None without numba (imported on first use: ~1 s)."""
    if importlib.util.find_spec("numba") is None:
        return None
    from irflow.backends.reference import conv_jit

    return conv_jit


def jit_available() -> bool:
    """Whether the numba kernels can be used here."""
    return _jit() is not None


def preload(dtype: np.dtype) -> None:
    """Import numba and load (compiling on the very first use) the kernels for `dtype`
    now, e.g. while a program compiles, so that the first run's time is the ops' own."""
    jit = _jit() if jit_mode() != "off" else None
    if jit is None or dtype not in (np.float32, np.float64):
        return
    x = np.zeros((1, 1, 3, 3), dtype)
    jit.depthwise_into(x, np.zeros((1, 9), dtype), None, (3, 3), (1, 1), (1, 1, 1, 1),
                       (1, 1), "relu", np.empty_like(x))
    jit.epilogue(x, np.zeros(1, dtype), "relu6")


def _valid_range(offset: int, stride: int, size: int, count: int) -> tuple[int, int]:
    """Output positions [lo, hi) whose input index `o·stride + offset` lies in [0, size)."""
    lo = min(count, -(offset // stride)) if offset < 0 else 0  # ceil(-offset / stride)
    last = size - 1 - offset
    hi = 0 if last < 0 else min(count, last // stride + 1)
    return lo, max(lo, hi)


def _tap_plan(h: int, w: int, kernel: Sequence[int], strides: Sequence[int],
              pads: Sequence[int], dilations: Sequence[int], out_hw: Sequence[int]
              ) -> list[tuple[int, int, int, int, int, int, int, int]]:
    """Per tap (i, j): its valid output rows [r0, r1) and columns [c0, c1), and the
    first input row and column they read (ri, ci)."""
    plan = []
    for i in range(kernel[0]):
        off_h = i * dilations[0] - pads[0]
        r0, r1 = _valid_range(off_h, strides[0], h, out_hw[0])
        for j in range(kernel[1]):
            off_w = j * dilations[1] - pads[1]
            c0, c1 = _valid_range(off_w, strides[1], w, out_hw[1])
            plan.append((i, j, r0, r1, c0, c1, r0 * strides[0] + off_h,
                         c0 * strides[1] + off_w))
    return plan


def im2col(x: np.ndarray, kernel: Sequence[int], strides: Sequence[int],
           pads: Sequence[int], dilations: Sequence[int], out_hw: Sequence[int]
           ) -> np.ndarray:
    """The (N, C, KH, KW, OH, OW) columns of x: cols[n, c, i, j, r, q] =
    x[n, c, r·sh + i·dh − top, q·sw + j·dw − left], 0 where that is in the padding.

    One strided copy per tap from the unpadded input (no padded copy of x), and the
    padding cells of each tap zeroed in at most four strips.
    """
    n, c, h, w = x.shape
    sh, sw = strides
    oh, ow = out_hw
    cols = np.empty((n, c, kernel[0], kernel[1], oh, ow), x.dtype)
    for i, j, r0, r1, c0, c1, ri, ci in _tap_plan(h, w, kernel, strides, pads, dilations,
                                                  out_hw):
        dst = cols[:, :, i, j]
        if r0 == r1 or c0 == c1:
            dst[...] = 0
            continue
        if r0:
            dst[:, :, :r0] = 0
        if r1 < oh:
            dst[:, :, r1:] = 0
        if c0:
            dst[:, :, r0:r1, :c0] = 0
        if c1 < ow:
            dst[:, :, r0:r1, c1:] = 0
        dst[:, :, r0:r1, c0:c1] = x[:, :, ri: ri + (r1 - r0 - 1) * sh + 1: sh,
                                    ci: ci + (c1 - c0 - 1) * sw + 1: sw]
    return cols


def tap_views(xp: np.ndarray, kernel: Sequence[int], strides: Sequence[int],
              dilations: Sequence[int], out: Sequence[int]) -> Iterator[np.ndarray]:
    """For each kernel tap (taps in row-major order), the (N, C, *out) strided view of the
    padded input it reads, for any number of spatial axes. Reducing over the taps' views
    is much faster than reducing a window view."""
    for tap in itertools.product(*(range(k) for k in kernel)):
        yield xp[(slice(None), slice(None), *(
            slice(t * d, t * d + (o - 1) * s + 1, s)
            for t, d, s, o in zip(tap, dilations, strides, out)))]


def pad_nchw(x: np.ndarray, pads: Sequence[int], value: float = 0.0) -> np.ndarray:
    """Pad H and W by [top, left, bottom, right] with `value` (x itself when all are 0)."""
    top, left, bottom, right = pads
    if not (top or left or bottom or right):
        return x
    n, c, h, w = x.shape
    out = np.full((n, c, h + top + bottom, w + left + right), value, dtype=x.dtype)
    out[:, :, top:top + h, left:left + w] = x
    return out


_CHUNK_BYTES = 1 << 17
"""Depthwise convolution in NCHW works on channel chunks whose output is about this size,
so the accumulator stays in the L2 cache across the KH·KW taps."""


def _depthwise_numpy(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                     kernel: Sequence[int], strides: Sequence[int], pads: Sequence[int],
                     dilations: Sequence[int], out_hw: Sequence[int]) -> np.ndarray:
    """y[:, c] = (sum over taps k, in order, of tap_k(pad(x))[:, c] · w[c, k]) + b[c].

    Each tap is one broadcast multiply-add over a strided view. Numpy's inner loop runs
    along the last axis, so the layout follows the longer of W and C: NCHW (inner loop
    OW) for large images with few channels, NHWC (inner loop C, one transpose each way)
    when C >= 4·OW — measured 1.5–3× faster for MobileNetV2's 14×14 and 7×7 layers and
    slower for its 112×112 and 56×56 ones.
    """
    n, f, h, wd = x.shape
    oh, ow = out_hw
    dtype = np.result_type(x, w)
    if f >= 4 * ow:
        top, left, bottom, right = pads
        xt = np.zeros((n, h + top + bottom, wd + left + right, f), dtype=x.dtype)
        xt[:, top: top + h, left: left + wd] = x.transpose(0, 2, 3, 1)  # padded NHWC
        wt = np.ascontiguousarray(w.T)  # (taps, C)
        yt = np.empty((n, oh, ow, f), dtype=dtype)
        tmp = np.empty_like(yt)
        for k, tap in enumerate(tap_views(xt.transpose(0, 3, 1, 2), kernel, strides, dilations,
                                      out_hw)):
            tap_t = tap.transpose(0, 2, 3, 1)
            if k == 0:
                np.multiply(tap_t, wt[k], out=yt)
            else:
                np.multiply(tap_t, wt[k], out=tmp)
                yt += tmp
        if b is not None:
            yt += b
        return np.ascontiguousarray(yt.transpose(0, 3, 1, 2))
    xp = pad_nchw(x, pads)
    y = np.empty((n, f, oh, ow), dtype=dtype)
    chunk = max(1, _CHUNK_BYTES // max(1, n * oh * ow * dtype.itemsize))
    tmp_all = np.empty((n, min(chunk, f), oh, ow), dtype=dtype)
    for c0 in range(0, f, chunk):
        c1 = min(f, c0 + chunk)
        yc, tmp = y[:, c0:c1], tmp_all[:, : c1 - c0]
        for k, tap in enumerate(tap_views(xp[:, c0:c1], kernel, strides, dilations, out_hw)):
            wk = w[c0:c1, k].reshape(1, c1 - c0, 1, 1)
            if k == 0:
                np.multiply(tap, wk, out=yc)
            else:
                np.multiply(tap, wk, out=tmp)
                yc += tmp
        if b is not None:
            yc += b[c0:c1].reshape(1, c1 - c0, 1, 1)
    return y


_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def _use_jit(x: np.ndarray, w: np.ndarray | None, b: np.ndarray | None, work: int) -> bool:
    """Whether to run the numba kernel on these operands (`work`: MACs or elements)."""
    mode = jit_mode()
    dtype = x.dtype
    if mode == "off" or (dtype != _F32 and dtype != _F64):
        return False
    if (w is not None and w.dtype != dtype) or (b is not None and b.dtype != dtype):
        return False
    if mode == "on" or work >= JIT_MIN_MACS:
        return jit_available()
    # once loaded (a large layer needed it), smaller layers use it too: both paths give
    # the same bits
    return work >= JIT_LOADED_MIN and _jit.cache_info().currsize > 0 and _jit() is not None


def _activate(y: np.ndarray, act: str | None) -> np.ndarray:
    """relu / relu6 in place, as `kernels.relu` / `kernels.relu6` compute them."""
    if act == "relu":
        np.maximum(y, y.dtype.type(0), out=y)
    elif act == "relu6":
        np.clip(y, y.dtype.type(0), y.dtype.type(6), out=y)
    return y


def epilogue(y: np.ndarray, b: np.ndarray | None, act: str | None) -> np.ndarray:
    """y (N, F, ...) fresh and C-contiguous, in place: act(y + b[f]) — one pass with numba
    for large float outputs, else a numpy pass for the bias and one for act."""
    if b is None and act is None:
        return y
    if y.flags.c_contiguous and _use_jit(y, None, b, y.size):
        _jit().epilogue(y, b, act)
        return y
    if b is not None:
        y += b.reshape((1, -1) + (1,) * (y.ndim - 2))
    return _activate(y, act)


def epilogue_residual(y: np.ndarray, b: np.ndarray | None, residual: np.ndarray,
                      act: str | None) -> np.ndarray:
    """y (N, F, ...) fresh and C-contiguous, in place: act((y + b[f]) + residual) — the
    conv's bias, then a residual add fused into it (`residual.py`), with the additions
    and the activation of the two ops run one after the other (the same bits)."""
    if (y.flags.c_contiguous and residual.flags.c_contiguous and residual.shape == y.shape
            and _use_jit(y, residual, b, y.size)):
        _jit().epilogue_residual(y, b, residual, act)
        return y
    epilogue(y, b, None)
    np.add(y, residual, out=y)
    return _activate(y, act)


def _gemm_residual(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                   strides: Sequence[int], pads: Sequence[int], dilations: Sequence[int],
                   groups: int, act: str | None, residual: np.ndarray,
                   overwrite: bool) -> np.ndarray | None:
    """act((residual + x·w) + b) for an ungrouped GEMM-path conv (1×1 or im2col; not
    Winograd, banded or depthwise), the GEMM accumulated onto the residual by BLAS; None
    when this conv does not take that path here."""
    n, _, h, wd = x.shape
    f, cg, kh, kw = w.shape
    dtype = x.dtype
    if groups != 1 or (dtype != _F32 and dtype != _F64) or w.dtype != dtype:
        return None
    if residual.dtype != dtype or (b is not None and b.dtype != dtype):
        return None
    oh = nn.window_out(h, kh, strides[0], pads[0], pads[2], dilations[0])
    ow = nn.window_out(wd, kw, strides[1], pads[1], pads[3], dilations[1])
    if residual.shape != (n, f, oh, ow) or not _gemm_acc().available():
        return None
    if (winograd_tile(x, w, b, strides, dilations, groups, (oh, ow))
            or _use_bands(x, w, b, groups, (oh, ow))):
        return None
    if kh == kw == 1 and not any(pads):
        if tuple(strides) != (1, 1):
            x = x[:, :, ::strides[0], ::strides[1]]
        cols = np.ascontiguousarray(x).reshape(n, cg, oh * ow)
    else:
        cols = im2col(x, (kh, kw), strides, pads, dilations, (oh, ow)).reshape(
            n, cg * kh * kw, oh * ow)
    in_place = (overwrite and residual.flags.c_contiguous and residual.flags.owndata
                and residual.flags.writeable)
    y = residual if in_place else np.array(residual, order="C")
    wm = np.ascontiguousarray(w).reshape(f, cg * kh * kw)
    for ni in range(n):
        if not _gemm_acc().accumulate(wm, cols[ni], y[ni].reshape(f, oh * ow)):
            raise RuntimeError("BLAS accumulate refused C-contiguous operands")
    return epilogue(y, b, act)


@functools.cache
def _gemm_acc() -> Any:
    from irflow.backends.reference import gemm_acc

    return gemm_acc


def add_act(a: np.ndarray, b: np.ndarray, act: str) -> np.ndarray | None:
    """relu/relu6(a + b) in one numba pass (a residual add with its fused activation) when
    a and b are large C-contiguous float arrays of one shape and dtype; else None (the
    caller runs np.add, then the activation: the same bits)."""
    if a.shape != b.shape or a.dtype != b.dtype or not isinstance(a, np.ndarray):
        return None
    if not (a.flags.c_contiguous and b.flags.c_contiguous) or not _use_jit(a, b, None, a.size):
        return None
    return _jit().add_act(a, b, act)


def depthwise(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, kernel: Sequence[int],
              strides: Sequence[int], pads: Sequence[int], dilations: Sequence[int],
              out_hw: Sequence[int], act: str | None = None) -> np.ndarray:
    """Depthwise convolution: x (N, C, H, W), w (C, KH·KW), b (C,) or None."""
    n, f = x.shape[:2]
    macs = n * f * out_hw[0] * out_hw[1] * kernel[0] * kernel[1]
    if not _use_jit(x, w, b, macs):
        y = _depthwise_numpy(x, w, b, kernel, strides, pads, dilations, out_hw)
        return _activate(y, act)
    y = np.empty((n, f, out_hw[0], out_hw[1]), x.dtype)
    _jit().depthwise_into(np.ascontiguousarray(x), np.ascontiguousarray(w), b, kernel,
                          strides, pads, dilations, act, y)
    return y


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Sequence[int],
           pads: Sequence[int], dilations: Sequence[int], groups: int,
           act: str | None = None, winograd: WeightCache | None = None,
           residual: np.ndarray | None = None, overwrite: bool = False) -> np.ndarray:
    """ONNX Conv (NCHW, FCHW weight), then `act` (None or one of `EPILOGUE_ACTS`); the
    path follows the shapes (module docstring). With `winograd` (this op's cache), large
    float32 3×3 stride-1 layers take the Winograd path. With `residual` (an array of the
    output's shape and dtype), act((conv + b) + residual): a residual add fused in; then
    (reference executor only) GEMM-path layers let BLAS add the GEMM result to the
    residual (`gemm_acc.py`), into the residual's own buffer when `overwrite` says
    nothing else reads it."""
    if residual is not None:
        tile = 0 if winograd is None else winograd_tile(x, w, b, strides, dilations, groups,
                                                        residual.shape[2:])
        if tile and residual.flags.c_contiguous and residual.dtype == x.dtype:
            wg = _winograd()
            return wg.conv3x3(x, winograd.get(w, tile, wg.transform_weight), b, tuple(pads),
                              residual.shape[2:], act, residual)
        if winograd is not None:
            y = _gemm_residual(x, w, b, strides, pads, dilations, groups, act, residual,
                               overwrite)
            if y is not None:
                return y
        y = conv2d(x, w, None, strides, pads, dilations, groups, None, winograd)
        return epilogue_residual(y, b, residual, act)
    n, _, h, wd = x.shape
    f, cg, kh, kw = w.shape
    oh = nn.window_out(h, kh, strides[0], pads[0], pads[2], dilations[0])
    ow = nn.window_out(wd, kw, strides[1], pads[1], pads[3], dilations[1])
    fg = f // groups
    if cg == 1 and groups > 1:
        if fg > 1:  # channel multiplier: output channel g*fg + m reads input channel g
            x = np.repeat(x, fg, axis=1)
        return depthwise(x, w.reshape(f, kh * kw), b, (kh, kw), strides, pads, dilations,
                         (oh, ow), act)
    tile = 0 if winograd is None else winograd_tile(x, w, b, strides, dilations, groups,
                                                    (oh, ow))
    if tile:
        wg = _winograd()
        return wg.conv3x3(x, winograd.get(w, tile, wg.transform_weight), b, tuple(pads),
                          (oh, ow), act)
    if winograd is not None and _use_bands(x, w, b, groups, (oh, ow)):
        return _im2col_jit().conv_bands(x, w, b, strides, pads, dilations, (oh, ow), act)
    if kh == kw == 1 and not any(pads):
        if tuple(strides) != (1, 1):
            x = x[:, :, ::strides[0], ::strides[1]]
        cols = x.reshape(n, groups, cg, oh * ow)
    else:
        cols = im2col(x, (kh, kw), strides, pads, dilations, (oh, ow))
        cols = cols.reshape(n, groups, cg * kh * kw, oh * ow)
    y = np.matmul(w.reshape(groups, fg, cg * kh * kw), cols).reshape(n, f, oh, ow)
    return epilogue(y, b, act)
