"""The accel dialect: round-trips of real lowered programs, the loop nest attribute, the
iteration spaces (slices and padding), and the executor's line addressing.

Verifier messages, one case per branch, are in tests/filecheck/dialects/accel/invalid.mlir.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import DictionaryAttr, ModuleOp, StringAttr
from xdsl.utils.exceptions import VerifyException

from irflow import zoo
from irflow.backends import sim
from irflow.backends.sim.cache import CacheGeometry, LRUCache
from irflow.backends.sim.executor import slice_lines
from irflow.backends.sim.machine import load_machine
from irflow.backends.sim.trace import LayerTrace, Role
from irflow.diagnostics import VerifyError
from irflow.dialects import accel, nn
from irflow.graph import GraphBuilder
from irflow.io import parse_mlir, print_module, verify_module


@pytest.mark.parametrize("name", ["transformer_encoder", "mobilenetv2"])
def test_lowered_zoo_programs_round_trip(name: str):
    module = sim.lower(zoo.load(name, seed=0), load_machine(None))
    text = print_module(module)
    again = parse_mlir(text, f"{name}.mlir")
    assert print_module(again) == text
    generic = parse_mlir(print_module(module, generic=True), f"{name}.generic.mlir")
    assert generic.is_structurally_equivalent(module)
    # Tiles stay symbolic: one op per layer however many tile steps it takes.
    layers = [op for op in module.walk() if isinstance(op, accel.LayerOp)]
    assert sum(op.tiles.n_steps() for op in layers) > 2 * len(layers)


def test_nest_attr_counts_steps_with_remainders():
    nest = accel.NestAttr(["f", "oh", "c"], [64, 56, 3], [16, 10, 3])
    assert nest.trips() == {"f": 4, "oh": 6, "c": 1}
    assert nest.n_steps() == 24
    assert str(nest) == "#accel.nest<f = 64 step 16, oh = 56 step 10, c = 3>"


def test_conv_window_slices_clip_at_the_edges_and_report_padding():
    params = {"strides": nn.int_array([2, 2]), "pads": nn.int_array([1, 1, 1, 1])}
    space = accel.layer_space("nn.conv2d", [(1, 4, 9, 9), (8, 4, 3, 3)], (1, 8, 5, 5), params)
    assert space.dims == ("n", "g", "f", "oh", "ow", "c") and space.reduction == {"c"}
    x = space.operands[0]
    tile = {"n": (0, 1), "g": (0, 1), "f": (0, 8), "oh": (0, 2), "ow": (3, 5), "c": (1, 3)}
    ranges, pads = x.slice(tile)
    # rows 2*0-1 .. 2*1-1+3 = [-1, 4) -> [0, 4) with one padded row on top;
    # cols 2*3-1 .. 2*4-1+3 = [5, 10) -> [5, 9) with one padded column on the right.
    assert ranges == [(0, 1, 1), (0, 1, 1), (1, 3, 1), (0, 4, 1), (5, 9, 1)]
    assert pads[3] == (1, 0) and pads[4] == (0, 1)
    assert space.tile_macs({"n": 1, "g": 1, "f": 8, "oh": 2, "ow": 2, "c": 2}) == 8 * 4 * 2 * 9


def test_strided_slice_maps_loops_affinely():
    params = {"starts": nn.int_array([8]), "ends": nn.int_array([0]),
              "axes": nn.int_array([1]), "steps": nn.int_array([-3])}
    space = accel.layer_space("nn.slice", [(2, 9)], (2, 3), params)
    ranges, _ = space.operands[0].slice({"d0": (0, 2), "d1": (1, 3)})
    assert [list(range(*r)) for r in ranges] == [[0, 1], [5, 2]]


@settings(max_examples=80, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    data=st.data(),
    itemsize=st.sampled_from([1, 2, 4]),
    base=st.integers(0, 300),
    line=st.sampled_from([16, 32, 64]),
)
def test_slice_lines_equal_the_lines_of_every_element(shape, data, itemsize, base, line):
    ranges = []
    for s in shape:
        step = data.draw(st.sampled_from([1, 1, 2, -1]))
        a = data.draw(st.integers(0, s - 1))
        if step > 0:
            b = data.draw(st.integers(a + 1, s))
        else:
            b = data.draw(st.integers(-1, a - 1)) if a > 0 else -1
        ranges.append((a, b, step))
    got = slice_lines(base, shape, itemsize, ranges, line)
    strides = np.cumprod([1] + shape[::-1])[:-1][::-1]
    elems = [0]
    for (a, b, st_), stride in zip(ranges, strides):
        elems = [e + i * stride for e in elems for i in range(a, b, st_)]
    want = set()
    for e in elems:
        addr = base + e * itemsize
        want.update(range(addr // line, (addr + itemsize - 1) // line + 1))
    assert set(got.tolist()) == want
    if all(r[2] > 0 for r in ranges):
        assert list(got) == sorted(want)  # address order, each line once


def _matmul(m: int, k: int, n: int) -> tuple[ModuleOp, dict[str, np.ndarray]]:
    g = GraphBuilder()
    a = g.input("a", [m, k])
    b = g.weight("b", np.random.default_rng(0).standard_normal((k, n)).astype(np.float32))
    y = g.add(nn.MatmulOp.make([a, b])).results[0]
    return g.finish([y]), {"a": np.ones((m, k), np.float32)}


def test_a_matmul_that_fits_the_cache_misses_exactly_its_compulsory_lines():
    module, inputs = _matmul(24, 40, 32)  # 3.8 + 5 + 3 KiB, tiled by hand into 12 steps
    low = sim.lower(module, load_machine(None))
    layer = next(op for op in low.walk() if isinstance(op, accel.LayerOp))
    # k outermost: every C tile is revisited by the second k step.
    layer.properties["tiles"] = accel.NestAttr(["k", "b", "m", "n"], [40, 1, 24, 32],
                                               [20, 1, 8, 16])
    result = sim.simulate(low, inputs)
    trace = result.traces[0]
    assert trace.n_steps == 12
    distinct = np.unique(trace.line).size
    compulsory = sum(-(-b // 64) for b in (24 * 40 * 4, 40 * 32 * 4, 24 * 32 * 4))
    psum_lines = 24 * 32 * 4 // 64  # fp32 partial sums, 32 bits each, in the psum area
    # every line of A, B and C, and of the partial sums; nothing else (all 64-aligned)
    assert distinct == compulsory + psum_lines
    outcome = LRUCache(CacheGeometry(256 * 1024, 64, 8)).access(trace.line, trace.write)
    assert int((~outcome.hit).sum()) == compulsory + psum_lines
    # Partial sums over k: each C tile's first k step spills partial sums, the second
    # reads them back and stores the finished C tile, which is never read.
    out, psum = trace.role == Role.OUTPUT, trace.role == Role.PSUM
    assert int((out & ~trace.write).sum()) == 0 and int((out & trace.write).sum()) == psum_lines
    assert int((psum & trace.write).sum()) == int((psum & ~trace.write).sum()) == psum_lines
    assert np.all(trace.line[psum] * 64 >= low_end(low))  # after the program's last tensor
    assert np.all(np.diff(trace.step) >= 0)  # program order


def test_pe_write_back_runs_on_the_vector_unit_only_when_there_is_something_to_apply():
    # the same matmul, k outermost (2 reduction steps per output tile): a plain matmul
    # writes back its accumulators as they are; with a fused relu, each finished output
    # element costs one vector op, on the step that finishes it
    def traced(act: str | None) -> LayerTrace:
        module, inputs = _matmul(24, 40, 32)
        low = sim.lower(module, load_machine(None))
        layer = next(op for op in low.walk() if isinstance(op, accel.LayerOp))
        if act:
            layer.params = DictionaryAttr({**layer.params.data, "act": StringAttr(act)})
        layer.properties["tiles"] = accel.NestAttr(["k", "b", "m", "n"], [40, 1, 24, 32],
                                                   [20, 1, 8, 16])
        return sim.simulate(low, inputs).traces[0]

    assert not traced(None).step_vector_ops.any()
    ops = traced("relu").step_vector_ops
    assert list(ops) == [0] * 6 + [8 * 16] * 6 and ops.sum() == 24 * 32


def low_end(module: ModuleOp) -> int:
    return max(op.addr.value.data + accel.stored_nbytes(op) for op in module.walk()
               if isinstance(op, accel.InputOp | accel.WeightOp | accel.LayerOp))


@pytest.mark.parametrize("order, weight_loads, input_loads", [
    (["b", "n", "k", "m"], 1, 2),  # weight-stationary: B tiles load once, A once per n tile
    (["b", "m", "n", "k"], 3, 2),  # output-stationary: B reloads per m tile, A per n tile
    (["b", "m", "k", "n"], 3, 1),  # A tile stays while n steps
])
def test_stationary_slices_are_not_reloaded(order, weight_loads, input_loads):
    module, inputs = _matmul(24, 48, 32)  # tiles of whole 64-byte lines
    low = sim.lower(module, load_machine(None))
    layer = next(op for op in low.walk() if isinstance(op, accel.LayerOp))
    ext = {"b": 1, "m": 24, "n": 32, "k": 48}
    tile = {"b": 1, "m": 8, "n": 16, "k": 16}
    layer.properties["tiles"] = accel.NestAttr(order, [ext[d] for d in order],
                                               [tile[d] for d in order])
    trace = sim.simulate(low, inputs).traces[0]
    a_lines, b_lines = 24 * 48 * 4 // 64, 48 * 32 * 4 // 64
    assert int((trace.role == Role.WEIGHT).sum()) == weight_loads * b_lines
    assert int((trace.role == Role.INPUT).sum()) == input_loads * a_lines


def _relu_layer(nest: accel.NestAttr, unit: str = "vector", addr: int = 64) -> ModuleOp:
    g = GraphBuilder()
    x = g.input("x", [4, 6])
    placed = g.add(accel.InputOp(x, 0)).results[0]
    layer = g.add(accel.LayerOp("r", "nn.relu", [placed], placed.type, addr, unit, nest, {}))
    return g.finish([layer.results[0]])


@pytest.mark.parametrize("loops, extents, tiles, unit, addr, message", [
    (["d0", "d1"], [4, 6], [2, 6], "vector", 64, None),
    (["d0", "d1"], [4, 7], [4, 7], "vector", 64,
     "accel.layer expects extent 6 for loop 'd1', got 7"),
    (["d0"], [4], [4], "vector", 64,
     "accel.layer expects loops ['d0', 'd1'] for nn.relu, got ['d0']"),
    (["d0", "d1"], [4, 6], [4, 6], "pe", 64,
     "accel.layer expects unit 'vector' for nn.relu, got 'pe'"),
    (["d0", "d1"], [4, 6], [4, 6], "vector", -8,
     "accel.layer expects a byte address >= 0, got -8"),
    (["d0", "d1"], [4, 6], [9, 6], "vector", 64,
     "accel.nest expects 1 <= tile <= extent for loop 'd0', got tile 9 and extent 4"),
])
def test_layer_verifier_says_expected_and_got(loops, extents, tiles, unit, addr, message):
    """Python-built ops hit the same verifiers as text (every branch: invalid.mlir)."""
    if message is None:
        verify_module(_relu_layer(accel.NestAttr(loops, extents, tiles), unit, addr))
        return
    with pytest.raises((VerifyError, VerifyException), match=re.escape(message)):
        verify_module(_relu_layer(accel.NestAttr(loops, extents, tiles), unit, addr))
