"""The reference executor's behaviour, beside its numerics (tests/test_reference.py):
values freed after their last use, live slots, weights read once, copies of returned
constants and views, input checks and casts, check mode, wrapped kernel failures,
timings, multi-result ops and run-time spatial sizes.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import pytest
from nn_helpers import typed_value
from xdsl.irdl import irdl_op_definition

from irflow.backends.reference import (
    compile_function,
    evaluate_op,
    register_kernel,
    run,
)
from irflow.diagnostics import ExecutionError, IrflowError
from irflow.dialects import nn
from irflow.graph import GraphBuilder


def _chain(n: int, shape=(4, 8)) -> tuple[Any, list[Any]]:
    g = GraphBuilder()
    v = g.input("x", list(shape))
    ops = []
    for _ in range(n):
        op = g.add(nn.ReluOp(v))
        ops.append(op)
        v = op.results[0]
    return g.finish([v], ["y"]), ops


@irdl_op_definition
class ProbeOp(nn.UnaryOp):
    """Test-only: copies its input and records a weak reference to every value made."""

    name = "test.probe"


_made: list[weakref.ref[np.ndarray]] = []
_alive_when_called: list[int] = []


@register_kernel(ProbeOp)
def _probe(op: ProbeOp):  # noqa: ANN202
    def kernel(x: np.ndarray) -> np.ndarray:
        _alive_when_called.append(sum(r() is not None for r in _made))
        y = x + 1.0
        _made.append(weakref.ref(y))
        return y

    return kernel


def test_values_are_freed_after_last_use() -> None:
    g = GraphBuilder()
    x = g.input("x", [256, 256])
    v = x
    for _ in range(6):
        v = g.add(ProbeOp(v)).results[0]
    module = g.finish([v], ["y"])
    _made.clear()
    _alive_when_called.clear()
    out = run(module, {"x": np.zeros((256, 256), np.float32)})
    # When probe k runs, only its own input (made by probe k-1) is still referenced.
    assert _alive_when_called == [0, 1, 1, 1, 1, 1]
    np.testing.assert_array_equal(out["y"], np.full((256, 256), 6.0, np.float32))
    assert sum(r() is not None for r in _made) == 1  # only the returned output survives


def test_live_slot_count_on_chain_and_residual() -> None:
    module, _ = _chain(10)
    stats: dict[str, int] = {}
    run(module, {"x": np.ones((4, 8), np.float32)}, stats=stats)
    assert stats["peak_live"] == 2  # one op's input and its output
    assert stats["peak_bytes"] == 2 * 4 * 8 * 4

    # x feeds the first and the last op: it stays live across the whole chain.
    g = GraphBuilder()
    x = g.input("x", [4, 8])
    v = x
    for _ in range(5):
        v = g.add(nn.ReluOp(v)).results[0]
    y = g.add(nn.AddOp.make([v, x])).results[0]
    prog = compile_function(g.finish([y]))
    stats = {}
    prog.run([np.ones((4, 8), np.float32)], stats=stats)
    assert stats["peak_live"] == 3
    assert prog.steps[-1].free == (prog.input_slots[0], prog.steps[-2].outputs[0])
    assert all(prog.input_slots[0] not in s.free for s in prog.steps[:-1])


def test_weights_read_once_at_compile_time_and_positional_inputs() -> None:
    g = GraphBuilder()
    x = g.input("x", [2, 3])
    w = g.weight("fc.weight", np.arange(12, dtype=np.float32).reshape(4, 3))
    b = g.inline(np.float32([1, 2, 3, 4]))
    y = g.add(nn.LinearOp.make([x, w, b])).results[0]
    module = g.finish([y], ["logits"])
    prog = compile_function(module)
    assert (prog.input_names, prog.output_names) == (["x"], ["logits"])
    g.store["fc.weight"] = np.zeros((4, 3), np.float32)  # later edits do not leak in
    xv = np.ones((2, 3), np.float32)
    expected = xv @ np.arange(12, dtype=np.float32).reshape(4, 3).T + np.float32([1, 2, 3, 4])
    np.testing.assert_array_equal(prog.run([xv])["logits"], expected)
    np.testing.assert_array_equal(prog.run({"x": xv})["logits"], expected)


def test_returned_constant_is_a_copy() -> None:
    g = GraphBuilder()
    g.input("x", [2])
    w = g.weight("w", np.float32([1, 2]))
    module = g.finish([w])
    out = run(module, [np.zeros(2, np.float32)])["output0"]
    out[0] = 99
    assert g.store["w"][0] == 1


def test_returned_view_of_a_constant_or_an_input_is_a_copy() -> None:
    """reshape/transpose kernels return views: an output must not alias the weight
    store (or the caller's input), or editing it would change the model's next run."""
    g = GraphBuilder()
    x = g.input("x", [2, 3])
    w = g.weight("w", np.arange(6, dtype=np.float32).reshape(3, 2))
    wt = g.add(nn.TransposeOp.make([w], {"perm": nn.int_array([1, 0])})).results[0]
    xr = g.add(nn.ReshapeOp(x, [3, 2])).results[0]
    prog = compile_function(g.finish([wt, xr], ["wt", "xr"]))
    xv = np.zeros((2, 3), np.float32)
    outs = prog.run([xv])
    outs["wt"][...] = 99
    outs["xr"][...] = 99
    assert g.store["w"].max() == 5 and xv.max() == 0
    np.testing.assert_array_equal(prog.run([xv])["wt"], np.arange(6).reshape(3, 2).T)


def test_missing_weight_is_an_irflow_error() -> None:
    g = GraphBuilder()
    x = g.input("x", [2])
    w = g.weight("w", np.float32([1, 2]))
    module = g.finish([g.add(nn.AddOp.make([x, w])).results[0]])
    del g.store["w"]
    with pytest.raises(IrflowError, match="weight 'w' is not in the weight store"):
        compile_function(module)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, r"missing input 'x' \(expected 2x3 float32\)"),
        ({"x": np.zeros((2, 3), np.float32), "z": np.zeros(1)}, "unexpected input 'z'"),
        ({"x": np.zeros((3, 2), np.float32)}, r"input 'x' expects shape \[2, 3\], got \[3, 2\]"),
        ({"x": np.zeros((2, 3), np.int32)}, "input 'x' expects dtype float32, got int32"),
        ([np.zeros((2, 3)), np.zeros((2, 3))], r"expected 1 inputs \(x\), got 2"),
        (np.zeros((3, 2), np.float32), r"input 'x' expects shape \[2, 3\], got \[3, 2\]"),
    ],
    ids=["missing", "unexpected", "shape", "dtype", "count", "bare-array-shape"],
)
def test_input_errors(inputs: Any, message: str) -> None:
    module, _ = _chain(1, (2, 3))
    with pytest.raises(ExecutionError, match=message):
        run(module, inputs)


def test_float64_inputs_are_cast() -> None:
    module, _ = _chain(1, (2, 3))
    x = np.linspace(-1, 1, 6).reshape(2, 3)  # float64
    out = run(module, {"x": x})["y"]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.maximum(x, 0).astype(np.float32))
    np.testing.assert_array_equal(run(module, x)["y"], out)  # a bare array: the one input


@irdl_op_definition
class BadShapeOp(nn.UnaryOp):
    """Test-only: a kernel that returns the wrong shape."""

    name = "test.bad_shape"


@register_kernel(BadShapeOp)
def _bad_shape(op: BadShapeOp):  # noqa: ANN202
    return lambda x: np.concatenate([x, x])


@irdl_op_definition
class FailOp(nn.UnaryOp):
    """Test-only: a kernel that raises."""

    name = "test.fail"


@register_kernel(FailOp)
def _fail(op: FailOp):  # noqa: ANN202
    def kernel(x: np.ndarray) -> np.ndarray:
        raise ValueError("operands could not be broadcast together")

    return kernel


def _single(cls: type[nn.UnaryOp], float64: bool = False) -> tuple[Any, Any]:
    g = GraphBuilder()
    x = g.input("x", [2, 3])
    op = g.add(cls(x))
    op.results[0].name_hint = "bad"
    return g.finish([op.results[0]]), op


def test_check_mode_names_the_op_with_a_wrong_result() -> None:
    module, op = _single(BadShapeOp)
    x = np.zeros((2, 3), np.float32)
    run(module, [x])  # unchecked: not noticed
    with pytest.raises(ExecutionError) as info:
        run(module, [x], check=True)
    assert "%bad = test.bad_shape result 0 expects 2x3 float32, got 4x3 float32" in str(info.value)
    assert info.value.where is op


def test_check_mode_catches_a_wrong_dtype() -> None:
    g = GraphBuilder()
    x = g.input("x", [3])
    y = g.add(nn.DivOp.make([x, g.inline(np.float32([2.0]))])).results[0]
    module = g.finish([y])
    run(module, [np.ones(3, np.float32)], check=True)  # float32 stays float32
    # Hand the kernel an int32 divisor (as a buggy pass might): float64 comes out.
    prog = compile_function(module)
    prog.initial[prog.steps[0].inputs[1]] = np.int32([2])
    with pytest.raises(ExecutionError, match="expects 3 float32, got 3 float64"):
        prog.run([np.ones(3, np.float32)], check=True)


def test_kernel_failure_is_wrapped_with_the_op() -> None:
    module, op = _single(FailOp)
    for kwargs in ({}, {"check": True}):
        with pytest.raises(ExecutionError) as info:
            run(module, [np.zeros((2, 3), np.float32)], **kwargs)
        assert ("while executing %bad = test.fail: ValueError: operands could not be "
                "broadcast together") in str(info.value)
        assert info.value.where is op


def test_no_kernel_is_a_compile_error() -> None:
    from xdsl.dialects.test import TestOp

    g = GraphBuilder()
    x = g.input("x", [2])
    y = g.add(TestOp.create(operands=[x], result_types=[x.type])).results[0]
    with pytest.raises(ExecutionError, match="no reference kernel for op 'test.op'"):
        compile_function(g.finish([y]))


def test_timings_per_op() -> None:
    module, ops = _chain(3)
    timings: dict[Any, float] = {}
    prog = compile_function(module)
    prog.run([np.ones((4, 8), np.float32)], timings=timings)
    assert set(timings) == set(ops)
    assert all(t >= 0.0 for t in timings.values())


def test_evaluate_op_multiple_results() -> None:
    x = typed_value([2, 5])
    op = nn.SplitOp.make([x], {"axis": nn.i64_attr(1), "sizes": nn.int_array([2, 3])})
    a = np.arange(10, dtype=np.float32).reshape(2, 5)
    left, right = evaluate_op(op, [a])
    np.testing.assert_array_equal(left, a[:, :2])
    np.testing.assert_array_equal(right, a[:, 2:])


@pytest.mark.parametrize("check", [False, True])
def test_a_one_piece_split_feeds_its_user_an_array(check: bool) -> None:
    """The split kernel returns a tuple even for one piece; the executor's fast path
    must not store that tuple as the value."""
    g = GraphBuilder()
    x = g.input("x", [2, 4])
    (piece,) = g.add(nn.SplitOp.make([x], {"axis": nn.i64_attr(1),
                                           "sizes": nn.int_array([4])})).results
    y = g.add(nn.ReluOp(piece)).results[0]
    xv = np.arange(8, dtype=np.float32).reshape(2, 4) - 3
    out = run(g.finish([y]), [xv], check=check)["output0"]
    np.testing.assert_array_equal(out, np.maximum(xv, 0))


def test_spatial_kernels_follow_the_actual_input_size() -> None:
    """The simulator evaluates an op on tiles smaller than its declared operands: conv,
    pool and flatten kernels size their output from the arrays they are given."""
    rng = np.random.default_rng(4)
    w = typed_value([6, 4, 3, 3])
    props = {"strides": nn.int_array([2, 2]), "pads": nn.int_array([1, 1, 1, 1])}
    pool = {"kernel": nn.int_array([3, 3]), "strides": nn.int_array([2, 2]),
            "ceil_mode": nn.i64_attr(1), "count_include_pad": nn.i64_attr(1),
            "pads": nn.int_array([1, 0, 1, 0])}
    tile = rng.standard_normal((1, 4, 9, 7)).astype(np.float32)
    wv = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    for make in (lambda x: nn.Conv2dOp.make([x, w], props),
                 lambda x: nn.AvgPoolOp.make([x], pool),
                 lambda x: nn.MaxPoolOp.make([x], pool),
                 lambda x: nn.FlattenOp.make([x], {"axis": nn.i64_attr(2)})):
        big, exact = make(typed_value([1, 4, 32, 30])), make(typed_value([1, 4, 9, 7]))
        args = [tile, wv][: len(big.operands)]
        np.testing.assert_array_equal(evaluate_op(big, args)[0], evaluate_op(exact, args)[0])


def test_bare_array_needs_a_one_input_function() -> None:
    g = GraphBuilder()
    a, b = g.input("a", [2]), g.input("b", [2])
    module = g.finish([g.add(nn.AddOp.make([a, b])).results[0]])
    with pytest.raises(ExecutionError, match=r"got one array, expected 2 inputs \(a, b\)"):
        run(module, np.zeros(2, np.float32))
