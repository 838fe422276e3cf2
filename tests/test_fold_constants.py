"""`fold-constants`: golden IR and its semantic twin (reference executor before vs after)."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FileLineColLoc,
    IntAttr,
    StringAttr,
    i64,
)
from xdsl.irdl import irdl_op_definition
from xdsl.passes import PassPipeline

from irflow.backends.reference import register_kernel, run
from irflow.context import make_context
from irflow.diagnostics import ExecutionError, PassError
from irflow.dialects import nn
from irflow.graph import GraphBuilder
from irflow.io import print_module
from irflow.passes.fold_constants import FoldConstantsPass
from irflow.weights import weights_of


def _fold(module, **options) -> None:  # noqa: ANN001
    FoldConstantsPass(**options).apply(make_context(), module)
    module.verify()


def _transposed_weight_model(rng: np.random.Generator):  # noqa: ANN202
    """x @ (relu(transpose(W)) * 2) + b: everything but the matmul input is constant."""
    g = GraphBuilder()
    x = g.input("x", [3, 16])
    w = g.weight("fc.weight", rng.standard_normal((10, 16)).astype(np.float32))
    t = g.add(nn.TransposeOp.make([w], {"perm": nn.int_array([1, 0])})).results[0]
    t = g.add(nn.ReluOp(t)).results[0]
    t = g.add(nn.MulOp.make([t, g.inline(np.float32([2.0]))])).results[0]
    y = g.add(nn.MatmulOp.make([x, t])).results[0]
    b = g.weight("fc.bias", rng.standard_normal(10).astype(np.float32))
    y = g.add(nn.AddOp.make([y, b])).results[0]
    return g.finish([y], ["y"]), g.store


def test_folds_a_constant_chain_into_one_weight() -> None:
    rng = np.random.default_rng(0)
    module, store = _transposed_weight_model(rng)
    x = rng.standard_normal((3, 16)).astype(np.float32)
    before = run(module, {"x": x})["y"]
    _fold(module)
    text = print_module(module)
    assert text.count("nn.constant") == 2, text
    assert 'nn.constant #nn.weight<"fc.weight.transpose.relu.mul"> : tensor<16x10xf32>' in text
    for gone in ("nn.transpose", "nn.relu", "nn.mul", "dense<"):
        assert gone not in text
    assert "nn.matmul %x, %0" in text and "nn.add" in text  # runtime ops stay
    # Intermediates of the chain are dropped; the original weight is kept (maybe shared).
    assert sorted(store) == ["fc.bias", "fc.weight", "fc.weight.transpose.relu.mul"]
    np.testing.assert_array_equal(
        store["fc.weight.transpose.relu.mul"], np.maximum(store["fc.weight"].T, 0) * 2
    )
    # Semantic twin: bit-identical outputs on seeded inputs.
    np.testing.assert_array_equal(run(module, {"x": x})["y"], before)


def test_nothing_to_fold_leaves_the_module_unchanged() -> None:
    rng = np.random.default_rng(1)
    g = GraphBuilder()
    x = g.input("x", [1, 4])
    w = g.weight("w", rng.standard_normal((4, 4)).astype(np.float32))
    y = g.add(nn.MatmulOp.make([x, w], {"act": StringAttr("relu")})).results[0]
    module = g.finish([y])
    text = print_module(module)
    _fold(module)
    assert print_module(module) == text
    assert list(g.store) == ["w"]


def test_multi_result_op_and_a_shared_constant() -> None:
    """split(c) folds into two constants; c stays because a runtime op also uses it."""
    g = GraphBuilder()
    x = g.input("x", [2, 6])
    c = g.weight("table", np.arange(12, dtype=np.float32).reshape(2, 6))
    split = g.add(nn.SplitOp.make([c], {"axis": nn.i64_attr(1), "sizes": nn.int_array([2, 4])}))
    s = g.add(nn.AddOp.make([x, c])).results[0]
    cat = g.add(nn.ConcatOp.make([split.results[1], s, split.results[0]],
                                 {"axis": nn.i64_attr(1)})).results[0]
    module = g.finish([cat])
    xv = np.random.default_rng(2).standard_normal((2, 6)).astype(np.float32)
    before = run(module, [xv])["output0"]
    _fold(module)
    text = print_module(module)
    assert "nn.split" not in text
    assert '#nn.weight<"table.split.0">' in text and '#nn.weight<"table.split.1">' in text
    assert '#nn.weight<"table">' in text
    np.testing.assert_array_equal(run(module, [xv])["output0"], before)


def test_inline_limit_and_location_and_name() -> None:
    g = GraphBuilder()
    x = g.input("x", [3])
    loc = FileLineColLoc(StringAttr("model.irf"), IntAttr(4), IntAttr(7))
    a = g.inline(np.float32([-1.0, 0.5, 2.0]))
    r = g.add(nn.ReluOp(a), loc)
    r.results[0].name_hint = "scale"
    y = g.add(nn.MulOp.make([x, r.results[0]])).results[0]
    module = g.finish([y])
    _fold(module, inline_limit=4)
    const = next(op for op in module.walk() if isinstance(op, nn.ConstantOp))
    assert isinstance(const.value, DenseIntOrFPElementsAttr)
    assert const.location == loc
    assert const.results[0].name_hint == "scale"
    assert "dense<[0.000000e+00, 5.000000e-01, 2.000000e+00]>" in print_module(module)
    assert len(weights_of(module)) == 0
    np.testing.assert_array_equal(run(module, [np.ones(3, np.float32)])["output0"],
                                  np.float32([0.0, 0.5, 2.0]))


def test_max_elements_skips_large_results() -> None:
    g = GraphBuilder()
    x = g.input("x", [64, 64])
    a = g.inline(np.float32([[1.0]]))
    big = g.add(nn.AddOp.make([a, g.weight("z", np.zeros((64, 64), np.float32))])).results[0]
    y = g.add(nn.AddOp.make([x, big])).results[0]
    module = g.finish([y])
    _fold(module, max_elements=1000)
    assert print_module(module).count("nn.add") == 2
    _fold(module)
    assert print_module(module).count("nn.add") == 1


def test_runs_from_pipeline_text() -> None:
    g = GraphBuilder()
    x = g.input("x", [2])
    n = g.add(nn.NegOp(g.inline(np.float32([1.0, 2.0])))).results[0]
    module = g.finish([g.add(nn.AddOp.make([x, n])).results[0]])
    pipeline = PassPipeline.parse_spec(
        {"fold-constants": lambda: FoldConstantsPass}, "fold-constants{inline-limit=8}"
    )
    pipeline.apply(make_context(), module)
    assert "dense<[-1.000000e+00, -2.000000e+00]>" in print_module(module)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_folded_value_equals_executed_value(approximate: str) -> None:
    """The pass evaluates with the executor's own kernels: gelu folds to the same bits."""
    rng = np.random.default_rng(3)
    g = GraphBuilder()
    x = g.input("x", [5, 7])
    w = g.weight("w", rng.standard_normal((5, 7)).astype(np.float32) * 3)
    y = g.add(nn.GeluOp(w, approximate=StringAttr(approximate))).results[0]
    module = g.finish([g.add(nn.AddOp.make([x, y])).results[0]])
    xv = rng.standard_normal((5, 7)).astype(np.float32)
    before = run(module, [xv])["output0"]
    _fold(module)
    assert "nn.gelu" not in print_module(module)
    np.testing.assert_array_equal(run(module, [xv])["output0"], before)


