"""The simulation report: per-layer and total statistics, as text, JSON or a Chrome trace.

    >>> report = SimReport.build(machine, [layer_stats(t, o, machine) for t, o in runs])
    >>> print(report.table())             # aligned plain text, one row per layer + total
    >>> report.to_json()                  # schema "irflow.sim.report/2" (docs/simulator.md)
    >>> chrome_trace(report, "out.json")  # open in https://ui.perfetto.dev

The JSON schema is versioned: fields are only ever added within a version; a
renamed, removed or re-typed field bumps it. Keys come out in a fixed order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from irflow.backends.sim.cost import ROLES, CacheCounts, LayerStats, total
from irflow.backends.sim.machine import Machine
from irflow.backends.sim.misses import MissAttribution
from irflow.fileio import write_output

SCHEMA = "irflow.sim.report/2"
TRACE_TRACKS: dict[str, int] = {"pe_array": 1, "vector": 2, "dma": 3}
TRACK_NAMES: dict[int, str] = {1: "PE array", 2: "vector unit", 3: "DMA"}
MAX_EVENTS_PER_LAYER = 64  # tile steps are grouped beyond this, to keep traces small


@dataclass(frozen=True)
class SimReport:
    """What a program cost on a machine: one `LayerStats` per layer, plus the total."""

    machine: Machine
    layers: tuple[LayerStats, ...]
    total: LayerStats
    model: str = ""
    notes: tuple[str, ...] = ()
    misses: MissAttribution | None = None  # the 3C attribution, when asked for (misses.py)

    @classmethod
    def build(cls, machine: Machine, layers: Sequence[LayerStats], model: str = "",
              notes: Sequence[str] = (), misses: MissAttribution | None = None) -> SimReport:
        layers = tuple(layers)
        return cls(machine, layers, total(layers, machine), model, tuple(notes), misses)

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        d = {
            "schema": SCHEMA,
            "model": self.model,
            "machine": self.machine.to_dict(),
            "layers": [_stats_dict(s) for s in self.layers],
            "total": _stats_dict(self.total),
            "notes": list(self.notes),
        }
        if self.misses is not None:
            d["misses"] = self.misses.to_dict()
        return d

    def _repr_html_(self) -> str:
        """A Jupyter cell shows the report as HTML tables (irflow/notebook.py)."""
        from irflow.notebook import report_html

        return report_html(self.to_dict())

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def write_json(self, path: str | Path) -> None:
        write_output(path, self.to_json() + "\n")

    # ------------------------------------------------------------------ text

    def table(self) -> str:
        """Two aligned text tables (time and compute; memory and energy), layers then total."""
        m = self.machine
        head = (f"irflow sim: {self.model or 'program'} on machine '{m.name}' "
                f"({m.pe_array.rows}x{m.pe_array.cols} PEs, {m.cache.size_bytes // 1024} KiB "
                f"{m.cache.ways}-way cache, {m.dram.bytes_per_cycle:g} B/cycle DRAM, "
                f"{m.clock_ghz:g} GHz)")
        rows = [*self.layers, self.total]
        time_cols = [
            ("layer", lambda s: s.name, "<"),
            ("op", lambda s: s.op, "<"),
            ("cycles", lambda s: _si(s.cycles), ">"),
            ("compute", lambda s: _si(s.compute_cycles), ">"),
            ("stall", lambda s: _si(s.stall_cycles), ">"),
            ("MACs", lambda s: _si(s.macs), ">"),
            ("PE util", lambda s: f"{100 * s.pe_utilization:.1f}%", ">"),
            ("spatial", lambda s: _pct(s.spatial_utilization, s.mapped_cycles), ">"),
            ("temporal", lambda s: _pct(s.temporal_utilization, s.pe_cycles), ">"),
            ("fill/drain", lambda s: _si(s.fill_drain_cycles), ">"),
            ("roofline", lambda s: _si(s.roofline_cycles), ">"),
            ("bound", lambda s: s.roofline_bound, "<"),
            ("limited by", lambda s: s.limited_by, "<"),
            ("x bound", lambda s: f"{s.achieved_over_bound:.2f}", ">"),
            ("ms", lambda s: f"{s.latency_ms:.4f}", ">"),
            ("mapping", lambda s: s.mapping, "<"),
        ]
        mem_cols = [
            ("layer", lambda s: s.name, "<"),
            ("accesses", lambda s: _si(s.cache.accesses), ">"),
            ("hits", lambda s: _si(s.cache.hits), ">"),
            ("misses", lambda s: _si(s.cache.misses), ">"),
            ("hit %", lambda s: f"{100 * s.cache.hit_rate:.1f}", ">"),
            ("evict", lambda s: _si(s.cache.evictions), ">"),
            ("wback", lambda s: _si(s.cache.writebacks), ">"),
            ("DRAM rd", lambda s: _bytes(s.dram_bytes_read), ">"),
            ("DRAM wr", lambda s: _bytes(s.dram_bytes_written), ">"),
            ("psum", lambda s: _bytes(s.psum_bytes), ">"),
            ("mac µJ", lambda s: f"{s.energy.mac_pj / 1e6:.2f}", ">"),
            ("vector µJ", lambda s: f"{s.energy.vector_pj / 1e6:.2f}", ">"),
            ("cache µJ", lambda s: f"{s.energy.cache_pj / 1e6:.2f}", ">"),
            ("DRAM µJ", lambda s: f"{s.energy.dram_pj / 1e6:.2f}", ">"),
            ("total µJ", lambda s: f"{s.energy.total_pj / 1e6:.2f}", ">"),
        ]
        out = [head, "", _render(time_cols, rows), "", _render(mem_cols, rows)]
        if self.misses is not None:
            out += ["", self.misses.table()]
        notes = [*self.notes, *self.total.notes]
        if notes:
            out += ["", "notes:"] + [f"  - {n}" for n in notes]
        return "\n".join(out)


def _si(x: float) -> str:
    x = float(x)
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div * 10:
            return f"{x / div:.1f}{suffix}" if abs(x) < div * 100 else f"{x / div:.0f}{suffix}"
    return f"{x:.0f}" if x == int(x) else f"{x:.1f}"


def _pct(x: float, defined: int) -> str:
    return f"{100 * x:.1f}%" if defined else "-"


def _bytes(n: int) -> str:
    for div, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= div:
            return f"{n / div:.1f} {suffix}"
    return f"{n} B"


def _render(cols: list[tuple[str, Any, str]], rows: list[LayerStats]) -> str:
    cells = [[c[0] for c in cols]] + [[str(c[1](r)) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]

    def line(row: list[str]) -> str:
        return "  ".join(v.ljust(w) if c[2] == "<" else v.rjust(w)
                         for v, w, c in zip(row, widths, cols, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [line(r) for r in cells[1:]]
    return "\n".join([line(cells[0]), rule, *body[:-1], rule, body[-1]])


def _counts_dict(c: CacheCounts) -> dict[str, Any]:
    return {"accesses": c.accesses, "hits": c.hits, "misses": c.misses,
            "hit_rate": c.hit_rate, "evictions": c.evictions, "writebacks": c.writebacks}


def _stats_dict(s: LayerStats) -> dict[str, Any]:
    cache = _counts_dict(s.cache)
    cache["by_role"] = {r: _counts_dict(getattr(s.cache_by_role, r)) for r in ROLES}
    return {
        "name": s.name,
        "op": s.op,
        "unit": s.unit,
        "dtype": s.dtype,
        "steps": s.steps,
        "cycles": {"total": s.cycles, "compute": s.compute_cycles, "stall": s.stall_cycles},
        "macs": s.macs,
        "vector_ops": s.vector_ops,
        "pe_utilization": s.pe_utilization,
        "pe_array": {"mapping": s.mapping, "cycles": s.pe_cycles,
                     "mapped_cycles": s.mapped_cycles,
                     "spatial_utilization": s.spatial_utilization,
                     "temporal_utilization": s.temporal_utilization,
                     "fill_drain_cycles": s.fill_drain_cycles, "load_cycles": s.load_cycles,
                     "folds": s.folds},
        "psum_bytes": s.psum_bytes,
        "cache": cache,
        "dram": {"bytes_read": s.dram_bytes_read, "bytes_written": s.dram_bytes_written},
        "energy_pj": {"mac": s.energy.mac_pj, "vector": s.energy.vector_pj,
                      "cache": s.energy.cache_pj, "dram": s.energy.dram_pj,
                      "total": s.energy.total_pj},
        "latency_ms": s.latency_ms,
        "roofline": {"cycles": s.roofline_cycles, "bound": s.roofline_bound,
                     "achieved_over_bound": s.achieved_over_bound},
        "notes": list(s.notes),
        "loc": s.loc,  # the IR op's source location, "" if unknown
        "dma": {"cycles": s.dma_cycles, "prefetch_cycles": s.prefetch_cycles,
                "prefetched_cycles": s.prefetched_cycles},
        "limited_by": s.limited_by,
    }


# ---------------------------------------------------------------------- Chrome trace


def _groups(n: int) -> list[tuple[int, int]]:
    """Split steps 0..n-1 into at most MAX_EVENTS_PER_LAYER contiguous [lo, hi) groups."""
    if n == 0:
        return []
    k = min(n, MAX_EVENTS_PER_LAYER)
    edges = np.linspace(0, n, k + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def mlir_loc(where: str) -> str:
    """`model.irf:12:5` -> `loc("model.irf":12:5)` (MLIR's syntax); `loc(unknown)` for ""."""
    m = re.fullmatch(r"(.*):(\d+):(\d+)", where)
    if m:
        return f'loc("{m.group(1)}":{m.group(2)}:{m.group(3)})'
    return f'loc("{where}")' if where else "loc(unknown)"


def chrome_trace_events(report: SimReport) -> dict[str, Any]:
    """The Chrome trace-event JSON object (`traceEvents`, times in µs) for a report."""
    us_per_cycle = 1.0 / (report.machine.clock_ghz * 1e3)
    pid = 1
    events: list[dict[str, Any]] = [
        {"ph": "M", "pid": pid, "tid": 0, "name": "process_name",
         "args": {"name": f"irflow sim: {report.model or 'program'} on {report.machine.name}"}},
    ]
    for tid, tname in TRACK_NAMES.items():
        events.append({"ph": "M", "pid": pid, "tid": tid, "name": "thread_name",
                       "args": {"name": tname}})
        events.append({"ph": "M", "pid": pid, "tid": tid, "name": "thread_sort_index",
                       "args": {"sort_index": tid}})

    def span(tid: int, name: str, start: float, dur: float, args: dict[str, Any]) -> None:
        if dur > 0:
            events.append({"ph": "X", "pid": pid, "tid": tid, "name": name, "cat": args["op"],
                           "ts": start * us_per_cycle, "dur": dur * us_per_cycle, "args": args})

    t0 = 0
    for s in report.layers:
        label = f"{s.op} {s.name}"
        base = {"layer": s.name, "op": s.op, "loc": mlir_loc(s.loc)}
        tid = TRACE_TRACKS.get(s.unit, 3)
        layer_args: dict[str, Any] = {**base, "cycles": s.cycles, "macs": s.macs,
                                      "stall_cycles": s.stall_cycles}
        if s.pe_cycles:
            layer_args.update(mapping=s.mapping,
                              spatial_utilization=round(s.spatial_utilization, 4),
                              temporal_utilization=round(s.temporal_utilization, 4),
                              fill_drain_cycles=s.fill_drain_cycles,
                              load_cycles=s.load_cycles, psum_bytes=s.psum_bytes)
        span(tid, label, t0, s.cycles, layer_args)
        tl = s.timeline
        if tl is not None and tid != 3:
            for lo, hi in _groups(len(tl.compute_start)):
                start = int(tl.compute_start[lo])
                end = int(tl.compute_start[hi - 1] + tl.compute_cycles[hi - 1])
                span(tid, label, t0 + start, end - start,
                     {**base, "steps": f"{lo}..{hi - 1}",
                      "busy_cycles": int(tl.compute_cycles[lo:hi].sum())})
        if tl is not None:
            n_ph = len(tl.memory_start)
            for lo, hi in _groups(n_ph):
                start = int(tl.memory_start[lo])
                end = int(tl.memory_start[hi - 1] + tl.memory_cycles[hi - 1])
                span(3, f"{label} dma", t0 + start, end - start,
                     {**base, "phases": f"{lo}..{hi - 1}",
                      "busy_cycles": int(tl.memory_cycles[lo:hi].sum())})
        t0 += s.cycles
    return {"traceEvents": events, "displayTimeUnit": "ns",
            "otherData": {"schema": SCHEMA, "machine": report.machine.name,
                          "clock_ghz": report.machine.clock_ghz}}


def chrome_trace(report: SimReport, path: str | Path) -> None:
    """Write the report's timeline as a Chrome trace (opens in Perfetto / chrome://tracing)."""
    write_output(path, json.dumps(chrome_trace_events(report)))
