"""The streaming cost model on hand-computed cases (docs/simulator.md has the formulas).

Default machine: 16x16 PEs (fp32 64 MACs/cycle, int8 256), weight-stationary,
double-buffered weights loaded at 32 B/cycle (256 fp32 weights: L = 32 cycles), 64
vector lanes, 64 B lines, hits 64 B/cycle (1 cycle/line), DRAM 32 B/cycle (2
cycles/line) + 100 cycles latency on a layer's first load phase and its drain (the
phases that overlap compute have theirs in flight behind the previous phase). PE steps
here are matmul tiles (m, n, k): with n = k = 16 one fold, so a layer's first step costs
L + max(L, S) + K = 32 + max(32, ceil(m / rate)) + 30 in fp32, a later step max(L, S)
(mapping formulas: tests/test_mapping.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from irflow.backends.sim.cache import CacheOutcome, LRUCache
from irflow.backends.sim.cost import flush_stats, layer_stats, total
from irflow.backends.sim.machine import load_machine
from irflow.backends.sim.mapping import map_space
from irflow.backends.sim.trace import LayerTrace, Role, Unit
from irflow.diagnostics import SimulationError
from irflow.dialects import accel

M = load_machine("default")


def matmul_tiles(tiles):
    """Map space and step_tiles of matmul steps given as (m, n, k) tiles."""
    t = np.array([(1, *x) for x in tiles], np.int64).reshape(-1, 4)
    m, n, k = (int(v) for v in t[:, 1:].max(axis=0))
    ms = map_space(accel.layer_space("nn.matmul", [(m, k), (k, n)], (m, n), {}))
    return ms, t


def trace(accesses=(), tiles=None, vector_ops=None, unit=Unit.PE_ARRAY, dtype="fp32",
          n_steps=1, **kw):
    """accesses: (line, write, role, step) tuples in program order; tiles: per step
    (m, n, k) of a matmul on the PE array (MACs m·n·k), or None for no MACs."""
    a = list(accesses)
    col = lambda i, dt: np.array([x[i] for x in a], dt)  # noqa: E731
    if tiles is not None:
        ms, step_tiles = matmul_tiles(tiles)
        kw.update(map_space=ms, step_tiles=step_tiles)
        macs = step_tiles.prod(axis=1)
    else:
        macs = np.zeros(len(vector_ops) if vector_ops is not None else n_steps, np.int64)
    return LayerTrace(
        name=kw.pop("name", "layer"), op=kw.pop("op", "accel.matmul"), unit=unit, dtype=dtype,
        line=col(0, np.int64), write=col(1, bool), role=col(2, np.int8), step=col(3, np.int32),
        step_macs=macs,
        step_vector_ops=np.array(vector_ops if vector_ops is not None else [0] * len(macs),
                                 np.int64),
        **kw,
    )


def fold(m):
    """One fold of a (m, 16, 16) tile: 256·m MACs."""
    return [(m, 16, 16)]


def run(t: LayerTrace, cache: LRUCache | None = None, machine=M):
    cache = cache or LRUCache(machine.cache.geometry)
    return layer_stats(t, cache.access(t.line, t.write), machine)


def loads(lines, step, role=Role.INPUT):
    return [(line, False, role, step) for line in lines]


def stores(lines, step):
    return [(line, True, Role.OUTPUT, step) for line in lines]


# ---------------------------------------------------------------------- hand cases


@pytest.mark.parametrize("dtype,load,expected", [
    ("fp32", 32, 32 + 64 * 4 + 30),  # a PE does 1/4 MAC per cycle: 64 rows stream in 256
    ("fp16", 16, 16 + 64 * 2 + 30),  # 256 weights x 2 B over 32 B/cycle: 16 cycles
    ("int8", 8, 8 + 64 + 30),
    ("int4", 4, 4 + 32 + 30),  # 2 MACs per PE per cycle: int4 x int4 keeps its rate
])
def test_one_step_compute_only(dtype, load, expected):
    s = run(trace(tiles=fold(64), dtype=dtype))
    assert (s.cycles, s.compute_cycles, s.stall_cycles) == (expected, expected, 0)
    assert s.macs == 64 * 256
    assert (s.load_cycles, s.fill_drain_cycles, s.folds) == (load, 30, 1)


def test_a_step_whose_lines_all_miss():
    # first load: 20 lines x 64 B / 32 B/cycle + 100 latency = 140, exposed; then compute.
    s = run(trace(loads(range(20), 0), tiles=fold(1)))
    assert s.cycles == 20 * 64 // 32 + 100 + (32 + 32 + 30)
    assert s.stall_cycles == 140
    assert s.dram_bytes_read == 20 * 64 and s.dram_bytes_written == 0
    assert (s.cache.misses, s.cache.hits) == (20, 0)


def test_a_step_whose_lines_all_hit():
    cache = LRUCache(M.cache.geometry)
    cache.access(np.arange(20), np.zeros(20, bool))  # warm
    s = run(trace(loads(range(20), 0), tiles=fold(1)), cache)
    assert s.cycles == 20 * 64 // 64 + 94  # hits: 1 cycle per line, no latency
    assert s.dram_bytes_read == 0


def test_double_buffering_hides_the_shorter_of_compute_and_memory():
    # 3 steps, each loads 60 fresh lines (120 cycles; the first phase + 100 latency) and
    # computes 16 rows: step 0 32 + 64 + 30 = 126, steps 1, 2 pipelined behind it: 64
    acc = [a for i in range(3) for a in loads(range(60 * i, 60 * i + 60), i)]
    s = run(trace(acc, tiles=fold(16) * 3))
    # P(load 0) + max(C0, P(load 1)) + max(C1, P(load 2)) + max(C2, nothing)
    assert s.cycles == 220 + 126 + 120 + 64
    assert s.compute_cycles == 126 + 64 + 64 and s.stall_cycles == 530 - 254
    assert s.limited_by == "bandwidth"
    # compute-heavy steps hide the loads completely except the first
    s = run(trace(acc, tiles=fold(250) * 3))
    assert s.cycles == 220 + (32 + 1000 + 30) + 2 * 1000
    assert s.limited_by == "compute"


def test_stores_drain_after_the_last_step_and_overlap_otherwise():
    # step 0 stores 4 lines (write-allocate misses: 4 x 2 = 8, latency in flight),
    # written during step 1's compute; step 1's 4 stores are the exposed drain (+ 100).
    acc = stores(range(4), 0) + stores(range(4, 8), 1)
    s = run(trace(acc, tiles=fold(125) * 2))
    assert s.cycles == 0 + (32 + 500 + 30) + max(500, 8) + 108
    assert s.dram_bytes_read == 8 * 64  # write-allocate fetches the lines
    assert s.cache_by_role.output.misses == 8


def test_dirty_write_backs_use_dram_bandwidth():
    one_set = M.cache.sets  # lines k * sets all map to set 0 (8 ways)
    cache = LRUCache(M.cache.geometry)
    cache.access(np.arange(8) * one_set, np.ones(8, bool))  # set 0 full of dirty lines
    s = run(trace(loads([8 * one_set], 0)), cache)
    assert (s.cache.evictions, s.cache.writebacks) == (1, 1)
    assert s.cycles == 2 * 64 // 32 + 100  # fetch one line + write one back
    assert s.dram_bytes_written == 64


def test_structured_sparsity_halves_the_reduction_the_array_folds_over():
    # k = 32 on 16 rows: two row folds dense, one when 2:4 halves k.
    dense = run(trace(tiles=[(64, 16, 32)]))
    sparse = run(trace(tiles=[(64, 16, 32)], sparsity="2:4"))
    # (512 fp32 weights: 64 cycles of load over 2 folds; 256 after 2:4: 32)
    assert dense.compute_cycles == 32 + 2 * 256 + 30 and sparse.compute_cycles == 32 + 256 + 30
    assert sparse.energy.mac_pj == pytest.approx(dense.energy.mac_pj / 2)
    # k = 16 already fits the rows: halving it leaves one fold, half the rows idle (only
    # the load of the 128 kept weights shrinks: 16 cycles)
    assert run(trace(tiles=fold(64), sparsity="2:4")).compute_cycles == 16 + 256 + 30
    micro = load_machine("micro")  # no sparse datapath: dense, with a note
    s = run(trace(tiles=[(64, 16, 32)], sparsity="2:4"), machine=micro)
    # 8x8: 4 row folds x 2 column folds, fp32 1/8 MAC per cycle, double-buffered weights
    # over a 16 B/cycle path: 2 KiB = 128 cycles, 16 per fold: 16 + 8 x 512 + 14
    assert s.compute_cycles == 16 + 8 * 512 + 14
    assert any("not supported" in n for n in s.notes)


@pytest.mark.parametrize("kind,cpe", [("relu", 1), ("gelu", 8), ("softmax", 5)])
def test_vector_steps(kind, cpe):
    s = run(trace(vector_ops=[6400, 640], unit=Unit.VECTOR, vector_kind=kind))
    assert s.compute_cycles == 6400 * cpe // 64 + 640 * cpe // 64
    assert s.energy.vector_pj == pytest.approx(7040 * cpe * 0.9)
    assert s.pe_utilization == 0


def test_dma_layer_costs_memory_only():
    acc = loads(range(8), 0) + stores(range(100, 108), 0)
    s = run(trace(acc, unit=Unit.DMA, op="accel.copy"))
    assert s.compute_cycles == 0
    assert s.cycles == (8 * 2 + 100) + (8 * 2 + 100)


def test_counts_per_role_and_energy_by_hand():
    acc = loads(range(4), 0, Role.INPUT) + loads(range(50, 52), 0, Role.WEIGHT) \
        + loads(range(4), 0, Role.INPUT) + stores([90], 0)
    s = run(trace(acc, tiles=[(125, 8, 1)], dtype="int8"))
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
    s = run(trace(tiles=fold(250), compulsory_bytes=64 * 32 * 10))
    assert s.roofline_cycles == 1000 and s.roofline_bound == "compute"
    assert s.pe_utilization == pytest.approx(1000 / 1062)
    assert (s.spatial_utilization, s.temporal_utilization) == (1.0, 1000 / 1062)
    assert s.achieved_over_bound == pytest.approx(1062 / 1000)
    s = run(trace(tiles=[(1, 8, 8)], compulsory_bytes=32 * 1000))
    assert s.roofline_cycles == 1000 and s.roofline_bound == "memory"
    assert s.spatial_utilization == pytest.approx(64 / 256)  # 8 x 8 of the 16 x 16 PEs


def test_total_adds_layers_and_flush():
    a = run(trace(loads(range(20), 0), tiles=fold(1), name="a"))
    b = run(trace(loads(range(40), 0), tiles=fold(2), name="b"))
    f = flush_stats(3, M)
    assert f.cycles == 3 * 2 + 100 and f.dram_bytes_written == 3 * 64
    t = total([a, b, f], M)
    assert t.cycles == a.cycles + b.cycles + f.cycles
    assert t.macs == 768 and t.cache.misses == 60
    assert t.energy.total_pj == pytest.approx(a.energy_pj + b.energy_pj + f.energy_pj)
    assert t.dram_bytes_written == 3 * 64
    assert t.mapping == "ws: rows=k, cols=n" and t.pe_cycles == a.pe_cycles + b.pe_cycles


def test_bad_input_names_the_layer():
    t = trace(loads(range(3), 0), tiles=[(1, 1, 1)], name="conv7")
    bad = CacheOutcome(np.zeros(2, bool), np.zeros(2, bool), np.zeros(2, bool))
    with pytest.raises(SimulationError, match="conv7"):
        layer_stats(t, bad, M)
    with pytest.raises(SimulationError, match="conv7.*unknown vector op kind 'rleu'.*relu"):
        run(trace(vector_ops=[5], unit=Unit.VECTOR, vector_kind="rleu", name="conv7"))
    with pytest.raises(SimulationError, match="unknown operand data type 'fp64'"):
        run(trace(tiles=[(5, 1, 1)], dtype="fp64"))
    with pytest.raises(SimulationError, match="step index"):
        run(trace(loads(range(3), 4), tiles=[(1, 1, 1)]))
    with pytest.raises(SimulationError, match=r"role outside 0 \(input\), 1 \(weight\)"):
        run(trace([(0, False, 7, 0)], tiles=[(1, 1, 1)]))
    with pytest.raises(SimulationError, match="no loop mapping"):
        run(LayerTrace("x", "accel.conv2d", Unit.PE_ARRAY, "fp32", np.zeros(0, np.int64),
                       np.zeros(0, bool), np.zeros(0, np.int8), np.zeros(0, np.int32),
                       np.array([5]), np.array([0])))


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
    ms, tiles = matmul_tiles(rng.integers(1, 80, (n_steps, 3)))
    dtype = draw(st.sampled_from(["fp32", "int8", "bf16"]))
    t = LayerTrace("l", "accel.conv2d", Unit.PE_ARRAY, dtype, lines, write,
                   rng.integers(0, 4, n_acc).astype(np.int8), steps.astype(np.int32),
                   tiles.prod(axis=1), np.zeros(n_steps, np.int64),
                   compulsory_bytes=len(np.unique(lines)) * 64, map_space=ms, step_tiles=tiles)
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
    assert 0 < s.spatial_utilization <= 1 and 0 < s.temporal_utilization <= 1
    assert s.pe_cycles <= s.compute_cycles


@settings(max_examples=25, deadline=None)
@given(t=random_layers())
def test_same_input_same_counts(t):
    assert run(t) == run(t)
