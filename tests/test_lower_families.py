"""The math, logic, reduction and scan families lower to vector-unit layers
(`dialects/accel_vector.py`) and the simulator's outputs equal the reference executor's
bit for bit, with one tile and with tiles smaller than the tensor; booleans take a byte;
the vector cost of a kind follows its documented formula (docs/simulator.md §2.2)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from nn_helpers import as_props
from xdsl.dialects.builtin import (
    FileLineColLoc,
    IntAttr,
    IntegerType,
    ModuleOp,
    Signedness,
    StringAttr,
    TensorType,
    f32,
    i1,
    i8,
    i32,
    i64,
)
from xdsl.ir import Attribute, SSAValue

from irflow.backends import sim
from irflow.backends.reference import run
from irflow.backends.sim.trace import Unit
from irflow.context import make_context
from irflow.diagnostics import IrflowError
from irflow.dialects import accel, accel_vector, nn, quant
from irflow.dialects.nn.bitcast import BitcastOp
from irflow.dialects.nn.logic import LOGIC_OPS
from irflow.dialects.nn.losses import MseOp
from irflow.dialects.nn.math import MATH_OPS, PARAM_ACTIVATIONS, UNARY_MATH
from irflow.dialects.nn.reductions import REDUCTION_OPS, REDUCTIONS
from irflow.graph import GraphBuilder, main_func
from irflow.io import verify_module
from irflow.passes.lower_to_accel import LowerToAccelPass
from irflow.passes.plan_memory import PlanMemoryPass
from irflow.passes.tile import TilePass
from irflow.weights import attach_weights, weights_of

SHAPE = (3, 5, 7)
SMALL_TILES = "d0=2,d1=2,d2=3"  # divides none of 3, 5, 7: remainder tiles on every loop
u8 = IntegerType(8, Signedness.UNSIGNED)


class Graph:
    """A graph builder with named random inputs and ops given explicit result types."""

    def __init__(self) -> None:
        self.g = GraphBuilder()
        self.inputs: dict[str, np.ndarray] = {}
        self.outputs: list[SSAValue] = []

    def input(self, name: str, array: np.ndarray, element_type: Attribute = f32) -> SSAValue:
        self.inputs[name] = array
        return self.g.input(name, array.shape, element_type)

    def op(self, cls: type, operands: Sequence[SSAValue], el: Attribute | None = None,
           out: bool = True, **props: Any) -> SSAValue:
        made = cls.make(list(operands), as_props(props), element_type=el)
        self.g.add(made)
        if out:
            self.outputs.extend(made.results)
        return made.results[0]

    def finish(self) -> ModuleOp:
        return self.g.finish(self.outputs)


def lowered(module: ModuleOp, sizes: str = "") -> ModuleOp:
    module = attach_weights(module.clone(), weights_of(module))
    ctx = make_context()
    for p in (TilePass(sizes=sizes), PlanMemoryPass(), LowerToAccelPass()):
        p.apply(ctx, module)
    verify_module(module)
    return module


def check_exact(module: ModuleOp, inputs: dict[str, np.ndarray],
                sizes: str = "") -> sim.SimResult:
    """Simulated outputs equal the reference's bit for bit (NaN where it has NaN)."""
    ref = run(module, inputs)
    result = sim.simulate(lowered(module, sizes), inputs)
    assert result.outputs.keys() == ref.keys()
    for name, want in ref.items():
        got = result.outputs[name]
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)
    return result


def _rng() -> np.random.Generator:
    return np.random.default_rng(11)


def math_graph() -> Graph:
    rng = _rng()
    t = Graph()
    x = t.input("x", rng.uniform(-0.9, 0.9, SHAPE).astype(np.float32))
    big = t.input("big", rng.uniform(1.1, 3.0, SHAPE).astype(np.float32))  # acosh, log
    odd = np.array([np.nan, np.inf, -np.inf, 0.0, -2.5, 2.5, 1e30], np.float32)
    z = t.input("z", np.resize(odd, SHAPE))
    b = t.input("b", rng.random(SHAPE) < 0.5, i1)
    k = t.input("k", rng.integers(-100, 100, SHAPE).astype(np.int32), i32)
    for short in (*UNARY_MATH, *PARAM_ACTIVATIONS):
        if short == "not":
            t.op(MATH_OPS[short], [b])
        elif short == "bitwise_not":
            t.op(MATH_OPS[short], [k])
        else:
            t.op(MATH_OPS[short], [big if short in ("acosh", "log") else x])
    t.op(MATH_OPS["is_nan"], [z], i1)
    t.op(MATH_OPS["is_inf"], [z], i1, detect_negative=0)
    t.op(MATH_OPS["cast"], [z], i1)  # x != 0
    t.op(MATH_OPS["cast"], [x], i32)
    t.op(MATH_OPS["cast"], [k], f32)
    t.op(BitcastOp, [x], i32)
    return t


