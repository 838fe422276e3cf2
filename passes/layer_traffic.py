"""The memory side of one tiled layer on a cold LRU cache, vectorized over candidates.

What `tile_search.estimate` adds to the PE cycles of `mapping.nest_cost`: the cache
lines each tile step moves, which of them miss, the write-backs, and the cycles of the
double-buffered stream engine — modelled on what the simulator does (executor.py,
cache.py, cost.py) for the layer alone on an empty cache, flushed at the end
(`backends/sim/isolated.py`, the comparison docs/tiling.md states):

- **Loads.** An operand slice is loaded when a loop it depends on steps (or an inner
  one it depends on wraps); the steps of the nest fall into classes by the loop that
  stepped (loop q steps Π_{i<q} T_i · (T_q − 1) times), so a class's loads are fixed.
- **Misses (LRU reuse across the loop order).** The first touch of a line misses
  (compulsory: the operand's lines over the whole nest, halos and partial lines
  included). A slice loaded again after a loop p it does not depend on stepped hits
  iff the body of p — every tensor's lines over the loops inside p — fits the cache
  (a cyclic sweep larger than an LRU cache misses throughout); when it does not, the
  operand's lines over the body of p miss once per iteration of p (weights re-fetched
  per outer tile, inputs per output-channel tile, halos re-read).
- **Stores (write-allocate, write-back).** Each output tile is stored once at its last
  reduction step; a store that misses reads the line first, and every dirty line is
  written back once (evicted, or by the final flush). A reduction loop outside an
  output loop spills partial sums (`psum_bits` wide) and reloads them when the tile is
  revisited — each reload misses iff the body of the loop that revisits it does not
  fit, and a missed reload was written back before.
- **Cycles.** Per class, a memory phase `ceil(hits·line/hit_bw + dram·line/dram_bw)`
  (+ DRAM latency when it touches DRAM) against the step's PE cycles; the first
  load, the last store and the flush are exposed:
  `cycles = M_first + Σ_q count_q · max(C, M_q) + M_drain + M_flush`.

Line counts of a slice come from `tile._grid_line_bytes` (contiguous runs rounded to
whole lines). All arrays have one entry per candidate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from irflow.backends.sim.machine import Machine
from irflow.dialects import accel
from irflow.passes import tile as tl


@dataclass(frozen=True)
class Traffic:
    """Memory totals of whole nests, one entry per candidate."""

    cycles: np.ndarray  # float: layer + flush cycles (PE work overlapped with memory)
    dram_bytes: np.ndarray  # lines read (misses) + lines written back, × line
    accesses: np.ndarray  # cache line accesses
    misses: np.ndarray
    writebacks: np.ndarray  # incl. the final flush
    steps: np.ndarray


def _lines(acc: accel.Access, grid: Mapping[str, np.ndarray], itemsize: float,
           line: int, sets: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected cache lines of one slice (the executor's `slice_lines` counts a line once
    per slice). The trailing axes the slice covers whole merge into contiguous runs; a
    strided axis (a stride-2 conv's input) whose stride stays within a line spans
    `(count - 1) · stride + 1` rows of the run, otherwise it repeats the run. A run of
    R bytes starting on a multiple of `a` covers `(R + line - a) / line` lines on
    average; consecutive runs of the first repeating axis share a line when the gap
    between them is under a line.

    Also the cache sets the slice occupies (of `sets`): a run of r lines takes r
    consecutive sets; runs repeating at a pitch P take `sets · line / gcd(P, sets · line)`
    distinct positions at most (a column tile of a wide row-major matrix lands in a few
    sets), and the groups of the next axis out are assumed to spread."""
    counts = [np.asarray(c, np.float64) for c in tl._grid_counts(acc, grid)]
    one = np.ones(np.broadcast_shapes(*(c.shape for c in counts), (1,)))
    run, n = one.copy(), one.copy()
    is_open = np.ones(one.shape, bool)
    have_rep = np.zeros(one.shape, bool)
    first_rep, rep_pitch = one.copy(), one.copy()
    inner = 1
    for size, ax, c in reversed(list(zip(acc.view, acc.axes, counts))):
        s = abs(ax.stride) if ax.kind == "affine" else 1
        if s == 1 or inner * s * itemsize <= line:
            span = (c - 1) * s + 1
            new_rep = ~is_open & ~have_rep
            run = np.where(is_open, run * span, run)
        else:  # each element of the axis starts a new run
            new_rep = ~have_rep
        first_rep = np.where(new_rep, c, first_rep)
        rep_pitch = np.where(new_rep, float(inner * s), rep_pitch)
        have_rep |= new_rep
        n = np.where(is_open & ~new_rep, n, n * c)
        is_open = is_open & ~new_rep & (c == size) & (s == 1)
        inner *= size
    run_bytes = run * itemsize
    pitch_bytes = np.round(rep_pitch * itemsize).astype(np.int64)
    align = np.where(have_rep, np.gcd(np.gcd(pitch_bytes, line),
                                      np.maximum(np.round(run_bytes).astype(np.int64), 1)),
                     line).astype(np.float64)
    per_run = np.where(have_rep, (run_bytes + line - align) / line, np.ceil(run_bytes / line))
    gap = rep_pitch * itemsize - run_bytes
    share = np.where(have_rep & (first_rep > 1),
                     np.clip((line - gap - align) / line, 0.0, 1.0), 0.0)
    total = n * per_run - n / np.maximum(first_rep, 1) * (first_rep - 1) * share
    total = np.maximum(total, np.ceil(n * run_bytes / line - 1e-9))
    period = sets * line
    positions = np.minimum(first_rep, period / np.gcd(np.maximum(pitch_bytes, 1), period))
    spread = pitch_bytes < per_run * line  # runs overlap in sets: contiguous enough
    group = np.where(spread, total / np.maximum(n / first_rep, 1),
                     positions * np.ceil(per_run))
    used = np.where(have_rep, group * np.maximum(n / first_rep, 1), total)
    return total, np.clip(used, 1.0, sets), have_rep & (n > 1)


