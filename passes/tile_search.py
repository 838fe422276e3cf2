"""The mapping search of `tile{search=latency|energy|edp|balanced}`: per PE layer, the tile sizes
and loop order with the best estimated cycles, energy or energy-delay product.

The mapspace of one layer (the machine fixes the spatial unrolling, `Machine.mapping`):

- tile sizes: every divisor of each loop's extent (no remainder tiles), plus the
  default rule's choice (`tile.choose_tiling`, which may leave remainders), so the
  search never scores worse than the rule under its own estimate;
- loop orders: every permutation of the loops whose extent is > 1 (loops of extent 1
  never step: they go outermost, in canonical order, one order for all their
  placements), with `ow` kept inside `oh` (the mirrored order moves the same slices
  but breaks contiguous runs);
- only candidates whose double-buffered working set fits the cache.

Every candidate is scored at once with numpy (`estimate`), with no numerics:

    PE cycles   P = mapping.nest_cost(...)                    (the simulator's step_cost)
    memory      `layer_traffic.traffic`: the layer alone on a cold LRU cache, flushed at
                the end (loads per step class, misses from reuse across the loop order,
                set conflicts, write-allocate, write-backs, partial sums, partial lines)
    cycles      C = M_first + Σ_q count_q · max(P / S, M_q) + M_drain + M_flush
    energy      E = macs · mac_pj + (accesses + misses + write-backs) · cache_line_pj
                    + DRAM bytes · dram_pj/B                      (as the simulator's)

The winner minimises C (latency, balanced), E (energy) or C·E (edp); candidates within
1 % of the best are tied and go to the least energy (latency, balanced) or fewest
cycles, then DRAM bytes, fewer steps, the lowest index (deterministic). `balanced` only
takes candidates with no more estimated DRAM bytes and energy than the default rule's
tiling, and the rule's tiling wins its ties. Candidates dominated in (C, D, E) are left
out of what `explain` shows. The estimate against the simulator: docs/tiling.md.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Operation

from irflow.backends.sim.machine import Machine
from irflow.backends.sim.mapping import map_space, nest_cost
from irflow.dialects import accel
from irflow.passes import layer_traffic
from irflow.passes import tile as tl

OBJECTIVES = ("none", "latency", "energy", "edp", "balanced")
TIE = 0.01
"""Candidates within 1 % of the best objective are tied (`Scores.ranking`)."""
DEFAULT = "balanced"
"""The search `tile` runs when no `search` is given (`irflow run`/`sim`, `simulate`)."""
BALANCED_TIE = 0.05
"""`balanced`'s band: the rule's tiling is replaced only for more than 5 % fewer
estimated cycles, the estimate's own error bound (docs/tiling.md, *Against the rule*)."""


def default_tie(objective: str) -> float:
    """The tie band of `objective` when `tile{tie=...}` is not given."""
    return BALANCED_TIE if objective == "balanced" else TIE