def logic_graph(shape: tuple[int, ...] = SHAPE) -> Graph:
    """Every comparison, logical, bitwise and min/max/mod/prelu/where op, broadcasting."""
    rng = _rng()
    t = Graph()
    row = (1,) * (len(shape) - 1) + shape[-1:]  # broadcast along the leading axes
    col = shape[:-1] + (1,)  # broadcast along the last axis
    x = t.input("x", rng.standard_normal(shape).astype(np.float32))
    y = t.input("y", rng.standard_normal(row).astype(np.float32))
    b = t.input("b", rng.random(shape) < 0.5, i1)
    c = t.input("c", rng.random(col) < 0.5, i1)
    k = t.input("k", rng.integers(-50, 50, shape).astype(np.int32), i32)
    m = t.input("m", rng.choice([-7, -3, 2, 5], row).astype(np.int32), i32)
    s = t.input("s", rng.integers(0, 255, shape).astype(np.uint8), u8)
    n = t.input("n", rng.integers(0, 8, row).astype(np.uint8), u8)
    for short in ("equal", "less", "less_or_equal", "greater", "greater_or_equal"):
        t.op(LOGIC_OPS[short], [x, y], i1)
    t.op(LOGIC_OPS["equal"], [k, m], i1)
    for short in ("and", "or", "xor"):
        t.op(LOGIC_OPS[short], [b, c])
    for short in ("bitwise_and", "bitwise_or", "bitwise_xor"):
        t.op(LOGIC_OPS[short], [k, m])
    t.op(LOGIC_OPS["bit_shift"], [s, n], direction=StringAttr("LEFT"))
    t.op(LOGIC_OPS["bit_shift"], [s, n], direction=StringAttr("RIGHT"))
    for short in ("min", "max"):
        t.op(LOGIC_OPS[short], [x, y])
    t.op(LOGIC_OPS["mod"], [k, m])
    t.op(LOGIC_OPS["mod"], [x, y], fmod=1)
    t.op(LOGIC_OPS["prelu"], [x, y])
    t.op(LOGIC_OPS["where"], [c, x, y], f32)
    return t


def reduction_graph(shape: tuple[int, ...] = SHAPE) -> Graph:
    rng = _rng()
    t = Graph()
    x = t.input("x", rng.standard_normal(shape).astype(np.float32))
    p = t.input("p", rng.uniform(0.5, 1.5, shape).astype(np.float32))  # reduce_log_sum
    k = t.input("k", rng.integers(-3, 4, shape).astype(np.int32), i32)
    for short in REDUCTIONS:
        src = p if short == "reduce_log_sum" else x
        t.op(REDUCTION_OPS[short], [src], axes=[1], keepdims=0)
        t.op(REDUCTION_OPS[short], [src], axes=[0, 2], keepdims=1)
    t.op(REDUCTION_OPS["reduce_max"], [k], axes=[2], keepdims=0)
    t.op(REDUCTION_OPS["arg_max"], [x], i64, axis=1)
    t.op(REDUCTION_OPS["arg_min"], [k], i64, axis=-1, keepdims=0, select_last_index=1)
    t.op(REDUCTION_OPS["log_softmax"], [x], axis=1)
    t.op(REDUCTION_OPS["hardmax"], [x], axis=-1)
    t.op(REDUCTION_OPS["cumsum"], [x], axis=1, exclusive=1, reverse=1)
    t.op(REDUCTION_OPS["cumprod"], [p], axis=-1)
    for largest in (1, 0):
        topk = REDUCTION_OPS["topk"]
        out = shape[:1] + (3,) + shape[2:]
        made = topk.create(operands=[x], result_types=[TensorType(f32, out),
                                                       TensorType(i64, out)],
                           properties=as_props({"k": 3, "axis": 1, "largest": largest}))
        t.g.add(made)
        t.outputs.extend(made.results)
    return t


@pytest.mark.parametrize("sizes", ["", SMALL_TILES])
@pytest.mark.parametrize("family", [math_graph, logic_graph, reduction_graph])
def test_family_simulates_bit_exactly(family: Any, sizes: str) -> None:
    t = family()
    result = check_exact(t.finish(), t.inputs, sizes)
    assert {tr.unit for tr in result.traces} == {Unit.VECTOR}
    if sizes:
        assert all(math.prod(n for _, n in tr.loops) > 1 for tr in result.traces)