def traffic(space: accel.Space, itemsizes: Sequence[float], psum_itemsize: float,
            machine: Machine, sizes: np.ndarray, order: Sequence[str],
            pe_cycles: np.ndarray, vector_cycles: np.ndarray | None = None,
            memo: dict | None = None) -> Traffic:
    """The cold-cache memory model (module docstring) of `sizes[n, j]` (tile of
    `space.dims[j]`) in loop `order`; `pe_cycles[n]` the nest's PE cycles. `memo`: a
    dict shared by calls on the same candidates in other orders (line counts depend
    only on which loops are whole, not on their order)."""
    memo = {} if memo is None else memo
    line = machine.cache.line_bytes
    cap = machine.cache.size_bytes / line  # lines
    hbw, dbw = machine.cache.hit_bytes_per_cycle, machine.dram.bytes_per_cycle
    lat = machine.dram.latency_cycles
    n_sets, ways = machine.cache.geometry.sets, machine.cache.geometry.ways
    n = len(sizes)
    tile = {d: sizes[:, i].astype(np.float64) for i, d in enumerate(space.dims)}
    ext = {d: np.full(n, float(space.extents[d])) for d in space.dims}
    L = len(order)
    T = [np.ceil(ext[d] / tile[d]) for d in order]
    steps = np.prod(np.stack(T), axis=0) if L else np.ones(n)
    before = [np.prod(np.stack(T[:q]), axis=0) if q else np.ones(n) for q in range(L)]
    count = [before[q] * (T[q] - 1) for q in range(L)]  # steps where loop q stepped

    def grid_at(p: int) -> dict[str, np.ndarray]:
        """Tile extents over the body of loop p (loops inside p whole; p = -1: all)."""
        return {d: (ext[d] if i > p else tile[d]) for i, d in enumerate(order)}

    accesses = (*space.operands, space.result)
    # the result's partial sums: a reduction loop outside an output loop revisits tiles
    res = space.result
    dep_y = [i for i, d in enumerate(order) if d in res.dims]
    last_y = max(dep_y, default=-1)
    red_outside = [i for i, d in enumerate(order) if d not in res.dims and i < last_y]
    revisit = np.zeros(n, bool)
    for i in red_outside:
        revisit |= T[i] > 1
    def body_lines(k: int, p: int, itemsize: float) -> np.ndarray:
        key = (k, itemsize, frozenset(order[p + 1:]))
        got = memo.get(key)
        if got is None:
            got = memo[key] = _lines(accesses[k], grid_at(p), itemsize, line, n_sets)
        return got

    # lines over the body of each loop p (index p + 1; index 0: the whole nest)
    body_sets = [[body_lines(k, p, b) for p in range(-1, L)] for k, b in enumerate(itemsizes)]
    body_sets.append([body_lines(len(accesses) - 1, p, psum_itemsize) for p in range(-1, L)])
    body = [[ls[0] for ls in per] for per in body_sets]
    psum_body = body[-1]
    body = body[:-1]
    slice_lines = [body[k][L] for k in range(len(accesses))]
    psum_slice = psum_body[L]
    footprint = [sum(body[k][p + 1] for k in range(len(accesses)))
                 + np.where(revisit, psum_body[p + 1], 0.0) for p in range(-1, L)]
    # per tensor (the psum last) and loop p (index p + 1): the fraction of its lines in
    # cache sets the body of p overfills (LRU then misses them all on reuse)
    def overfilled(t: int, p: int) -> np.ndarray:
        key = ("over", t, frozenset(order[p + 1:]), revisit.tobytes())
        got = memo.get(key)
        if got is None:
            got = memo[key] = _overfilled(
                t, [(ls[p + 1][0] * (1.0 if k < len(accesses) else revisit), ls[p + 1][1],
                     ls[p + 1][2]) for k, ls in enumerate(body_sets)], n_sets, ways)
        return got

    thrash_of = [[overfilled(t, p) for p in range(-1, L)] for t in range(len(body_sets))]
    thrash = thrash_of[0]  # replaced per tensor below

    def reuse_miss(deps: frozenset[str], q: int, thrash: list[np.ndarray]) -> np.ndarray:
        """Of the class-q loads of a tensor depending on loop q: the probability the
        slice is new (compulsory) plus that its last use lies past a loop whose body
        does not fit (innermost such loop first)."""
        remaining = np.ones(n)
        miss = np.zeros(n)
        for p in range(q - 1, -1, -1):
            if order[p] in deps:
                continue
            miss += remaining * (T[p] - 1) / T[p] * thrash[p + 1]
            remaining = remaining / T[p]
        return miss + remaining

    def moves(deps: frozenset[str], q: int) -> np.ndarray:
        """The slice changes at a class-q step: q or a stepping loop inside it."""
        out = np.full(n, order[q] in deps)
        for i in range(q + 1, L):
            if order[i] in deps:
                out |= T[i] > 1
        return out

    ph_hit = [np.zeros(n) for _ in range(L)]
    ph_miss = [np.zeros(n) for _ in range(L)]
    first_miss = np.zeros(n)
    loads_total = np.zeros(n)
    miss_total = np.zeros(n)
    for k, a in enumerate(space.operands):
        deps = a.dims
        thrash = thrash_of[k]
        distinct = np.ones(n)
        for i, d in enumerate(order):
            if d in deps:
                distinct = distinct * T[i]
        whole = body[k][0]
        # new lines per compulsory (or far-reuse) load: halos and shared partial lines
        # of the neighbour slice just loaded hit
        fresh = np.minimum(slice_lines[k], np.where(
            distinct > 1, (whole - slice_lines[k]) / np.maximum(distinct - 1, 1),
            slice_lines[k]))
        first_miss += slice_lines[k]
        loads_total += slice_lines[k]
        miss_total += slice_lines[k]
        for q in range(L):
            mv = moves(deps, q)
            if order[q] in deps:
                m = fresh * reuse_miss(deps, q, thrash)
            else:
                m = slice_lines[k] * thrash[q + 1]
            m = np.where(mv, m, 0.0)
            ph_hit[q] += np.where(mv, slice_lines[k], 0.0) - m
            ph_miss[q] += m
            loads_total += count[q] * np.where(mv, slice_lines[k], 0.0)
            miss_total += count[q] * m
    # the result: O tiles stored once each (write-allocate: the first store of a line
    # misses); V visits, V - O of them revisits (psum reloaded, then stored again)
    out_whole = body[-1][0]
    psum_whole = psum_body[0]
    tiles_o = np.ones(n)
    for i in dep_y:
        tiles_o = tiles_o * T[i]
    visits = np.ones(n)
    store_hit = [np.zeros(n) for _ in range(L)]
    store_miss = [np.zeros(n) for _ in range(L)]
    psum_reload_miss = np.zeros(n)
    psum_acc = np.zeros(n)
    out_fresh = np.minimum(slice_lines[-1], out_whole / tiles_o)
    for q in range(L):
        mv = moves(res.dims, q)
        visits += count[q] * mv
    frac_final = tiles_o / visits  # of the stores, the final ones
    psum_first = np.where(revisit, psum_whole, 0.0)  # the first psum store allocates
    thrash = thrash_of[-1]
    for q in range(L):
        mv = moves(res.dims, q)
        # a store per output-tile change; a revisit also reloads its partial sums
        comp = _compulsory(order, res.dims, T, q, n)
        if order[q] in res.dims:  # a revisit iff an outer reduction loop has stepped
            reload_p = np.where(revisit, 1 - comp, 0.0)
            rl_miss_p = np.where(revisit, reuse_miss(res.dims, q, thrash) - comp, 0.0)
        else:  # the reduction loop q stepped: the tiles inside are revisited
            reload_p = np.where(revisit, 1.0, 0.0)
            rl_miss_p = np.where(revisit, thrash[q + 1], 0.0)
        st_lines = frac_final * slice_lines[-1] + (1 - frac_final) * psum_slice
        st_miss = frac_final * out_fresh + np.where(
            revisit, psum_whole / np.maximum(tiles_o, 1) * (1 - reload_p) * (1 - frac_final),
            0.0)
        rl_miss = psum_slice * rl_miss_p
        rl_lines = psum_slice * reload_p
        store_hit[q] = np.where(mv, st_lines + rl_lines - st_miss - rl_miss, 0.0)
        store_miss[q] = np.where(mv, st_miss + rl_miss, 0.0)
        psum_reload_miss += count[q] * np.where(mv, rl_miss, 0.0)
        psum_acc += count[q] * np.where(mv, st_lines + rl_lines, 0.0)
    last_store = slice_lines[-1]
    psum_acc += last_store
    # totals: reads = misses (operands, result allocations, psum reloads)
    reads = miss_total + out_whole + psum_first + psum_reload_miss
    # the innermost revisiting loop decides whether a tile's last reload hit (its
    # partial sums stay dirty until evicted or flushed) or missed (written back before)
    last_rl_thrash = np.zeros(n)
    for i in reversed(red_outside):
        last_rl_thrash = np.where(T[i] > 1, thrash[i + 1], last_rl_thrash)
        break
    kept = np.where(revisit, psum_whole * (1 - last_rl_thrash), 0.0)
    writes = out_whole + psum_reload_miss + kept
    dram_lines = reads + writes
    # what is still dirty at the end: the written lines among the last cache-full
    # the final stores all fall in the last trip of the outermost reduction loop that
    # revisits tiles (else they spread over the whole nest): of what that stretch
    # touches, the last cache-full stays
    window = footprint[0].copy()
    for i in reversed(red_outside):
        window = np.where(T[i] > 1, footprint[i + 1], window)
    dirty = (out_whole + kept) * np.minimum(1.0, cap / np.maximum(window, 1.0))
    wb_in = writes - dirty
    # write-backs during the layer ride on its misses
    wb_rate = wb_in / np.maximum(reads, 1.0)
    compute = pe_cycles.astype(np.float64)
    if vector_cycles is not None:
        compute = np.maximum(compute, vector_cycles)
    per_step = compute / np.maximum(steps, 1)

    def phase(hit: np.ndarray, miss: np.ndarray, latency: bool = True) -> np.ndarray:
        """A memory phase; those overlapping compute issue while the previous phase's
        data still arrives, so their DRAM latency is hidden (cost.py)."""
        d = miss * (1 + wb_rate)
        t = np.ceil(hit * line / hbw + d * line / dbw - 1e-9)
        return t + lat * np.minimum(d, 1.0) if latency else t

    cycles = phase(np.zeros(n), first_miss)
    for q in range(L):
        cycles += count[q] * np.maximum(per_step, phase(ph_hit[q] + store_hit[q],
                                                        ph_miss[q] + store_miss[q], False))
    # the first step's compute overlaps the next phase; the last store drains
    cycles += per_step + phase(last_store - np.minimum(out_fresh, last_store),
                               np.minimum(out_fresh, last_store))
    flush = np.where(dirty > 0, np.ceil(dirty * line / dbw - 1e-9) + lat, 0.0)
    cycles += flush
    accesses_total = loads_total + psum_acc
    return Traffic(cycles, dram_lines * line, accesses_total, reads, writes, steps)


