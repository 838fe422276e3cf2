"""Why a layer misses: the 3C split per layer and tensor role, and the loop behind each re-fetch.

Every cache miss of a simulation (`LRUCache` outcomes, one cache shared by all layers in
program order) is classified by the classic 3C model (Hill and Smith, 1989):

- *compulsory*: the first access to the line in the whole run (the cache starts empty);
- *capacity*: a fully associative LRU cache of the same size (same line size, one set)
  misses it too: the data was reused too late for any cache that small;
- *conflict*: the fully associative cache would have hit; the set mapping evicted it.

Per access the classes are exclusive and add up to the real misses (an access that
hits in the real cache but would miss in the fully associative one is not a miss).

A non-compulsory miss is a *re-fetch*; it is attributed to the loop that carried the
reuse: the outermost loop of the layer's nest (`LayerTrace.loops`) whose index differs
between the line's previous use and this access — a weight tile of a conv fetched
again at the next `oh` tile misses "across the oh loop". A line last used by an earlier
layer is attributed to "earlier layers"; by the same tile step, "within a step".
Roles are the layer's: input (activations read), weight, output (stores) and psum
(partial sums spilled and reloaded when a reduction is split across tile steps).

    >>> result = simulate(module, inputs, machine="default", misses=True)
    >>> print(result.report.misses.headline())
    73 % of misses are weight re-fetches in layer3.0.conv2 across the oh loop ...

The fully associative cache runs as an O(n log n) stack-distance count (numba, a
Fenwick tree: `_cache_jit.fully_associative_hits`) or, without numba, through the numpy
LRU kernel with one set; both are exact and tested equal.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from irflow.backends.sim.cache import CacheOutcome, _simulate
from irflow.backends.sim.machine import Machine
from irflow.backends.sim.trace import LayerTrace, Role

ROLE_NAMES: tuple[str, ...] = tuple(r.name.lower() for r in Role)
KINDS: tuple[str, ...] = ("compulsory", "capacity", "conflict")
EARLIER = "earlier layers"
SAME_STEP = "within a step"


@dataclass(frozen=True)
class MissRow:
    """The misses of one tensor role of one layer."""

    layer: str
    index: int  # the layer's position in the report
    role: str  # "input", "weight", "output", "psum"
    compulsory: int
    capacity: int
    conflict: int
    refetch_by_loop: tuple[tuple[str, int], ...]  # (loop, re-fetches), most first

    @property
    def misses(self) -> int:
        return self.compulsory + self.capacity + self.conflict

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "index": self.index, "role": self.role,
                "misses": self.misses, "compulsory": self.compulsory,
                "capacity": self.capacity, "conflict": self.conflict,
                "refetch_by_loop": dict(self.refetch_by_loop)}


@dataclass(frozen=True)
class MissAttribution:
    """Every miss of a run by layer, role, 3C class and re-fetching loop."""

    rows: tuple[MissRow, ...]
    kernel: str  # "numba" or "numpy": how the fully associative cache ran

    @property
    def misses(self) -> int:
        return sum(r.misses for r in self.rows)

    def by_kind(self) -> dict[str, int]:
        return {k: sum(getattr(r, k) for r in self.rows) for k in KINDS}

    def groups(self) -> list[tuple[int, str, str, str]]:
        """(re-fetches, layer, role, loop) for every group of re-fetches, largest first."""
        out = [(n, r.layer, r.role, loop) for r in self.rows for loop, n in r.refetch_by_loop]
        return sorted(out, key=lambda g: -g[0])

    def by_role_and_loop(self) -> list[tuple[int, str, str, int]]:
        """(re-fetches, role, loop, layers) summed over layers, largest first."""
        acc: dict[tuple[str, str], list[int]] = {}
        for n, _, role, loop in self.groups():
            got = acc.setdefault((role, loop), [0, 0])
            got[0] += n
            got[1] += 1
        return sorted(((v[0], r, lp, v[1]) for (r, lp), v in acc.items()), key=lambda g: -g[0])

    def headline(self) -> str:
        """One sentence: the largest group of re-fetches (and, when it spans several
        layers, the largest kind summed over layers) and the 3C split; when most misses
        are compulsory, the split leads."""
        total = self.misses
        if not total:
            return "no cache misses"
        kinds = self.by_kind()
        split = ", ".join(f"{_pct(v / total)} {k}" for k, v in kinds.items())
        groups = self.groups()
        if not groups:
            return f"{total:,} misses: {split} (every miss is a first touch)"
        n, layer, role, loop = groups[0]
        text = f"{_pct(n / total)} of misses are {role} re-fetches in {layer} {_where(loop)}"
        m, role2, loop2, layers = self.by_role_and_loop()[0]
        if layers > 1 and m > n:
            text += (f"; over all layers {_pct(m / total)} are {role2} re-fetches "
                     f"{_where(loop2)} ({layers} layers)")
        if kinds["compulsory"] > total / 2:
            return f"{total:,} misses: {split}; the largest re-fetch group: {text}"
        return f"{text} ({total:,} misses: {split})"

    def table(self, top: int = 10) -> str:
        """The headline and the `top` (layer, role) rows by misses."""
        rows = sorted(self.rows, key=lambda r: -r.misses)[:top]
        head = ["layer", "role", "misses", "compulsory", "capacity", "conflict",
                "top re-fetch loop"]
        cells = [head] + [[r.layer, r.role, f"{r.misses:,}", f"{r.compulsory:,}",
                           f"{r.capacity:,}", f"{r.conflict:,}",
                           (f"{r.refetch_by_loop[0][0]} ({r.refetch_by_loop[0][1]:,})"
                            if r.refetch_by_loop else "-")] for r in rows]
        widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
        lines = ["  ".join(c[i].ljust(widths[i]) if i in (0, 1, 6) else c[i].rjust(widths[i])
                           for i in range(len(head))).rstrip() for c in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return f"miss attribution: {self.headline()}\n" + "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.misses, "by_kind": self.by_kind(), "headline": self.headline(),
                "kernel": self.kernel, "rows": [r.to_dict() for r in self.rows]}


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %" if x >= 0.1 or x == 0 else f"{100 * x:.1f} %"


def _where(loop: str) -> str:
    if loop == EARLIER:
        return "of data an earlier layer used"
    return loop if loop == SAME_STEP else f"across the {loop} loop"


def previous_use(line: np.ndarray) -> np.ndarray:
    """For each access, the position of the previous access to the same line (-1: none)."""
    order = np.argsort(line, kind="stable")
    sorted_lines = line[order]
    prev = np.full(line.size, -1, np.int64)
    same = sorted_lines[1:] == sorted_lines[:-1]
    prev[order[1:][same]] = order[:-1][same]
    return prev


def fully_associative_hits(line: np.ndarray, capacity: int, prev: np.ndarray | None = None,
                           backend: str = "auto") -> tuple[np.ndarray, str]:
    """Hits of a fully associative LRU cache of `capacity` lines (starting empty) on the
    access sequence `line`, and the kernel used ("numba" or "numpy")."""
    if backend == "auto":
        backend = "numba" if importlib.util.find_spec("numba") else "numpy"
    if backend == "numba":
        from irflow.backends.sim import _cache_jit

        if prev is None:
            prev = previous_use(line)
        return _cache_jit.fully_associative_hits(prev, capacity), "numba"
    line = np.ascontiguousarray(line, np.int64)
    code, _, _ = _simulate(line, np.zeros(line.size, bool), 1, capacity)
    return (code & 1).astype(bool), "numpy"


def attribute_misses(traces: Sequence[LayerTrace], outcomes: Sequence[CacheOutcome],
                     machine: Machine, backend: str = "auto") -> MissAttribution:
    """Classify the misses of a run (`traces` and the `outcomes` the shared cache gave,
    in program order) as the module docstring says."""
    if not traces:
        return MissAttribution((), backend)
    sizes = np.array([t.line.size for t in traces], np.int64)
    line = np.concatenate([t.line for t in traces]).astype(np.int64, copy=False)
    hit = np.concatenate([o.hit for o in outcomes])
    prev = previous_use(line)
    fa_hit, kernel = fully_associative_hits(line, machine.cache.geometry.lines, prev, backend)
    miss = ~hit
    compulsory = miss & (prev < 0)
    refetch = miss & (prev >= 0)
    capacity = refetch & ~fa_hit
    conflict = refetch & fa_hit
    starts = np.concatenate([[0], np.cumsum(sizes)])
    rows: list[MissRow] = []
    n_roles = len(Role)
    for i, t in enumerate(traces):
        lo, hi = int(starts[i]), int(starts[i + 1])
        if not miss[lo:hi].any():
            continue
        role = t.role.astype(np.int64)
        counts = {k: np.bincount(role[m[lo:hi]], minlength=n_roles)
                  for k, m in zip(KINDS, (compulsory, capacity, conflict), strict=True)}
        loops = _refetch_loops(t, lo, refetch[lo:hi], prev[lo:hi])
        for r in range(n_roles):
            if not any(counts[k][r] for k in KINDS):
                continue
            by_loop = sorted(((name, n) for (rr, name), n in loops.items() if rr == r),
                             key=lambda x: -x[1])
            rows.append(MissRow(t.name, i, ROLE_NAMES[r], int(counts["compulsory"][r]),
                                int(counts["capacity"][r]), int(counts["conflict"][r]),
                                tuple(by_loop)))
    return MissAttribution(tuple(rows), kernel)


def _refetch_loops(t: LayerTrace, lo: int, refetch: np.ndarray, prev: np.ndarray
                   ) -> dict[tuple[int, str], int]:
    """(role, loop) -> re-fetches of one layer (accesses lo.. of the run)."""
    where = np.flatnonzero(refetch)
    if where.size == 0:
        return {}
    q = prev[where]
    role = t.role[where].astype(np.int64)
    earlier = q < lo  # the previous use was in an earlier layer
    names = [name for name, _ in t.loops]
    trips = [n for _, n in t.loops]
    code = np.full(where.size, len(names) + 1, np.int64)  # "earlier layers"
    same = ~earlier
    if same.any():
        s_now = t.step[where[same]].astype(np.int64)
        s_then = t.step[q[same] - lo].astype(np.int64)
        inner = np.full(s_now.size, len(names), np.int64)  # "within a step"
        if names:
            now = np.stack(np.unravel_index(s_now, trips))
            then = np.stack(np.unravel_index(s_then, trips))
            differs = now != then
            any_diff = differs.any(axis=0)
            inner[any_diff] = np.argmax(differs, axis=0)[any_diff]  # outermost first
        code[same] = inner
    labels = [*names, SAME_STEP, EARLIER]
    k = len(labels)
    counts = np.bincount(role * k + code, minlength=len(Role) * k)
    return {(int(c // k), labels[c % k]): int(counts[c]) for c in np.flatnonzero(counts)}


__all__ = ["MissRow", "MissAttribution", "attribute_misses", "fully_associative_hits",
           "previous_use", "KINDS", "EARLIER", "SAME_STEP"]
