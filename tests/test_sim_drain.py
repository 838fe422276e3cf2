"""The simulator's two options for a layer-at-a-time peer's assumptions (docs/simulator.md
§2.6), on hand-computed cases: `overlap_ports` (a memory phase's cache hits overlap its
DRAM transfers) and `simulate_alone(drain=True)` (dirty lines written back under compute
once the layer has stored them for the last time). Default machine: hits 1 cycle a
line, DRAM 2 cycles a line + 100 latency on the exposed phases; fp32 matmul steps of one
fold (16 × 16 weights), C = 32 + max(32, 4m) + 30 for the first step, max(32, 4m) after
(tests/test_cost.py's conventions)."""

from __future__ import annotations

from test_cost import loads, stores, trace

from irflow.backends.sim.cache import LRUCache
from irflow.backends.sim.cost import layer_stats
from irflow.backends.sim.isolated import final_write_steps, simulate_alone
from irflow.backends.sim.machine import load_machine

M = load_machine("default")


def two_steps():
    """Step 0 loads lines 0..39 (cold); step 1 re-reads them (40 hits) and 40 new lines."""
    acc = loads(range(40), 0) + loads(range(40), 1) + loads(range(40, 80), 1)
    return trace(acc, tiles=[(4, 16, 16), (4, 16, 16)])


def test_overlapped_ports_take_the_slower_of_cache_port_and_dram_channel():
    t = two_steps()
    serial = layer_stats(t, LRUCache(M.cache.geometry).access(t.line, t.write), M)
    both = layer_stats(t, LRUCache(M.cache.geometry).access(t.line, t.write), M,
                       overlap_ports=True)
    # phase 0: 40 misses = 80 + 100 latency (no hits: the same either way)
    assert serial.timeline.memory_cycles[0] == both.timeline.memory_cycles[0] == 180
    # phase 1 (under step 0's compute, 94): serial 40 hits + 40 misses = 40 + 80 = 120;
    # overlapped max(cache port 40 + 40 lines = 80, DRAM 40 lines = 80) = 80
    assert serial.timeline.memory_cycles[1] == 120 and both.timeline.memory_cycles[1] == 80
    assert serial.cycles == 180 + 120 + 32 and both.cycles == 180 + 94 + 32
    assert serial.dram_bytes_read == both.dram_bytes_read == 80 * 64  # the same traffic


def five_storing_steps(m: int):
    """Five steps of (m, 16, 16), step s storing 10 fresh lines 100 + 10 s ..."""
    acc = [a for s in range(5) for a in stores(range(100 + 10 * s, 110 + 10 * s), s)]
    return trace(acc, tiles=[(m, 16, 16)] * 5)


def test_drain_writes_back_final_lines_under_compute():
    t = five_storing_steps(64)  # C = 318, 256, 256, 256, 256
    plain, drained = simulate_alone(t, M), simulate_alone(t, M, drain=True)
    # stores of step s go to the cache in phase s+2 (10 write-allocate misses: 20 cycles);
    # the last step's are exposed (+100): 318 + 4 x 256 + 120
    assert plain.layer.cycles == drained.layer.cycles == 1462
    assert plain.flush.cycles == 50 * 2 + 100  # 50 dirty lines flushed at the end
    # steps 0..3's lines leave in phases 2..5, after their own stores (idle 236 cycles
    # each: room for 118 lines); step 4 stores in phase 6, with no compute left to hide
    # under: its 10 lines are flushed at the end
    assert list(final_write_steps(t, t.line)) == [s for s in range(5) for _ in range(10)]
    assert drained.drained_lines == 40
    assert drained.flush.cycles == 10 * 2 + 100 and drained.cycles == 1462 + 120
    # the same lines, bytes and energy: only when they leave changes
    assert drained.dram_bytes == plain.dram_bytes == 100 * 64
    assert drained.energy_pj == plain.energy_pj


def test_drain_is_limited_by_the_idle_time_of_each_phase():
    t = five_storing_steps(4)  # C = 94, 32, 32, 32, 32; memory 20 a phase: idle 12 = 6 lines
    drained = simulate_alone(t, M, drain=True)
    # ready 10 lines in each of phases 2..5, room 6: 4, 8, 12, then 16 left; + 10 from
    # step 4 = 26 lines at the end
    assert drained.drained_lines == 50 - 26
    assert drained.flush.cycles == 26 * 2 + 100


def test_defaults_are_unchanged():
    t = two_steps()
    assert simulate_alone(t, M) == simulate_alone(t, M, drain=False, overlap_ports=False)


def test_drain_keeps_lines_stored_once_clean_in_the_cache():
    # 15 lines of one set (512 sets, 8 ways), 3 per step: the last 7 stores evict dirty
    # lines the plain run writes back during the layer; drained, the stream engine wrote
    # them back already, so the cache evicts them clean
    sets = M.cache.geometry.sets
    acc = [a for s in range(5) for a in stores([sets * k for k in range(3 * s, 3 * s + 3)], s)]
    t = trace(acc, tiles=[(64, 16, 16)] * 5)
    plain, drained = simulate_alone(t, M), simulate_alone(t, M, drain=True)
    assert plain.layer.cache.writebacks == 7 and plain.flush.dram_bytes_written == 8 * 64
    assert drained.layer.cache.writebacks == 0
    assert drained.flush.dram_bytes_written == 15 * 64 and drained.drained_lines == 12
    assert drained.dram_bytes == plain.dram_bytes and drained.energy_pj == plain.energy_pj
    assert drained.cycles < plain.cycles
