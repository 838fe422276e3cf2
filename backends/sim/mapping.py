"""How a PE layer's loops map onto the systolic array, and what a tile step costs there.

The cost model of the PE array (docs/simulator.md), a pure function of (layer space, tile,
mapping, machine): no numerics, no IR. The simulator's report, the tiling search and
any design-space search call the same `step_cost`, vectorized over any number of
tiles (one row of `tiles` per tile step or per candidate tile).

A *mapping* names the loops on the array's rows and on its columns and which operand
stays in the PEs (`stationary`); every other loop is temporal. Of the temporal
loops, those the stationary operand does not depend on are *streamed* through the
array (T values per fold); those it depends on are *folds* (the array is reloaded).

    >>> ms = map_space(accel.space_of_op(conv))      # conv2d: n g f oh ow c r s
    >>> m = parse_mapping("rows=c*r*s cols=f stationary=weight", "conv2d")   # "ws"
    >>> step_cost(ms, tiles, m, machine, "int8").cycles   # one entry per row of tiles

Per tile (formulas and worked examples: docs/simulator.md §2.1):

    Sr = Π rows loops,  Sc = Π cols loops,  T = Π streamed loops,  F = Π fold loops
    folds = ceil(Sr / rows) · ceil(Sc / cols) · F
    L     = ceil(rows · cols / load_words_per_cycle)     stationary load (or output drain)
    S     = ceil(T / rate[dtype]),  K = rows + cols - 2  systolic skew (fill + drain)
    cycles = folds · (L + S + K)                         stationary registers hold 1 word
           = ceil(L + folds · max(L, S)) + K             ≥ 2 words: next load overlaps,
                                                         folds pipeline back to back
With `load_bytes_per_cycle` > 0 (ws/is) the load is a byte stream of the values the
folds hold, at their stored width (packed int4: half a byte):
    L     = Sr · Sc · F · bytes per value / load_bytes_per_cycle / folds   (per fold)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping as MappingT
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from irflow.backends.sim.machine import Machine
    from irflow.dialects.accel import Space

FAMILY_LOOPS: dict[str, tuple[str, ...]] = {
    "conv2d": ("n", "g", "f", "oh", "ow", "c", "r", "s"),
    "matmul": ("b", "m", "n", "k"),
}
"""The loops a mapping may name, per op family: `accel.layer_space`'s loops, plus the
conv kernel window (r = kernel rows, s = kernel columns), which is never tiled."""

FAMILY_OF_KIND: dict[str, str] = {"nn.conv2d": "conv2d", "nn.matmul": "matmul",
                                  "nn.linear": "matmul", "irq.block_linear": "matmul",
                                  "nn.attention": "matmul",
                                  "nn.conv_transpose": "conv2d", "nn.einsum": "matmul"}
SPARSE_LOOP: dict[str, str] = {"conv2d": "c", "matmul": "k"}
"""The reduction loop N:M weight sparsity compresses (prune's runs of M along it)."""
STATIONARY = ("weight", "input", "output")
DTYPE_BYTES: dict[str, float] = {"int4": 0.5, "int8": 1.0, "fp16": 2.0, "bf16": 2.0,
                                 "fp32": 4.0}
"""Bytes of one operand value by compute data type (a stationary value's default width)."""

DATAFLOWS: dict[str, dict[str, str]] = {
    "ws": {"conv2d": "rows=c*r*s cols=f stationary=weight",
           "matmul": "rows=k cols=n stationary=weight"},
    "os": {"conv2d": "rows=n*oh*ow cols=f stationary=output",
           "matmul": "rows=b*m cols=n stationary=output"},
    "is": {"conv2d": "rows=c*r*s cols=n*oh*ow stationary=input",
           "matmul": "rows=k cols=b*m stationary=input"},
}
"""The named dataflows as explicit mappings (SCALE-Sim's orientation: ws streams output
pixels past stationary weights, os streams the reduction, is streams output channels)."""


class MappingError(ValueError):
    """A mapping text that does not parse or names unknown loops."""


@dataclass(frozen=True)
class Mapping:
    """Loops on rows and columns (loop, factor; factor 0 = the loop's whole tile extent,
    else at most that many), and the operand held in the PEs."""

    rows: tuple[tuple[str, int], ...]
    cols: tuple[tuple[str, int], ...]
    stationary: str

    def text(self) -> str:
        """`rows=c·r·s, cols=f` (the report's mapping column)."""
        def axis(entries: tuple[tuple[str, int], ...]) -> str:
            return "·".join(f"{d}:{k}" if k else d for d, k in entries) or "1"
        return f"rows={axis(self.rows)}, cols={axis(self.cols)}"

    @property
    def dataflow(self) -> str:
        return {"weight": "ws", "output": "os", "input": "is"}[self.stationary]


def parse_mapping(text: str, family: str) -> Mapping:
    """`"rows=c*r*s cols=f stationary=weight"` -> `Mapping`. A loop may carry a factor
    (`oh:2`: at most 2 of it on that axis); a loop on both axes must carry one on at
    least one of them (that axis takes the factor, the other the rest)."""
    loops = FAMILY_LOOPS[family]
    parts: dict[str, str] = {}
    for item in text.replace(",", " ").split():
        key, eq, value = item.partition("=")
        if not eq or key not in ("rows", "cols", "stationary") or key in parts:
            raise MappingError(f"expected 'rows=... cols=... stationary=...', got {text!r}")
        parts[key] = value
    if set(parts) != {"rows", "cols", "stationary"}:
        raise MappingError(f"expected 'rows=... cols=... stationary=...', got {text!r}")
    if parts["stationary"] not in STATIONARY:
        raise MappingError(f"stationary={parts['stationary']!r}: expected one of "
                           + ", ".join(STATIONARY))
    axes: list[tuple[tuple[str, int], ...]] = []
    for key in ("rows", "cols"):
        entries = []
        for tok in filter(None, re.split(r"[*·]", parts[key])):
            name, colon, factor = tok.partition(":")
            if name not in loops:
                raise MappingError(f"{key}: unknown {family} loop {name!r}; loops: "
                                   + ", ".join(loops))
            if colon and (not factor.isdigit() or int(factor) < 1):
                raise MappingError(f"{key}: factor of {name!r} must be a positive integer, "
                                   f"got {factor!r}")
            if name in (d for d, _ in entries):
                raise MappingError(f"{key}: loop {name!r} listed twice")
            entries.append((name, int(factor) if colon else 0))
        axes.append(tuple(entries))
    rows, cols = axes
    row_f, col_f = dict(rows), dict(cols)
    for d in set(row_f) & set(col_f):
        if not row_f[d] and not col_f[d]:
            raise MappingError(f"loop {d!r} is on rows and cols: give one of them a factor "
                               f"({d}:N)")
    return Mapping(rows, cols, parts["stationary"])


@dataclass(frozen=True)
class MapSpace:
    """A PE layer's loops as the array sees them: loop extents (the conv window's r, s
    included), the loops each operand depends on, and how a tile of the layer's nest
    gives each loop's tile extent: `sources[d] = (nest loops, factor)`, the extent being
    `factor × Π` those loops' tile extents (no loops: the constant `factor`)."""

    family: str
    dims: tuple[str, ...]
    extents: MappingT[str, int]
    depends: MappingT[str, frozenset[str]]  # "input" / "weight" / "output" -> loops
    sources: MappingT[str, tuple[tuple[str, ...], int]]
    nest_extents: MappingT[str, int]  # the layer space's loops (what a nest tiles)


def map_space(space: Space) -> MapSpace | None:
    """The mapping view of an `accel.layer_space` (None for a layer not on the PE array).

    conv2d, matmul and linear map loop for loop (conv adds the window r, s). Two kinds
    are seen as a matmul: `irq.block_linear` (k = kb groups × (group + 1): the group's
    scale multiply is one more MAC per output, as its space counts it) and
    `nn.attention` (per K/V head `b·g`, the r·m query rows of its group stream past
    QKᵀ and PV seen as one GEMM with k = d + dv over n = t keys: the same folds as the
    two GEMMs when d, dv and t fill the array; grouped-query heads share one K/V load)."""
    family = FAMILY_OF_KIND.get(space.kind)
    if family is None or space.unit != "pe":
        return None
    nest = dict(space.extents)
    ext = dict(space.extents)
    x, w, y = space.operands[0].dims, space.operands[1].dims, space.result.dims
    src = {d: ((d,), 1) for d in ext}
    if space.kind == "irq.block_linear":
        per = space.macs_per_point  # group + 1
        ext = {"b": ext["b"], "m": ext["m"], "n": ext["n"], "k": ext["kb"] * per}
        src = {"b": (("b",), 1), "m": (("m",), 1), "n": (("n",), 1), "k": (("kb",), per)}
        x, w = frozenset({"b", "m", "k"}), frozenset({"n", "k"})
    elif space.kind == "nn.attention":
        _, _, t, d = space.operands[1].view
        dv = space.operands[2].view[3]
        # K/V are shared by the r query heads of a group (grouped-query attention):
        # per K/V head (b·g) the group's r·m query rows stream past one K/V load
        ext = {"b": ext["b"] * ext["g"], "m": ext["r"] * ext["m"], "n": t, "k": d + dv}
        src = {"b": (("b", "g"), 1), "m": (("r", "m"), 1), "n": ((), t), "k": ((), d + dv)}
        x, w, y = (frozenset({"b", "m", "k"}), frozenset({"b", "n", "k"}),
                   frozenset({"b", "m", "n"}))
    elif family == "conv2d":
        kernel = space.operands[1].view[3:]  # (KH, KW); a 3-D window (KD, KH, KW)
        kh, kw = math.prod(kernel[:-1]), kernel[-1]
        ext.update(r=kh, s=kw)
        src.update(r=((), kh), s=((), kw))
        if "od" in ext:  # 3-D: output depth streams like rows (oh), kernel depth folds into r
            ext["oh"] = ext.pop("od") * ext["oh"]
            src["oh"] = (("od", "oh"), 1)
            del src["od"]
            x, w, y = (x - {"od"}) | {"oh"}, w, (y - {"od"}) | {"oh"}
        window = frozenset({"r", "s"})
        x, w = x | window, w | window
    return MapSpace(family, FAMILY_LOOPS[family], ext,
                    {"input": frozenset(x), "weight": frozenset(w), "output": frozenset(y)},
                    src, nest)


@dataclass(frozen=True)
class StepCost:
    """Compute of tiles on the PE array; every field an array, one entry per tile."""

    cycles: np.ndarray  # int64: PE array cycles of the tile
    folds: np.ndarray  # int64: times the array is (re)loaded
    stream_cycles: np.ndarray  # int64: folds · S, cycles the array streams operands
    load_cycles: np.ndarray  # int64: exposed stationary load (or output drain) cycles
    fill_drain_cycles: np.ndarray  # int64: rows + cols - 2 per fold (1 word) or per step
    lead_cycles: np.ndarray  # int64: the first fold's load + the skew when double-buffered
    # (paid once per run of back-to-back steps: a later step's folds follow the last
    # fold of the step before it in the array's pipeline); 0 with 1-word registers
    rows_used: np.ndarray  # int64: Sr (before folding)
    cols_used: np.ndarray  # int64: Sc


def _ceil_div(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    return -(-a // b)


def step_cost(ms: MapSpace, tiles: np.ndarray, mapping: Mapping, machine: Machine,
              dtype: str, sparse_factor: float = 1.0,
              stationary_bytes: float | None = None) -> StepCost:
    """PE cycles of tiles `tiles[..., i]` = tile extent of loop `ms.dims[i]` (int).

    `stationary_bytes`: stored bytes per value of the stationary operand as the load
    path carries it (w4a16 weights: packed int4 plus the group scales, per value of the
    map space's k); None = `DTYPE_BYTES[dtype]`. Used only when the machine's
    `load_bytes_per_cycle` is set.

    `sparse_factor` < 1 (N:M weights the array skips zeros of, e.g. 0.5 for 2:4)
    shrinks the sparse reduction loop (`SPARSE_LOOP`) to `ceil(extent × factor)`
    wherever the mapping puts it: fewer row folds under ws, a shorter stream under os.
    A tile with no MACs (an extent 0) costs 0.
    """
    pe = machine.pe_array
    t = np.asarray(tiles, np.int64)
    rem = {d: t[..., i] for i, d in enumerate(ms.dims)}
    if sparse_factor < 1.0:
        d = SPARSE_LOOP[ms.family]
        rem[d] = np.ceil(rem[d] * sparse_factor - 1e-9).astype(np.int64)
    one = np.ones(t.shape[:-1], np.int64)
    size = {"rows": one.copy(), "cols": one.copy()}
    # loops with a factor first, so a loop on both axes is split as the factor says
    entries = [(axis, d, k) for axis, es in (("rows", mapping.rows), ("cols", mapping.cols))
               for d, k in es]
    for axis, d, k in sorted(entries, key=lambda e: e[2] == 0):
        take = np.minimum(rem[d], k) if k else rem[d]
        size[axis] = size[axis] * take
        rem[d] = _ceil_div(rem[d], np.maximum(take, 1))
    held = ms.depends[mapping.stationary]
    stream, fold = one.copy(), one.copy()
    for d in ms.dims:
        if d in held:
            fold = fold * rem[d]
        else:
            stream = stream * rem[d]
    rows, cols = pe.rows, pe.cols
    folds = _ceil_div(size["rows"], rows) * _ceil_div(size["cols"], cols) * fold
    rate = machine.macs_per_pe_per_cycle(dtype)
    s = np.ceil(stream / rate - 1e-9).astype(np.int64)
    skew = rows + cols - 2
    words = pe.stationary_words_per_pe if mapping.stationary != "output" else (
        pe.psum_words_per_pe)
    busy = np.prod(t, axis=-1) > 0
    if pe.load_bytes_per_cycle > 0 and mapping.stationary != "output":
        # a byte stream of the values the folds hold (partial folds load what they use)
        width = DTYPE_BYTES[dtype] if stationary_bytes is None else stationary_bytes
        held_values = size["rows"] * size["cols"] * fold
        load = held_values * width / pe.load_bytes_per_cycle / np.maximum(folds, 1)
    else:
        load = np.full(folds.shape, -(-rows * cols // pe.load_words_per_cycle), np.float64)
    if words >= 2:
        # double-buffered: fold i+1's load (drain of i) overlaps fold i, and the folds
        # of a step enter the array back to back (the skew is paid once per step)
        steady = folds * np.maximum(load, s)
        run = np.ceil(load + steady - 1e-9).astype(np.int64)
        exposed = np.where(busy, run - folds * s, 0)
        fill = np.where(busy, skew, 0)
        lead = np.where(busy, run - np.ceil(steady - 1e-9).astype(np.int64) + skew, 0)
    else:
        per_fold = np.ceil(load - 1e-9).astype(np.int64)
        exposed = np.where(busy, folds * per_fold, 0)
        fill = np.where(busy, folds * skew, 0)
        lead = np.zeros(folds.shape, np.int64)
    folds = np.where(busy, folds, 0)
    streamed = folds * s
    return StepCost(exposed + streamed + fill, folds, streamed, exposed, fill, lead,
                    size["rows"], size["cols"])


def tile_matrix(ms: MapSpace, order: tuple[str, ...], sizes: np.ndarray) -> np.ndarray:
    """Tile extents in `ms.dims` order from extents of the nest's loops `order`
    (`sizes[..., j]` for loop `order[j]`), through `ms.sources` (r, s: whole)."""
    sizes = np.asarray(sizes, np.int64)
    pos = {d: j for j, d in enumerate(order)}
    cols = []
    for d in ms.dims:
        loops, factor = ms.sources[d]
        col = np.full(sizes.shape[:-1], factor, np.int64)
        for nest_loop in loops:
            col = col * sizes[..., pos[nest_loop]]
        cols.append(col)
    return np.stack(cols, axis=-1)


@dataclass(frozen=True)
class NestCost:
    """PE-array totals of whole loop nests, one entry per candidate tiling."""

    cycles: np.ndarray  # int64: Σ over the nest's steps of `step_cost(...).cycles`
    stream_cycles: np.ndarray  # int64: Σ folds · S
    fill_drain_cycles: np.ndarray  # int64
    load_cycles: np.ndarray  # int64
    folds: np.ndarray  # int64
    steps: np.ndarray  # int64: tile steps of the nest
    first: np.ndarray | None = None  # int64: the first step's cycles (it alone pays the lead)


def nest_cost(ms: MapSpace, order: tuple[str, ...], tiles: np.ndarray, mapping: Mapping,
              machine: Machine, dtype: str, sparse_factor: float = 1.0,
              stationary_bytes: float | None = None) -> NestCost:
    """The PE cost of whole nests: `tiles[n, j]` is candidate n's tile size of loop
    `order[j]` (a loop of the layer space, `ms.nest_extents`). Equal to
    summing `step_cost` over every step the executor runs, without enumerating steps: a
    step's cost depends only on its tile sizes, and per loop a step has the full tile
    (`extent // tile` times) or the remainder (once, if any), so the sum runs over the
    2^loops full/remainder combinations, weighted by how many steps have each. As in
    the simulator, only the first step (all tiles full) pays `lead_cycles`."""
    tiles = np.atleast_2d(np.asarray(tiles, np.int64))
    extent = np.array([ms.nest_extents[d] for d in order], np.int64)
    full, rem = extent // tiles, extent % tiles  # [N, L]
    split = (rem > 0).any(axis=0)  # loops no candidate leaves a remainder in: full only
    combos = np.array(np.meshgrid(*[[0, 1] if s else [0] for s in split], indexing="ij")
                      ).reshape(len(order), -1).T  # [C, L]: 1 = the remainder tile of that loop
    sizes = np.where(combos[None], rem[:, None], tiles[:, None])  # [N, C, L]
    count = np.prod(np.where(combos[None], (rem > 0)[:, None], full[:, None]), axis=-1)
    c = step_cost(ms, tile_matrix(ms, order, np.maximum(sizes, 1)), mapping, machine, dtype,
                  sparse_factor, stationary_bytes)  # a zero-size remainder has count 0

    def total(a: np.ndarray) -> np.ndarray:
        return (a * count).sum(axis=-1)

    # combination 0 (every loop's full tile) is the first step; the others' leads hide
    lead = c.lead_cycles
    first = lead[:, 0]
    hidden = total(lead) - first
    skew = np.where(lead > 0, c.fill_drain_cycles, 0)
    fill = total(c.fill_drain_cycles) - (total(skew) - skew[:, 0])
    cycles = total(c.cycles) - hidden
    streamed = total(c.stream_cycles)
    return NestCost(cycles, streamed, fill, cycles - streamed - fill, total(c.folds),
                    count.sum(axis=-1), c.cycles[:, 0])

