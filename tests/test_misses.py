"""The cost-only simulation mode and the 3C miss attribution (backends/sim/misses.py)."""

import importlib.util

import numpy as np
import pytest

from irflow import zoo
from irflow.backends.sim import simulate
from irflow.backends.sim.cache import CacheGeometry, LRUCache
from irflow.backends.sim.misses import (
    EARLIER,
    attribute_misses,
    fully_associative_hits,
    previous_use,
)
from irflow.backends.sim.trace import LayerTrace, Role, Unit
from irflow.cli import load_inputs
from irflow.frontends.dsl import compile_source
from irflow.pipeline import run_pipeline

needs_numba = pytest.mark.skipif(importlib.util.find_spec("numba") is None,
                                 reason="numba (the `fast` extra) is not installed")


def _brute_fa_hits(line, capacity):
    stack, hits = [], []
    for x in line.tolist():
        hits.append(x in stack)
        if x in stack:
            stack.remove(x)
        stack.append(x)
        del stack[:-capacity]
    return np.array(hits)


@pytest.mark.parametrize("backend", ["numpy", pytest.param("numba", marks=needs_numba)])
def test_fully_associative_cache_matches_a_literal_lru_stack(backend):
    rng = np.random.default_rng(3)
    for capacity in (1, 4, 16):
        line = rng.integers(0, 40, 3000)
        got, used = fully_associative_hits(line, capacity, backend=backend)
        assert used == backend
        np.testing.assert_array_equal(got, _brute_fa_hits(line, capacity))
        # ...and equals the set-associative LRU kernel with a single set
        one_set = LRUCache(CacheGeometry(64 * capacity, 64, capacity), backend="numpy")
        np.testing.assert_array_equal(got, one_set.access(line, np.zeros(line.size, bool)).hit)


def test_previous_use():
    assert previous_use(np.array([5, 7, 5, 5, 9, 7])).tolist() == [-1, -1, 0, 2, -1, 1]


def _trace(name, lines, steps, loops, role=Role.WEIGHT):
    n = len(lines)
    n_steps = max(steps) + 1
    return LayerTrace(name, "nn.conv2d", Unit.PE_ARRAY, "fp32", np.array(lines, np.int64),
                      np.zeros(n, bool), np.full(n, int(role), np.int8),
                      np.array(steps, np.int32), np.ones(n_steps, np.int64),
                      np.zeros(n_steps, np.int64), loops=loops)


def test_three_cs_and_the_loop_that_refetches():
    """A 2-set, 1-way cache (2 lines). Layer A, loops (oh: 2, f: 2): steps 0..3 =
    (oh, f) = (0,0) (0,1) (1,0) (1,1). Weight lines 0 and 2 map to set 0 and conflict;
    line 1 sits alone in set 1."""
    from irflow.backends.sim.machine import load_machine
    from irflow.backends.sim.misses import MissAttribution

    machine = load_machine("default")
    machine = machine.__class__(**{**machine.__dict__, "cache": machine.cache.__class__(
        **{**machine.cache.__dict__, "size_bytes": 128, "line_bytes": 64, "ways": 1})})
    a = _trace("A", [0, 2, 0, 2], [0, 1, 2, 3], (("oh", 2), ("f", 2)))
    b = _trace("B", [1, 0], [0, 0], (("c", 1),), role=Role.INPUT)
    cache = LRUCache(machine.cache.geometry, backend="numpy")
    outcomes = [cache.access(t.line, t.write) for t in (a, b)]
    got: MissAttribution = attribute_misses([a, b], outcomes, machine, backend="numpy")
    rows = {(r.layer, r.role): r for r in got.rows}
    wa = rows[("A", "weight")]
    # 0, 2 first touches; then 0 and 2 again: a fully associative 2-line cache holds both
    # (conflict), re-fetched across the oh loop (steps 0 -> 2 and 1 -> 3 differ in oh)
    assert (wa.compulsory, wa.capacity, wa.conflict) == (2, 0, 2)
    assert dict(wa.refetch_by_loop) == {"oh": 2}
    ib = rows[("B", "input")]
    # line 1: first touch; line 0: last used (and evicted by line 2) in layer A; the
    # fully associative cache holds {0, 2} then sees 1 (evicting 0): capacity
    assert (ib.compulsory, ib.capacity, ib.conflict) == (1, 1, 0)
    assert dict(ib.refetch_by_loop) == {EARLIER: 1}
    assert got.misses == sum(o.misses for o in outcomes) == 6
    assert got.headline().startswith("33 % of misses are weight re-fetches in A across the oh loop")


MODEL = """
model tiny(x: f32[1, 8, 16, 16]) {
  y = conv2d(x, out=16, kernel=3, pad=1)
  z = relu(y)
  return z
}
"""


@pytest.mark.parametrize("name", ["lenet5", "digits_cnn", "transformer_encoder"])
def test_cost_only_simulation_gives_identical_counts(name):
    m = zoo.load(name)
    run_pipeline(m, "default")
    x = load_inputs(m, None, 0)
    full = simulate(m, x, machine="micro")
    cost = simulate(m, x, machine="micro", numerics=False)
    assert full.outputs and not cost.outputs
    assert full.report.to_dict() == cost.report.to_dict()
    for a, b in zip(full.traces, cost.traces, strict=True):
        np.testing.assert_array_equal(a.line, b.line)
        np.testing.assert_array_equal(a.role, b.role)


def test_misses_add_up_to_the_report_and_carry_locations():
    m = compile_source(MODEL, "tiny.irf")
    x = load_inputs(m, None, 0)
    r = simulate(m, x, machine="micro", misses=True, numerics=False)
    att = r.report.misses
    assert att is not None and att.misses == r.report.total.cache.misses
    by_kind = att.by_kind()
    assert by_kind["compulsory"] == len(np.unique(np.concatenate([t.line for t in r.traces])))
    d = r.report.to_dict()
    assert d["misses"]["total"] == att.misses and d["misses"]["headline"] == att.headline()
    assert d["layers"][0]["loc"] == "tiny.irf:3:7"
    assert "miss attribution:" in r.report.table()
