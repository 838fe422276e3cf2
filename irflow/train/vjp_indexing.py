"""VJPs of the ops that move data by pattern or by index (`dialects/nn/indexing.py`),
composed from forward `nn` ops and `nn.gather_grad`; no backward op of their own.

    nn.expand          dx = nn.sum_to dy                       (the adjoint of broadcasting)
    nn.tile            dx = nn.reduce_sum over the repeat axes of dy reshaped to
                            [r0, d0, r1, d1, ...]
    nn.pad             constant mode: nn.pad dy by −pads (the crop); reflect, edge, wrap:
                            per padded axis, nn.gather_grad with the axis's source indices
                            (np.pad of arange(n) in that mode: a padded element adds its dy
                            to the element it copies)
    nn.trilu           dx = nn.trilu dy                        (a mask: self-adjoint)
    nn.depth_to_space  dx = nn.space_to_depth dy (same blocksize and mode; and vice versa)
    nn.gather_elements ddata = nn.scatter_elements zeros, indices, dy {reduction = "add"}
    nn.gather_nd       ddata = nn.scatter_nd zeros, indices', dy {reduction = "add"}, with
                            batch_dims b folded into indices' (the batch coordinates
                            concatenated in front)
    nn.scatter_*       reduction none: ddata = scatter of zeros over dy (the overwritten
                            places get none), dupdates = gather of dy at indices; add:
                            ddata = dy; mul: dy·y / data, gather(dy·y) / updates; max,
                            min: dy to the values equal to the result, split among ties
    nn.one_hot         dvalues = [sum(dy) − sum(dy·mask), sum(dy·mask)]

Indices are integer values and carry no gradient. `nn.scatter_*` with reduction none
assumes unique indices (ONNX leaves repeated ones undefined; the kernel keeps the last).
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import StringAttr, TensorType, i1, i64
from xdsl.ir import Operation, SSAValue

from irflow.dialects import nn
from irflow.dialects.nn import gradients as g
from irflow.dialects.nn import indexing as ix
from irflow.dialects.nn.reductions import REDUCTION_OPS
from irflow.train.vjp import Emitter, Grads, vjp
from irflow.weights import dense_attr


def int_constant(e: Emitter, array: np.ndarray, like: SSAValue | None = None) -> SSAValue:
    """An integer constant (typed like `like`, i64 without it)."""
    elem = nn.value_element_type(like) if like is not None else i64
    attr = dense_attr(np.asarray(array), elem)
    return e.value(nn.ConstantOp(attr, attr.type))  # type: ignore[arg-type]


def zeros_like(e: Emitter, x: SSAValue) -> SSAValue:
    """Zeros of `x`'s shape as `nn.expand` of a one-element constant (not an input-sized
    constant in the IR)."""
    zero = e.constant(np.zeros((1,)), x)
    return e.make(ix.ExpandOp, [zero], {"shape": nn.int_array(nn.shape_of(x))})


def _dy(dys: list[SSAValue | None]) -> SSAValue:
    dy = dys[0]
    assert dy is not None
    return dy


@vjp(ix.ExpandOp)
def _expand(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    return [e.sum_to(_dy(dys), op.operands[0])]


@vjp(ix.TileOp)
def _tile(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    x = op.operands[0]
    reps = nn.prop_ints(op, "repeats", ())
    dy = _dy(dys)
    if all(r == 1 for r in reps):
        return [dy]
    split = [n for r, d in zip(reps, nn.shape_of(x)) for n in (r, d)]
    summed = e.make(REDUCTION_OPS["reduce_sum"], [e.reshape(dy, split)],
                    {"axes": nn.int_array(range(0, len(split), 2)), "keepdims": nn.i64_attr(0)})
    return [summed]


@vjp(ix.PadOp)
def _pad(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    pads = nn.prop_ints(op, "pads", ())
    mode = nn.prop_str(op, "mode", "constant")
    dy = _dy(dys)
    if mode == "constant":  # the crop (pad by −pads, which also zero-fills what was cropped)
        return [e.make(ix.PadOp, [dy], {"pads": nn.int_array([-p for p in pads])})]
    shape = list(nn.shape_of(op.operands[0]))
    rank = len(shape)
    stages: list[tuple[int, np.ndarray, list[int]]] = []  # axis, source indices, input shape
    for a in range(rank):
        begin, end = pads[a], pads[a + rank]
        if begin == 0 and end == 0:
            continue
        src = np.arange(shape[a])[max(-begin, 0):shape[a] + min(end, 0)]
        idx = np.pad(src, (max(begin, 0), max(end, 0)), mode=mode)  # type: ignore[call-overload]
        stages.append((a, idx, list(shape)))
        shape[a] = len(idx)
    for a, idx, before in reversed(stages):
        like = TensorType(nn.value_element_type(dy), before)
        dy = e.grad_op(g.GatherGradOp, [int_constant(e, idx), dy], [like],
                       {"axis": nn.i64_attr(a)}).results[0]
    return [dy]


@vjp(ix.TriluOp)
def _trilu(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    return [e.make(ix.TriluOp, [_dy(dys)], dict(op.properties))]


@vjp(ix.DepthToSpaceOp, ix.SpaceToDepthOp)
def _depth_space(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]
                 ) -> Grads:
    inverse = ix.SpaceToDepthOp if isinstance(op, ix.DepthToSpaceOp) else ix.DepthToSpaceOp
    return [e.make(inverse, [_dy(dys)], dict(op.properties))]


@vjp(ix.GatherElementsOp)
def _gather_elements(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]
                     ) -> Grads:
    data, indices = op.operands
    return [e.make(ix.ScatterElementsOp, [zeros_like(e, data), indices, _dy(dys)],
                   {"axis": op.properties.get("axis"), "reduction": StringAttr("add")}), None]


@vjp(ix.GatherNDOp)
def _gather_nd(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]
               ) -> Grads:
    data, indices = op.operands
    b = nn.prop_int(op, "batch_dims", 0)
    ishape = nn.shape_of(indices)
    if b:  # prepend each index tuple's batch coordinates: a plain scatter_nd then suffices
        grid = np.indices(ishape[:b]).reshape((b,) + ishape[:b] + (1,) * (len(ishape) - 1 - b))
        coords = np.moveaxis(np.broadcast_to(grid, (b,) + ishape[:-1]), 0, -1)
        indices = e.make(nn.ConcatOp, [int_constant(e, coords, indices), indices],
                         {"axis": nn.i64_attr(-1)})
    return [e.make(ix.ScatterNDOp, [zeros_like(e, data), indices, _dy(dys)],
                   {"reduction": StringAttr("add")}), None]


class _ScatterParts:
    """The gather and scatter-add matching one scatter op (its indices and axis)."""

    def __init__(self, e: Emitter, op: Operation):
        self.e, self.op = e, op
        self.indices = op.operands[1]
        self.elements = isinstance(op, ix.ScatterElementsOp)
        self.axis = {"axis": op.properties.get("axis")} if self.elements else {}

    def gather(self, x: SSAValue) -> SSAValue:
        """`x` (data-shaped) at the indices (updates-shaped)."""
        e = self.e
        if not self.elements:
            return e.make(ix.GatherNDOp, [x, self.indices])
        # scatter_elements' indices may be smaller than data off the axis: crop x first
        ishape, shape = nn.shape_of(self.indices), nn.shape_of(x)
        a = nn.prop_int(self.op, "axis", 0) % len(shape)
        crop = [i for i, (n, d) in enumerate(zip(ishape, shape)) if i != a and n < d]
        if crop:
            x = e.make(nn.SliceOp, [x], {"starts": nn.int_array([0] * len(crop)),
                                         "ends": nn.int_array([ishape[i] for i in crop]),
                                         "axes": nn.int_array(crop)})
        return e.make(ix.GatherElementsOp, [x, self.indices], self.axis)

    def scatter(self, base: SSAValue, u: SSAValue, reduction: str) -> SSAValue:
        return self.e.make(type(self.op), [base, self.indices, u],  # type: ignore[arg-type]
                           self.axis | {"reduction": StringAttr(reduction)})


def _indicator(e: Emitter, a: SSAValue, b: SSAValue) -> SSAValue:
    """1.0 where a == b, else 0.0 (a's shape and type)."""
    eq = e.value(nn.LOGIC_OPS["equal"].make([a, b], element_type=i1))
    one, zero = e.constant(np.ones((1,)), a), e.constant(np.zeros((1,)), a)
    return e.value(nn.LOGIC_OPS["where"].create(operands=[eq, one, zero], result_types=[a.type]))


@vjp(ix.ScatterElementsOp, ix.ScatterNDOp)
def _scatter(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    """none: data gets dy where nothing was written, updates the gather of dy; add: data dy;
    mul: y/data and y/updates (undefined at 0, as reduce_prod); max, min: dy to every value
    equal to the result, shared equally among ties (torch's scatter_reduce amax/amin)."""
    reduction = nn.prop_str(op, "reduction", "none")
    data, _, updates = op.operands
    y, dy = op.results[0], _dy(dys)
    p = _ScatterParts(e, op)

    def mul(a: SSAValue, b: SSAValue) -> SSAValue:
        return e.make(nn.MulOp, [a, b])

    def div(a: SSAValue, b: SSAValue) -> SSAValue:
        return e.make(nn.DivOp, [a, b])

    if reduction in ("none", "add"):
        ddata = dy if reduction == "add" else p.scatter(dy, zeros_like(e, updates), "none")
        return [ddata if want[0] else None, None, p.gather(dy) if want[2] else None]
    if reduction == "mul":
        dyy = mul(dy, y)
        return [div(dyy, data) if want[0] else None, None,
                div(p.gather(dyy), updates) if want[2] else None]
    data_hit, upd_hit = _indicator(e, data, y), _indicator(e, updates, p.gather(y))
    count = e.make(nn.AddOp, [data_hit, p.scatter(zeros_like(e, data), upd_hit, "add")])
    share = div(dy, count)
    return [mul(share, data_hit) if want[0] else None, None,
            mul(p.gather(share), upd_hit) if want[2] else None]


@vjp(ix.OneHotOp)
def _one_hot(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]
             ) -> Grads:
    indices, values = op.operands
    dy = _dy(dys)
    mask = e.value(ix.OneHotOp.make([indices, e.constant(np.array([0.0, 1.0]), values)],
                                    dict(op.properties), element_type=dy.type.element_type))
    total = {"axes": nn.int_array(range(len(nn.shape_of(dy)))), "keepdims": nn.i64_attr(1)}
    reduce_sum = REDUCTION_OPS["reduce_sum"]
    on = e.reshape(e.make(reduce_sum, [e.make(nn.MulOp, [dy, mask])], total), (1,))
    off = e.make(nn.SubOp, [e.reshape(e.make(reduce_sum, [dy], total), (1,)), on])
    return [None, e.make(nn.ConcatOp, [off, on], {"axis": nn.i64_attr(0)})]
