"""The weight-prefetch window in the mapping search's score: what the layers before a
layer leave of the DRAM channel for its first weight tile.

In a whole-network run the simulator streams a layer's first weight fetch (the
constants its step 0 loads) during the layers before it, in the time their own traffic
leaves the DRAM channel free (`backends/sim/prefetch.py`, capped at half the cache).
The per-layer estimate (`tile_search.estimate`) costs a layer alone, first load
exposed, so it overrates tilings whose first weight tile is small: LeNet-5's `fc1`
with the rule's two `k` steps of 208 is estimated at 9,554 cycles, the search's 16-wide
`k` steps at 6,696, but in the network the rule's 3,262-cycle first weight load streams
during `conv2` and the pooling after it, and `fc1` takes 6,081 cycles — fewer than the
search's tiling (docs/tiling.md, *Against the rule*).

`Window` follows the simulator's credit through the layers in program order, from the
estimates of the tilings `tile` chose (`prefetch.py`'s recurrence, its functions):

    hidden_j = min(prefetch_j, credit_j)     prefetch_j: DRAM time of step 0's weights
    free_j   = (C_j - hidden_j) - (D_j / bw - max(0, hidden_j - latency)) - latency
    credit_{j+1} = min(credit_j - hidden_j + free_j, cache bytes / 2 / bw)

and the search scores each candidate of layer j at `C - hidden_j` (its own first weight
tile against the credit the layers before left). The estimate costs a layer alone and
flushed at the end; in the network its dirty lines stay cached, so the flush's bytes and
time cancel in `free_j` and its DRAM latency (the last term) is no free time.
Layers `tile` does not estimate (pooling, element-wise, casts; a PE layer the search
leaves to the rule) add no credit
— the simulator gives them their free time, so the window the search sees is a lower
bound — and spend their own constants' fetch from it. What this leaves out: a layer's
tiling also decides the credit it leaves the next layer (the search is greedy, layer by
layer), and which of its producer's output lines are still cached when it reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.ir import Operation, SSAValue

from irflow.backends.sim import prefetch
from irflow.backends.sim.machine import Machine
from irflow.dialects import accel, nn


def is_constant(value: SSAValue) -> bool:
    """`value` is a weight: an `nn.constant`, possibly through views (reshape,
    transpose) — what the simulator places as a weight and may prefetch."""
    while True:
        owner = value.owner
        if isinstance(owner, nn.ConstantOp):
            return True
        if not isinstance(owner, Operation) or not owner.operands or not accel.is_view(owner):  # type: ignore[arg-type]
            return False
        value = owner.operands[0]


def constant_operands(op: Operation) -> list[bool]:
    """Per operand of `op`, whether it is a weight (`is_constant`)."""
    return [is_constant(v) for v in op.operands]


def first_weight_cycles(space: accel.Space, itemsizes: Sequence[float], machine: Machine,
                        sizes: np.ndarray, weights: Sequence[bool]) -> np.ndarray:
    """Per candidate (`sizes[n, j]`: tile of `space.dims[j]`), the DRAM time of step 0's
    weight slices (cold lines: every line misses) plus the DRAM latency, as the
    simulator's `LayerStats.prefetch_cycles`; 0 without weights."""
    from irflow.passes import layer_traffic

    sizes = np.atleast_2d(np.asarray(sizes, np.int64))
    line, bw = machine.cache.line_bytes, machine.dram.bytes_per_cycle
    grid = {d: sizes[:, i].astype(np.float64) for i, d in enumerate(space.dims)}
    lines = np.zeros(len(sizes))
    for acc, b, w in zip(space.operands, itemsizes, weights):
        if w:
            lines = lines + np.broadcast_to(layer_traffic._lines(acc, grid, b, line)[0],
                                            lines.shape)
    return np.where(lines > 0, np.ceil(lines * line / bw - 1e-9)
                    + machine.dram.latency_cycles, 0.0)


@dataclass
class Window:
    """The prefetch credit (cycles of free DRAM channel) before the next layer."""

    machine: Machine
    credit: float = 0.0

    @property
    def cap(self) -> float:
        return prefetch.credit_cap(self.machine)

    def hidden(self, prefetch: np.ndarray) -> np.ndarray:
        """Of each candidate's first weight fetch, what the layers before hid."""
        return np.minimum(prefetch, self.credit)

    def advance(self, cycles: float, dram_bytes: float, hidden: float) -> None:
        """After a layer the search estimated: `cycles` alone (first load exposed),
        `dram_bytes` moved, `hidden` of its first weight fetch done earlier."""
        m = self.machine
        busy = prefetch.busy_cycles(dram_bytes / m.dram.bytes_per_cycle, hidden, m)
        # the estimate ends with a flush of the layer's dirty lines (bytes and latency);
        # in the network they stay cached: the bytes leave `busy` with the flush's time,
        # the flush's latency is no free time of this layer
        flush_latency = m.dram.latency_cycles if dram_bytes > 0 else 0.0
        self.credit = prefetch.next_credit(self.credit, hidden, cycles - hidden - flush_latency,
                                           busy, self.cap)

    def spend(self, prefetch: float) -> None:
        """After a layer not estimated: it adds no credit, and its own weights' first
        fetch (`prefetch`) takes what it can."""
        self.credit -= min(self.credit, prefetch)


__all__ = ["Window", "constant_operands", "first_weight_cycles", "is_constant"]