def test_an_op_that_fails_on_its_constants_is_kept() -> None:
    """gather with an out-of-range constant index: folding leaves it, running reports it."""
    g = GraphBuilder()
    x = g.input("x", [2, 3])
    table = g.weight("table", np.zeros((4, 3), np.float32))
    ids = g.inline(np.array([1, 7], np.int64), element_type=i64)
    rows = g.add(nn.GatherOp.make([table, ids])).results[0]
    module = g.finish([g.add(nn.AddOp.make([x, rows])).results[0]])
    _fold(module)
    assert "nn.gather" in print_module(module)
    with pytest.raises(ExecutionError, match="index 7 is out of range"):
        run(module, [np.zeros((2, 3), np.float32)])


@irdl_op_definition
class WrongDtypeOp(nn.UnaryOp):
    """Test-only: a kernel that returns float64 for a float32 result."""

    name = "test.wrong_dtype"


@register_kernel(WrongDtypeOp)
def _wrong_dtype(op: WrongDtypeOp):  # noqa: ANN202
    return lambda x: x.astype(np.float64)


def test_a_kernel_returning_the_wrong_type_is_a_pass_error() -> None:
    g = GraphBuilder()
    op = g.add(WrongDtypeOp(g.inline(np.float32([1.0, 2.0]))))
    module = g.finish([op.results[0]])
    with pytest.raises(PassError, match=r"test.wrong_dtype kernel returned float64 \[2\] for "
                                        r"result 0, the IR declares tensor<2xf32>") as info:
        _fold(module)
    assert info.value.where is op
