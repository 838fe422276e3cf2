"""Weight prefetch across layers: a layer's first weight tile streams in while the DRAM
channel is free during earlier layers.

A layer's cost (`cost.layer_stats`) starts with its first load phase exposed: step 0
cannot compute before its operands are in. Of that phase, the weights' DRAM fetch
(`LayerStats.prefetch_cycles`) depends on no earlier layer — weights are constants —
so the stream engine fetches it ahead, TPU-style, on a queue of its own. The resource
it needs is the DRAM channel, and a layer occupies the channel only while its own
lines cross it: `dram_j = (bytes read + bytes written) / DRAM bytes per cycle`. The
rest of the layer's time the channel is free — its compute (an attention over a
cache-resident KV, a norm, a residual add), the cache port serving its hits, and the
DRAM latency of its exposed phases (latency is the round trip of a request, not
occupancy: other requests are in flight behind it). That free time is a credit that
carries forward from layer to layer, at most as much as it takes to fill half the
cache from DRAM (what a prefetched tile may occupy: the tiling keeps each layer's
double-buffered working set within the cache). A layer's cycles drop by what was
hidden (`prefetched_cycles`), and its timeline's first load phase is that much shorter
(the Chrome trace draws each layer's events inside the layer).

    credit_0 = 0
    hidden_j = min(prefetch_j, credit_j)
    credit_{j+1} = min(credit_j - hidden_j + free_j, cache bytes / 2 / DRAM bytes per cycle)
    free_j = (cycles_j - hidden_j) - (dram_j - max(0, hidden_j - latency))

(`hidden_j` first covers the prefetched phase's latency, then its bytes: the bytes that
moved earlier no longer occupy the channel during layer j.) Nothing is invented: the
channel still carries every byte, so the step's cycles never drop below its DRAM bytes
/ bandwidth (`tests/test_prefetch.py`). The cache simulation is unchanged (the same
accesses in the same order); only time moves. Without it a batch-1 decode step, whose
small linears are a tile step or two, pays each layer's whole weight fetch before its
compute, and every norm, add and attention between them adds its own time to the
weight stream's (docs/llm.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from irflow.backends.sim.cost import LayerStats, StepTimeline
from irflow.backends.sim.machine import Machine


def dram_channel_cycles(s: LayerStats, machine: Machine) -> float:
    """Cycles layer `s`'s own DRAM traffic occupies the channel (no latency)."""
    return (s.dram_bytes_read + s.dram_bytes_written) / machine.dram.bytes_per_cycle


def credit_cap(machine: Machine) -> float:
    """The most prefetch credit the channel can bank: half the cache's bytes."""
    return machine.cache.size_bytes / 2 / machine.dram.bytes_per_cycle


def busy_cycles(channel_cycles: float, hidden: float, machine: Machine) -> float:
    """A layer's own channel time less what of its first fetch ran earlier (beyond the
    latency, which the earlier layers do not carry)."""
    return channel_cycles - max(0.0, hidden - machine.dram.latency_cycles)


def next_credit(credit: float, hidden: float, cycles: float, busy: float, cap: float) -> float:
    """The credit after a layer that hid `hidden` of its first fetch and then ran
    `cycles` with the channel `busy` for that many: what it spent, plus its free time."""
    return min(credit - hidden + max(cycles - busy, 0.0), cap)


def overlap_weight_prefetch(stats: Sequence[LayerStats], machine: Machine) -> list[LayerStats]:
    """`stats` with each layer's prefetchable first weight fetch hidden in the free
    DRAM-channel time of the layers before it (module docstring)."""
    cap = credit_cap(machine)
    credit = 0.0
    out: list[LayerStats] = []
    for s in stats:
        hide = int(min(s.prefetch_cycles, credit))
        busy = busy_cycles(dram_channel_cycles(s, machine), hide, machine)
        if hide:
            tl = s.timeline
            if tl is not None:  # the first load phase shrinks by what ran earlier
                start, mem = tl.memory_start - hide, tl.memory_cycles.copy()
                start[0], mem[0] = 0, mem[0] - hide
                tl = StepTimeline(tl.compute_start - hide, tl.compute_cycles, start, mem)
            s = replace(s, cycles=s.cycles - hide, stall_cycles=s.stall_cycles - hide,
                        latency_ms=machine.cycles_to_ms(s.cycles - hide),
                        prefetched_cycles=hide, timeline=tl)
        credit = next_credit(credit, hide, s.cycles, busy, cap)
        out.append(s)
    return out
