"""VJPs of the decoder-LLM ops (`nn.rms_norm`, `nn.rotary`, `nn.attention`) by
decomposition: the rule re-emits the op as the forward `nn` ops it is made of and runs
their VJP rules backward over that small graph, so no new backward op or kernel is
needed and each derivative is the one already checked for the parts.

`nn.attention` (grouped-query, causal) before, in `@main`:

    %o = nn.attention %q, %k, %v {causal = 1 : i64}
         : (tensor<1x4x3x8xf64>, tensor<1x2x3x8xf64>, tensor<1x2x3x8xf64>) -> tensor<1x4x3x8xf64>

its VJP in `@train_step` (shortened): the forward recomputed per key/value head group,

    %q5 = nn.reshape %q : ... -> tensor<1x2x2x3x8xf64>          // [B, Hkv, G, S, D]
    %k5 = nn.reshape %k : ... -> tensor<1x2x1x3x8xf64>          // [B, Hkv, 1, T, D]
    %s  = nn.matmul %q5, %kT ...; %m = nn.add %s', %mask ...   // scale, causal mask
    %p  = nn.softmax %m {axis = -1 : i64} ...
    %ds = nn.softmax_grad %p, %dp ...                           // then matmul's VJPs
    %dk = nn.sum_to %dk5 ... -> tensor<1x2x1x3x8xf64>           // summed over the group

The causal mask is a constant of −1e30 where a key is hidden (exp of it is exactly 0
after softmax's max shift, in float32 and float64).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from xdsl.ir import Operation, SSAValue

from irflow.dialects import nn
from irflow.train.vjp import Emitter, Grads, NotDifferentiable, rule_for, vjp

Decompose = Callable[[Emitter, Operation], SSAValue]
MASKED = -1e30


def by_decomposition(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool],
                     decompose: Decompose) -> Grads:
    """Emit `decompose(e, op)` (the op as forward ops of its operands) and back-propagate
    `dys[0]` through those ops with their own rules."""
    last = e.block.last_op
    out = decompose(e, op)
    ops: list[Operation] = []
    cur = last.next_op if last is not None else e.block.first_op
    while cur is not None:
        ops.append(cur)
        cur = cur.next_op
    needs = {v for v, w in zip(op.operands, want) if w}
    for o in ops:
        if any(v in needs for v in o.operands):
            needs.update(o.results)
    assert dys[0] is not None
    adjoint: dict[SSAValue, SSAValue] = {out: dys[0]}
    for o in reversed(ops):
        d = [adjoint.get(r) for r in o.results]
        wanted = [v in needs for v in o.operands]
        if all(x is None for x in d) or not any(wanted):
            continue
        rule = rule_for(o)
        if rule is None:  # pragma: no cover - decompositions use differentiable ops only
            raise NotDifferentiable(f"{o.name} in the decomposition of {op.name} has no VJP", op)
        for v, w, g in zip(o.operands, wanted, rule(e, o, d, wanted)):
            if w and g is not None:
                prev = adjoint.get(v)
                adjoint[v] = g if prev is None else e.make(nn.AddOp, [prev, g])
    return [adjoint.get(v) if w else None for v, w in zip(op.operands, want)]


def _rms_norm(e: Emitter, op: Operation) -> SSAValue:
    """x / √(mean(x², axes axis..end) + ε) · scale."""
    x, scale = op.operands
    rank = len(nn.shape_of(x))
    axes = range(nn.prop_int(op, "axis", -1) % rank, rank)
    ms = e.make(nn.ReduceMeanOp, [e.make(nn.MulOp, [x, x])],
                {"axes": nn.int_array(axes), "keepdims": nn.i64_attr(1)})
    eps = e.constant(np.full((1,), nn.prop_float(op, "epsilon", 1e-5)), x)
    root = e.make(nn.SqrtOp, [e.make(nn.AddOp, [ms, eps])])
    return e.make(nn.MulOp, [e.make(nn.DivOp, [x, root]), scale])


def _half(e: Emitter, x: SSAValue, start: int, end: int) -> SSAValue:
    return e.make(nn.SliceOp, [x], {"starts": nn.int_array([start]),
                                    "ends": nn.int_array([end]), "axes": nn.int_array([3])})


def _rotary(e: Emitter, op: Operation) -> SSAValue:
    """(x1·cos − x2·sin, x2·cos + x1·sin) over the halves of the last axis."""
    x, cos, sin = op.operands
    b, _, s, d = nn.shape_of(x)
    c, sn = e.reshape(cos, (b, 1, s, d // 2)), e.reshape(sin, (b, 1, s, d // 2))
    x1, x2 = _half(e, x, 0, d // 2), _half(e, x, d // 2, d)

    def mul(a: SSAValue, b_: SSAValue) -> SSAValue:
        return e.make(nn.MulOp, [a, b_])

    lo = e.make(nn.SubOp, [mul(x1, c), mul(x2, sn)])
    hi = e.make(nn.AddOp, [mul(x2, c), mul(x1, sn)])
    return e.make(nn.ConcatOp, [lo, hi], {"axis": nn.i64_attr(3)})


def _attention(e: Emitter, op: Operation) -> SSAValue:
    """softmax(q kᵀ · scale + mask) v with the query heads grouped by key/value head."""
    from irflow.backends.reference.llm_kernels import attention_scale

    q, k, v = op.operands
    b, hq, s, d = nn.shape_of(q)
    hkv, t, dv = nn.shape_of(k)[1], nn.shape_of(k)[2], nn.shape_of(v)[3]
    q5 = e.reshape(q, (b, hkv, hq // hkv, s, d))
    k5, v5 = e.reshape(k, (b, hkv, 1, t, d)), e.reshape(v, (b, hkv, 1, t, dv))
    scores = e.make(nn.MatmulOp, [q5, e.transpose_last2(k5)])
    scores = e.make(nn.MulOp, [scores, e.constant(np.full((1,), attention_scale(op)), q)])
    if nn.prop_int(op, "causal", 0):
        pos = t - s + np.arange(s)
        mask = np.where(np.arange(t)[None, :] > pos[:, None], MASKED, 0.0)
        scores = e.make(nn.AddOp, [scores, e.constant(mask, q)])
    probs = e.make(nn.SoftmaxOp, [scores], {"axis": nn.i64_attr(-1)})
    return e.reshape(e.make(nn.MatmulOp, [probs, v5]), (b, hq, s, dv))


def _rule(decompose: Decompose) -> Callable[..., Grads]:
    def rule(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
        return by_decomposition(e, op, dys, want, decompose)

    return rule


vjp(nn.RMSNormOp)(_rule(_rms_norm))
vjp(nn.RotaryOp)(_rule(_rotary))
vjp(nn.AttentionOp)(_rule(_attention))
