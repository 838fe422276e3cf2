"""Exact per-set line loads of a tensor's tile, for scoring a few candidates.

`set_conflicts` spreads a tensor's lines over the cache sets statistically (floor or
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


def window_loads(acc: accel.Access, order: Sequence[str], p: int, tile: Mapping[str, int],
                 ext: Mapping[str, int], itemsize: float, line: int, sets: int,
                 max_steps: int = 64, positions: int = 8
                 ) -> list[tuple[float, np.ndarray]] | None:
    """The per-set loads of tensor `acc`'s reuse window across loop `order[p]` (which it
    depends on), as a mixture over where in the body the reused line sits: from a use
    at inner step t of iteration i to the use at step t of iteration i + 1, the cache
    sees this tensor's slices of iteration i from step t on and those of iteration i + 1
    before t (a window straddling two tiles: a weight tile's last `c` chunks and the next
    tile's first). The steps run over the loops inside p down to the innermost one the
    tensor depends on (loops it does not depend on repeat its slice); at most
    `positions` evenly spaced steps t, equally weighted. None when the body has more
    than `max_steps` such steps (the caller falls back to one or two bodies)."""
    deps = acc.dims
    inner = [i for i in range(p + 1, len(order)) if order[i] in deps]
    loops = list(range(p + 1, max(inner, default=p) + 1))
    trips = [-(-ext[order[i]] // tile[order[i]]) for i in loops]
    steps = int(np.prod(trips)) if trips else 1
    if steps > max_steps:
        return None
    d = order[p]
    t_p = -(-ext[d] // tile[d])
    if t_p < 2:
        return None
    mid = {e: (-(-ext[e] // tile[e]) // 2) * tile[e] for e in order}

    def lines_at(it: int, idx: Sequence[int]) -> np.ndarray:
        at = dict(mid)
        at[d] = (max(t_p // 2 - 1, 0) + it) * tile[d]
        for i, j in zip(loops, idx):
            at[order[i]] = j * tile[order[i]]
        for e in order[max(loops, default=p) + 1:]:
            at[e] = 0  # loops inside: the whole extent (the slice covers them)
        grid = {e: (ext[e] if i > max(loops, default=p) else tile[e])
                for i, e in enumerate(order)}
        ranges, _ = acc.slice({e: (at[e], min(at[e] + grid[e], ext[e])) for e in order})
        return slice_lines(0, acc.view, itemsize, ranges, line)

    seq = list(np.ndindex(*trips)) if trips else [()]
    now = [lines_at(0, idx) for idx in seq]
    nxt = [lines_at(1, idx) for idx in seq]
    ts = np.unique(np.linspace(0, steps - 1, min(positions, steps)).round().astype(int))
    out = []
    for t in ts:
        window = np.unique(np.concatenate(now[t:] + nxt[:t]))
        out.append((1.0 / len(ts), set_counts(window, sets)))
    return out


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
