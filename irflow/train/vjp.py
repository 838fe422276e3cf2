"""Vector-Jacobian products of the `nn` ops, as IR: one rule per op class.

A rule receives an `Emitter` (which appends ops to the gradient function), the forward
op (its operands and results are values of the gradient function), the upstream
gradients of its results (None where a result has none) and which operands need a
gradient; it returns one gradient value (or None) per operand. Rules emit forward `nn`
ops where those express the VJP (add's is `nn.sum_to`, matmul's two matmuls with
transposes) and the backward ops of `nn/gradients.py` where they do not.

An operand the VJP is not defined for (an exponent of `nn.pow`, the teacher logits of
`nn.kl_div`) raises `NotDifferentiable`; so does an op with no rule, when it lies on the
path from a trainable weight to the loss (`irflow.train.nondiff` lists them and why).
Integer operands (indices, labels) are never asked for: they carry no gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from xdsl.dialects.builtin import StringAttr, TensorType
from xdsl.ir import Attribute, Block, Operation, SSAValue

from irflow.diagnostics import IrflowError
from irflow.dialects import nn
from irflow.dialects.nn import fake_quant as fq
from irflow.dialects.nn import gradients as g
from irflow.dialects.nn import losses as lo
from irflow.weights import dense_attr, numpy_dtype


class NotDifferentiable(IrflowError):
    """An op (or one of its operands) on the path to a trainable weight has no VJP."""


class Emitter:
    """Appends ops to a block; small helpers for the ops rules emit most."""

    def __init__(self, block: Block, loc: Attribute | None = None):
        self.block = block
        self.loc = loc

    def emit(self, op: Operation) -> Operation:
        if self.loc is not None:
            op.location = self.loc  # type: ignore[assignment]
        self.block.add_op(op)
        return op

    def value(self, op: Operation) -> SSAValue:
        return self.emit(op).results[0]

    def make(self, cls: type[nn.NNOp], operands: Sequence[SSAValue],
             props: Mapping[str, Attribute | None] | None = None) -> SSAValue:
        return self.value(cls.make(list(operands), props))

    def grad_op(self, cls: type[g.ShapedGradOp], operands: Sequence[SSAValue],
                like: Sequence[SSAValue | TensorType],
                props: Mapping[str, Attribute | None] | None = None) -> Operation:
        return self.emit(cls.shaped(operands, like, props))

    def constant(self, array: np.ndarray | float, like: SSAValue) -> SSAValue:
        elem = nn.value_element_type(like)
        arr = np.asarray(array, dtype=numpy_dtype(elem))
        attr = dense_attr(arr, elem)
        return self.value(nn.ConstantOp(attr, attr.type))  # type: ignore[arg-type]

    def zeros(self, like: SSAValue) -> SSAValue:
        return self.constant(np.zeros(nn.shape_of(like)), like)

    def reshape(self, x: SSAValue, shape: Sequence[int]) -> SSAValue:
        if nn.shape_of(x) == tuple(shape):
            return x
        return self.value(nn.ReshapeOp(x, shape))

    def sum_to(self, x: SSAValue, like: SSAValue) -> SSAValue:
        """`x` summed down to `like`'s shape (the adjoint of broadcasting)."""
        if nn.shape_of(x) == nn.shape_of(like):
            return x
        return self.grad_op(g.SumToOp, [x], [TensorType(nn.value_element_type(x),
                                                        list(nn.shape_of(like)))]).results[0]

    def transpose_last2(self, x: SSAValue) -> SSAValue:
        rank = len(nn.shape_of(x))
        perm = list(range(rank - 2)) + [rank - 1, rank - 2]
        return self.make(nn.TransposeOp, [x], {"perm": nn.int_array(perm)})


Grads = list[SSAValue | None]
Rule = Callable[[Emitter, Operation, list[SSAValue | None], list[bool]], Grads]
VJPS: dict[type[Operation], Rule] = {}


def vjp(*classes: type[Operation]) -> Callable[[Rule], Rule]:
    def decorate(rule: Rule) -> Rule:
        for cls in classes:
            VJPS[cls] = rule
        return rule

    return decorate


def rule_for(op: Operation) -> Rule | None:
    for cls in type(op).__mro__:
        rule = VJPS.get(cls)  # type: ignore[arg-type]
        if rule is not None:
            return rule
    return None


