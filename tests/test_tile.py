"""tile: explicit sizes and orders (op attribute > per-layer option > global option >
default rule), the default rule's cache bound, remainders, and the too-big warning."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import DictionaryAttr, ModuleOp, StringAttr

from irflow import zoo
from irflow.backends import sim
from irflow.backends.sim.machine import load_machine
from irflow.context import make_context
from irflow.diagnostics import PassError
from irflow.dialects import accel, nn
from irflow.graph import GraphBuilder, main_func
from irflow.passes.tile import (
    NEST_ATTR,
    WARNING_ATTR,
    TilePass,
    candidate_sizes,
    choose_tiling,
    elem_bytes,
    is_layer,
    working_set,
)
from irflow.pipeline import run_pipeline


def conv_module(name_conv: str | None = None) -> ModuleOp:
    g = GraphBuilder()
    x = g.input("x", [1, 16, 20, 20])
    w = g.weight("w", np.ones((32, 16, 3, 3), np.float32))
    y = g.add(nn.Conv2dOp(x, w, pads=(1, 1, 1, 1))).results[0]
    z = g.add(nn.ReluOp(y)).results[0]
    return g.finish([z])


def nests(module: ModuleOp) -> dict[str, accel.NestAttr]:
    return {op.name: op.attributes[NEST_ATTR] for op in main_func(module).body.walk()
            if NEST_ATTR in op.attributes}


def test_sizes_and_order_options_apply_to_every_op_with_those_loops():
    module = conv_module()
    TilePass(sizes="f=8,oh=7,d1=5", order="oh,f").apply(make_context(), module)
    conv, relu = nests(module)["nn.conv2d"], nests(module)["nn.relu"]
    assert conv.order[:2] == ("oh", "f")
    assert conv.tile["f"] == 8 and conv.tile["oh"] == 7  # 7 does not divide 20: kept
    assert conv.trips()["oh"] == 3
    assert relu.tile["d1"] == 5


def test_op_attribute_wins_over_per_layer_option_which_wins_over_sizes():
    module = conv_module()
    conv = next(op for op in main_func(module).body.walk() if isinstance(op, nn.Conv2dOp))
    conv.attributes["accel.tile"] = DictionaryAttr({"f": nn.i64_attr(4)})
    conv.attributes["accel.order"] = StringAttr("c,f")
    TilePass(sizes="f=8,oh=2", layers="conv2d_0:oh=5,f=16").apply(make_context(), module)
    nest = nests(module)["nn.conv2d"]
    assert nest.tile["f"] == 4  # the op's own attribute
    assert nest.tile["oh"] == 5  # the per-layer option over the global one
    assert nest.order[:2] == ("c", "f")


@pytest.mark.parametrize("kwargs, message", [
    ({"layers": "conv2d_0:q=4"},
     r"expects loops from \['n', 'g', 'f', 'oh', 'ow', 'c'\], got \['q'\]"),
    ({"layers": "nope:f=4"}, r"layers names unknown layer\(s\) \['nope'\]"),
    ({"sizes": "f=0"}, "expects sizes >= 1, got f=0"),
    ({"sizes": "f16"}, "expects 'loop=size' items, got 'f16'"),
    ({"layers": "conv2d_0"}, "expects 'label:loop=size,...' items"),
])
def test_bad_options_are_pass_errors(kwargs, message):
    with pytest.raises(PassError, match=message):
        TilePass(**kwargs).apply(make_context(), conv_module())


def test_options_parse_from_pipeline_text():
    module = conv_module()
    run_pipeline(module, 'tile{sizes="f=8,oh=5" order="ow,oh" machine="micro"}')
    nest = nests(module)["nn.conv2d"]
    assert nest.tile["f"] == 8 and nest.order[:2] == ("ow", "oh")


@pytest.mark.parametrize("machine", ["default", "micro", "server"])
@pytest.mark.parametrize("model", ["resnet18", "mobilenetv2", "transformer_encoder"])
def test_default_rule_keeps_every_step_within_the_cache(model: str, machine: str):
    module = zoo.load(model, seed=0)
    TilePass(machine=machine).apply(make_context(), module)
    cache = load_machine(machine).cache.size_bytes
    steps = 0
    for op in main_func(module).body.walk():
        if not is_layer(op):
            continue
        nest = op.attributes[NEST_ATTR]
        assert WARNING_ATTR not in op.attributes
        space = accel.space_of_op(op)
        itemsizes = [elem_bytes(v.type) for v in (*op.operands, op.results[0])]
        assert 2 * working_set(space, nest.tile, itemsizes) <= cache, (op.name, nest)
        steps += nest.n_steps()
    if model == "resnet18" and machine == "default":
        assert steps < 20_000  # Python steps stay few: the 30 s budget for ResNet-18


def test_candidate_sizes_halve_and_round_channel_loops_to_pe_rows():
    assert candidate_sizes(56, "oh") == [56, 28, 14, 7, 4, 2, 1]
    assert candidate_sizes(100, "f") == [100, 64, 32, 13, 7, 4, 2, 1]  # 13 <= 16: not rounded


def test_default_rule_prefers_whole_lines_to_narrow_rows():
    """An elementwise op over a big tensor tiles its outer loops, not 4-element rows."""
    space = accel.layer_space("nn.relu", [(1, 32, 112, 112)], (1, 32, 112, 112), {})
    tiling = choose_tiling(space, [4, 4], 256 * 1024)
    assert tiling.sizes["d3"] == 112


def test_smallest_tile_too_big_still_tiles_and_warns_into_the_report():
    g = GraphBuilder()
    x = g.input("x", [2, 20000])
    y = g.add(nn.SoftmaxOp.make([x], {"axis": nn.i64_attr(1)})).results[0]
    module = g.finish([y])
    inputs = {"x": np.random.default_rng(0).standard_normal((2, 20000)).astype(np.float32)}
    result = sim.simulate(module, inputs, machine="micro")  # 32 KiB cache; a row is 80 KB
    np.testing.assert_allclose(result.outputs["output0"],
                               np.exp(inputs["x"]) / np.exp(inputs["x"]).sum(1, keepdims=True),
                               rtol=1e-4, atol=1e-7)
    assert result.traces[0].n_steps == 2  # one row per step: the smallest tile
    (note,) = result.report.layers[0].notes
    assert "smallest tile needs 320000 bytes double-buffered, the cache holds 32768" in note
    assert any("smallest tile" in n for n in result.report.total.notes)


def test_simulate_keeps_the_tiles_of_a_tiled_module():
    module = conv_module()
    run_pipeline(module, 'tile{sizes="f=8,oh=3,c=5"}')
    inputs = {"x": np.random.default_rng(0).standard_normal((1, 16, 20, 20)).astype(np.float32)}
    result = sim.simulate(module, inputs)
    conv = next(op for op in result.module.walk()
                if isinstance(op, accel.LayerOp) and op.kind.data == "nn.conv2d")
    assert conv.tiles.tile["f"] == 8 and conv.tiles.tile["c"] == 5
    assert result.traces[0].n_steps == 4 * 7 * 4  # f 32/8, oh 20/3, c 16/5
