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
from irflow.passes import set_loads
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
           line: int, sets: int = 1, ext: Mapping[str, np.ndarray] | None = None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected cache lines of one slice (the executor's `slice_lines` counts a line once
    per slice). The trailing axes the slice covers whole merge into contiguous runs; a
    strided axis (a stride-2 conv's input) whose stride stays within a line spans
    `(count - 1) · stride + 1` rows of the run, otherwise it repeats the run. A run of
    R bytes starting at a multiple of `a` (uniformly; `a` divides the line) covers
    `E[ceil((o + R) / line)]` lines; `a` is the alignment every slice position shares:
    the tensor starts on a line, each axis outside the run moves the start by its pitch,
    the run's own partial axis by a whole tile (`ext`, the loops' extents: an axis the
    grid covers whole does not move). Consecutive runs of the first repeating axis share
    a line when the gap between them is under a line.

    Also the cache sets the slice occupies (of `sets`), level by level outwards: c
    copies of a footprint of U sets spanning W lines at a pitch P land on
    `min(c, sets · line / gcd(P, sets · line))` positions, a distance D = min(P,
    period / positions) apart; copies that do not overlap (W · line ≤ D) multiply U,
    overlapping ones cover at most the span `(positions - 1) · D + W` (a column tile of
    a wide row-major matrix, or rows of channels at a pitch that aliases the set index,
    land in few sets)."""
    counts = [np.asarray(c, np.float64) for c in tl._grid_counts(acc, grid)]
    one = np.ones(np.broadcast_shapes(*(c.shape for c in counts), (1,)))
    run, n = one.copy(), one.copy()
    is_open = np.ones(one.shape, bool)
    have_rep = np.zeros(one.shape, bool)
    first_rep, rep_pitch = one.copy(), one.copy()
    align = np.full(one.shape, line, np.int64)
    levels: list[tuple[np.ndarray, int]] = []  # (copies, pitch bytes) outside the run
    inner = 1
    for size, ax, c in reversed(list(zip(acc.view, acc.axes, counts))):
        s = abs(ax.stride) if ax.kind == "affine" else 1
        pitch = inner * s * itemsize
        in_run = is_open if (s == 1 or pitch <= line) else np.zeros(one.shape, bool)
        new_rep = ~in_run & ~have_rep
        run = np.where(in_run, run * ((c - 1) * s + 1), run)
        if size > 1:  # where a slice of this axis can start (bytes; 0: never moves)
            if ext is not None and ax.kind in ("dim", "affine", "window"):
                step = grid[ax.dim] * (ax.stride if ax.kind != "dim" else 1)
                moves = np.broadcast_to(grid[ax.dim] < ext[ax.dim], one.shape)
                shift = np.gcd(np.round(step * inner * itemsize).astype(np.int64),
                               int(round(abs(ax.offset) * inner * itemsize)))
                align = np.where(moves & in_run, np.gcd(align, shift), align)
            if float(pitch).is_integer():
                align = np.where(in_run, align, np.gcd(align, int(pitch)))
        levels.append((np.where(in_run, 1.0, c), pitch))
        first_rep = np.where(new_rep, c, first_rep)
        rep_pitch = np.where(new_rep, float(inner * s), rep_pitch)
        have_rep |= new_rep
        n = np.where(in_run, n, n * c)
        is_open = in_run & (c == size) & (s == 1)
        inner *= size
    run_bytes = np.ceil(run * itemsize - 1e-9)
    align = np.maximum(align, 1).astype(np.float64)
    k = line / align  # start positions within a line
    q, r = np.floor(run_bytes / line), np.mod(run_bytes, line)
    per_run = np.where(r > 0, q + 1 + np.maximum(k - np.floor((line - r) / align) - 1, 0.0) / k,
                       q + (k - 1) / k)
    gap = rep_pitch * itemsize - run_bytes
    share = np.where(have_rep & (first_rep > 1),
                     np.clip((line - gap - align) / line, 0.0, 1.0), 0.0)
    total = n * per_run - n / np.maximum(first_rep, 1) * (first_rep - 1) * share
    total = np.maximum(total, np.ceil(n * run_bytes / line - 1e-9))
    period = sets * line
    used, width = per_run.copy(), per_run.copy()
    scattered = np.zeros(one.shape, bool)
    for copies, pitch in levels:
        g = math.gcd(int(round(pitch)), period) if float(pitch).is_integer() else 1
        pos = np.minimum(copies, period / g)
        dist = np.minimum(pitch, period / np.maximum(pos, 1)) / line
        span = (pos - 1) * dist + width
        apart = width <= dist
        used = np.where(apart, used * pos, np.minimum(used * pos, span))
        # copies that wrap around the sets onto some of the possible positions, wider
        # than the distance between two of those, load the sets unevenly
        scattered |= ((copies * pitch > period) & (pos < period / g)
                      & (width * line > g))
        width = span
    return total, np.clip(np.minimum(used, total), 1.0, sets), scattered


def prefill(space: accel.Space, itemsizes: Sequence[float], psum_itemsize: float,
            machine: Machine, sizes: np.ndarray, orders: Sequence[Sequence[str]],
            memo: dict) -> None:
    """Fill `traffic`'s `memo` with the line counts of every loop body (and of two
    consecutive iterations of each loop) of all `orders` at once: one `_lines` call per
    tensor and item size over the bodies' grids stacked, not one per body (`_lines` is
    elementwise over candidates: the same numbers, far fewer numpy calls)."""
    line, n_sets = machine.cache.line_bytes, machine.cache.geometry.sets
    n = len(sizes)
    tile = {d: sizes[:, i].astype(np.float64) for i, d in enumerate(space.dims)}
    ext = {d: np.full(n, float(space.extents[d])) for d in space.dims}
    if any(set(order) != set(space.dims) for order in orders):
        return  # `traffic` fills its memo itself
    accesses = (*space.operands, space.result)
    jobs = [*enumerate(itemsizes), (len(accesses) - 1, psum_itemsize)]
    for k, b in dict.fromkeys(jobs):
        keys: list[tuple] = []
        grids: list[dict[str, np.ndarray]] = []
        for order in orders:
            for p in range(-1, len(order)):
                body = frozenset(order[p + 1:])
                grid = {d: (ext[d] if i > p else tile[d]) for i, d in enumerate(order)}
                todo = [((k, b, body), grid)]
                if p >= 0 and order[p] in accesses[k].dims:
                    d = order[p]
                    todo.append(((k, b, "pair", body, d),
                                 {**grid, d: np.minimum(2 * tile[d], ext[d])}))
                for key, g in todo:
                    if key not in memo:
                        memo[key] = None  # placeholder until filled below
                        keys.append(key)
                        grids.append(g)
        if not keys:
            continue
        m = len(grids)
        got = _lines(accesses[k], {d: np.concatenate([g[d] for g in grids])
                                   for d in space.dims}, b, line, n_sets,
                     {d: np.tile(e, m) for d, e in ext.items()})
        got = tuple(np.broadcast_to(x, (m * n,)) for x in got)
        for i, key in enumerate(keys):
            part = tuple(x[i * n:(i + 1) * n] for x in got)
            memo[key] = part[0] if "pair" in key else part


def traffic(space: accel.Space, itemsizes: Sequence[float], psum_itemsize: float,
            machine: Machine, sizes: np.ndarray, order: Sequence[str],
            pe_cycles: np.ndarray, vector_cycles: np.ndarray | None = None,
            memo: dict | None = None, first_cycles: np.ndarray | None = None,
            exact_sets: bool = False) -> Traffic:
    """The cold-cache memory model (module docstring) of `sizes[n, j]` (tile of
    `space.dims[j]`) in loop `order`; `pe_cycles[n]` the nest's PE cycles. `memo`: a
    dict shared by calls on the same candidates in other orders (line counts depend
    only on which loops are whole, not on their order). `exact_sets`: each tensor's
    lines per cache set from its tiles' actual lines (`set_loads`, a Python loop over
    the candidates: for a few, e.g. the chosen one), not the statistical spread."""
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
    # ... when both step: an output loop of one trip inside it (n = 1) changes no tile
    spills = {i: (T[i] > 1) & np.any([T[j] > 1 for j in dep_y if j > i], axis=0)
              for i in red_outside}
    revisit = np.zeros(n, bool)
    for i in red_outside:
        revisit |= spills[i]
    def body_lines(k: int, p: int, itemsize: float) -> np.ndarray:
        key = (k, itemsize, frozenset(order[p + 1:]))
        got = memo.get(key)
        if got is None:
            got = memo[key] = _lines(accesses[k], grid_at(p), itemsize, line, n_sets, ext)
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
    deps_of = [a.dims for a in accesses] + [res.dims]

    def reuse_window(k: int, p: int) -> np.ndarray:
        """How many bodies' worth of tensor k's lines the reuse window of loop p holds
        (from a line's use in one iteration of p to its use in the next): 1 if k does
        not depend on p (the same lines both times); else the lines of iteration i used
        after that point plus those of iteration i + 1 used before it, 2 - 1/R on
        average when k's slice is re-touched R times in the body (a loop k does not
        depend on steps outside one it does)."""
        if p < 0 or order[p] not in deps_of[k]:
            return np.ones(n)
        inner = [i for i in range(p + 1, L) if order[i] in deps_of[k]]
        r = np.ones(n)
        for i in range(p + 1, max(inner, default=p)):
            if order[i] not in deps_of[k]:
                r = r * T[i]
        return 2 - 1 / r

    def overfilled(p: int) -> list[np.ndarray]:
        key = ("over", tuple(order[max(p, 0):]) if p >= 0 else (), revisit.tobytes())
        got = memo.get(key)
        if got is None and exact_sets:
            got = memo[key] = _overfilled_exact(p)
        if got is None:
            tensors = []
            for k, ls in enumerate(body_sets):
                f = reuse_window(k, p)
                present = 1.0 if k < len(accesses) else revisit
                tensors.append((ls[p + 1][0] * f * present,
                                np.minimum(ls[p + 1][1] * f, n_sets), ls[p + 1][2]))
            got = memo[key] = _overfilled(tensors, n_sets, ways)
        return got

    def _overfilled_exact(p: int) -> list[np.ndarray]:
        """`overfilled` from each tensor's exact lines per set (`set_loads`): its lines
        over the body of p, and where its reuse window holds f = 2 - 1/R bodies, those of
        two consecutive iterations of p with weight f - 1."""
        tensors = [(a, b) for a, b in zip(accesses, itemsizes)] + [(res, psum_itemsize)]
        windows = [reuse_window(k, p) for k in range(len(tensors))]
        out = [np.zeros(n) for _ in tensors]
        ints = {d: sizes[:, i].astype(np.int64) for i, d in enumerate(space.dims)}
        for c in range(n):
            grid = {d: (space.extents[d] if i > p else int(ints[d][c]))
                    for i, d in enumerate(order)}
            two = dict(grid)
            if p >= 0:
                d = order[p]
                two[d] = min(2 * grid[d], space.extents[d])
            mixes = []
            for k, (acc, b) in enumerate(tensors):
                if k == len(accesses) and not revisit[c]:
                    mixes.append([(1.0, np.zeros(n_sets, np.int64))])
                    continue
                one = set_loads.set_counts(
                    set_loads.tile_lines(acc, grid, space.extents, b, line), n_sets)
                f = float(windows[k][c])
                if p >= 0 and order[p] in deps_of[k]:
                    win = set_loads.window_loads(
                        acc, order, p, {d: int(ints[d][c]) for d in order},
                        space.extents, b, line, n_sets)
                    if win is not None:
                        mixes.append(win)
                        continue
                mix = [(2.0 - f, one)]
                if f > 1.0 and two != grid:
                    mix.append((f - 1.0, set_loads.set_counts(
                        set_loads.tile_lines(acc, two, space.extents, b, line), n_sets)))
                else:
                    mix = [(1.0, one)]
                mixes.append(mix)
            for k, v in enumerate(set_loads.overfilled(mixes, ways)):
                out[k][c] = v
        return out

    by_body = [overfilled(p) for p in range(-1, L)]
    thrash_of = [[by_body[p + 1][t] for p in range(-1, L)] for t in range(len(body_sets))]
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

    def remissed(k: int, itemsize: float, thrash: list[np.ndarray]) -> list[np.ndarray]:
        """Per class q, the lines a load of tensor k misses again (beyond its share of
        the compulsory ones): lines it shares with a slice of the previous iteration of
        a loop p it depends on (a halo, a partial line where two tiles' runs meet) hit
        only while the body of p fits. The S_p lines two consecutive iterations of p
        share (2 · lines(p's body) − lines(two of them)) spread over the loads of the
        later iteration: its class-p load and, of the inner classes, the (T_p − 1)/T_p
        that fall in a later iteration."""
        deps = deps_of[k]
        extra = [np.zeros(n) for _ in range(L)]
        consecutive = np.zeros(n)
        for p in range(L):
            d = order[p]
            if d not in deps or not np.any(T[p] > 1):
                continue
            key = (k, itemsize, "pair", frozenset(order[p + 1:]), d)
            two = memo.get(key)
            if two is None:
                grid = {**grid_at(p), d: np.minimum(2 * tile[d], ext[d])}
                two = memo[key] = _lines(accesses[k], grid, itemsize, line, n_sets, ext)[0]
            shared = np.where(T[p] > 1, np.maximum(2 * body_lines(k, p, itemsize)[0] - two,
                                                   0.0), 0.0)
            loads = np.ones(n)  # the loads of one iteration of p (distinct slices)
            for i in range(p + 1, L):
                if order[i] in deps:
                    loads = loads * T[i]
            per = shared * thrash[p + 1] / loads
            consecutive = consecutive + count[p] * shared
            for q in range(p, L):
                if order[q] in deps:
                    extra[q] = extra[q] + per * (1.0 if q == p else (T[p] - 1) / T[p])
        # the rest of the shared lines wrap around: the last tile of one row (channel)
        # and the first of the next meet on a line, reused across the whole range of
        # the outermost loop that steps (the body of the loop outside it)
        distinct, wrap = np.ones(n), np.zeros(n)
        for i in range(L):
            if order[i] in deps:
                distinct = distinct * T[i]
        for i in reversed(range(L)):
            if order[i] in deps:
                wrap = np.where(T[i] > 1, thrash[i], wrap)
        whole = body_lines(k, -1, itemsize)[0]
        one = body_lines(k, L - 1, itemsize)[0]
        rest = np.maximum(distinct * one - whole - consecutive, 0.0)
        per = rest * wrap / np.maximum(distinct - 1, 1)
        for q in range(L):
            if order[q] in deps:
                extra[q] = extra[q] + per
        return extra

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
        again = remissed(k, itemsizes[k], thrash)
        first_miss += slice_lines[k]
        loads_total += slice_lines[k]
        miss_total += slice_lines[k]
        for q in range(L):
            mv = moves(deps, q)
            if order[q] in deps:
                m = np.minimum(slice_lines[k], fresh + again[q]) * reuse_miss(deps, q, thrash)
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
    # per class, the result's lines (hit, miss) at a step that visits its output tile for
    # the first time (partial sums stored, nothing reloaded; the final store without a
    # revisit) and at a revisit (partial sums reloaded, then stored or the output
    # stored), and the share of first visits: their memory phases differ, and a class's
    # cycles are the steps' max(compute, phase), not that of an average phase
    first_st = [(np.zeros(n), np.zeros(n)) for _ in range(L)]
    again_st = [(np.zeros(n), np.zeros(n)) for _ in range(L)]
    first_share = [np.ones(n) for _ in range(L)]
    psum_reload_miss = np.zeros(n)
    psum_acc = np.zeros(n)
    out_fresh = np.minimum(slice_lines[-1], out_whole / tiles_o)
    for q in range(L):
        mv = moves(res.dims, q)
        visits += count[q] * mv
    frac_final = tiles_o / visits  # of the stores, the final ones
    psum_first = np.where(revisit, psum_whole, 0.0)  # the first psum store allocates
    thrash = thrash_of[-1]
    r = len(accesses) - 1
    out_again = remissed(r, itemsizes[-1], thrash_of[r])  # a final store's lines
    psum_again = remissed(r, psum_itemsize, thrash)  # a reload's
    psum_fresh = np.minimum(psum_slice, psum_whole / np.maximum(tiles_o, 1))
    store_again = np.zeros(n)  # final stores whose line was written back since the last
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
        # a store or reload of an output tile shares lines with the neighbour tile just
        # before it (which hits) unless the reduction loop q stepped (the first tile)
        out_new = out_fresh
        rl_new = psum_slice
        if order[q] in res.dims:
            out_new = np.minimum(slice_lines[-1], out_fresh + out_again[q])
            rl_new = np.minimum(psum_slice, psum_fresh + psum_again[q])
        st_miss = frac_final * out_new + np.where(
            revisit, psum_whole / np.maximum(tiles_o, 1) * (1 - reload_p) * (1 - frac_final),
            0.0)
        store_again += count[q] * np.where(mv, frac_final * (out_new - out_fresh), 0.0)
        rl_miss = rl_new * rl_miss_p
        rl_lines = psum_slice * reload_p
        share = np.where(revisit, 1 - reload_p, 1.0)
        to_final = np.clip(frac_final / np.maximum(1 - share, 1e-12), 0.0, 1.0)
        f_lines = np.where(revisit, psum_slice, st_lines)
        f_miss = np.where(revisit, psum_whole / np.maximum(tiles_o, 1), st_miss)
        r_lines = to_final * slice_lines[-1] + (1 - to_final) * psum_slice + psum_slice
        r_miss = to_final * out_new + rl_new * np.clip(
            rl_miss_p / np.maximum(1 - share, 1e-12), 0.0, 1.0)
        first_st[q] = (np.where(mv, f_lines - f_miss, 0.0), np.where(mv, f_miss, 0.0))
        again_st[q] = (np.where(mv, r_lines - r_miss, 0.0), np.where(mv, r_miss, 0.0))
        first_share[q] = share
        psum_reload_miss += count[q] * np.where(mv, rl_miss, 0.0)
        psum_acc += count[q] * np.where(mv, st_lines + rl_lines, 0.0)
    last_store = slice_lines[-1]
    psum_acc += last_store
    # totals: reads = misses (operands, result allocations, psum reloads)
    reads = miss_total + out_whole + store_again + psum_first + psum_reload_miss
    # the innermost revisiting loop decides whether a tile's last reload hit (its
    # partial sums stay dirty until evicted or flushed) or missed (written back before)
    last_rl_thrash = np.zeros(n)
    for i in reversed(red_outside):
        last_rl_thrash = np.where(spills[i], thrash[i + 1], last_rl_thrash)
        break
    kept = np.where(revisit, psum_whole * (1 - last_rl_thrash), 0.0)
    writes = out_whole + store_again + psum_reload_miss + kept
    dram_lines = reads + writes
    # what is still dirty at the end: the written lines among the last cache-full
    # the final stores all fall in the last trip of the outermost reduction loop that
    # revisits tiles (else they spread over the whole nest): of what that stretch
    # touches, the last cache-full stays
    window = footprint[0].copy()
    for i in reversed(red_outside):
        window = np.where(spills[i], footprint[i + 1], window)
    dirty = (out_whole + kept) * np.minimum(1.0, cap / np.maximum(window, 1.0))
    wb_in = writes - dirty
    # write-backs during the layer ride on its misses
    wb_rate = wb_in / np.maximum(reads, 1.0)
    compute = pe_cycles.astype(np.float64)
    if vector_cycles is not None:
        compute = np.maximum(compute, vector_cycles)
    # only the first step pays the first fold's load and the array's skew (mapping.py):
    # it overlaps the second step's loads, every later step one class's average phase
    first = compute / np.maximum(steps, 1) if first_cycles is None else np.minimum(
        np.asarray(first_cycles, np.float64), compute)
    later = np.where(steps > 1, (compute - first) / np.maximum(steps - 1, 1), 0.0)

    def phase(hit: np.ndarray, miss: np.ndarray, latency: bool = True) -> np.ndarray:
        """A memory phase; those overlapping compute issue while the previous phase's
        data still arrives, so their DRAM latency is hidden (cost.py)."""
        d = miss * (1 + wb_rate)
        t = np.ceil(hit * line / hbw + d * line / dbw - 1e-9)
        return t + lat * np.minimum(d, 1.0) if latency else t

    cycles = phase(np.zeros(n), first_miss)
    second = np.zeros(n)  # the phase of the second step: its loop is the innermost that steps
    for q in range(L):
        m_f = phase(ph_hit[q] + first_st[q][0], ph_miss[q] + first_st[q][1], False)
        m_r = phase(ph_hit[q] + again_st[q][0], ph_miss[q] + again_st[q][1], False)
        a = first_share[q]
        cycles += count[q] * (a * np.maximum(later, m_f) + (1 - a) * np.maximum(later, m_r))
        second = np.where(T[q] > 1, np.where(a > 0, m_f, m_r), second)
    cycles += np.maximum(first, second) - np.where(steps > 1, np.maximum(later, second), 0.0)
    # the last step computes alone; then its store drains: the lines no earlier store
    # touched miss: along the innermost output loop d that steps, the lines of the
    # whole axis less those of its first T_d - 1 tiles (both from the axis' start)
    last_fresh = np.minimum(out_fresh, last_store)
    d_last = np.full(n, -1)
    for i in dep_y:
        d_last = np.where(T[i] > 1, i, d_last)
    for i in dep_y:
        sel = (d_last == i) & ~revisit
        if sel.any():
            d = order[i]
            grid = grid_at(L - 1)
            whole = _lines(res, {**grid, d: ext[d]}, itemsizes[-1], line)[0]
            before = _lines(res, {**grid, d: (T[i] - 1) * tile[d]}, itemsizes[-1], line)[0]
            last_fresh = np.where(sel, np.clip(whole - before, 0.0, last_store), last_fresh)
    cycles += later + phase(last_store - last_fresh, last_fresh)
    flush = np.where(dirty > 0, np.ceil(dirty * line / dbw - 1e-9) + lat, 0.0)
    cycles += flush
    accesses_total = loads_total + psum_acc
    return Traffic(cycles, dram_lines * line, accesses_total, reads, writes, steps)


def _overfilled(tensors: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
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


DISPERSION = 0.3
_HASH = np.random.default_rng(0).random(64) + 1.0
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
