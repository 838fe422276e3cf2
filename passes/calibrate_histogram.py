"""The streaming histogram of one tensor and the range each calibration method picks from it.

`StreamingHistogram` keeps `bins` counters whose width is a power of two; a batch
outside the covered range doubles the width and merges pairs of bins (exact), so the
final histogram equals the one-shot histogram of all the data. `select_range` turns
it into `[lo, hi]` by `minmax`, `percentile`, `mse` or `entropy` (TensorRT's KL
threshold); the methods are described in `calibrate.py`'s docstring and
docs/quantization.md. Pure numpy: no IR here.
"""

from __future__ import annotations

import math

import numpy as np

METHODS = ("minmax", "percentile", "mse", "entropy")
DEFAULT_BINS = 2048
_MIN_WIDTH_EXP = -60  # bins never get narrower than 2^-60


# --------------------------------------------------------------------------------------
# Streaming histogram


class StreamingHistogram:
    """Counts of `floor(x / width)` over a window of `bins` bins; width a power of two.

        >>> h = StreamingHistogram(); h.update(np.array([0.1, -2.0, 3.5]))
        >>> h.min, h.max, h.count
        (-2.0, 3.5, 3)
    """

    def __init__(self, bins: int = DEFAULT_BINS):
        if bins < 16:
            raise ValueError(f"a histogram needs at least 16 bins, got {bins}")
        self.bins = bins
        self.width_exp = _MIN_WIDTH_EXP
        self.start = 0  # global index of counts[0]
        self.counts = np.zeros(bins, np.int64)
        self.min = math.inf
        self.max = -math.inf
        self.count = 0

    @property
    def width(self) -> float:
        return math.ldexp(1.0, self.width_exp)

    @property
    def nbytes(self) -> int:
        return int(self.counts.nbytes)

    def _fits(self, lo: float, hi: float, exp: int) -> bool:
        w = math.ldexp(1.0, exp)
        return math.floor(hi / w) - math.floor(lo / w) < self.bins

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x).ravel()
        if x.size == 0:
            return
        lo, hi = float(x.min()), float(x.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError("non-finite values (inf or nan)")
        new_lo, new_hi = min(self.min, lo), max(self.max, hi)
        exp = self.width_exp
        if self.count == 0:
            span = new_hi - new_lo
            if span > 0:  # start below the answer; the loop below finds the smallest fit
                exp = max(_MIN_WIDTH_EXP, math.floor(math.log2(span / self.bins)) - 1)
        # bin indices are int64: |x| / width < 2^62 (only binds when the data is constant,
        # e.g. a one-element first batch, whose span sets no width)
        exp = max(exp, math.frexp(max(abs(new_lo), abs(new_hi)))[1] - 62)
        while not self._fits(new_lo, new_hi, exp):
            exp += 1
        w = math.ldexp(1.0, exp)
        new_start = math.floor(new_lo / w)
        if self.count and (exp != self.width_exp or new_start != self.start):
            nz = np.nonzero(self.counts)[0]
            old_g = self.start + nz
            new_g = old_g >> (exp - self.width_exp)  # floor division by 2^k, exact
            merged = np.zeros(self.bins, np.int64)
            np.add.at(merged, new_g - new_start, self.counts[nz])
            self.counts = merged
        self.width_exp, self.start = exp, new_start
        idx = np.floor(x.astype(np.float64) / w).astype(np.int64) - new_start
        self.counts += np.bincount(idx, minlength=self.bins)
        self.min, self.max = new_lo, new_hi
        self.count += int(x.size)

    def dense(self) -> tuple[float, int, np.ndarray]:
        """(width, first global bin index, counts) trimmed to the occupied bins — canonical:
        two histograms of the same data compare equal whatever the batching."""
        nz = np.nonzero(self.counts)[0]
        if nz.size == 0:
            return self.width, 0, np.zeros(0, np.int64)
        return self.width, self.start + int(nz[0]), self.counts[nz[0]: nz[-1] + 1].copy()

    def abs_counts(self) -> tuple[np.ndarray, float]:
        """Counts of |x| on bins [a·w', (a+1)·w'), a = 0, 1, …, and the width w'.

        Negative bins fold over (bin g < 0 holds |x| in ((−g−1)·w, −g·w]); when the data
        sits far from 0 relative to the width, bins merge by powers of two (exactly, as in
        `update`) until [0, max |x|] spans at most 2·`bins` bins."""
        g = self.start + np.arange(self.bins)
        reach = max(abs(int(g[0])), abs(int(g[-1])) + 1)
        k = max(0, math.ceil(math.log2(reach / (2 * self.bins)))) if reach > 2 * self.bins else 0
        a = np.where(g >= 0, g >> k, (-g - 1) >> k)
        out = np.zeros(int(a.max()) + 1, np.int64)
        np.add.at(out, a, self.counts)
        nz = np.nonzero(out)[0]
        return (out[: nz[-1] + 1] if nz.size else out[:1]), math.ldexp(self.width, k)


# --------------------------------------------------------------------------------------
# Range selection


def _levels(h: StreamingHistogram, bits: int, symmetric: bool) -> int:
    """Quantization steps that cover [0, T] for this tensor."""
    if symmetric:
        return (1 << (bits - 1)) - 1
    return (1 << bits) - 1 if h.min >= 0 else ((1 << bits) - 1) // 2


def _clip_range(h: StreamingHistogram, t: float) -> tuple[float, float]:
    lo = h.min if h.min >= 0 else max(h.min, -t)
    return lo, max(min(h.max, t), lo)


def percentile_threshold(h: StreamingHistogram, percentile: float) -> float:
    counts, width = h.abs_counts()
    cdf = np.cumsum(counts)
    i = int(np.searchsorted(cdf, cdf[-1] * percentile / 100.0))
    return min((i + 1) * width, max(abs(h.min), abs(h.max)))


def mse_threshold(h: StreamingHistogram, bits: int, symmetric: bool,
                  candidates: int = 512) -> float:
    """The clip T whose range `_clip_range(h, T)` minimizes the expected squared error:
    (x − bound)² for x outside the range, step²/12 inside, summed over the signed bins.
    The step is the one `quantize` will use: T / (2^(bits−1) − 1) symmetric (T / (2^bits
    − 1) for a non-negative tensor, stored unsigned), (hi − lo) / (2^bits − 1) otherwise."""
    nz = np.nonzero(h.counts)[0]
    counts = h.counts[nz].astype(np.float64)
    centers = (h.start + nz + 0.5) * h.width
    amax = max(abs(h.min), abs(h.max))
    ts = np.linspace(amax / candidates, amax, candidates)
    lo = np.zeros_like(ts) if h.min >= 0 else np.maximum(h.min, -ts)
    hi = np.minimum(h.max, ts)
    if symmetric:
        step = ts / _levels(h, bits, symmetric)
    else:
        step = (hi - lo) / ((1 << bits) - 1)
    c = centers[None, :]
    err = np.where(c < lo[:, None], (lo[:, None] - c) ** 2,
                   np.where(c > hi[:, None], (c - hi[:, None]) ** 2, (step**2 / 12.0)[:, None]))
    return float(ts[int(np.argmin(err @ counts))])


def entropy_threshold(h: StreamingHistogram, bits: int, max_candidates: int = 256) -> float:
    """TensorRT's entropy calibration on the |x| histogram (KL(P‖Q), smoothed).

    As NVIDIA's pytorch-quantization does, the zero bin's count is replaced by its
    neighbour's (a post-ReLU tensor's spike of exact zeros would otherwise dominate
    the first chunk and pull the threshold down), and a non-negative tensor gets
    `2^bits` levels (it is stored unsigned), a signed one `2^(bits−1)` per side.
    """
    counts, width = h.abs_counts()
    hist = counts.astype(np.float64)
    if len(hist) > 1:
        hist[0] = hist[1]
    nq = 1 << (bits - 1 + int(h.min >= 0))
    n = len(hist)
    if n <= nq:
        return max(abs(h.min), abs(h.max))
    step = max(1, (n - nq) // max_candidates)
    best_i, best_kl = n, math.inf
    total_tail = np.cumsum(hist[::-1])[::-1]  # total_tail[i] = hist[i:].sum()
    for i in range(nq, n + 1, step):
        p = hist[:i].copy()
        if i < n:
            p[-1] += total_tail[i]
        chunk = (np.arange(i) * nq) // i
        src = hist[:i]
        nonzero = src > 0
        sums = np.bincount(chunk, weights=src, minlength=nq)
        nz = np.bincount(chunk, weights=nonzero, minlength=nq)
        q = np.where(nonzero, sums[chunk] / np.maximum(nz[chunk], 1), 0.0)
        kl = _kl(p, q)
        if kl < best_kl:
            best_kl, best_i = kl, i
    return min(best_i * width, max(abs(h.min), abs(h.max)))


def _kl(p: np.ndarray, q: np.ndarray, eps: float = 1e-4) -> float:
    """KL(P‖Q) with TensorRT-style smoothing: zero bins get eps, taken from the others."""

    def smooth(d: np.ndarray) -> np.ndarray:
        zero = d == 0
        nz = int((~zero).sum())
        if nz == 0:
            return d
        d = d / d.sum()
        take = eps * zero.sum() / nz
        return np.where(zero, eps, d - take)

    ps, qs = smooth(p), smooth(q)
    mask = ps > 0
    return float(np.sum(ps[mask] * np.log(ps[mask] / np.maximum(qs[mask], 1e-12))))


def select_range(h: StreamingHistogram, method: str, *, percentile: float = 99.99,
                 bits: int = 8, symmetric: bool = False) -> tuple[float, float]:
    """The range `[lo, hi]` a method picks from a histogram."""
    if h.count == 0:
        raise ValueError("no data was observed")
    if method == "minmax":
        return h.min, h.max
    if method == "percentile":
        return _clip_range(h, percentile_threshold(h, percentile))
    if method == "mse":
        return _clip_range(h, mse_threshold(h, bits, symmetric))
    if method == "entropy":
        return _clip_range(h, entropy_threshold(h, bits))
    raise ValueError(f"unknown calibration method '{method}' (expected one of {METHODS})")
