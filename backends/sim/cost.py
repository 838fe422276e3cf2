"""Cycles, stalls and energy of one executed layer: the double-buffered streaming model.

Input: a `LayerTrace` (what each tile step touched and computed), the `CacheOutcome`
of its accesses, and the `Machine`. Output: a frozen `LayerStats`. The model, with
its formulas, is written down in `docs/simulator.md`; in short, for tile steps
0..n-1:

    C[i]  compute of step i  = mapping.step_cost(step i's tile)              (PE array:
                               folds, stationary loads, streaming, skew)
                               ceil(ops_i · cpe / lanes)                      (vector unit)
                               (both, if a PE layer also has vector work: the max)
    P(X)  memory phase X     = ceil(hit_lines · line / hit_bw
                                    + (miss_lines + writeback_lines) · line / dram_bw)
                               + dram_latency   if X moves anything to or from DRAM
    cycles = P(loads_0) + Σ_i max(C[i], P(loads_{i+1} + stores_{i-1})) + P(stores_{n-1})

While step i computes, the stream engine prefetches step i+1's operands and writes
back step i-1's results (double buffering); the first load and the last store are
exposed. f = `structured_mac_cycle_factor` (0.5 for 2:4) when the layer's weights
have a structured-sparsity pattern the machine supports, else 1: it shrinks the sparse
reduction loop wherever the mapping puts it (`mapping.step_cost`). Everything is
computed with `np.bincount` over the trace's step and role arrays: no per-access
Python loop.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Self

import numpy as np

from irflow.backends.sim.cache import CacheOutcome
from irflow.backends.sim.machine import Machine, MachineError
from irflow.backends.sim.mapping import step_cost
from irflow.backends.sim.trace import LayerTrace, Role, Unit
from irflow.diagnostics import SimulationError

ROLES: tuple[str, ...] = tuple(r.name.lower() for r in Role)


class _Summable:
    """Field-wise `+` for the frozen count dataclasses below (totals over layers)."""

    def __add__(self, other: Self) -> Self:
        return type(self)(*(getattr(self, f.name) + getattr(other, f.name)
                            for f in fields(self)))  # type: ignore[arg-type]


@dataclass(frozen=True)
class CacheCounts(_Summable):
    """Cache events (line accesses) of one layer or one tensor role."""

    accesses: int = 0
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    writebacks: int = 0  # evictions of dirty lines (each writes one line to DRAM)

    @property
    def hit_rate(self) -> float:
        return self.hits / self.accesses if self.accesses else 0.0


@dataclass(frozen=True)
class CacheByRole(_Summable):
    input: CacheCounts = CacheCounts()
    weight: CacheCounts = CacheCounts()
    output: CacheCounts = CacheCounts()
    psum: CacheCounts = CacheCounts()  # partial sums spilled and reloaded across steps


@dataclass(frozen=True)
class EnergyBreakdown(_Summable):
    """Energy by part, picojoules."""

    mac_pj: float = 0.0
    vector_pj: float = 0.0
    cache_pj: float = 0.0
    dram_pj: float = 0.0

    @property
    def total_pj(self) -> float:
        return self.mac_pj + self.vector_pj + self.cache_pj + self.dram_pj


@dataclass(frozen=True)
class StepTimeline:
    """When each tile step ran, in cycles from the layer's start (for the Chrome trace).

    `compute_start[i]`/`compute_cycles[i]`: step i on its compute unit;
    `memory_start[j]`/`memory_cycles[j]`: DMA phase j (phase 0 is the first load,
    phase i+1 overlaps step i's compute, the last phase drains the last stores).
    """

    compute_start: np.ndarray
    compute_cycles: np.ndarray
    memory_start: np.ndarray
    memory_cycles: np.ndarray


@dataclass(frozen=True)
class LayerStats:
    """What one layer (or, from `total`, a whole program) cost on the machine."""

    name: str
    op: str
    unit: str  # "pe_array", "vector", "dma" ("mixed" in totals)
    dtype: str
    steps: int
    cycles: int  # wall-clock cycles of the layer
    compute_cycles: int  # Σ compute of the steps (compute-bound part)
    stall_cycles: int  # cycles - compute_cycles: compute units waiting for memory
    macs: int  # dense multiply-accumulates
    vector_ops: int  # vector-unit element operations
    pe_busy_cycles: float  # MAC work ÷ peak MACs/cycle (what utilization divides)
    cache: CacheCounts
    cache_by_role: CacheByRole
    dram_bytes_read: int
    dram_bytes_written: int
    energy: EnergyBreakdown
    latency_ms: float
    roofline_cycles: float  # max(MACs ÷ peak, vector work ÷ lanes, compulsory bytes ÷ DRAM bw)
    roofline_bound: str  # "compute" or "memory"
    mapping: str = "-"  # PE layers: "ws: rows=c·r·s, cols=f" (the spatial mapping used)
    pe_cycles: int = 0  # Σ PE-array cycles of the steps (mapping.step_cost)
    mapped_cycles: int = 0  # Σ folds × streamed cycles: the array streaming operands
    fill_drain_cycles: int = 0  # Σ folds × (rows + cols - 2): systolic skew
    load_cycles: int = 0  # Σ exposed stationary-operand loads (os: output drains)
    folds: int = 0  # Σ times the array was (re)loaded
    psum_bytes: int = 0  # partial-sum bytes moved between cache and array (role psum)
    dma_cycles: int = 0  # Σ memory phases: cycles the stream engine moves data
    prefetch_cycles: int = 0  # of the first load phase, the DRAM fetch (+ latency) of constants
    # and `LayerTrace.ready` rows: no earlier layer writes them, so they may stream earlier
    prefetched_cycles: int = 0  # how much of it did (backends/sim/prefetch.py)
    notes: tuple[str, ...] = ()
    timeline: StepTimeline | None = field(default=None, compare=False, repr=False)
    loc: str = ""  # source location of the IR op the layer came from ("model.irf:12:5")

    @property
    def pe_utilization(self) -> float:
        """Fraction of the PE array's MAC slots used over the layer's cycles."""
        return self.pe_busy_cycles / self.cycles if self.cycles else 0.0

    @property
    def spatial_utilization(self) -> float:
        """Fraction of the PEs holding useful work while the array streams:
        busy MAC slots ÷ mapped cycles (1 when every fold fills rows × cols)."""
        return self.pe_busy_cycles / self.mapped_cycles if self.mapped_cycles else 0.0

    @property
    def temporal_utilization(self) -> float:
        """Fraction of the PE array's cycles spent streaming (not loading the stationary
        operand or filling and draining the pipeline): mapped ÷ PE cycles."""
        return self.mapped_cycles / self.pe_cycles if self.pe_cycles else 0.0

    @property
    def limited_by(self) -> str:
        """What the simulated run was limited by: "bandwidth" when the stream engine
        was busy longer than the compute units (its memory phases, the prefetched part
        included, outlast the compute), else
        "compute". Unlike `roofline_bound` (MACs ÷ peak against compulsory bytes),
        this is the cycle model's own verdict: a batch-1 decode's linears are
        bandwidth-limited here, and so is a layer whose tiling re-reads its operands."""
        return "bandwidth" if self.dma_cycles > self.compute_cycles else "compute"

    @property
    def achieved_over_bound(self) -> float:
        """cycles ÷ roofline cycles (≥ 1 on a cold cache; 1 is ideal)."""
        return self.cycles / self.roofline_cycles if self.roofline_cycles else 0.0

    @property
    def energy_pj(self) -> float:
        return self.energy.total_pj


_UNIT_NAMES = {Unit.PE_ARRAY: "pe_array", Unit.VECTOR: "vector", Unit.DMA: "dma"}


def _role_counts(trace: LayerTrace, outcome: CacheOutcome) -> CacheByRole:
    role = trace.role.astype(np.int64, copy=False)
    k = len(Role)
    acc = np.bincount(role, minlength=k)
    hit = np.bincount(role, weights=outcome.hit, minlength=k)
    ev = np.bincount(role, weights=outcome.evict, minlength=k)
    wb = np.bincount(role, weights=outcome.writeback, minlength=k)
    per = [CacheCounts(int(acc[r]), int(hit[r]), int(acc[r] - hit[r]), int(ev[r]), int(wb[r]))
           for r in range(k)]
    return CacheByRole(*per)


def _phase_cycles(hit_lines: np.ndarray, dram_lines: np.ndarray, machine: Machine,
                  overlap_ports: bool = False) -> np.ndarray:
    """P(X) for arrays of phases: hit time + DRAM time (+ latency if DRAM is touched).
    `overlap_ports`: the cache port (every line: hits, fills, victims) and the DRAM
    channel work at once, the slower one sets the time (docs/simulator.md §2.6)."""
    line = machine.cache.line_bytes
    hit_t = hit_lines * line / machine.cache.hit_bytes_per_cycle
    dram_t = dram_lines * line / machine.dram.bytes_per_cycle
    if overlap_ports:
        t = np.maximum(hit_t + dram_lines * line / machine.cache.hit_bytes_per_cycle, dram_t)
    else:
        t = hit_t + dram_t
    return np.ceil(t - 1e-9).astype(np.int64) + np.where(
        dram_lines > 0, machine.dram.latency_cycles, 0)


@dataclass(frozen=True)
class _PECost:
    mapping: str = "-"
    pe_cycles: int = 0
    mapped_cycles: int = 0
    fill_drain_cycles: int = 0
    load_cycles: int = 0
    folds: int = 0


def _compute_cycles(trace: LayerTrace, machine: Machine,
                    mac_factor: float) -> tuple[np.ndarray, _PECost]:
    pe = np.zeros(trace.n_steps, np.int64)
    vec = np.zeros(trace.n_steps, np.int64)
    if trace.unit == Unit.DMA:
        return pe, _PECost()
    info = _PECost()
    if trace.step_macs.any():
        ms = trace.map_space
        if ms is None or trace.step_tiles is None:
            raise SimulationError(f"layer {trace.name!r} ({trace.op}) has MACs but no "
                                  "loop mapping (map_space/step_tiles) to cost them")
        mapping = machine.mapping(ms.family)
        width = None
        if trace.operand_bytes is not None and mapping.stationary != "output":
            width = trace.operand_bytes[mapping.stationary == "weight"]
        c = step_cost(ms, trace.step_tiles, mapping, machine, trace.dtype, mac_factor, width)
        busy = trace.step_macs > 0
        # double-buffered registers: the layer's steps are one pipeline, so only its
        # first step pays the first fold's load and the skew (`StepCost.lead_cycles`)
        later = busy & (np.cumsum(busy) > 1)
        hidden = np.where(later, c.lead_cycles, 0)
        fill = np.where(later & (c.lead_cycles > 0), 0, c.fill_drain_cycles)
        pe = np.where(busy, c.cycles - hidden, 0)
        fill_total = int(np.where(busy, fill, 0).sum())
        info = _PECost(f"{mapping.dataflow}: {mapping.text()}", int(pe.sum()),
                       int(c.stream_cycles.sum()), fill_total,
                       int(pe.sum() - c.stream_cycles.sum()) - fill_total, int(c.folds.sum()))
    if trace.step_vector_ops.any():
        cpe = vector_cpe(trace, machine)
        work = trace.step_vector_ops.astype(np.float64) * cpe / machine.vector.lanes
        vec = np.ceil(work - 1e-9).astype(np.int64)
    compute = np.maximum(pe, vec)
    if trace.epilogue and trace.n_steps and trace.unit == Unit.PE_ARRAY:
        # a fused epilogue's drain after the PE array (docs/simulator.md §2.4); a vector
        # layer's epilogue is the same unit's work, already in `vec`
        compute[-1] += epilogue_drain(trace, machine)
    return compute, info


def vector_cpe(trace: LayerTrace, machine: Machine) -> float:
    """Vector cycles per element operation: the layer's cost class, or for a fused
    epilogue the mean over its ops' classes (one operation each per output element)."""
    if trace.epilogue:
        return sum(machine.vector_cycles_per_element(k) for k in trace.epilogue) / len(
            trace.epilogue)
    return machine.vector_cycles_per_element(trace.vector_kind)


