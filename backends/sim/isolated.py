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

    >>> result = simulate(module, inputs, numerics=False)
    >>> alone = [simulate_alone(t, machine) for t in result.traces]
"""

from __future__ import annotations

from dataclasses import dataclass

from irflow.backends.sim.cache import LRUCache
from irflow.backends.sim.cost import LayerStats, flush_stats, layer_stats
from irflow.backends.sim.machine import Machine
from irflow.backends.sim.trace import LayerTrace


@dataclass(frozen=True)
class AloneStats:
    """A layer run alone on a cold cache, flushed at the end."""

    layer: LayerStats  # the layer itself (its cycles and its in-layer DRAM traffic)
    flush: LayerStats  # the final flush of its dirty lines (its output, mostly)

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


def simulate_alone(trace: LayerTrace, machine: Machine) -> AloneStats:
    """`trace` on an empty cache of `machine`, then the flush (module docstring)."""
    cache = LRUCache(machine.cache.geometry)
    stats = layer_stats(trace, cache.access(trace.line, trace.write), machine)
    return AloneStats(stats, flush_stats(cache.flush(), machine))


__all__ = ["AloneStats", "simulate_alone"]