def _overfilled(t: int, tensors: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
                sets: int, ways: int) -> np.ndarray:
    """The fraction of tensor t's lines in sets holding more than `ways` lines, for
    tensors given as (lines, sets used, scattered): each spreads its lines over its
    sets — evenly when it is one contiguous run; many runs at scattered offsets add a
    spread (variance `DISPERSION` × mean) — and the tensors' sets are placed
    independently (every overlap pattern weighted by its probability)."""
    n = max(np.size(x) for tensor in tensors for x in tensor)
    full = [tuple(np.broadcast_to(x, (n,)) for x in tensor) for tensor in tensors]
    # every tensor in one set at once bounds the load: where even that (plus the spread)
    # stays under `ways`, nothing overflows
    bound = sum(lines / used for lines, used, _ in full)
    need = np.flatnonzero(bound + 6 * np.sqrt(DISPERSION * bound) >= ways)
    out = np.zeros(n)
    if need.size:
        out[need] = _overfilled_at(t, [tuple(x[need] for x in tensor) for tensor in full],
                                   sets, ways)
    return out


def _overfilled_at(t: int, tensors: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
                   sets: int, ways: int) -> np.ndarray:
    lines_t, used_t, scat_t = tensors[t]
    load_t = lines_t / used_t
    var_t = np.where(scat_t, load_t, 0.0)
    others = []
    for k, (lines, used, scat) in enumerate(tensors):
        if k == t or not np.any(lines > 0):
            continue
        if np.all(used >= sets):  # spread over every set: always there
            load_t = load_t + lines / sets
            var_t = var_t + np.where(scat, lines / sets, 0.0)
        else:
            others.append((lines / used, used / sets, np.where(scat, lines / used, 0.0)))
    out = np.zeros_like(load_t)
    for pick in range(1 << len(others)):
        load = load_t.copy()
        var = var_t.copy()
        prob = np.ones_like(load_t)
        for j, (lo, share, v) in enumerate(others):
            if pick >> j & 1:
                load = load + lo
                var = var + v
                prob = prob * share
            else:
                prob = prob * (1 - share)
        out += prob * _excess(load, DISPERSION * var, ways)
    return out