def test_tiled_reduction_and_broadcast_where() -> None:
    """Tensors bigger than one tile: reductions over the middle axis (of 48: numpy's
    pairwise summation) and a three-way broadcast where, on explicit tiles (the last axis
    one element wide, which changes how numpy would loop over a tile) and on the small
    `micro` cache's default tiles."""
    rng = _rng()
    t = Graph()
    shape = (16, 48, 96)
    x = t.input("x", rng.standard_normal(shape).astype(np.float32))
    c = t.input("c", rng.random((16, 1, 96)) < 0.5, i1)
    y = t.input("y", rng.standard_normal((48, 1)).astype(np.float32))
    t.op(REDUCTION_OPS["reduce_sum"], [x], axes=[1], keepdims=0)
    t.op(REDUCTION_OPS["reduce_log_sum_exp"], [x], axes=[1], keepdims=1)
    t.op(LOGIC_OPS["where"], [c, x, y], f32)
    module = t.finish()
    result = check_exact(module, t.inputs, "d0=3,d1=7,d2=1")
    steps = {tr.op: math.prod(n for _, n in tr.loops) for tr in result.traces}
    assert {tr.op: tr.dtype for tr in result.traces}["nn.where"] == "fp32"  # not its mask's
    assert steps == {"nn.reduce_sum": 6 * 96, "nn.reduce_log_sum_exp": 6 * 96,
                     "nn.where": 6 * 7 * 96}
    micro = sim.simulate(module, t.inputs, machine="micro")
    assert all(math.prod(n for _, n in tr.loops) > 1 for tr in micro.traces)
    for name, want in run(module, t.inputs).items():
        np.testing.assert_array_equal(micro.outputs[name], want)


def test_topk_lowers_to_one_layer_per_result() -> None:
    t = reduction_graph()
    layers = [op for op in main_func(lowered(t.finish())).body.blocks[0].ops
              if isinstance(op, accel.LayerOp) and op.kind.data == "nn.topk"]
    assert [op.label.data for op in layers[:2]] == ["topk_0.values", "topk_0.indices"]
    assert [nn.prop_int(op.params.data, "result", -1) for op in layers[:2]] == [0, 1]


def test_quant_storage_cast_simulates_bit_exactly() -> None:
    """quant.qcast, then quant.scast to the storage integers and back, then dcast."""
    rng = _rng()
    t = Graph()
    x = t.input("x", rng.standard_normal(SHAPE).astype(np.float32))
    q_t = TensorType(quant.UniformQuantizedType.make(8, 0.05, -3), SHAPE)
    q = t.g.add(quant.QuantizeOp(x, q_t)).results[0]
    s = t.g.add(quant.StorageCastOp(q, TensorType(i8, SHAPE))).results[0]
    back = t.g.add(quant.StorageCastOp(s, q_t)).results[0]
    y = t.g.add(quant.DequantizeOp(back, TensorType(f32, SHAPE))).results[0]
    t.outputs += [s, y]
    result = check_exact(t.finish(), t.inputs, SMALL_TILES)
    kinds = {tr.op: tr.vector_kind for tr in result.traces}
    assert kinds["quant.scast"] == "copy"


def test_booleans_take_a_byte_and_integers_their_width() -> None:
    assert accel.nbytes(TensorType(i1, SHAPE)) == 105
    assert accel.nbytes(TensorType(i64, SHAPE)) == 8 * 105
    t = Graph()
    x = t.input("x", np.zeros(SHAPE, np.float32))
    y = t.input("y", np.ones(SHAPE[-1:], np.float32))
    c = t.op(LOGIC_OPS["greater"], [x, y], i1)
    t.op(REDUCTION_OPS["arg_max"], [x], i64, axis=1)
    t.op(MATH_OPS["not"], [c])
    result = check_exact(t.finish(), t.inputs)
    compulsory = {tr.op: tr.compulsory_bytes for tr in result.traces}
    assert compulsory == {"nn.greater": 4 * 105 + 4 * 7 + 105,
                          "nn.arg_max": 4 * 105 + 8 * 21, "nn.not": 105 + 105}
    assert {tr.op: tr.dtype for tr in result.traces}["nn.not"] == "int8"


