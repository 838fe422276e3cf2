"""VJPs of the table-driven math and reduction families. Elementwise math
(`dialects/nn/math.py`): one rule for
every differentiable row (`DIFFERENTIABLE_MATH`), emitting `nn.activation_grad` with the
row's name as `fn` and the forward op's float properties made explicit (defaults
included); the per-function derivatives are the table in
`backends/reference/math_grad_kernels.py`.

    %y = nn.leaky_relu %x {alpha = 0.1 : f64} : tensor<4xf64>
    // VJP:
    %dx = nn.activation_grad %x, %dy {alpha = 0.1 : f64, fn = "leaky_relu"} : (...) -> tensor<4xf64>

The other rows (floor, ceil, round, sign: zero derivative almost everywhere; not,
bitwise_not, is_nan, is_inf, cast) have no rule: on the path from a trainable weight to
the loss they are `grad`'s `NotDifferentiable` error.

Reductions (`nn.reduce_sum`, `_max`, `_min`, `_prod`, `_l1`, `_l2`, `_log_sum`,
`_log_sum_exp`, `_sum_square`): one rule emitting `nn.reduce_grad {fn}` on the input, the
result and dy; the per-reduction ∂y/∂x table is `backends/reference/reduction_grad_kernels.py`.
`nn.where`: dy routed to the branch each element came from (`nn.where` of dy and zeros).
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Attribute, Operation, SSAValue

from irflow.dialects import nn
from irflow.dialects.nn import gradients as g
from irflow.dialects.nn.logic import LOGIC_OPS
from irflow.dialects.nn.math import DIFFERENTIABLE_MATH, MATH_OPS, PARAM_ACTIVATIONS
from irflow.dialects.nn.reductions import REDUCTION_OPS
from irflow.train.vjp import Emitter, Grads, vjp


@vjp(*(MATH_OPS[s] for s in DIFFERENTIABLE_MATH))
def _math(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    short = op.name.removeprefix("nn.")
    props: dict[str, Attribute | None] = {"fn": StringAttr(short)}
    defaults = PARAM_ACTIVATIONS[short][1] if short in PARAM_ACTIVATIONS else {}
    props.update({k: nn.f64(nn.prop_float(op, k, d)) for k, d in defaults.items()})
    return [e.make(g.ActivationGradOp, [op.operands[0], dys[0]], props)]  # type: ignore[list-item]


@vjp(*(REDUCTION_OPS[s] for s in g.REDUCE_GRAD_FNS))
def _reduce(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    props = {"fn": StringAttr(op.name.removeprefix("nn.")), "axes": op.properties.get("axes"),
             "keepdims": nn.i64_attr(nn.prop_int(op, "keepdims", 1))}
    x = op.operands[0]
    return [e.grad_op(g.ReduceGradOp, [x, op.results[0], dys[0]], [x],  # type: ignore[list-item]
                      props).results[0]]


@vjp(LOGIC_OPS["where"])
def _where(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    """dy routed to the branch each element came from (the boolean condition gets none)."""
    cond, a, b = op.operands
    dy = dys[0]
    assert dy is not None
    zero = e.constant(np.zeros((1,)), dy)

    def route(x: SSAValue, y: SSAValue) -> SSAValue:  # typed like dy (the output's shape)
        return e.value(LOGIC_OPS["where"].create(operands=[cond, x, y], result_types=[dy.type]))

    da = e.sum_to(route(dy, zero), a) if want[1] else None
    db = e.sum_to(route(zero, dy), b) if want[2] else None
    return [None, da, db]
