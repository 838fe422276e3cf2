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
                            ddata = dy; mul, max, min: not differentiated (an error)
    nn.one_hot         dvalues = [sum(dy) − sum(dy·mask), sum(dy·mask)]

Indices are integer values and carry no gradient. `nn.scatter_*` with reduction none
assumes unique indices (ONNX leaves repeated ones undefined; the kernel keeps the last).
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import StringAttr, TensorType, i64
from xdsl.ir import Operation, SSAValue

from irflow.dialects import nn
from irflow.dialects.nn import gradients as g
from irflow.dialects.nn import indexing as ix
from irflow.dialects.nn.reductions import REDUCTION_OPS
from irflow.train.vjp import Emitter, Grads, _not_differentiable, vjp
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


@vjp(ix.ScatterElementsOp, ix.ScatterNDOp)
def _scatter(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    reduction = nn.prop_str(op, "reduction", "none")
    if reduction not in ("none", "add"):
        raise _not_differentiable(op, f"its operands with reduction '{reduction}' (none and "
                                  "add have a VJP)")
    data, indices, updates = op.operands
    dy = _dy(dys)
    elements = isinstance(op, ix.ScatterElementsOp)
    axis = {"axis": op.properties.get("axis")} if elements else {}
    ddata = dupdates = None
    if want[0]:
        ddata = dy if reduction == "add" else e.make(
            type(op), [dy, indices, zeros_like(e, updates)], axis)  # type: ignore[arg-type]
    if want[2] and elements:  # indices may be smaller than data off the axis: crop dy first
        ishape, a = nn.shape_of(indices), nn.prop_int(op, "axis", 0) % len(nn.shape_of(dy))
        crop = [i for i, (n, d) in enumerate(zip(ishape, nn.shape_of(dy))) if i != a and n < d]
        if crop:
            dy = e.make(nn.SliceOp, [dy], {"starts": nn.int_array([0] * len(crop)),
                                          "ends": nn.int_array([ishape[i] for i in crop]),
                                          "axes": nn.int_array(crop)})
        dupdates = e.make(ix.GatherElementsOp, [dy, indices], axis)
    elif want[2]:
        dupdates = e.make(ix.GatherNDOp, [dy, indices])
    return [ddata, None, dupdates]


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