def epilogue_drain(trace: LayerTrace, machine: Machine) -> int:
    """Cycles the vector unit runs on after the PE array's last output row: that row
    (`cols` elements) through every op of the epilogue, `ceil(cols · Σ cpe / lanes)`."""
    cpe = sum(machine.vector_cycles_per_element(k) for k in trace.epilogue)
    return math.ceil(machine.pe_array.cols * cpe / machine.vector.lanes - 1e-9)


def layer_stats(trace: LayerTrace, outcome: CacheOutcome, machine: Machine, *,
                overlap_ports: bool = False) -> LayerStats:
    """Cost one executed layer. `outcome` is `LRUCache.access(trace.line, trace.write)`.
    `overlap_ports`: a memory phase's hits overlap its DRAM transfers (§2.6; default:
    one after another, as every simulation runs)."""
    try:
        return _layer_stats(trace, outcome, machine, overlap_ports)
    except MachineError as e:
        raise SimulationError(f"layer {trace.name!r} ({trace.op}): {e.message}") from None


def _layer_stats(trace: LayerTrace, outcome: CacheOutcome, machine: Machine,
                 overlap_ports: bool = False) -> LayerStats:
    n_acc = len(trace.line)
    if not (len(outcome.hit) == len(outcome.evict) == len(outcome.writeback) == n_acc):
        raise SimulationError(f"layer {trace.name!r}: cache outcome has {len(outcome.hit)} "
                              f"entries for {n_acc} accesses")
    n = trace.n_steps
    if n_acc and (trace.step.min() < 0 or trace.step.max() >= n):
        raise SimulationError(f"layer {trace.name!r}: access step index outside 0..{n - 1}")
    if n_acc and (trace.role.min() < 0 or trace.role.max() >= len(Role)):
        raise SimulationError(f"layer {trace.name!r}: access role outside "
                              + ", ".join(f"{r.value} ({r.name.lower()})" for r in Role))
    notes = list(trace.notes)

    mac_factor = 1.0
    if trace.sparsity is not None:
        if trace.sparsity in machine.sparsity.structured:
            mac_factor = machine.sparsity.structured_mac_cycle_factor
        else:
            notes.append(f"{trace.sparsity} sparsity is not supported by machine "
                         f"{machine.name!r}: computed dense")

    # Per step × (load, store) × (hit, miss, miss that wrote back a dirty victim).
    kind = outcome.writeback.astype(np.int64) + (~outcome.hit)
    key = (trace.step.astype(np.int64) * 2 + trace.write) * 3 + kind
    cnt = np.bincount(key, minlength=6 * n).reshape(n, 2, 3)
    hit_lines = cnt[:, :, 0]
    dram_lines = cnt[:, :, 1] + 2 * cnt[:, :, 2]  # a write-back moves one more line
    loads, stores = 0, 1

    compute, pe_info = _compute_cycles(trace, machine, mac_factor)
    # Memory phases: 0 = loads of step 0; i+1 (overlapping compute i) = loads of step
    # i+1 + stores of step i-1; n+1 = stores of step n-1 (the drain).
    ph_hit = np.zeros(n + 2, np.int64)
    ph_dram = np.zeros(n + 2, np.int64)
    ph_hit[: n] += hit_lines[:, loads]
    ph_dram[: n] += dram_lines[:, loads]
    ph_hit[2: n + 2] += hit_lines[:, stores]
    ph_dram[2: n + 2] += dram_lines[:, stores]
    # Shift: phase j carries loads of step j and stores of step j-2; the phase that
    # overlaps compute i is j = i+1; the drain (stores of n-1) is phase n+1.
    mem = _phase_cycles(ph_hit, ph_dram, machine, overlap_ports)
    # The phases that overlap compute (1..n) issue their requests as soon as their
    # buffer is free, which in a DRAM-bound run is while the previous phase's data is
    # still arriving: their latency overlaps it (docs/simulator.md §2).
    mem[1:n + 1] -= np.where(ph_dram[1:n + 1] > 0, machine.dram.latency_cycles, 0)
    prefetch = 0
    if n_acc:  # any layer's constants (a norm's scale, rotary tables, linear weights)
        ahead = trace.role == int(Role.WEIGHT)  # ... and data no layer writes (KV rows)
        first_weights = (trace.step == 0) & ~trace.write & (
            ahead if trace.ready is None else ahead | trace.ready)
        w_lines = int((kind[first_weights]).sum())  # a miss 1 line, + 1 if it wrote back
        if w_lines:
            prefetch = min(int(mem[0]), int(_phase_cycles(
                np.zeros(1, np.int64), np.array([w_lines], np.int64), machine)[0]))
    if n:
        step_time = np.maximum(compute, mem[1: n + 1])
        starts = mem[0] + np.concatenate([[0], np.cumsum(step_time)[:-1]])
        cycles = int(mem[0] + step_time.sum() + mem[n + 1])
        mem_start = np.concatenate([[0], starts, [mem[0] + step_time.sum()]])
    else:
        starts = np.zeros(0, np.int64)
        cycles = int(mem[0] + mem[1])
        mem_start = np.array([0, mem[0]], np.int64)
        mem = mem[:2]
    compute_total = int(compute.sum())

    macs = trace.macs
    vector_ops = int(trace.step_vector_ops.sum())
    pe_busy = 0.0
    bound_compute = 0.0
    if trace.unit != Unit.DMA:
        if macs:
            pe_busy = macs * mac_factor / machine.peak_macs_per_cycle(trace.dtype)
        if vector_ops:
            vec_busy = vector_ops * vector_cpe(trace, machine) / (
                machine.vector.lanes)
            bound_compute = max(pe_busy, vec_busy)
        else:
            bound_compute = pe_busy
    bound_memory = trace.compulsory_bytes / machine.dram.bytes_per_cycle
    roofline = max(bound_compute, bound_memory)

    total = CacheCounts(n_acc, outcome.hits, outcome.misses, outcome.evictions,
                        outcome.writebacks)
    line = machine.cache.line_bytes
    by_role = _role_counts(trace, outcome)
    read = total.misses * line
    written = total.writebacks * line
    dt = trace.dtype
    if macs or vector_ops:
        machine.macs_per_pe_per_cycle(dt)  # an unknown data type is an error here
    energy = EnergyBreakdown(
        mac_pj=macs * mac_factor * getattr(machine.energy.mac_pj, dt) if macs else 0.0,
        vector_pj=vector_ops * vector_cpe(trace, machine)
        * getattr(machine.energy.vector_op_pj, dt) if vector_ops else 0.0,
        cache_pj=(total.accesses + total.misses + total.writebacks) * machine.cache_line_pj,
        dram_pj=(read + written) * machine.dram_pj_per_byte,
    )
    return LayerStats(
        name=trace.name,
        op=trace.op,
        unit=_UNIT_NAMES[Unit(trace.unit)],
        dtype=dt,
        steps=n,
        cycles=cycles,
        compute_cycles=compute_total,
        stall_cycles=cycles - compute_total,
        macs=macs,
        vector_ops=vector_ops,
        pe_busy_cycles=pe_busy,
        cache=total,
        cache_by_role=by_role,
        dram_bytes_read=read,
        dram_bytes_written=written,
        energy=energy,
        latency_ms=machine.cycles_to_ms(cycles),
        roofline_cycles=roofline,
        roofline_bound="compute" if bound_compute >= bound_memory else "memory",
        mapping=pe_info.mapping,
        pe_cycles=pe_info.pe_cycles,
        mapped_cycles=pe_info.mapped_cycles,
        fill_drain_cycles=pe_info.fill_drain_cycles,
        load_cycles=pe_info.load_cycles,
        folds=pe_info.folds,
        psum_bytes=by_role.psum.accesses * line,
        dma_cycles=int(mem.sum()),
        prefetch_cycles=prefetch,
        notes=tuple(notes),
        timeline=StepTimeline(starts, compute, mem_start, mem),
        loc=trace.loc,
    )


