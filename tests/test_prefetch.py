"""The cross-layer prefetch credit (backends/sim/prefetch.py, docs/simulator.md §2) and
the KV cache updated in place (backends/sim/kv_inplace.py, docs/llm.md), by hand.

Default machine: DRAM 32 B/cycle, 100 cycles latency, 256 KiB cache: the credit is
capped at 256 KiB / 2 / 32 = 4,096 cycles.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from irflow import zoo
from irflow.backends import sim
from irflow.backends.sim.cost import CacheByRole, CacheCounts, EnergyBreakdown, LayerStats
from irflow.backends.sim.machine import load_machine
from irflow.backends.sim.prefetch import overlap_weight_prefetch

M = load_machine("default")
BASE = LayerStats(name="l", op="-", unit="pe_array", dtype="fp16", steps=1, cycles=0,
                  compute_cycles=0, stall_cycles=0, macs=0, vector_ops=0, pe_busy_cycles=0.0,
                  cache=CacheCounts(), cache_by_role=CacheByRole(), dram_bytes_read=0,
                  dram_bytes_written=0, energy=EnergyBreakdown(), latency_ms=0.0,
                  roofline_cycles=0.0, roofline_bound="memory")


def layer(cycles: int, dram_bytes: int, prefetch: int = 0) -> LayerStats:
    return replace(BASE, cycles=cycles, dram_bytes_read=dram_bytes, prefetch_cycles=prefetch)


def test_the_dram_channel_is_free_while_a_layer_computes_on_chip_data():
    # A: an attention over a cache-resident KV: 1,627 cycles, no DRAM traffic -> all of
    #    it is free channel time: credit 1,627.
    # B: a one-step linear, 83,712 B of weights (2,616 cycles on the channel), its first
    #    load phase 2,716 = 2,616 + 100 latency prefetchable, 5,367 cycles as costed:
    #    hidden = min(2,716, 1,627) = 1,627 -> 3,740 cycles. Of the hidden part 100 was
    #    latency and 1,527 bytes' time, so B's own traffic occupies the channel
    #    2,616 - 1,527 = 1,089 cycles: free = 3,740 - 1,089 = 2,651 (its compute, which
    #    runs on the weights already in) -> credit 1,627 - 1,627 + 2,651 = 2,651.
    # C: a linear whose first weight fetch takes 3,000: hidden 2,651.
    a, b, c = overlap_weight_prefetch(
        [layer(1_627, 0), layer(5_367, 83_712, 2_716), layer(6_000, 96_000, 3_000)], M)
    assert (a.cycles, a.prefetched_cycles) == (1_627, 0)
    assert (b.cycles, b.prefetched_cycles) == (5_367 - 1_627, 1_627)
    assert (c.cycles, c.prefetched_cycles) == (6_000 - 2_651, 2_651)
    # the credit is capped at half the cache's fill time
    _, d = overlap_weight_prefetch([layer(10_000, 0), layer(9_000, 0, 8_000)], M)
    assert d.prefetched_cycles == 262_144 / 2 / 32 == 4_096
    # a layer that keeps the channel busy all its time leaves no credit
    _, e = overlap_weight_prefetch([layer(1_000, 32_000), layer(2_000, 0, 500)], M)
    assert e.prefetched_cycles == 0


def test_the_kv_cache_is_updated_in_place_and_the_numbers_stay_the_reference():
    # decoder-15m decode, cache of L = 8 positions, fp32: per layer, K and V, the concat
    # loads the new row (2 KV heads x 64 dims x 4 B = 512 B = 8 lines, an earlier
    # layer's output) and stores the same 8 lines of present's row L; the 2 x 8 x 64 x
    # 4 B = 4 KiB of past rows are neither loaded nor copied. Attention then reads
    # present's 9 rows: the 64 lines of past rows from DRAM, prefetchable (`ready`).
    from irflow.backends.reference import run

    module = zoo.load("decoder-15m", entry="decode", cache=8)
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal((1, 2, 8, 64)).astype(np.float32)
             for i in range(6) for n in (f"past.{i}.key", f"past.{i}.value")}
    feeds["input_ids"] = np.array([[7]])
    result = sim.simulate(module, feeds)
    concats = [t for t in result.traces if t.op == "nn.concat"]
    assert len(concats) == 12
    for t in concats:
        assert (int((~t.write).sum()), int(t.write.sum())) == (8, 8)
        assert "KV cache updated in place" in " ".join(t.notes)
    attn = next(t for t in result.traces if t.op == "nn.attention")
    assert attn.ready is not None and int(attn.ready.sum()) == 2 * 64  # K and V
    ref = run(module, feeds)
    for k in ("logits", "present.0.key", "present.5.value"):
        np.testing.assert_allclose(result.outputs[k], ref[k], rtol=1e-4, atol=1e-5)
    total = result.report.total
    assert total.cycles >= (total.dram_bytes_read + total.dram_bytes_written) / 32
