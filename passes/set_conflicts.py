"""The set-conflict model of the tile search: which lines a loop body leaves in cache
sets it overfills, statistically, for every candidate at once.

`layer_traffic.traffic` asks, per loop body, what fraction of each tensor's lines sit in
sets holding more than `ways` lines (LRU then misses them all on reuse). Each tensor is
given as (lines, sets used, scattered): its lines spread over its sets as the floor or
ceiling of the mean load, diffused further for runs at scattered offsets (`_load_pmf`),
and the tensors' loads combine as independent sums (`_convolve`). Distinct rows are scored
once and kept across calls (`_ROWS`). `set_loads` is the exact counterpart for a few
candidates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def overfilled(tensors: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
                sets: int, ways: int) -> list[np.ndarray]:
    """Per tensor t, the fraction of its lines in sets holding more than `ways` lines,
    for tensors given as (lines, sets used, scattered): each spreads its lines over its
    sets (`_load_pmf`), and the tensors' sets are placed independently (a tensor that
    does not use every set is in a set of t's with probability (sets it uses) / sets)."""
    n = max(np.size(x) for tensor in tensors for x in tensor)
    full = [tuple(np.broadcast_to(x, (n,)) for x in tensor) for tensor in tensors]
    # the loads' supports bound the sum: where even the largest stays within `ways`
    # nothing overflows; where the least (t with the tensors in every set) exceeds it,
    # everything does
    hi, floor_all = np.zeros(n), np.zeros(n)
    lows = []
    for lines, used, scat in full:
        load = lines / used
        hi += np.ceil(load) + np.where(scat, np.minimum(4, np.ceil(DISPERSION * load)), 0)
        low = np.maximum(np.floor(load) - np.where(scat, 4, 0), 0)
        everywhere = used >= sets
        floor_all += np.where(everywhere, low, 0)
        lows.append(np.where(everywhere, 0, low))
    outs = [((floor_all + low) > ways).astype(np.float64) for low in lows]
    need = np.flatnonzero((hi > ways) & (floor_all <= ways))
    if need.size:  # many candidates share their loads: score each distinct row once
        rows = np.stack([np.asarray(x[need], np.float64) for tensor in full for x in tensor], 1)
        key = rows @ _HASH[:rows.shape[1]]  # one number per row (a fixed random projection)
        _, first, back = np.unique(key, return_index=True, return_inverse=True)
        got = _overfilled_rows(rows[first], len(full), sets, ways)
        for t, out in enumerate(outs):
            out[need] = got[back.ravel(), t]
    return outs


_ROWS: dict[bytes, np.ndarray] = {}
ROWS_KEPT = 100_000
"""Distinct rows of `_overfilled_at` kept across calls (the loops' bodies of one layer's
orders, its two `balanced` stages and similar layers share most rows; about 300 B each)."""


def _overfilled_rows(rows: np.ndarray, n_tensors: int, sets: int, ways: int) -> np.ndarray:
    """[m, tensors] `_overfilled_at` of distinct rows (lines, sets used, scattered per
    tensor); a row scored before (same diffusion steps) is looked up, not recomputed."""
    cols = list(rows.T)
    tensors = [(cols[3 * t], cols[3 * t + 1], cols[3 * t + 2] > 0) for t in range(n_tensors)]
    steps = [_pmf_steps(lines / np.maximum(used, 1), scat) for lines, used, scat in tensors]
    head = np.array([sets, ways, *steps], np.float64).tobytes()
    keys = [head + r.tobytes() for r in rows]
    hit = np.array([k in _ROWS for k in keys], bool)
    out = np.empty((len(rows), n_tensors))
    if hit.any():
        out[hit] = np.stack([_ROWS[k] for k, h in zip(keys, hit) if h])
    miss = np.flatnonzero(~hit)
    if miss.size:
        got = np.stack(_overfilled_at([tuple(x[miss] for x in t) for t in tensors],
                                      sets, ways, steps), 1)
        out[miss] = got
        if len(_ROWS) + len(miss) > ROWS_KEPT:
            _ROWS.clear()
        _ROWS.update(zip([keys[i] for i in miss], got))
    return out