def test_vector_cost_formula_worked_example() -> None:
    """docs/simulator.md §2.2, default machine (64 lanes): one step each,
    cycles = ceil(ops × cycles_per_element[class] / 64)."""
    t = Graph()
    x = t.input("x", np.ones(SHAPE, np.float32))
    t.op(MATH_OPS["sin"], [x])  # 105 ops × sigmoid 4.0
    t.op(MATH_OPS["mish"], [x])  # 105 ops × gelu 8.0
    t.op(REDUCTION_OPS["reduce_sum"], [x], axes=[1], keepdims=0)  # 21 rows × 5 × avgpool 1.0
    topk = REDUCTION_OPS["topk"].create(
        operands=[x], result_types=[TensorType(f32, (3, 5, 2)), TensorType(i64, (3, 5, 2))],
        properties=as_props({"k": 2}))
    t.g.add(topk)
    t.outputs.append(topk.results[0])  # 15 rows × 7·⌈log2 7⌉ = 21 × maxpool 1.0
    result = sim.simulate(lowered(t.finish()), t.inputs)
    ops = {s.name: (s.vector_ops, s.compute_cycles) for s in result.report.layers}
    assert ops["sin_0"] == (105, math.ceil(105 * 4 / 64)) == (105, 7)
    assert ops["mish_0"] == (105, math.ceil(105 * 8 / 64)) == (105, 14)
    assert ops["reduce_sum_0"] == (105, 2)
    assert ops["topk_0.values"] == (315, 5) == ops["topk_0.indices"]


def test_every_family_kind_has_a_cost_class() -> None:
    from irflow.backends.sim.executor import VECTOR_KIND
    from irflow.backends.sim.machine import VECTOR_KINDS

    assert set(accel_vector.KINDS) <= set(accel_vector.COST_CLASS)
    assert {VECTOR_KIND[k] for k in accel_vector.COST_CLASS} <= set(VECTOR_KINDS)
    # and the family graphs above run every kind
    ran = {op.name for family in (math_graph, logic_graph, reduction_graph)
           for op in main_func(family().finish()).body.blocks[0].ops}
    assert accel_vector.KINDS <= ran


def test_training_ops_keep_a_located_error() -> None:
    """A loss (training only) has no accel form: lowering stops at it, naming its place."""
    t = Graph()
    x = t.input("x", np.ones((2, 3), np.float32))
    y = t.input("y", np.ones((2, 3), np.float32))
    loss = MseOp.make([x, y])
    t.g.add(loss, FileLineColLoc(StringAttr("train.irf"), IntAttr(4), IntAttr(9)))
    t.outputs.append(loss.results[0])
    with pytest.raises(IrflowError, match=r"train\.irf:4:9.*no tiled form for kind 'nn\.mse'"):
        lowered(t.finish())



def test_onnx_family_ops_simulate_bit_exactly() -> None:
    """An ONNX graph of the issue's operators: variadic broadcast Max/Min, Equal, Where,
    Cast at run time, PRelu, ReduceMax/L2/LogSumExp, ArgMax, CumSum, TopK, Not/And."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    from onnx_helpers import model

    from irflow.frontends.onnx import import_onnx

    rng = _rng()
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    b = rng.standard_normal((3, 1)).astype(np.float32)
    c = rng.standard_normal((4,)).astype(np.float32)
    node = helper.make_node
    nodes = [
        node("Max", ["a", "b", "c"], ["mx"]), node("Min", ["a", "b", "c"], ["mn"]),
        node("Equal", ["mx", "a"], ["eq"]), node("Where", ["eq", "mn", "c"], ["w"]),
        node("Cast", ["w"], ["wi"], to=TensorProto.INT32),
        node("Cast", ["wi"], ["wf"], to=TensorProto.FLOAT),
        node("PRelu", ["wf", "c"], ["pr"]),
        node("ReduceMax", ["pr", "ax"], ["rmax"], keepdims=0),
        node("ReduceL2", ["pr", "ax"], ["rl2"]),
        node("ReduceLogSumExp", ["a", "ax"], ["rlse"]),
        node("ArgMax", ["a"], ["am"], axis=2),
        node("CumSum", ["a", "one"], ["cs"]),
        node("TopK", ["a", "k"], ["tv", "ti"], axis=1),
        node("Not", ["eq"], ["ne"]), node("And", ["eq", "ne"], ["nd"]),
    ]
    outs = ["rmax", "rl2", "rlse", "am", "cs", "tv", "ti", "nd", "wi"]
    m = model(nodes, {"a": a, "b": b, "c": c}, outs,
              {"ax": np.array([1], np.int64), "one": np.array(1, np.int64),
               "k": np.array([2], np.int64)}, opset=18)
    module = import_onnx(m)
    result = check_exact(module, {"a": a, "b": b, "c": c}, "d0=1,d1=2,d2=3")
    assert all(tr.unit == Unit.VECTOR for tr in result.traces)
