"""One layer simulated alone, from a cold cache: what the tiling search's estimate models.

In a whole-network simulation one LRU cache is shared by all layers in program order,
so a layer's cost depends on its neighbours: its input may still be resident from the
producer (hits), and the dirty lines earlier layers left behind are written back
during it (charged to the layer that evicts them). The mapping search scores one layer
at a time and cannot see that, so the comparison it is held to (docs/tiling.md,
tests/test_tile_search.py) is this one: the layer's trace (the same `LayerTrace` the
network run records) serviced by an empty cache of the machine's geometry, then the
cache flushed — its cycles are the layer's cycles plus the flush's, its DRAM bytes
every line read plus every dirty line written (during the layer or by the flush).

`drain=True` (the DRAM-to-DRAM view a layer-at-a-time cost model such as ZigZag takes,
docs/simulator.md §2.6): the stream engine writes each line back once the layer has
stored it for the last time, in the memory phases' idle time under compute, so the
cache never evicts it dirty; only what does not fit there (at least the last step's
stores) is flushed at the end. The same lines, bytes and energy; fewer exposed cycles.
`overlap_ports=True`: within a memory phase the cache port and the DRAM channel work
at once (`cost.layer_stats`).

    >>> result = simulate(module, inputs, numerics=False)
    >>> alone = [simulate_alone(t, machine) for t in result.traces]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from irflow.backends.sim.cache import LRUCache
from irflow.backends.sim.cost import LayerStats, flush_stats, layer_stats
from irflow.backends.sim.machine import Machine
from irflow.backends.sim.trace import LayerTrace


@dataclass(frozen=True)
class AloneStats:
    """A layer run alone on a cold cache, flushed at the end."""

    layer: LayerStats  # the layer itself (its cycles and its in-layer DRAM traffic)
    flush: LayerStats  # the final flush of its dirty lines (its output, mostly): its
    # cycles are the exposed ones (with `drain`, after the layer's last compute)
    drained_lines: int = 0  # of the flush's lines, written back under compute (`drain`)

    @property
    def cycles(self) -> int:
        return self.layer.cycles + self.flush.cycles

    @property
    def dram_bytes(self) -> int:
        return (self.layer.dram_bytes_read + self.layer.dram_bytes_written
                + self.flush.dram_bytes_written)

    @property
    def energy_pj(self) -> float:
        return self.layer.energy.total_pj + self.flush.energy.total_pj


def simulate_alone(trace: LayerTrace, machine: Machine, *, drain: bool = False,
                   overlap_ports: bool = False) -> AloneStats:
    """`trace` on an empty cache of `machine`, then the flush (module docstring);
    `drain`: dirty lines written back under compute once final (`drained_lines`);
    `overlap_ports`: `cost.layer_stats`'s (hits and DRAM transfers of a phase at once)."""
    cache = LRUCache(machine.cache.geometry)
    if not drain:
        stats = layer_stats(trace, cache.access(trace.line, trace.write), machine,
                            overlap_ports=overlap_ports)
        return AloneStats(stats, flush_stats(cache.flush(), machine))
    # A line the layer stores once is final at that store: the stream engine writes it
    # back itself (the queue below), so the cache never holds it dirty and never evicts
    # it with a write-back. Lines stored more than once (partial sums) stay the cache's.
    once = stored_once(trace)
    stats = layer_stats(trace, cache.access(trace.line, trace.write & ~once), machine,
                        overlap_ports=overlap_ports)
    lines, dirty = cache.contents()
    final = np.concatenate([trace.step[once].astype(np.int64),
                            final_write_steps(trace, lines[dirty])])
    flush = flush_stats(final.size, machine)  # every line's bytes and energy, once
    left = undrained_lines(final, stats, machine)
    exposed = flush_stats(left, machine).cycles
    flush = dataclasses.replace(flush, cycles=exposed, stall_cycles=exposed,
                                latency_ms=machine.cycles_to_ms(exposed))
    return AloneStats(stats, flush, final.size - left)


def stored_once(trace: LayerTrace) -> np.ndarray:
    """Per access: the store of a line that the layer stores exactly once."""
    write = trace.write.astype(bool)
    lines, count = np.unique(trace.line[write], return_counts=True)
    return write & np.isin(trace.line, lines[count == 1])


def final_write_steps(trace: LayerTrace, lines: np.ndarray) -> np.ndarray:
    """For each of `lines` (stored by the layer), the last tile step that stores it."""
    written = trace.write.astype(bool)
    w_line, w_step = trace.line[written], trace.step[written].astype(np.int64)
    order = np.lexsort((w_step, w_line))  # by line, then step: the last of a run is the max
    w_line, w_step = w_line[order], w_step[order]
    last = np.r_[w_line[1:] != w_line[:-1], True]
    pos = np.searchsorted(w_line[last], lines)
    return w_step[last][pos]


def undrained_lines(final: np.ndarray, stats: LayerStats, machine: Machine) -> int:
    """How many of the dirty lines (last stored at steps `final`) the stream engine cannot
    write back in the idle time of memory phases 1..n (docs/simulator.md §2.6).

    Step w's stores go to the cache in phase w+2 (`cost.py`), so its lines can leave in
    the idle time that follows them, phase j >= w+2; phase j (under compute j-1) has
    `max(0, C[j-1] - M[j])` idle cycles, room for `floor(idle · dram_bw / line)` lines
    (the last step's stores, phase n+1, have no compute to hide under). Lines wait in a
    queue: with a_j lines becoming ready and room c_j, what is left after the last phase
    is Lindley's `max(0, max_k Σ_{j>=k} (a_j - c_j))`."""
    tl = stats.timeline
    n = stats.steps
    if not final.size or tl is None or n == 0:
        return int(final.size)
    idle = np.maximum(0, tl.compute_cycles - tl.memory_cycles[1:n + 1])
    room = np.floor(idle * machine.dram.bytes_per_cycle / machine.cache.line_bytes + 1e-9)
    # ready[j-1]: lines that may leave from phase j on; ready[n]: only after the last
    ready = np.bincount(np.minimum(final + 2, n + 1), minlength=n + 2)[1:n + 2]
    excess = ready[:n].astype(np.float64) - room  # phases 1..n
    tail = np.cumsum(excess[::-1])[::-1]  # Σ_{j>=k}
    left = max(0.0, float(tail.max())) + float(ready[n])
    return int(round(left))


__all__ = ["AloneStats", "final_write_steps", "simulate_alone", "stored_once", "undrained_lines"]
