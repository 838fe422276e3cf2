"""The streaming cost model on hand-computed cases (docs/simulator.md has the formulas).

Default machine: 16x16 PEs (fp32 64 MACs/cycle, int8 256), fill/drain 32 cycles,
64 vector lanes, 64 B lines, hits 64 B/cycle (1 cycle/line), DRAM 32 B/cycle
(2 cycles/line) + 100 cycles latency per phase that touches DRAM.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from irflow.backends.sim.cache import CacheOutcome, LRUCache
from irflow.backends.sim.cost import flush_stats, layer_stats, total
from irflow.backends.sim.machine import load_machine
from irflow.backends.sim.trace import LayerTrace, Role, Unit
from irflow.diagnostics import SimulationError

M = load_machine("default")


def trace(accesses=(), macs=(0,), vector_ops=None, unit=Unit.PE_ARRAY, dtype="fp32", **kw):
    """accesses: (line, write, role, step) tuples in program order."""
    a = list(accesses)
    col = lambda i, dt: np.array([x[i] for x in a], dt)  # noqa: E731
    n = len(macs)
    return LayerTrace(
        name=kw.pop("name", "layer"), op=kw.pop("op", "accel.matmul"), unit=unit, dtype=dtype,
        line=col(0, np.int64), write=col(1, bool), role=col(2, np.int8), step=col(3, np.int32),
        step_macs=np.array(macs, np.int64),
        step_vector_ops=np.array(vector_ops if vector_ops is not None else [0] * n, np.int64),
        **kw,
    )


def run(t: LayerTrace, cache: LRUCache | None = None, machine=M):
    cache = cache or LRUCache(machine.cache.geometry)
    return layer_stats(t, cache.access(t.line, t.write), machine)


def loads(lines, step, role=Role.INPUT):
    return [(line, False, role, step) for line in lines]


def stores(lines, step):
    return [(line, True, Role.OUTPUT, step) for line in lines]


# ---------------------------------------------------------------------- hand cases


@pytest.mark.parametrize("dtype,expected", [
    ("fp32", 256 // 64 + 32),  # 64 MACs/cycle
    ("fp16", 256 // 128 + 32),
    ("int8", 256 // 256 + 32),
    ("int4", 1 + 32),  # 0.5 cycle rounds up
])
def test_one_step_compute_only(dtype, expected):
    s = run(trace(macs=[256], dtype=dtype))
    assert (s.cycles, s.compute_cycles, s.stall_cycles) == (expected, expected, 0)
    assert s.macs == 256


def test_a_step_whose_lines_all_miss():
    # first load: 20 lines x 64 B / 32 B/cycle + 100 latency = 140, exposed; then compute.
    s = run(trace(loads(range(20), 0), macs=[256]))
    assert s.cycles == 20 * 64 // 32 + 100 + (4 + 32)
    assert s.stall_cycles == 140
    assert s.dram_bytes_read == 20 * 64 and s.dram_bytes_written == 0
    assert (s.cache.misses, s.cache.hits) == (20, 0)


def test_a_step_whose_lines_all_hit():
    cache = LRUCache(M.cache.geometry)
    cache.access(np.arange(20), np.zeros(20, bool))  # warm
    s = run(trace(loads(range(20), 0), macs=[256]), cache)
    assert s.cycles == 20 * 64 // 64 + 36  # hits: 1 cycle per line, no latency
    assert s.dram_bytes_read == 0


def test_double_buffering_hides_the_shorter_of_compute_and_memory():
    # 3 steps, each loads 10 fresh lines (120 cycles) and computes 4096 MACs (64+32 = 96).
    acc = [a for i in range(3) for a in loads(range(10 * i, 10 * i + 10), i)]
    s = run(trace(acc, macs=[4096] * 3))
    # P(load 0) + max(C0, P(load 1)) + max(C1, P(load 2)) + max(C2, nothing)
    assert s.cycles == 120 + 120 + 120 + 96
    assert s.compute_cycles == 3 * 96 and s.stall_cycles == 456 - 288
    # compute-heavy steps hide the loads completely except the first
    s = run(trace(acc, macs=[64 * 1000] * 3))
    assert s.cycles == 120 + 3 * (1000 + 32)


def test_stores_drain_after_the_last_step_and_overlap_otherwise():
    # step 0 stores 4 lines (write-allocate misses: 4 x 2 + 100 = 108), written during
    # step 1's compute; step 1's 4 stores are the exposed drain.
    acc = stores(range(4), 0) + stores(range(4, 8), 1)
    s = run(trace(acc, macs=[64 * 500, 64 * 500]))
    assert s.cycles == 0 + (500 + 32) + max(532, 108) + 108
    assert s.dram_bytes_read == 8 * 64  # write-allocate fetches the lines
    assert s.cache_by_role.output.misses == 8


def test_dirty_write_backs_use_dram_bandwidth():
    one_set = M.cache.sets  # lines k * sets all map to set 0 (8 ways)
    cache = LRUCache(M.cache.geometry)
    cache.access(np.arange(8) * one_set, np.ones(8, bool))  # set 0 full of dirty lines
    s = run(trace(loads([8 * one_set], 0), macs=[0]), cache)
    assert (s.cache.evictions, s.cache.writebacks) == (1, 1)
    assert s.cycles == 2 * 64 // 32 + 100  # fetch one line + write one back
    assert s.dram_bytes_written == 64


def test_structured_sparsity_halves_mac_cycles_when_supported():
    dense = run(trace(macs=[64 * 64]))
    sparse = run(trace(macs=[64 * 64], sparsity="2:4"))
    assert dense.compute_cycles == 64 + 32 and sparse.compute_cycles == 32 + 32
    assert sparse.energy.mac_pj == pytest.approx(dense.energy.mac_pj / 2)
    micro = load_machine("micro")  # no sparse datapath: dense, with a note
    s = run(trace(macs=[64 * 64], sparsity="2:4"), machine=micro)
    assert s.compute_cycles == 64 * 64 // (64 * 0.125) + 16
    assert any("not supported" in n for n in s.notes)


@pytest.mark.parametrize("kind,cpe", [("relu", 1), ("gelu", 8), ("softmax", 5)])
def test_vector_steps(kind, cpe):
    s = run(trace(macs=[0, 0], vector_ops=[6400, 640], unit=Unit.VECTOR, vector_kind=kind))
    assert s.compute_cycles == 6400 * cpe // 64 + 640 * cpe // 64
    assert s.energy.vector_pj == pytest.approx(7040 * cpe * 0.9)
    assert s.pe_utilization == 0


def test_dma_layer_costs_memory_only():
    acc = loads(range(8), 0) + stores(range(100, 108), 0)
    s = run(trace(acc, macs=[0], unit=Unit.DMA, op="accel.copy"))
    assert s.compute_cycles == 0
    assert s.cycles == (8 * 2 + 100) + (8 * 2 + 100)


def test_counts_per_role_and_energy_by_hand():
    acc = loads(range(4), 0, Role.INPUT) + loads(range(50, 52), 0, Role.WEIGHT) \
        + loads(range(4), 0, Role.INPUT) + stores([90], 0)
    s = run(trace(acc, macs=[1000], dtype="int8"))
    r = s.cache_by_role
    assert (r.input.accesses, r.input.hits, r.input.misses) == (8, 4, 4)
    assert (r.weight.accesses, r.weight.misses, r.output.misses) == (2, 2, 1)
    assert s.cache.accesses == 11 and s.cache.hit_rate == pytest.approx(4 / 11)
    line_pj = 64 / 8 * 50.0  # 8 64-bit words at 50 pJ
    assert s.energy.mac_pj == pytest.approx(1000 * 0.23)
    assert s.energy.cache_pj == pytest.approx((11 + 7) * line_pj)  # accesses + fills
    assert s.energy.dram_pj == pytest.approx(7 * 64 * 160.0)  # 640 pJ / 4 bytes
    assert s.latency_ms == pytest.approx(s.cycles / 1e6)


def test_roofline_and_utilization():
    s = run(trace(macs=[64 * 1000], compulsory_bytes=64 * 32 * 10))
    assert s.roofline_cycles == 1000 and s.roofline_bound == "compute"
    assert s.pe_utilization == pytest.approx(1000 / 1032)
    assert s.achieved_over_bound == pytest.approx(1032 / 1000)
    s = run(trace(macs=[64], compulsory_bytes=32 * 1000))
    assert s.roofline_cycles == 1000 and s.roofline_bound == "memory"


def test_total_adds_layers_and_flush():
    a = run(trace(loads(range(20), 0), macs=[256], name="a"))
    b = run(trace(loads(range(40), 0), macs=[512], name="b"))
    f = flush_stats(3, M)
    assert f.cycles == 3 * 2 + 100 and f.dram_bytes_written == 3 * 64
    t = total([a, b, f], M)
    assert t.cycles == a.cycles + b.cycles + f.cycles
    assert t.macs == 768 and t.cache.misses == 60
    assert t.energy.total_pj == pytest.approx(a.energy_pj + b.energy_pj + f.energy_pj)
    assert t.dram_bytes_written == 3 * 64


def test_bad_input_names_the_layer():
    t = trace(loads(range(3), 0), macs=[1], name="conv7")
    bad = CacheOutcome(np.zeros(2, bool), np.zeros(2, bool), np.zeros(2, bool))
    with pytest.raises(SimulationError, match="conv7"):
        layer_stats(t, bad, M)
    with pytest.raises(SimulationError, match="conv7.*unknown vector op kind 'rleu'.*relu"):
        run(trace(macs=[0], vector_ops=[5], unit=Unit.VECTOR, vector_kind="rleu", name="conv7"))
    with pytest.raises(SimulationError, match="unknown operand data type 'fp64'"):
        run(trace(macs=[5], dtype="fp64"))
    with pytest.raises(SimulationError, match="step index"):
        run(trace(loads(range(3), 4), macs=[1]))
    with pytest.raises(SimulationError, match=r"role outside 0 \(input\), 1 \(weight\)"):
        run(trace([(0, False, 7, 0)], macs=[1]))


# ---------------------------------------------------------------------- properties


@st.composite
def random_layers(draw):
    n_steps = draw(st.integers(1, 12))
    n_acc = draw(st.integers(0, 400))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    lines = rng.integers(0, draw(st.sampled_from([50, 5000, 50000])), n_acc)
    steps = np.sort(rng.integers(0, n_steps, n_acc))
    write = rng.random(n_acc) < 0.2
    macs = rng.integers(0, 200_000, n_steps)
    dtype = draw(st.sampled_from(["fp32", "int8", "bf16"]))
    t = LayerTrace("l", "accel.conv2d", Unit.PE_ARRAY, dtype, lines, write,
                   rng.integers(0, 3, n_acc).astype(np.int8), steps.astype(np.int32), macs,
                   np.zeros(n_steps, np.int64),
                   compulsory_bytes=len(np.unique(lines)) * 64)
    return t


@settings(max_examples=50, deadline=None)
@given(t=random_layers(), preset=st.sampled_from(["default", "micro", "server"]))
def test_cycles_are_at_least_both_roofline_bounds_on_a_cold_cache(t, preset):
    m = load_machine(preset)
    t.compulsory_bytes = len(np.unique(t.line)) * m.cache.line_bytes
    s = run(t, machine=m)
    assert s.cycles >= t.macs / m.peak_macs_per_cycle(t.dtype)
    assert s.cycles >= t.compulsory_bytes / m.dram.bytes_per_cycle
    assert s.cycles >= s.roofline_cycles
    assert s.cycles == s.compute_cycles + s.stall_cycles and s.stall_cycles >= 0
    assert s.cache.hits + s.cache.misses == s.cache.accesses == len(t.line)
    assert 0 <= s.pe_utilization <= 1


@settings(max_examples=25, deadline=None)
@given(t=random_layers())
def test_same_input_same_counts(t):
    assert run(t) == run(t)