def flush_stats(lines: int, machine: Machine, name: str = "cache flush") -> LayerStats:
    """The cost of writing `lines` dirty lines back at the end (`LRUCache.flush()`)."""
    mem = _phase_cycles(np.zeros(1, np.int64), np.array([lines], np.int64), machine)
    cycles = int(mem[0]) if lines else 0
    written = lines * machine.cache.line_bytes
    return LayerStats(
        name=name, op="cache.flush", unit="dma", dtype="-", steps=0, cycles=cycles,
        compute_cycles=0, stall_cycles=cycles, macs=0, vector_ops=0, pe_busy_cycles=0.0,
        cache=CacheCounts(), cache_by_role=CacheByRole(), dram_bytes_read=0,
        dram_bytes_written=written,
        energy=EnergyBreakdown(cache_pj=lines * machine.cache_line_pj,
                               dram_pj=written * machine.dram_pj_per_byte),
        latency_ms=machine.cycles_to_ms(cycles), roofline_cycles=0.0, roofline_bound="memory",
        dma_cycles=cycles,
        timeline=StepTimeline(np.zeros(0, np.int64), np.zeros(0, np.int64),
                              np.zeros(1, np.int64), np.array([cycles], np.int64)),
    )


def total(stats: Sequence[LayerStats] | Iterable[LayerStats], machine: Machine | None = None,
          name: str = "total") -> LayerStats:
    """Layers run one after another: counts, cycles and energy add up; ratios are recomputed."""
    stats = list(stats)
    dtypes = sorted({s.dtype for s in stats if s.dtype != "-"})
    units = {s.unit for s in stats}
    cycles = sum(s.cycles for s in stats)
    comp = sum(s.compute_cycles for s in stats)
    roof = float(sum(s.roofline_cycles for s in stats))
    # The whole program is compute-bound if its compute-bound layers dominate the bound.
    compute_part = sum(s.roofline_cycles for s in stats if s.roofline_bound == "compute")
    cache, by_role, energy = CacheCounts(), CacheByRole(), EnergyBreakdown()
    for s in stats:
        cache, by_role, energy = cache + s.cache, by_role + s.cache_by_role, energy + s.energy
    if machine is not None:
        latency = machine.cycles_to_ms(cycles)
    else:
        latency = sum(s.latency_ms for s in stats)
    return LayerStats(
        name=name, op="-", unit=units.pop() if len(units) == 1 else "mixed",
        dtype=dtypes[0] if len(dtypes) == 1 else ("mixed" if dtypes else "-"),
        steps=sum(s.steps for s in stats), cycles=cycles, compute_cycles=comp,
        stall_cycles=cycles - comp, macs=sum(s.macs for s in stats),
        vector_ops=sum(s.vector_ops for s in stats),
        pe_busy_cycles=float(sum(s.pe_busy_cycles for s in stats)), cache=cache,
        cache_by_role=by_role,
        dram_bytes_read=sum(s.dram_bytes_read for s in stats),
        dram_bytes_written=sum(s.dram_bytes_written for s in stats), energy=energy,
        latency_ms=latency, roofline_cycles=roof,
        roofline_bound="compute" if compute_part >= roof - compute_part else "memory",
        mapping=_total_mapping(stats),
        pe_cycles=sum(s.pe_cycles for s in stats),
        mapped_cycles=sum(s.mapped_cycles for s in stats),
        fill_drain_cycles=sum(s.fill_drain_cycles for s in stats),
        load_cycles=sum(s.load_cycles for s in stats),
        folds=sum(s.folds for s in stats),
        psum_bytes=sum(s.psum_bytes for s in stats),
        dma_cycles=sum(s.dma_cycles for s in stats),
        prefetch_cycles=sum(s.prefetch_cycles for s in stats),
        prefetched_cycles=sum(s.prefetched_cycles for s in stats),
        notes=tuple(f"{s.name}: {n}" for s in stats for n in s.notes),
    )


def _total_mapping(stats: Sequence[LayerStats]) -> str:
    """A total's mapping: the layers' one mapping, else their one dataflow ("ws"), else
    "mixed" ("-" when no layer ran on the PE array)."""
    maps = {s.mapping for s in stats} - {"-"}
    flows = {m.split(":")[0] for m in maps}
    if len(maps) <= 1:
        return maps.pop() if maps else "-"
    return flows.pop() if len(flows) == 1 else "mixed"


def ideal_cycles(macs: int, dtype: str, machine: Machine) -> int:
    """MACs ÷ peak MACs per cycle, rounded up (the bench's 'ideal' column)."""
    return math.ceil(macs / machine.peak_macs_per_cycle(dtype))
