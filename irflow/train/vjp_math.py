"""VJPs of the table-driven math and reduction families. Elementwise math
(`dialects/nn/math.py`): one rule for
every differentiable row (`DIFFERENTIABLE_MATH`), emitting `nn.activation_grad` with the
row's name as `fn` and the forward op's float properties made explicit (defaults
included); the per-function derivatives are the table in
`backends/reference/math_grad_kernels.py`.

    %y = nn.leaky_relu %x {alpha = 0.1 : f64} : tensor<4xf64>
    // VJP:
    %dx = nn.activation_grad %x, %dy {alpha = 0.1 : f64, fn = "leaky_relu"} : (...) -> tensor<4xf64>

The other rows have no rule (`irflow.train.nondiff`): floor, ceil, round and sign (zero
derivative almost everywhere) are `grad`'s `NotDifferentiable` error on the path from a
trainable weight to the loss; not, bitwise_not, is_nan and is_inf have integer or boolean
results, which carry no gradient. `nn.cast` between float types casts dy back.

Reductions (`nn.reduce_sum`, `_max`, `_min`, `_prod`, `_l1`, `_l2`, `_log_sum`,
`_log_sum_exp`, `_sum_square`): one rule emitting `nn.reduce_grad {fn}` on the input, the
result and dy; the per-reduction ∂y/∂x table is `backends/reference/reduction_grad_kernels.py`.
`nn.where`: dy routed to the branch each element came from (`nn.where` of dy and zeros).

The float-valued binaries of `nn/logic.py` (min, max: ties share dy equally, as torch;
prelu; mod) and the axis maps, scans and top-k of `nn/reductions.py` (log_softmax,
cumsum/cumprod: a cumsum the other way; topk: a scatter to the selected indices) are
composed from forward ops, each rule's docstring saying how.
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import StringAttr, TensorType, i1
from xdsl.ir import Attribute, Operation, SSAValue

from irflow.dialects import nn
from irflow.dialects.nn import gradients as g
from irflow.dialects.nn import indexing as ix
from irflow.dialects.nn.logic import LOGIC_OPS
from irflow.dialects.nn.math import DIFFERENTIABLE_MATH, MATH_OPS, PARAM_ACTIVATIONS
from irflow.dialects.nn.reductions import REDUCTION_OPS
from irflow.train.vjp import Emitter, Grads, _unfused, vjp
from irflow.train.vjp_indexing import zeros_like


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


# --------------------------------------------------------------------------------------
# Broadcasting binaries of `nn/logic.py` with a float result: min, max, prelu, mod


def _where(e: Emitter, cond: SSAValue, a: SSAValue, b: SSAValue, like: SSAValue) -> SSAValue:
    """`nn.where` typed like `like` (`make` would type it like the i1 condition)."""
    shape = nn.broadcast_shapes("nn.where", nn.broadcast_shapes(
        "nn.where", nn.shape_of(cond), nn.shape_of(a)), nn.shape_of(b))
    return e.value(LOGIC_OPS["where"].create(
        operands=[cond, a, b], result_types=[TensorType(nn.value_element_type(like), shape)]))


def _compare(e: Emitter, short: str, a: SSAValue, b: SSAValue) -> SSAValue:
    return e.value(LOGIC_OPS[short].make([a, b], element_type=i1))


def _dy(dys: list[SSAValue | None]) -> SSAValue:
    dy = dys[0]
    assert dy is not None
    return dy


@vjp(LOGIC_OPS["max"], LOGIC_OPS["min"])
def _min_max(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    """dy to the operand that won; ties share it equally (torch's maximum/minimum)."""
    _unfused(op)
    a, b = op.operands
    dy = _dy(dys)
    wins = _compare(e, "greater" if op.name == "nn.max" else "less", a, b)
    one, half, zero = (e.constant(np.full((1,), v), dy) for v in (1.0, 0.5, 0.0))
    share = _where(e, wins, one, _where(e, _compare(e, "equal", a, b), half, zero, dy), dy)
    to_a = e.make(nn.MulOp, [dy, share])
    return [e.sum_to(to_a, a) if want[0] else None,
            e.sum_to(e.make(nn.SubOp, [dy, to_a]), b) if want[1] else None]


@vjp(LOGIC_OPS["prelu"])
def _prelu(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    """y = x if x > 0 else slope·x; at x = 0 the slope side (as torch)."""
    _unfused(op)
    x, slope = op.operands
    dy = _dy(dys)
    positive = _compare(e, "greater", x, e.constant(np.zeros((1,)), x))
    dx = dslope = None
    if want[0]:
        dx = e.sum_to(_where(e, positive, dy, e.make(nn.MulOp, [dy, slope]), dy), x)
    if want[1]:
        zero = e.constant(np.zeros((1,)), dy)
        dslope = e.sum_to(_where(e, positive, zero, e.make(nn.MulOp, [dy, x]), dy), slope)
    return [dx, dslope]


@vjp(LOGIC_OPS["mod"])
def _mod(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    """y = a − b·q with q the integer quotient (floored, or truncated with fmod): ∂y/∂a = 1,
    ∂y/∂b = −q = −(a − y)/b (both modes; undefined where q jumps)."""
    _unfused(op)
    a, b = op.operands
    dy = _dy(dys)
    db = None
    if want[1]:
        q = e.make(nn.DivOp, [e.make(nn.SubOp, [a, op.results[0]]), b])
        db = e.sum_to(e.make(nn.NegOp, [e.make(nn.MulOp, [dy, q])]), b)
    return [e.sum_to(dy, a) if want[0] else None, db]


@vjp(MATH_OPS["cast"])
def _cast(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    """A float-to-float cast: dy cast back (a cast to or from an integer type carries none)."""
    x, dy = op.operands[0], _dy(dys)
    if dy.type == x.type:
        return [dy]
    return [e.value(MATH_OPS["cast"].create(operands=[dy], result_types=[x.type]))]


# --------------------------------------------------------------------------------------
# Axis maps, scans and top-k of `nn/reductions.py`


def _axis_props(op: Operation) -> dict[str, Attribute | None]:
    return {"axes": nn.int_array([nn.prop_int(op, "axis", -1)]), "keepdims": nn.i64_attr(1)}


@vjp(REDUCTION_OPS["log_softmax"])
def _log_softmax(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]
                 ) -> Grads:
    """dx = dy − softmax(x) · Σ_axis dy, with softmax(x) = exp(y)."""
    dy = _dy(dys)
    total = e.make(REDUCTION_OPS["reduce_sum"], [dy], _axis_props(op))
    probs = e.make(nn.ExpOp, [op.results[0]])
    return [e.make(nn.SubOp, [dy, e.make(nn.MulOp, [probs, total])])]


def _reverse_cumsum(e: Emitter, op: Operation, x: SSAValue) -> SSAValue:
    """The scan's adjoint: the same cumsum run the other way (exclusive kept)."""
    props = {"axis": op.properties.get("axis"), "exclusive": op.properties.get("exclusive"),
             "reverse": nn.i64_attr(1 - nn.prop_int(op, "reverse", 0))}
    return e.make(REDUCTION_OPS["cumsum"], [x], props)


@vjp(REDUCTION_OPS["cumsum"])
def _cumsum(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    return [_reverse_cumsum(e, op, _dy(dys))]


@vjp(REDUCTION_OPS["cumprod"])
def _cumprod(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]
             ) -> Grads:
    """dx_j = Σ_{i after j} dy_i · y_i / x_j: the reverse cumsum of dy·y, over x (undefined
    at x = 0, as reduce_prod's y/x)."""
    x, y = op.operands[0], op.results[0]
    return [e.make(nn.DivOp, [_reverse_cumsum(e, op, e.make(nn.MulOp, [_dy(dys), y])), x])]


@vjp(REDUCTION_OPS["topk"])
def _topk(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    """The values' dy scattered to the selected positions (the indices carry none)."""
    if dys[0] is None:
        return [None]
    x = op.operands[0]
    return [e.make(ix.ScatterElementsOp, [zeros_like(e, x), op.results[1], dys[0]],
                   {"axis": op.properties.get("axis"), "reduction": StringAttr("add")})]