def divisors(n: int) -> list[int]:
    """Every divisor of n, ascending."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def loop_orders(space: accel.Space) -> list[tuple[str, ...]]:
    """Loop orders worth scoring (module docstring: symmetric ones pruned)."""
    ones = [d for d in space.dims if space.extents[d] == 1]
    moving = [d for d in space.dims if space.extents[d] > 1]
    out = []
    for perm in itertools.permutations(moving):
        if "oh" in perm and "ow" in perm and perm.index("ow") < perm.index("oh"):
            continue
        out.append((*ones, *perm))
    return out


@dataclass(frozen=True)
class Scores:
    """Candidates of one layer and their estimates, one entry per candidate."""

    dims: tuple[str, ...]  # columns of `sizes` (the space's canonical loop order)
    sizes: np.ndarray  # [N, L] int64
    orders: list[tuple[str, ...]]
    order: np.ndarray  # [N] index into `orders`
    cycles: np.ndarray  # [N] float
    dram_bytes: np.ndarray
    energy_pj: np.ndarray
    pe_cycles: np.ndarray
    steps: np.ndarray
    hidden: np.ndarray | None = None  # of `cycles`' first weight fetch, what the
    # layers before hid (tile_window.py; `cycles` is net of it)

    def objective(self, kind: str) -> np.ndarray:
        if kind in ("latency", "balanced"):
            return self.cycles
        if kind == "energy":
            return self.energy_pj
        return self.cycles * self.energy_pj

    def ranking(self, kind: str, rule: int | None = None, tie: float = TIE) -> np.ndarray:
        """Candidate indices, best first (deterministic tie-breaks). Candidates within
        `tie` (default `TIE`; 0: strictly by the objective) of the best count as tied:
        among them the least energy wins (`latency`; fewest cycles for `energy`, `edp`),
        then DRAM bytes, fewer steps and the lowest index — cycles a layer hides under
        compute are not worth extra DRAM traffic and energy. `balanced` ranks like
        `latency` among the candidates that move no more DRAM bytes and spend no more
        energy than candidate `rule` (the default rule's tiling), all others after them;
        the rule's tiling wins a tie (a layer's tiling changes only for more than `tie`
        fewer estimated cycles)."""
        idx = np.arange(len(self.cycles))
        obj = self.objective(kind)
        worse = np.zeros(len(obj), bool)
        if kind == "balanced" and rule is not None:
            worse = ((self.dram_bytes > self.dram_bytes[rule])
                     | (self.energy_pj > self.energy_pj[rule]))
        best = obj[~worse].min() if (~worse).any() else 0.0
        band = np.where(obj <= best * (1 + tie), best, obj)
        second = self.energy_pj if kind in ("latency", "balanced") else self.cycles
        not_rule = np.ones(len(obj), bool)
        if kind == "balanced" and rule is not None:
            not_rule[rule] = False  # the rule keeps its tiling unless 1 % is to be had
        return np.lexsort((idx, self.steps, self.dram_bytes, second, not_rule, band, worse))

    def sizes_of(self, i: int) -> dict[str, int]:
        return {d: int(s) for d, s in zip(self.dims, self.sizes[i])}


def pareto(scores: Scores, idx: np.ndarray) -> np.ndarray:
    """The subset of `idx` (in its order) not dominated in (cycles, DRAM bytes, energy),
    one candidate per distinct score and tile sizes."""
    m = np.stack([scores.cycles[idx], scores.dram_bytes[idx], scores.energy_pj[idx]], 1)
    le = (m[:, None, :] <= m[None, :, :]).all(-1)
    lt = (m[:, None, :] < m[None, :, :]).any(-1)
    dominated = (le & lt).any(0)
    # equal scores (orders that differ only where a loop makes one trip): keep the first
    _, first = np.unique(np.column_stack([m, scores.sizes[idx]]), axis=0, return_index=True)
    unique = np.zeros(len(idx), bool)
    unique[first] = True
    return idx[~dominated & unique]


def estimate(space: accel.Space, itemsizes: Sequence[float], machine: Machine, dtype: str,
             sizes: np.ndarray, orders: Sequence[tuple[str, ...]],
             sparse_factor: float = 1.0, exact_sets: bool = False) -> Scores:
    """Score every (size row, order) pair: `sizes[n, j]` is the tile of `space.dims[j]`
    (`exact_sets`: `layer_traffic.traffic`'s exact per-set loads, for a few rows)."""
    ms = map_space(space)
    if ms is None:
        raise ValueError(f"{space.kind} is not a PE layer")
    dims = space.dims
    sizes = np.atleast_2d(np.asarray(sizes, np.int64))
    n = len(sizes)
    pe = nest_cost(ms, dims, sizes, machine.mapping(ms.family), machine, dtype,
                   sparse_factor)
    psum = machine.psum_bytes(dtype)
    memo: dict = {}
    layer_traffic.prefill(space, itemsizes, psum, machine, sizes, orders, memo)
    parts = [layer_traffic.traffic(space, itemsizes, psum, machine, sizes, o, pe.cycles,
                                   memo=memo, first_cycles=pe.first,
                                   exact_sets=exact_sets) for o in orders]
    k = len(orders)
    cycles = np.concatenate([t.cycles for t in parts])
    dram = np.concatenate([t.dram_bytes for t in parts])
    events = np.concatenate([t.accesses + t.misses + t.writebacks for t in parts])
    s = np.concatenate([t.steps for t in parts])
    p = np.tile(pe.cycles.astype(np.float64), k)
    macs = math.prod(space.extents.values()) * space.macs_per_point
    energy = (macs * sparse_factor * getattr(machine.energy.mac_pj, dtype)
              + events * machine.cache_line_pj + dram * machine.dram_pj_per_byte)
    return Scores(dims, np.tile(sizes, (k, 1)), list(orders),
                  np.repeat(np.arange(k), n), cycles, dram, energy, p, s)


def candidates(space: accel.Space, itemsizes: Sequence[float], cache_bytes: int,
               fixed: Mapping[str, int], extra: Sequence[Mapping[str, int]] = ()) -> np.ndarray:
    """Size rows (columns `space.dims`) whose double-buffered working set fits: divisors
    of every loop not `fixed`, plus the rows `extra` (e.g. the default rule's)."""
    per = [[fixed[d]] if d in fixed else divisors(space.extents[d]) for d in space.dims]
    rows = np.array(list(itertools.product(*per)), np.int64).reshape(-1, len(space.dims))
    if extra:
        rows = np.unique(np.concatenate(
            [rows, np.array([[e[d] for d in space.dims] for e in extra], np.int64)]), axis=0)
    grid = {d: rows[:, i] for i, d in enumerate(space.dims)}
    ws = sum(tl._grid_elems(a, grid) * b
             for a, b in zip((*space.operands, space.result), itemsizes))
    return rows[2 * ws <= cache_bytes]


@dataclass(frozen=True)
class Choice:
    tiling: tl.Tiling
    scores: Scores | None  # None: the default rule decided (no PE layer / nothing fits)
    ranked: np.ndarray  # candidate indices, best first (Pareto-pruned)
    rule: int | None = None  # the default rule's tiling among the candidates
    credit: float = 0.0  # the prefetch window the layers before left (tile_window.py)
    resident: bool = False  # every operand an earlier layer's output (`resident_only`)

    @property
    def best(self) -> int | None:
        return int(self.ranked[0]) if self.scores is not None else None


@dataclass(frozen=True)
class Scored:
    """What `score_layer` keeps of one layer's mapspace (memoized across layers)."""

    scores: Scores
    rule: int | None  # the default rule's candidate
    prefetch: np.ndarray  # [N] DRAM cycles of step 0's weights (tile_window.py)
    complete: bool = True  # every row that can have fewer cycles than the rule is scored


_MEMOS: dict[str, dict] = {}
MEMO_CANDIDATES = 400_000
"""Scored candidates kept per machine across `tile` runs (a simulated program lowered
again, the stages of `irflow run --compare`, a fuzz case run twice; about 100 B each);
the oldest layers go first."""


def memo_for(machine: Machine) -> dict:
    """The scores memo shared by every `tile` run on `machine` (the key is its full
    description, so a changed cache or PE array gets its own), bounded by
    `MEMO_CANDIDATES` per machine (the layers being searched always stay) and 4 machines."""
    key = repr(machine)
    memo = _MEMOS.pop(key, None)
    if memo is None:
        memo = _BoundedMemo()
    _MEMOS[key] = memo  # most recently used last
    while len(_MEMOS) > 4:
        del _MEMOS[next(iter(_MEMOS))]
    return memo


class _BoundedMemo(dict):
    """A dict of `Scored` (or None) that forgets its oldest entries past
    `MEMO_CANDIDATES` scored candidates."""

    size = 0

    @staticmethod
    def _n(value: object) -> int:
        return len(value.scores.cycles) if isinstance(value, Scored) else 1

    def __setitem__(self, key: object, value: object) -> None:
        if key in self:
            self.size -= self._n(self[key])
        super().__setitem__(key, value)
        self.size += self._n(value)
        while self.size > MEMO_CANDIDATES and len(self) > 1:
            old = next(iter(self))
            self.size -= self._n(self[old])
            super().__delitem__(old)


def layer_key(space: accel.Space, itemsizes: Sequence[float], dtype: str,
              fixed: Mapping[str, int], order: Sequence[str] | None, rule: tl.Tiling,
              weights: Sequence[bool], sparse_factor: float = 1.0) -> tuple:
    """Everything a layer's scores depend on besides the machine: identical layers
    (ResNet's repeated blocks, BERT's and a decoder's layers) are scored once."""
    return (repr(space), tuple(itemsizes), dtype, tuple(sorted(fixed.items())),
            tuple(order) if order else None, rule.order, tuple(sorted(rule.sizes.items())),
            tuple(weights), sparse_factor)


def score_layer(space: accel.Space, itemsizes: Sequence[float], machine: Machine,
                dtype: str, fixed: Mapping[str, int], order: Sequence[str] | None,
                rule: tl.Tiling, weights: Sequence[bool] = (),
                sparse_factor: float = 1.0, memo: dict | None = None,
                prune: float | None = None) -> Scored | None:
    """Every candidate of one layer scored (`estimate`), or None when the layer is not on
    the PE array, the rule warned, or nothing fits. `memo` (a dict shared by the layers
    of one pass run, on one machine) returns an identical layer's scores. `prune`
    (`balanced`, a band b): leave out the rows that cannot have fewer estimated cycles
    than the rule's / (1 + b), whatever the prefetch credit (`_score_layer`)."""
    key = (layer_key(space, itemsizes, dtype, fixed, order, rule, weights, sparse_factor),
           prune)
    if memo is not None and key in memo:
        return memo[key]
    got = _score_layer(space, itemsizes, machine, dtype, fixed, order, rule, weights,
                       sparse_factor, prune)
    if memo is not None:
        memo[key] = got
    return got


def _score_layer(space: accel.Space, itemsizes: Sequence[float], machine: Machine,
                 dtype: str, fixed: Mapping[str, int], order: Sequence[str] | None,
                 rule: tl.Tiling, weights: Sequence[bool],
                 sparse_factor: float, prune: float | None) -> Scored | None:
    from irflow.passes.tile_window import first_weight_cycles

    if map_space(space) is None or rule.warning:
        return None
    rows = candidates(space, itemsizes, machine.cache.size_bytes, fixed, [rule.sizes])
    if not len(rows):
        return None
    orders = [tuple(order)] if order else loop_orders(space)
    if rule.order not in orders and not order:
        orders.append(rule.order)
    first = (first_weight_cycles(space, itemsizes, machine, rows, weights) if any(weights)
             else np.zeros(len(rows)))
    rule_row = np.flatnonzero((rows == [rule.sizes[d] for d in space.dims]).all(1))
    complete = True
    if prune is not None and len(rule_row) and rule.order in orders:
        # `balanced`: the winner is the rule, or within the band of a candidate with
        # fewer cycles than the rule's / (1 + band). A candidate's cycles are at least
        # its PE cycles (`estimate`), and whatever the credit κ, the window hides
        # min(first_c, κ) of it and min(first_r, κ) of the rule's, so
        #   C_c - min(first_c, κ) < (C_r - min(first_r, κ)) / (1 + b)
        # needs P_c - max(first_c - first_r, 0) < (C_r + b · first_r) / (1 + b): the
        # rows that fail it are not scored. `search_layer` scores with b = tie (then the
        # rule wins exactly when no row beats it so), and b = 0 (every row that can
        # have fewer cycles than the rule) where a candidate does beat it — at once
        # when the band leaves more than half of those rows (one call, not two).
        r = int(rule_row[0])
        alone = estimate(space, itemsizes, machine, dtype, rows[r:r + 1], [rule.order],
                         sparse_factor)
        rule_c = float(alone.cycles[0])
        ms = map_space(space)
        pe = nest_cost(ms, space.dims, rows, machine.mapping(ms.family),  # type: ignore[arg-type]
                       machine, dtype, sparse_factor).cycles
        lower = pe - np.maximum(first - first[r], 0.0)
        keep = lower * (1 + prune) < rule_c + prune * first[r]
        every = lower < rule_c  # the rows of the second stage (b = 0)
        complete = 2 * keep.sum() > every.sum()  # the band prunes little: score them all
        if complete:
            keep = every
        elif not keep.any():  # no row, the rule's in another order included, can beat
            # the rule by the band: the rule wins; its own estimate is all there is to rank
            return Scored(alone, 0, first[r:r + 1], False)
        keep[r] = True
        rows, first = rows[keep], first[keep]
        rule_row = np.flatnonzero((rows == [rule.sizes[d] for d in space.dims]).all(1))
    sc = estimate(space, itemsizes, machine, dtype, rows, orders, sparse_factor)
    rule_idx = (orders.index(rule.order) * len(rows) + int(rule_row[0])
                if rule.order in orders and len(rule_row) else None)
    return Scored(sc, rule_idx, np.tile(first, len(orders)), complete)


def resident_only(weights: Sequence[bool]) -> bool:
    """Every operand is an earlier layer's output (no weight: attention's Q·Kᵀ and P·V).
    In the network those tensors are still cached from their producers, and which of
    their lines a tiling's order hits before its own traffic evicts them decides its DRAM
    bytes (the transformer's scores: 589,824 estimated cold, 90,560 to 121,408 B
    simulated, by order) — an effect between layers the per-layer estimate does not
    see, so `balanced` keeps the rule's tiling there (docs/tiling.md)."""
    return bool(weights) and not any(weights)


def search_layer(space: accel.Space, itemsizes: Sequence[float], machine: Machine,
                 dtype: str, objective: str, fixed: Mapping[str, int],
                 order: Sequence[str] | None, rule: tl.Tiling,
                 sparse_factor: float = 1.0, tie: float = TIE,
                 weights: Sequence[bool] = (), credit: float = 0.0,
                 memo: dict | None = None) -> Choice:
    """The best candidate of one layer by `objective` (candidates within `tie` of the
    best tied, `Scores.ranking`); the default rule's `rule` when the layer is not on
    the PE array or no candidate fits. `weights`: which operands are constants;
    `credit`: the prefetch window the layers before left (`tile_window.Window`): each
    candidate's cycles are scored net of the part of its first weight fetch it hides.
    `memo`: scores of identical layers (`score_layer`)."""
    resident = objective == "balanced" and resident_only(weights)
    stages = [tie, 0.0] if objective == "balanced" else [None]
    for stage in stages:  # `balanced`: rows that might beat the rule by the band, then
        # (where one does) every row that might beat it (`_score_layer`; same winner)
        scored = score_layer(space, itemsizes, machine, dtype, fixed, order, rule, weights,
                             sparse_factor, memo, stage)
        if scored is None:
            return Choice(rule, None, np.zeros(0, np.int64))
        sc, rule_idx = scored.scores, scored.rule
        hidden = np.minimum(scored.prefetch, max(credit, 0.0))
        if hidden.any():
            sc = dataclasses.replace(sc, cycles=sc.cycles - hidden, hidden=hidden)
        rank = sc.ranking(objective, rule_idx, tie)
        if resident and rule_idx is not None:
            rank = np.concatenate([[rule_idx], rank[rank != rule_idx]])
        if rule_idx is None or int(rank[0]) == rule_idx or scored.complete:
            break
    best = int(rank[0])  # the ranking decides (the rule's tiling wins its ties under
    # `balanced` even where a tied candidate dominates it); the Pareto front is shown
    front = pareto(sc, rank[:256])
    ranked = np.concatenate([[best], rank[np.isin(rank, front) & (rank != best)]])
    sizes = sc.sizes_of(best)
    ws = tl.working_set(space, sizes, itemsizes)
    return Choice(tl.Tiling(sc.orders[int(sc.order[best])], sizes, ws,
                            float(sc.dram_bytes[best])), sc, ranked, rule_idx, credit,
                  resident_only(weights))


def explain(label: str, choice: Choice, objective: str, top: int = 8,
            tie: float = TIE) -> str:
    """The top candidates of one layer and why the winner won (`tile{explain=...}`)."""
    sc = choice.scores
    if sc is None:
        return (f"tile: layer '{label}': the default rule decided (not a PE layer, or "
                f"nothing fits the cache): {choice.tiling.sizes} order "
                f"{','.join(choice.tiling.order)}")
    lines = [f"tile: layer '{label}', search={objective}: {len(sc.cycles)} candidates "
             f"scored, {len(choice.ranked)} on the Pareto front of the best 256",
             f"  {'#':>4} {'cycles':>12} {'DRAM B':>12} {'energy uJ':>10} {'steps':>7}  "
             "order / tile sizes"]
    def row(tag: str, i: int) -> str:
        sizes = ",".join(f"{d}={s}" for d, s in sc.sizes_of(i).items())
        return (f"  {tag:>4} {sc.cycles[i]:>12,.0f} {sc.dram_bytes[i]:>12,.0f} "
                f"{sc.energy_pj[i] / 1e6:>10.3f} {int(sc.steps[i]):>7}  "
                f"{','.join(sc.orders[int(sc.order[i])])} / {sizes}")

    if sc.hidden is not None:
        w0 = int(choice.ranked[0])
        lines.insert(1, f"  cycles net of the first weight fetch the layers before hide "
                     f"(prefetch window {choice.credit:,.0f} cycles; the winner hides "
                     f"{sc.hidden[w0]:,.0f}"
                     + (f", the rule {sc.hidden[choice.rule]:,.0f}" if choice.rule is not None
                        else "") + ")")
    for r, i in enumerate(choice.ranked[:top]):
        lines.append(row(str(r), int(i)))
    if choice.rule is not None:
        lines.append(row("rule", choice.rule))
    w = int(choice.ranked[0])
    why = {"latency": "fewest estimated cycles", "energy": "least estimated energy",
           "edp": "least estimated cycles x energy",
           "balanced": "fewest estimated cycles among the candidates with no more DRAM "
                       "bytes and energy than the rule's tiling (the rule wins ties)"}[objective]
    if objective == "balanced" and w == choice.rule:
        why = (f"the rule's tiling is kept: no candidate with no more estimated DRAM bytes "
               f"and energy is more than {tie * 100:g}% faster")
        if choice.resident:
            why = ("the rule's tiling is kept: every operand is an earlier layer's output, "
                   "cached in the network, which the per-layer estimate does not see")
    bound = "compute (PE array)" if sc.pe_cycles[w] >= sc.cycles[w] * 0.99 else "memory"
    lines.append(f"  winner #0: {why}; {bound}-bound ({sc.pe_cycles[w]:,.0f} PE cycles of "
                 f"{sc.cycles[w]:,.0f}); within {tie * 100:g}% of the best, ties broken by "
                 + ("energy" if objective in ("latency", "balanced") else "cycles")
                 + ", then DRAM bytes, then fewer steps")
    return "\n".join(lines)


def pe_dtype(op: Operation) -> str:
    """The data type a PE layer multiplies in: the wider of its two multiplied operands
    (w4a8 runs at the int8 rate), fp32 when neither is a tensor."""
    from irflow.backends.sim.executor import DTYPE_WIDTH, dtype_name

    types = [v.type for v in op.operands[:2]]
    return max((dtype_name(t.element_type) for t in types if isinstance(t, TensorType)),
               key=DTYPE_WIDTH.__getitem__, default="fp32")


@dataclass(frozen=True)
class ChosenEstimate:
    """The estimate of the tiling `tile` chose for one PE layer."""

    op: Operation
    space: accel.Space
    nest: accel.NestAttr
    itemsizes: list[float]  # operands', then the result's, bytes per element
    scores: Scores  # one candidate: the chosen sizes and order


def chosen_estimates(fn: func.FuncOp, machine: Machine) -> dict[str, ChosenEstimate]:
    """Per label, the estimate of each tiled PE layer of `fn` (after `tile`) for the
    tiling it carries: what the search believed of the candidate it kept."""
    out = {}
    for op, label in tl.layer_labels(fn).items():
        if not tl.is_layer(op) or tl.NEST_ATTR not in op.attributes:
            continue
        space = accel.space_of_op(op)  # type: ignore[arg-type]
        if map_space(space) is None:
            continue
        nest = op.attributes[tl.NEST_ATTR]
        assert isinstance(nest, accel.NestAttr)
        itemsizes = [tl.elem_bytes(v.type) for v in (*op.operands, op.results[0])]
        sizes = np.array([[nest.tile[d] for d in space.dims]])
        out[label] = ChosenEstimate(op, space, nest, itemsizes, estimate(
            space, itemsizes, machine, pe_dtype(op), sizes, [tuple(nest.order)],
            exact_sets=True))
    return out