def _not_differentiable(op: Operation, what: str) -> NotDifferentiable:
    return NotDifferentiable(f"{op.name} is not differentiable with respect to {what}, "
                             "which lies on the path from a trainable weight to the loss", op)


# --------------------------------------------------------------------------------------
# Elementwise

_ACTIVATION_PROPS = ("min", "max", "alpha", "beta", "approximate")


@vjp(nn.ReluOp, nn.Relu6Op, nn.ClipOp, nn.SigmoidOp, nn.TanhOp, nn.GeluOp, nn.SiluOp,
     nn.HardSigmoidOp, nn.HardSwishOp, nn.ErfOp, nn.SqrtOp, nn.ExpOp)
def _activation(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]
                ) -> Grads:
    props: dict[str, Attribute | None] = {"fn": StringAttr(op.name.removeprefix("nn."))}
    props.update({k: op.properties.get(k) for k in _ACTIVATION_PROPS})
    return [e.make(g.ActivationGradOp, [op.operands[0], dys[0]], props)]  # type: ignore[list-item]


@vjp(nn.NegOp)
def _neg(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    return [e.make(nn.NegOp, [dys[0]])]  # type: ignore[list-item]


def _unfused(op: Operation) -> None:
    if nn.fused_act(op) is not None:
        raise IrflowError(f"{op.name} has a fused activation; grad unfuses them first", op)


@vjp(nn.AddOp, nn.SubOp)
def _add_sub(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    _unfused(op)
    dy = dys[0]
    assert dy is not None
    a, b = op.operands
    db = None
    if want[1]:
        db = e.sum_to(e.make(nn.NegOp, [dy]) if isinstance(op, nn.SubOp) else dy, b)
    return [e.sum_to(dy, a) if want[0] else None, db]


@vjp(nn.MulOp)
def _mul(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    _unfused(op)
    a, b = op.operands
    dy = dys[0]
    assert dy is not None
    return [e.sum_to(e.make(nn.MulOp, [dy, b]), a) if want[0] else None,
            e.sum_to(e.make(nn.MulOp, [dy, a]), b) if want[1] else None]


@vjp(nn.DivOp)
def _div(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    _unfused(op)
    a, b = op.operands
    dy = dys[0]
    assert dy is not None
    da = e.sum_to(e.make(nn.DivOp, [dy, b]), a) if want[0] else None
    db = None
    if want[1]:  # d(a/b)/db = −(a/b)/b
        ratio = e.make(nn.DivOp, [op.results[0], b])
        db = e.sum_to(e.make(nn.NegOp, [e.make(nn.MulOp, [dy, ratio])]), b)
    return [da, db]


@vjp(nn.PowOp)
def _pow(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    """d(a^b)/da = b·a^(b−1); d(a^b)/db = a^b·ln a (real for a > 0, as torch)."""
    _unfused(op)
    a, b = op.operands
    dy = dys[0]
    assert dy is not None
    da = db = None
    if want[0]:
        bm1 = e.make(nn.SubOp, [b, e.constant(1.0, b)])
        local = e.make(nn.MulOp, [e.make(nn.PowOp, [a, bm1]), b])
        da = e.sum_to(e.make(nn.MulOp, [dy, local]), a)
    if want[1]:
        local = e.make(nn.MulOp, [op.results[0], e.make(nn.MATH_OPS["log"], [a])])
        db = e.sum_to(e.make(nn.MulOp, [dy, local]), b)
    return [da, db]


# --------------------------------------------------------------------------------------
# Contractions


@vjp(nn.MatmulOp)
def _matmul(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    _unfused(op)
    a, b = op.operands
    dy = dys[0]
    assert dy is not None
    sa, sb = nn.shape_of(a), nn.shape_of(b)
    a2 = e.reshape(a, (1,) + sa) if len(sa) == 1 else a
    b2 = e.reshape(b, sb + (1,)) if len(sb) == 1 else b
    out2 = nn.MatmulOp.infer_shapes([nn.shape_of(a2), nn.shape_of(b2)], {})[0]
    dy2 = e.reshape(dy, out2)
    da = db = None
    if want[0]:
        da = e.reshape(e.sum_to(e.make(nn.MatmulOp, [dy2, e.transpose_last2(b2)]), a2), sa)
    if want[1]:
        db = e.reshape(e.sum_to(e.make(nn.MatmulOp, [e.transpose_last2(a2), dy2]), b2), sb)
    return [da, db]


@vjp(nn.LinearOp)
def _linear(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    _unfused(op)
    x, w = op.operands[0], op.operands[1]
    dy = dys[0]
    assert dy is not None
    out_f, in_f = nn.shape_of(w)
    grads: Grads = [None] * len(op.operands)
    if want[0]:
        grads[0] = e.make(nn.MatmulOp, [dy, w])
    if want[1]:
        rows = int(np.prod(nn.shape_of(x)[:-1]))
        dy2 = e.reshape(dy, (rows, out_f))
        x2 = e.reshape(x, (rows, in_f))
        grads[1] = e.make(nn.MatmulOp, [e.transpose_last2(dy2), x2])
    if len(op.operands) > 2 and want[2]:
        grads[2] = e.sum_to(dy, op.operands[2])
    return grads


def _conv_props(op: Operation) -> dict[str, Attribute | None]:
    return {k: op.properties.get(k) for k in ("strides", "pads", "dilations", "groups")}


@vjp(nn.Conv2dOp)
def _conv2d(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    _unfused(op)
    x, w = op.operands[0], op.operands[1]
    dy = dys[0]
    assert dy is not None
    grads: Grads = [None] * len(op.operands)
    if want[0]:
        grads[0] = e.grad_op(g.Conv2dInputGradOp, [dy, w], [x], _conv_props(op)).results[0]
    if want[1]:
        grads[1] = e.grad_op(g.Conv2dWeightGradOp, [x, dy], [w], _conv_props(op)).results[0]
    if len(op.operands) > 2 and want[2]:
        f = nn.shape_of(w)[0]
        per_channel = e.grad_op(g.SumToOp, [dy], [TensorType(nn.value_element_type(dy),
                                                             [f, 1, 1])]).results[0]
        grads[2] = e.reshape(per_channel, (f,))
    return grads


# --------------------------------------------------------------------------------------
# Normalization and reductions


@vjp(nn.BatchNormOp)
def _batchnorm(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]
               ) -> Grads:
    x, scale, bias, mean, var = op.operands
    if want[3] or want[4]:
        raise _not_differentiable(op, "its running mean and variance (inference batchnorm)")
    dy = dys[0]
    assert dy is not None
    r = e.grad_op(g.BatchNormGradOp, [x, scale, mean, var, dy], [x, scale, bias],
                  {"epsilon": op.properties.get("epsilon")}).results
    return [r[0] if want[0] else None, r[1] if want[1] else None, r[2] if want[2] else None,
            None, None]


@vjp(nn.LayerNormOp)
def _layernorm(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]
               ) -> Grads:
    x, scale = op.operands[0], op.operands[1]
    dy = dys[0]
    assert dy is not None
    grads: Grads = [None] * len(op.operands)
    if want[0] or want[1]:
        r = e.grad_op(g.LayerNormGradOp, [x, scale, dy], [x, scale],
                      {k: op.properties.get(k) for k in ("axis", "epsilon")}).results
        grads[0], grads[1] = (r[0] if want[0] else None), (r[1] if want[1] else None)
    if len(op.operands) > 2 and want[2]:
        grads[2] = e.sum_to(dy, op.operands[2])
    return grads


@vjp(nn.SoftmaxOp)
def _softmax(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    return [e.make(g.SoftmaxGradOp, [op.results[0], dys[0]],  # type: ignore[list-item]
                   {"axis": op.properties.get("axis")})]


@vjp(nn.ReduceMeanOp)
def _reduce_mean(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]
                 ) -> Grads:
    props = {k: op.properties.get(k) for k in ("axes", "keepdims")}
    return [e.grad_op(g.ReduceMeanGradOp, [dys[0]], [op.operands[0]], props).results[0]]  # type: ignore[list-item]


@vjp(nn.GlobalAvgPoolOp)
def _global_avg_pool(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]
                     ) -> Grads:
    rank = len(nn.shape_of(op.operands[0]))
    props = {"axes": nn.int_array(range(2, rank)), "keepdims": nn.i64_attr(1)}
    return [e.grad_op(g.ReduceMeanGradOp, [dys[0]], [op.operands[0]], props).results[0]]  # type: ignore[list-item]


@vjp(nn.MaxPoolOp, nn.AvgPoolOp)
def _pool(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    cls = g.AvgPoolGradOp if isinstance(op, nn.AvgPoolOp) else g.MaxPoolGradOp
    keys = ["kernel", "strides", "pads", "ceil_mode"] + (
        ["count_include_pad"] if cls is g.AvgPoolGradOp else [])
    props = {k: op.properties.get(k) for k in keys}
    x = op.operands[0]
    return [e.grad_op(cls, [x, dys[0]], [x], props).results[0]]  # type: ignore[list-item]


# --------------------------------------------------------------------------------------
# Data movement


@vjp(nn.ReshapeOp, nn.FlattenOp)
def _reshape(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    return [e.reshape(dys[0], nn.shape_of(op.operands[0]))]  # type: ignore[arg-type]


@vjp(nn.TransposeOp)
def _transpose(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]
               ) -> Grads:
    perm = nn.prop_ints(op, "perm", ())
    inverse = [perm.index(i) for i in range(len(perm))]
    return [e.make(nn.TransposeOp, [dys[0]], {"perm": nn.int_array(inverse)})]  # type: ignore[list-item]


@vjp(nn.ConcatOp)
def _concat(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    rank = len(nn.shape_of(op.results[0]))
    axis = nn.prop_int(op, "axis", 0) % rank
    grads: Grads = []
    start = 0
    for x, w in zip(op.operands, want):
        size = nn.shape_of(x)[axis]
        if w:
            props = {"starts": nn.int_array([start]), "ends": nn.int_array([start + size]),
                     "axes": nn.int_array([axis])}
            grads.append(e.make(nn.SliceOp, [dys[0]], props))  # type: ignore[list-item]
        else:
            grads.append(None)
        start += size
    return grads


@vjp(nn.SliceOp)
def _slice(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    props = {k: op.properties.get(k) for k in ("starts", "ends", "axes", "steps")}
    return [e.grad_op(g.SliceGradOp, [dys[0]], [op.operands[0]], props).results[0]]  # type: ignore[list-item]


@vjp(nn.SplitOp)
def _split(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    parts = [dy if dy is not None else e.zeros(r) for dy, r in zip(dys, op.results)]
    if len(parts) == 1:
        return [parts[0]]
    return [e.make(nn.ConcatOp, parts, {"axis": op.properties.get("axis")})]


@vjp(nn.GatherOp)
def _gather(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    if want[1]:
        raise _not_differentiable(op, "its indices")
    data, indices = op.operands
    return [e.grad_op(g.GatherGradOp, [indices, dys[0]], [data],  # type: ignore[list-item]
                      {"axis": op.properties.get("axis")}).results[0], None]


# --------------------------------------------------------------------------------------
# Losses


@vjp(lo.CrossEntropyOp)
def _cross_entropy(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]
                   ) -> Grads:
    if want[1]:
        raise _not_differentiable(op, "its labels")
    logits, labels = op.operands
    return [e.make(lo.CrossEntropyGradOp, [logits, labels, dys[0]],  # type: ignore[list-item]
                   {"label_smoothing": op.properties.get("label_smoothing")}), None]


@vjp(lo.KlDivOp)
def _kl_div(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    if want[1]:
        raise _not_differentiable(op, "its target (teacher) logits")
    s, t = op.operands
    return [e.make(lo.KlDivGradOp, [s, t, dys[0]],  # type: ignore[list-item]
                   {"temperature": op.properties.get("temperature")}), None]


@vjp(lo.MseOp)
def _mse(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    if want[1]:
        raise _not_differentiable(op, "its target")
    p, t = op.operands
    return [e.make(lo.MseGradOp, [p, t, dys[0]]), None]  # type: ignore[list-item]


# --------------------------------------------------------------------------------------
# Fake quantization: the straight-through estimator


@vjp(fq.FakeQuantOp)
def _fake_quant(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]
                ) -> Grads:
    if nn.prop_str(op, "mode", "") == "weight":  # max|w| scales: nothing is ever clamped
        return [dys[0]]
    return [e.make(fq.FakeQuantGradOp, [op.operands[0], dys[0]],  # type: ignore[list-item]
                   dict(op.properties))]


# Rules in their own modules (they import this one): registered on import.
from irflow.train import vjp_indexing, vjp_llm, vjp_math, vjp_spatial  # noqa: E402, F401
