"""Every `nn` op either has a VJP rule or is in `irflow.train.nondiff`'s explicit lists, and
the ops listed as having no gradient are a clear error on a weight's path."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import TensorType, f64, i1, i64

from irflow.dialects import nn
from irflow.graph import GraphBuilder
from irflow.train.grad import grad, signature
from irflow.train.losses import MSE
from irflow.train.nondiff import INTEGER_VALUED, NO_GRADIENT
from irflow.train.vjp import VJPS, NotDifferentiable

NO_OPERANDS = {"nn.constant"}


def test_every_nn_op_has_a_vjp_or_is_listed() -> None:
    ops = list(nn.NN.operations)
    unlisted = [c.name for c in ops if not any(k in VJPS for k in c.__mro__)
                and c.name not in NO_GRADIENT | dict.fromkeys(INTEGER_VALUED | NO_OPERANDS)]
    assert not unlisted, f"nn ops with neither a VJP nor a place in train.nondiff: {unlisted}"
    names = {c.name for c in ops}
    stale = sorted((set(NO_GRADIENT) | INTEGER_VALUED) - names)
    assert not stale, f"irflow.train.nondiff lists ops that are not nn ops: {stale}"
    both = sorted(c.name for c in ops if c in VJPS and (c.name in NO_GRADIENT
                                                        or c.name in INTEGER_VALUED))
    assert not both, f"listed as non-differentiable but with a VJP: {both}"


def _weight_path(g: GraphBuilder) -> object:
    x = g.input("x", [2, 3], f64)
    w = g.weight("w", np.linspace(0.3, 2.1, 3), element_type=f64)
    return g.add(nn.MulOp.make([x, w])).results[0]


@pytest.mark.parametrize("name", sorted(n for n, why in NO_GRADIENT.items()
                                        if "piecewise" in why))
def test_float_op_without_gradient_is_named(name: str) -> None:
    g = GraphBuilder()
    cls = next(c for c in nn.NN.operations if c.name == name)
    y = g.add(cls.make([_weight_path(g)])).results[0]  # type: ignore[attr-defined]
    with pytest.raises(NotDifferentiable, match=f"{name} has no gradient .* piecewise constant"):
        grad(g.finish([y], ["y"]), MSE())


@pytest.mark.parametrize("short", ["less", "arg_max", "is_nan"])
def test_integer_values_cut_the_path(short: str) -> None:
    """A comparison, arg_max or predicate of a weighted value carries no gradient (as in
    torch): the weight reaches the loss only through them, so its gradient is zero."""
    g = GraphBuilder()
    v = _weight_path(g)
    cls = nn.LOGIC_OPS.get(short) or nn.REDUCTION_OPS.get(short) or nn.MATH_OPS[short]
    operands = [v, v] if short == "less" else [v]
    elem = i64 if short == "arg_max" else i1
    props = {"axis": nn.i64_attr(1)} if short == "arg_max" else {}
    ints = g.add(cls.make(operands, props, element_type=elem)).results[0]  # type: ignore[attr-defined]
    cast = nn.MATH_OPS["cast"]
    y = g.add(cast.create(operands=[ints], result_types=[TensorType(f64, nn.shape_of(ints))]))
    step = grad(g.finish([y.results[0]], ["y"]), MSE())
    assert signature(step).params == ("w",)
    assert "nn.constant dense<0.000000e+00>" in str(step)  # the zero gradient


def test_backward_op_on_the_path_is_named() -> None:
    """No second-order gradients: a backward op on a weight's path is the error, naming it."""
    from irflow.dialects.nn.gradients import SumToOp

    g = GraphBuilder()
    y = g.add(SumToOp.shaped([_weight_path(g)], [TensorType(f64, [3])])).results[0]
    with pytest.raises(NotDifferentiable, match="nn.sum_to has no gradient .* a backward op"):
        grad(g.finish([y], ["y"]), MSE())