DISPERSION = 0.3
"""Variance per line of mean set load for a tensor made of many runs at scattered
offsets (1 would be Poisson; the runs' offsets are an arithmetic progression, less
dispersed than random)."""


_U = np.linspace(-8.0, 8.0, 4097)
_G = (np.exp(-0.5 * _U ** 2) / np.sqrt(2 * np.pi)
      - _U * 0.5 * (1 - np.vectorize(math.erf)(_U / np.sqrt(2))))
"""E[(Z - u)+] of a standard normal Z on a grid of u (interpolated by `_excess`)."""


def _excess(mean: np.ndarray, var: np.ndarray, ways: int) -> np.ndarray:
    """E[clip(X - ways, 0, 1)] for a set load X of this mean and variance (a normal
    approximation where the spread matters; variance 0: the even split,
    clip(mean - ways, 0, 1))."""
    out = np.clip(mean - ways, 0.0, 1.0)
    sd = np.sqrt(np.maximum(var, 0.0))
    band = np.flatnonzero((sd > 1e-6) & (mean > ways - 6 * sd) & (mean < ways + 1 + 6 * sd))
    if band.size:
        m, d = mean.ravel()[band], sd.ravel()[band]

        def above(a: float) -> np.ndarray:  # E[(X - a)+] = sd · E[(Z - (a - m)/sd)+]
            u = (a - m) / d
            return d * np.interp(u, _U, _G, left=0.0, right=0.0) + np.where(
                u < _U[0], m - a, 0.0)

        flat = out.ravel().copy()
        flat[band] = np.clip(above(ways) - above(ways + 1), 0.0, 1.0)
        out = flat.reshape(out.shape)
    return out


def _compulsory(order: Sequence[str], deps: frozenset[str], T: list[np.ndarray], q: int,
                n: int) -> np.ndarray:
    """Probability a class-q step's tile of a tensor depending on `deps` is new: every
    loop outside q it does not depend on is at its first trip."""
    p = np.ones(n)
    for i in range(q):
        if order[i] not in deps:
            p = p / T[i]
    return p


__all__ = ["Traffic", "traffic"]
