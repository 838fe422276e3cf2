"""lower-to-accel: every zoo model lowers completely, to the right units, at the planned
addresses; IR that is not (or cannot be) lowered is a LoweringError naming the op."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from irflow import zoo
from irflow.backends.sim.executor import execute
from irflow.context import make_context
from irflow.diagnostics import LoweringError
from irflow.dialects import accel, nn
from irflow.graph import GraphBuilder, main_func
from irflow.io import parse_mlir, verify_module
from irflow.passes import plan_memory as pm
from irflow.passes.lower_to_accel import LowerToAccelPass, check_lowered
from irflow.passes.tile import TilePass

UNITS = {"nn.conv2d": "pe", "nn.linear": "pe", "nn.matmul": "pe", "nn.relu": "vector",
         "nn.batchnorm": "vector", "nn.softmax": "vector", "nn.layernorm": "vector",
         "nn.maxpool": "vector", "nn.global_avg_pool": "vector", "nn.add": "vector",
         "nn.transpose": "dma"}


def lower(module: ModuleOp) -> ModuleOp:
    ctx = make_context()
    for p in (TilePass(), pm.PlanMemoryPass(), LowerToAccelPass()):
        p.apply(ctx, module)
    verify_module(module)
    return module


@pytest.mark.parametrize("name", zoo.names())
def test_every_zoo_model_lowers_completely(name: str):
    module = zoo.load(name, seed=0)
    kinds = {op.name for op in module.walk() if op.name.startswith("nn.")}
    n_layers = sum(1 for op in module.walk() if op.name.startswith("nn.")
                   and op.name not in ("nn.constant", "nn.reshape", "nn.flatten"))
    lower(module)
    check_lowered(module)
    layers = [op for op in module.walk() if isinstance(op, accel.LayerOp)]
    assert len(layers) >= n_layers
    assert {op.kind.data for op in layers} == kinds - {"nn.constant", "nn.reshape",
                                                      "nn.flatten"}
    for op in layers:
        if op.kind.data in UNITS:
            assert op.unit.data == UNITS[op.kind.data], op
    assert len({op.label.data for op in layers}) == len(layers)  # labels are unique


def test_lowering_uses_the_planned_addresses():
    module = zoo.load("lenet5", seed=0)
    TilePass().apply(make_context(), module)
    pm.PlanMemoryPass(align=256).apply(make_context(), module)
    fn = main_func(module)
    planned = [list(op.attributes[pm.ADDR_ATTR].get_values())[0]
               for op in fn.body.walk() if pm.ADDR_ATTR in op.attributes
               and not accel.is_view(op)]
    LowerToAccelPass().apply(make_context(), module)
    got = [op.addr.value.data for op in fn.body.walk()
           if isinstance(op, accel.WeightOp | accel.LayerOp)]
    assert got == planned
    assert all(a % 256 == 0 for a in got)


def test_an_op_without_accel_form_is_a_lowering_error_naming_it():
    text = """
    func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
      %y = "test.frob"(%x) : (tensor<4xf32>) -> tensor<4xf32>
      func.return %y : tensor<4xf32>
    }
    """
    module = parse_mlir(text, "frob.mlir", allow_unregistered=True)
    with pytest.raises(LoweringError, match="cannot lower 'test.frob' to accel"):
        LowerToAccelPass().apply(make_context(allow_unregistered=True), module)


def test_unsupported_matmul_broadcast_is_a_lowering_error():
    g = GraphBuilder()
    a = g.input("a", [2, 1, 3, 4])
    b = g.input("b", [3, 4, 5])
    y = g.add(nn.MatmulOp.make([a, b])).results[0]
    module = g.finish([y])
    with pytest.raises(LoweringError, match="batch broadcasting only of all batch dims"):
        LowerToAccelPass().apply(make_context(), module)


def test_executing_ir_that_is_not_lowered_names_the_op():
    module = zoo.load("lenet5", seed=0)
    with pytest.raises(LoweringError, match="'nn.constant' is not lowered to accel"):
        execute(module, {"x": np.zeros((1, 1, 32, 32), np.float32)})


def test_a_stale_nest_is_rejected():
    g = GraphBuilder()
    x = g.input("x", [4, 6])
    op = g.add(nn.ReluOp(x))
    module = g.finish([op.results[0]])
    op.attributes["accel.nest"] = accel.NestAttr(["d0", "d1"], [4, 7], [4, 7])
    with pytest.raises(LoweringError, match="accel.nest on nn.relu expects loops"):
        LowerToAccelPass().apply(make_context(), module)


def test_function_arguments_become_placed_inputs():
    module = lower(zoo.load("digits_cnn", seed=0))
    fn = main_func(module)
    block = fn.body.blocks[0]
    inputs = [op for op in block.ops if isinstance(op, accel.InputOp)]
    assert [op.source for op in inputs] == list(block.args)
    for arg in block.args:  # only the accel.input reads the raw argument
        assert [u.operation for u in arg.uses] == [op for op in inputs if op.source is arg]
    assert isinstance(block.last_op, func.ReturnOp)


def test_a_transpose_that_only_moves_unit_axes_is_a_view():
    g = GraphBuilder()
    x = g.input("x", [2, 1, 5])
    a = g.add(nn.TransposeOp.make([x], {"perm": nn.int_array([1, 0, 2])})).results[0]
    b = g.add(nn.TransposeOp.make([x], {"perm": nn.int_array([2, 1, 0])})).results[0]
    module = lower(g.finish([a, b]))
    ops = [op for op in main_func(module).body.walk() if op.name.startswith("accel.")]
    assert [op.name for op in ops] == ["accel.input", "accel.view", "accel.layer"]
