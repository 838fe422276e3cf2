"""The halving rule of `tile`: an analytic cost of a tiling and the choice it makes.

`choose_tiling` scores every combination of candidate tile sizes (`candidate_sizes`:
each loop's extent halved down to 1) at once with numpy broadcasting: the estimated
bytes a loop order streams between DRAM/cache and the stream buffers (`_grid_traffic`,
slices at cache-line granularity) plus a per-step overhead, among the tilings whose
double-buffered working set fits the cache. It is `search=none`'s tiling and the
mapping search's incumbent (passes/tile_search.py); the `_grid_*` slice counts also
serve the search's models (passes/layer_traffic.py). The `tile` pass (passes/tile.py)
decides which loops the user fixed and annotates the ops.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import TensorType

from irflow.dialects import accel

STEP_OVERHEAD_BYTES = 4096
"""Per-step cost in the default rule, in equivalent DRAM bytes: pipeline fill/drain
and DRAM latency (~128 cycles at 32 B/cycle). It keeps tiles from getting tiny."""

# Loop orders tried by the default rule, per kind of space (outermost first).
PE_ORDERS: dict[tuple[str, ...], tuple[tuple[str, ...], ...]] = {
    ("n", "g", "f", "oh", "ow", "c"): (
        ("n", "g", "f", "oh", "ow", "c"),  # output-stationary, weights reused across rows
        ("n", "g", "oh", "ow", "f", "c"),  # input rows reused across output channels
        ("g", "f", "c", "n", "oh", "ow"),  # weight-stationary (partial sums revisited)
        ("n", "g", "oh", "f", "ow", "c"),
    ),
    ("b", "m", "n", "k"): (
        ("b", "m", "n", "k"),
        ("b", "n", "m", "k"),
        ("b", "n", "k", "m"),  # weight-stationary
        ("b", "m", "k", "n"),
    ),
    ("b", "m", "n", "kb"): (  # irq.block_linear: K in groups
        ("b", "m", "n", "kb"),
        ("b", "n", "m", "kb"),
        ("b", "n", "kb", "m"),
    ),
}


def elem_bytes(type_: object) -> float:
    """Bytes per element in DRAM (int4: 0.5, packed two per byte)."""
    assert isinstance(type_, TensorType)
    return accel.element_bits(type_.element_type) / 8


@dataclass(frozen=True)
class Tiling:
    order: tuple[str, ...]
    sizes: dict[str, int]
    working_set: int  # bytes of one step's slices (not double-buffered)
    traffic: float  # estimated bytes moved between DRAM/cache and the stream buffers
    warning: str | None = None

    def nest(self, space: accel.Space) -> accel.NestAttr:
        return accel.NestAttr(self.order, [space.extents[d] for d in self.order],
                              [self.sizes[d] for d in self.order])


def working_set(space: accel.Space, sizes: Mapping[str, int], itemsizes: Sequence[int]) -> int:
    """Bytes of one full step's operand slices and result slice."""
    accesses = (*space.operands, space.result)
    return sum(a.tile_elems(sizes) * b for a, b in zip(accesses, itemsizes))


def traffic(space: accel.Space, sizes: Mapping[str, int], order: Sequence[str],
            itemsizes: Sequence[int], cache_bytes: int, line_bytes: int = 64) -> float:
    """Estimated bytes streamed by one tiling (see `_grid_traffic`)."""
    return choose_tiling(space, itemsizes, cache_bytes, sizes, order, line_bytes).traffic