def _overfilled_at(tensors: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
                   sets: int, ways: int, steps: Sequence[int] | None = None
                   ) -> list[np.ndarray]:
    """Per tensor t, P(load > ways) of a set t uses: the load's distribution is the sum
    of the tensors' integer loads per set (`_load_pmf`; `steps`: its diffusion steps per
    tensor, by default those of these rows)."""
    bins = ways + 2  # the last bin: loads of `bins - 1` or more
    own, mixed = [], []
    for t, (lines, used, scat) in enumerate(tensors):
        pmf = _load_pmf(lines / np.maximum(used, 1), scat, bins,
                        None if steps is None else steps[t])
        own.append(pmf)
        share = np.minimum(used / sets, 1.0)[:, None]
        mix = share * pmf
        mix[:, 0] += 1 - share[:, 0]
        mixed.append(np.where((lines > 0)[:, None], mix, (np.arange(bins) == 0) * 1.0))
    # every tensor's own load convolved with every other's, all tensors at once: per k,
    # the stacked totals convolve with k's mix (tensor k's own rows with the unit load 0,
    # which adds exact zeros: the numbers of convolving tensor by tensor)
    t_all = len(tensors)
    total = np.stack(own)  # [tensors, n, bins]
    unit = (np.arange(bins) == 0) * 1.0
    for k in range(t_all):
        if np.any(tensors[k][0] > 0):
            others = (np.arange(t_all) != k)[:, None, None]
            mix = np.where(others, mixed[k][None], unit)
            total = _convolve(total.reshape(-1, bins), mix.reshape(-1, bins)).reshape(
                total.shape)
    return list(total[:, :, ways + 1:].sum(axis=2))


_HASH = np.random.default_rng(0).random(64) + 1.0
DISPERSION = 0.3
"""Variance per line of mean set load for a tensor made of many runs at scattered
offsets (1 would be Poisson; the runs' offsets are an arithmetic progression, less
dispersed than random)."""


def _pmf_steps(load: np.ndarray, scattered: np.ndarray) -> int:
    """The diffusion steps `_load_pmf` takes for these rows (their largest spread)."""
    f = load - np.floor(load)
    extra = np.where(scattered, np.maximum(DISPERSION * load - f * (1 - f), 0.0), 0.0)
    return int(min(4, math.ceil(float(extra.max(initial=0.0)))))


def _load_pmf(load: np.ndarray, scattered: np.ndarray, bins: int,
              steps: int | None = None) -> np.ndarray:
    """[n, bins] distribution of one tensor's integer lines in a set it uses, of mean
    `load`: floor or ceil of the mean (a contiguous tensor spreads its lines evenly),
    and for a tensor of many runs at scattered offsets a spread to variance
    `DISPERSION` × mean (sums of ±1 steps: the load stays an integer near the mean).
    Loads of `bins - 1` or more share the last bin."""
    lo = np.floor(load)
    f = load - lo
    at = np.arange(bins)
    base = np.clip(lo, 0, bins - 1)[:, None]
    pmf = (1 - f)[:, None] * (at == base) + f[:, None] * (at == np.minimum(base + 1, bins - 1))
    extra = np.where(scattered, np.maximum(DISPERSION * load - f * (1 - f), 0.0), 0.0)
    if steps is None:
        steps = _pmf_steps(load, scattered)
    if steps:
        e = np.minimum(extra / steps, 1.0)[:, None] / 2  # (beyond 4: far over any way count)
        step = (1 - 2 * e)[:, :, None] * np.eye(bins) + e[:, :, None] * (
            _SHIFT[bins][0] + _SHIFT[bins][1])  # [n, from, to]
        for _ in range(steps):  # each step: -1 or +1 with probability e/2 each
            pmf = np.einsum("nf,nft->nt", pmf, step)
    return pmf


def _shifts(bins: int) -> tuple[np.ndarray, np.ndarray]:
    """One step down and one up between load bins (0 and the open last bin absorb)."""
    down, up = np.zeros((bins, bins)), np.zeros((bins, bins))
    for i in range(bins):
        down[i, max(i - 1, 0)] = 1
        up[i, min(i + 1, bins - 1)] = 1
    return down, up


_SHIFT = {b: _shifts(b) for b in range(2, 40)}


def _convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The distribution of the sum of two independent loads ([n, bins] each, the last
    bin open-ended)."""
    bins = a.shape[1]
    out = np.zeros_like(a)
    for i in range(bins):
        out[:, i:] += a[:, i:i + 1] * b[:, :bins - i]
        out[:, -1] += a[:, i] * b[:, bins - i:].sum(axis=1)
    return out


__all__ = ["overfilled"]
