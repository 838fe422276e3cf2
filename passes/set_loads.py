"""Exact per-set line loads of a tensor's tile, for scoring a few candidates.

`layer_traffic` spreads a tensor's lines over the cache sets statistically (floor or
ceiling of the mean load, a dispersion for runs at scattered offsets): cheap enough for
every candidate of the mapspace, but an arithmetic progression of runs can load the
sets much more evenly (or unevenly) than that. For a few candidates (the chosen one,
a search's finalists) the exact loads are affordable: the lines of one slice of the
tensor over a loop body come from the simulator's own `executor.slice_lines`, and their
per-set counts (`np.bincount` of line mod sets) are the same for any placement of the
tensor up to a rotation of the set indices (moving a tensor by whole lines shifts every
line's set by the same amount). So the *multiset* of per-set loads — the histogram —
is known without knowing where the allocator put the tensor; only the combination of
different tensors is left to chance (independent uniform rotations: `overfilled`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from irflow.backends.sim.executor import slice_lines
from irflow.dialects import accel


def tile_lines(acc: accel.Access, grid: Mapping[str, int], ext: Mapping[str, int],
               itemsize: float, line: int) -> np.ndarray:
    """The distinct cache lines (tensor based at address 0) of the slice of `acc`
    covering `grid[d]` loop indices per loop d, taken at the middle tile of each loop
    (an interior tile: a window's padding clips only the edge tiles)."""
    tile = {}
    for d, g in grid.items():
        trips = -(-ext[d] // g)
        lo = (trips // 2) * g
        tile[d] = (lo, min(lo + g, ext[d]))
    ranges, _ = acc.slice(tile)
    lines = slice_lines(0, acc.view, itemsize, ranges, line)
    return np.unique(lines)


def set_counts(lines: np.ndarray, sets: int) -> np.ndarray:
    """Lines per cache set ([sets] int): the set of line l is l mod sets."""
    return np.bincount(np.mod(lines, sets), minlength=sets)


def _pmf(counts: np.ndarray, bins: int) -> np.ndarray:
    """Distribution of the load of a uniformly random set (the last bin open-ended)."""
    return np.bincount(np.minimum(counts, bins - 1), minlength=bins) / len(counts)


def overfilled(tensors: Sequence[Sequence[tuple[float, np.ndarray]]], ways: int
               ) -> list[float]:
    """Per tensor t, the fraction of its lines in sets holding more than `ways` lines.

    Each tensor is a mixture of (weight, per-set counts) — a reuse window that holds one
    body's lines part of the time and two consecutive bodies' the rest — and the
    tensors sit at independent uniformly random set rotations of each other: the others'
    loads in a set are the convolution of their per-set load distributions, and a line
    of t in a set t loads with c lines overflows with P(c + others > ways)."""
    bins = ways + 2
    pmfs = []
    for mix in tensors:
        p = np.zeros(bins)
        for w, c in mix:
            p += w * _pmf(c, bins)
        pmfs.append(p)
    out = []
    for t, mix in enumerate(tensors):
        others = np.zeros(bins)
        others[0] = 1.0
        for k, p in enumerate(pmfs):
            if k != t:
                others = _convolve1(others, p)
        # P(others > m) for m = 0 .. bins - 1
        tail = 1.0 - np.cumsum(others)
        frac, weight = 0.0, 0.0
        for w, c in mix:
            total = float(c.sum())
            if total <= 0:
                continue
            need = ways - np.minimum(c, ways + 1)  # others must exceed this
            p_over = np.where(c > ways, 1.0, tail[np.clip(need, 0, bins - 1)])
            frac += w * float((c * p_over).sum()) / total
            weight += w
        out.append(frac / weight if weight > 0 else 0.0)
    return out


def _convolve1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The distribution of the sum of two independent loads (the last bin open-ended)."""
    bins = len(a)
    full = np.convolve(a, b)
    out = full[:bins].copy()
    out[-1] += full[bins:].sum()
    return out


__all__ = ["overfilled", "set_counts", "tile_lines"]