def candidate_sizes(extent: int, dim: str) -> list[int]:
    """Tile sizes the default rule tries for one loop: extent/1, /2, /4, ... (rounded
    up to whole PE-array rows of 16 for channel-like loops), down to 1."""
    out = []
    div = 1
    while True:
        size = -(-extent // div)
        if dim in PE_ROUNDED and size > 16:
            size = -(-size // 16) * 16
        if size not in out:
            out.append(min(size, extent))
        if size <= 1:
            break
        div *= 2
    return out


PE_ROUNDED = frozenset({"f", "c", "m", "n", "k"})


def choose_tiling(space: accel.Space, itemsizes: Sequence[int], cache_bytes: int,
                  fixed: Mapping[str, int] | None = None,
                  order: Sequence[str] | None = None, line_bytes: int = 64) -> Tiling:
    """The default rule (module docstring) with some loops `fixed` and/or the `order` given.

    Scores every combination of candidate sizes (`candidate_sizes`) at once with numpy
    broadcasting: cost = estimated traffic of the cheapest loop order + a per-step
    overhead, among the combinations whose double-buffered working set fits the cache.
    """
    fixed = {d: min(max(1, s), space.extents[d]) for d, s in (fixed or {}).items()}
    dims = space.dims
    if not dims:
        ws = working_set(space, {}, itemsizes)
        return Tiling((), {}, ws, float(ws), _warning(ws, cache_bytes))
    if order is not None:
        orders: tuple[tuple[str, ...], ...] = (tuple(order),)
    else:
        orders = PE_ORDERS.get(dims, (dims,)) if space.unit == "pe" else (dims,)
    cands = [np.array([fixed[d]] if d in fixed else candidate_sizes(space.extents[d], d),
                      np.int64) for d in dims]
    rank = len(dims)
    grid = {d: c.reshape([-1 if i == j else 1 for j in range(rank)])
            for i, (d, c) in enumerate(zip(dims, cands))}
    trips = {d: -(-space.extents[d] // grid[d]) for d in dims}
    accesses = (*space.operands, space.result)
    elems = [_grid_elems(a, grid) for a in accesses]
    ws = sum(e * b for e, b in zip(elems, itemsizes))
    moved = [_grid_line_bytes(a, grid, b, line_bytes) for a, b in zip(accesses, itemsizes)]
    steps = np.ones((1,) * rank, np.int64)
    for d in dims:
        steps = steps * trips[d]
    best_cost = None
    for o in orders:
        cost = _grid_traffic(space, o, moved, itemsizes, trips, cache_bytes)
        if best_cost is None:
            best_cost, best_idx = cost, np.zeros(cost.shape, np.int64)
        else:
            better = cost < best_cost
            best_idx = np.where(better, orders.index(o), best_idx)
            best_cost = np.minimum(best_cost, cost)
    ws_b = np.broadcast_to(ws, best_cost.shape)
    total = best_cost + STEP_OVERHEAD_BYTES * np.broadcast_to(steps, best_cost.shape)
    fits = 2 * ws_b <= cache_bytes
    once = ws_b <= cache_bytes
    if fits.any():
        flat = int(np.argmin(np.where(fits, total, np.inf)))
    elif once.any():  # nothing fits twice: the cheapest tile that fits once (a tile
        # whose operand does not shrink with it, e.g. attention's whole K/V, then keeps
        # its reuse instead of being cut to the smallest)
        flat = int(np.argmin(np.where(once, total, np.inf)))
    else:
        flat = int(np.argmin(ws_b))  # nothing fits: the smallest working set
    idx = np.unravel_index(flat, best_cost.shape)
    sizes = {d: int(cands[i][idx[i]]) for i, d in enumerate(dims)}
    chosen = orders[int(best_idx[idx])]
    w = int(ws_b[idx])
    return Tiling(chosen, sizes, w, float(best_cost[idx]),
                  _warning(w, cache_bytes, int(ws_b.min())))


def _warning(ws: int, cache_bytes: int, smallest: int | None = None) -> str | None:
    if 2 * ws <= cache_bytes:
        return None
    if smallest is not None and smallest < ws:
        return (f"no tile fits the cache double-buffered (the smallest needs {2 * smallest} "
                f"bytes, the cache holds {cache_bytes}): this tile of {ws} bytes fits once, "
                "so its loads do not overlap the previous step's")
    return (f"smallest tile needs {2 * ws} bytes double-buffered, the cache holds "
            f"{cache_bytes}: this layer streams from DRAM")


def _grid_counts(acc: accel.Access, grid: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Per view axis, the slice length over the grid of candidate sizes."""
    out = []
    for size, ax in zip(acc.view, acc.axes):
        if ax.kind in ("dim", "affine"):
            out.append(grid[ax.dim])
        elif ax.kind == "full":
            out.append(np.array(size))
        elif ax.kind == "window":
            out.append(np.minimum(size, (grid[ax.dim] - 1) * ax.stride
                                  + ax.dilation * (ax.kernel - 1) + 1))
        elif ax.kind == "table":
            out.append(np.vectorize(lambda t, a=ax, n=size: a.span(n, int(t)))(grid[ax.dim]))
        else:
            out.append(np.array(1))
    return out


def _grid_elems(acc: accel.Access, grid: Mapping[str, np.ndarray]) -> np.ndarray:
    n: np.ndarray = np.ones(1)
    for c in _grid_counts(acc, grid):
        n = n * c
    return n


def _grid_line_bytes(acc: accel.Access, grid: Mapping[str, np.ndarray], itemsize: int,
                     line: int) -> np.ndarray:
    """Bytes a slice moves at cache-line granularity: its contiguous runs (the trailing
    axes it covers whole, plus one partial axis) each round up to whole lines."""
    counts = _grid_counts(acc, grid)
    run: np.ndarray = np.ones(1)
    whole: np.ndarray = np.ones(1, bool)
    for size, ax, c in reversed(list(zip(acc.view, acc.axes, counts))):
        strided = ax.kind == "affine" and ax.stride != 1
        take = whole & ~(strided & (c > 1))
        run = np.where(take, run * c, run)
        whole = take & (c == size)
    elems = _grid_elems(acc, grid)
    run_bytes = run * itemsize
    lines_per_run = np.ceil(run_bytes / line) + (run_bytes % line != 0)
    return elems / run * lines_per_run * line


def _grid_traffic(space: accel.Space, order: Sequence[str], moved: Sequence[np.ndarray],
                  itemsizes: Sequence[int], trips: Mapping[str, np.ndarray],
                  cache_bytes: int) -> np.ndarray:
    """Estimated bytes streamed, over the whole grid of candidate sizes (`moved`: bytes
    per slice load, whole lines): each slice is loaded when a loop it depends on steps
    (stationary otherwise); partial sums are stored and reloaded when a reduction loop
    sits outside an output loop. Reloads of a tensor that fits half the cache are
    counted at half price (they hit)."""
    def changes(dims: frozenset[str]) -> np.ndarray:
        last = max((i for i, d in enumerate(order) if d in dims), default=-1)
        out: np.ndarray = np.ones(1)
        for d in order[: last + 1]:
            out = out * trips[d]
        return out

    total: np.ndarray = np.zeros(1)
    for acc, tile, b in zip(space.operands, moved, itemsizes):
        whole = math.prod(acc.view) * b
        loaded = tile * changes(acc.dims)
        first = np.minimum(whole, loaded)
        total = total + first + (loaded - first) * (0.5 if whole * 2 <= cache_bytes else 1.0)
    out_tile = moved[-1]  # the result slice's bytes (`moved` lists operands, then the result)
    distinct: np.ndarray = np.ones(1)
    for d in order:
        if d in space.result.dims:
            distinct = distinct * trips[d]
    return total + out_tile * (2 * changes(space.result.dims) - distinct)
