"""Weight prefetch across layers: a layer's first weight tile streams in during earlier
layers' idle DMA time.

A layer's cost (`cost.layer_stats`) starts with its first load phase exposed: step 0
cannot compute before its operands are in. Of that phase, the weights' DRAM fetch
(`LayerStats.prefetch_cycles`) depends on no earlier layer — weights are constants —
so the stream engine fetches it ahead, in the cycles earlier layers left its DMA idle
(their compute ran longer than their own memory phases). The credit of idle DMA time
carries forward from layer to layer, at most as much as it takes to fill half the cache
from DRAM (what a prefetched tile may occupy: the tiling keeps each layer's
double-buffered working set within the cache). A layer's cycles drop by what was
hidden (`prefetched_cycles`), and its timeline's first load phase is that much shorter
(the Chrome trace draws each layer's events inside the layer).

    credit_0 = 0
    hidden_j = min(prefetch_j, credit_j)
    credit_{j+1} = min(credit_j - hidden_j + idle_j, cache bytes / 2 / DRAM bytes per cycle)
    idle_j = cycles_j - dma_cycles_j

The cache simulation is unchanged (the same accesses in the same order); only time
moves. Without it a batch-1 decode step, whose small linears are a tile step or two,
pays each layer's whole weight fetch before its compute (docs/llm.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from irflow.backends.sim.cost import LayerStats, StepTimeline
from irflow.backends.sim.machine import Machine


def overlap_weight_prefetch(stats: Sequence[LayerStats], machine: Machine) -> list[LayerStats]:
    """`stats` with each layer's prefetchable first weight fetch hidden in the idle
    DMA time of the layers before it (module docstring)."""
    cap = machine.cache.size_bytes / 2 / machine.dram.bytes_per_cycle
    credit = 0.0
    out: list[LayerStats] = []
    for s in stats:
        hide = int(min(s.prefetch_cycles, credit))
        idle = s.cycles - s.dma_cycles
        if hide:
            tl = s.timeline
            if tl is not None:  # the first load phase shrinks by what ran earlier
                start, mem = tl.memory_start - hide, tl.memory_cycles.copy()
                start[0], mem[0] = 0, mem[0] - hide
                tl = StepTimeline(tl.compute_start - hide, tl.compute_cycles, start, mem)
            s = replace(s, cycles=s.cycles - hide, stall_cycles=s.stall_cycles - hide,
                        latency_ms=machine.cycles_to_ms(s.cycles - hide),
                        prefetched_cycles=hide, timeline=tl)
        credit = min(credit - hide + max(idle, 0), cap)
        out.append(s)
    return out
