"""VJPs of the ops imported from ONNX's einsum and n-D spatial family (`dialects/nn/einsum.py`,
`dialects/nn/spatial.py`), composed from forward `nn` ops; no backward op of their own.

    nn.einsum  d operand i = nn.einsum of dy with the other operands into operand i's
               subscripts. The equation is first made explicit: `...` becomes letters
               (a broadcast size-1 axis gets a letter of its own), the implicit output
               is spelled out. A letter of operand i found neither in the output nor in
               another operand (summed over operand i alone) comes from a ones tensor
               added to the contraction (the gradient is broadcast along it). An operand
               with a repeated letter (a diagonal, `ii->i`): each later occurrence gets
               a fresh letter tied to the first by an identity constant in the same
               contraction (`ii->i`: d a = einsum('i,ij->ij', dy, eye)).
    nn.conv_transpose
               is the input gradient of the convolution that maps its output back to its
               input (weight (C, F/groups, k) read as conv2d's (out, in/groups, k); same
               strides, dilations, groups). dy is first padded by the pads and cropped by
               output_padding (nn.pad; negative pads crop) to the full correlation's reach
               (n-1)·s + (k-1)·d + 1, so the unpadded convolution maps it back to exactly
               x's size, whatever the output_padding (also >= stride, with a larger
               dilation). Then dx = nn.conv2d dy, w and dw = nn.conv2d_weight_grad dy, x
               (dy as the convolution's input, x as its output gradient); dbias = Σ dy
               over all but the channel axis. 1-D runs as 2-D with a unit height; 3-D as a
               sum over the depth taps of 2-D ones (`_conv_transpose_3d`).
    nn.lrn     by decomposition (`vjp_llm.by_decomposition`): x / (bias + alpha/size ·
               nn.einsum(x·x, band))^beta, the window sum across channels an einsum with
               a constant 0/1 band matrix [C, C]; the parts' own rules run backward.
    nn.resize  linear in x and separable (every mode: nearest picks, linear and cubic
               weigh, tf_crop_and_resize's extrapolated places are constant): per resized
               axis a constant matrix M [out, in] from the reference kernel's own axis
               plan (`resize_axis_plan`: source indices and weights), and
               dx = nn.einsum of dy with every Mᵀ in one contraction.
    nn.pool    the window sum S (avg: S(x) / count; lp: S(|x|^p)^(1/p)) is linear, and its
               adjoint Sᵀ is an nn.conv_transpose of dy (N·C as the batch, one channel)
               with a ones kernel, the pool's strides and dilations, pads cropping back to
               the input (output_padding for the floor-mode leftover). avg:
               dx = Sᵀ(dy / count) (count a constant, as the kernel counts);
               lp: dx = Sᵀ(dy · y^(1−p)) · sign(x)·|x|^(p−1). max: 2-D without dilations
               is nn.maxpool_grad; n-D or dilated max goes tap by tap (nn.slice of the
               −inf-padded input, nn.equal to y, first maximum only, nn.where, nn.slice_grad):
               about 8 ops per kernel tap.
"""

from __future__ import annotations

import itertools
import string
from collections import Counter
from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import FloatAttr, StringAttr, TensorType, f64, i1
from xdsl.ir import Attribute, Operation, SSAValue

from irflow.dialects import nn
from irflow.dialects.nn import gradients as g
from irflow.dialects.nn import indexing as ix
from irflow.dialects.nn.einsum import EinsumOp, einsum_shape
from irflow.dialects.nn.logic import LOGIC_OPS
from irflow.dialects.nn.math import MATH_OPS
from irflow.dialects.nn.shapes import Shape, broadcast_shapes
from irflow.dialects.nn.spatial import (
    ConvTransposeOp,
    LRNOp,
    PoolOp,
    ResizeOp,
    window_params,
)
from irflow.train.vjp import Emitter, Grads, vjp
from irflow.train.vjp_llm import by_decomposition


def explicit_einsum(equation: str, shapes: Sequence[Shape]) -> tuple[list[str], str]:
    """`equation` with letters for `...` and the output spelled out: (input terms, output
    term), each one letter per axis. A size-1 axis of an operand's `...` that is broadcast
    gets a letter of its own (summed over that one element: the same result)."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if not arrow:
        counts = Counter(c for c in lhs if c.isalpha())
        rhs = ("..." if "..." in lhs else "") + "".join(sorted(c for c, n in counts.items()
                                                               if n == 1))
    fresh = iter(c for c in string.ascii_letters if c not in eq)
    ell_shapes = []
    for term, shape in zip(terms, shapes):
        pre, _, post = term.partition("...")
        ell_shapes.append(tuple(shape[len(pre):len(shape) - len(post)]) if "..." in term else ())
    full: Shape = ()
    for s in ell_shapes:
        full = broadcast_shapes("nn.einsum", full, s)
    ell = "".join(next(fresh) for _ in full)
    out_terms = []
    for term, es in zip(terms, ell_shapes):
        if "..." not in term:
            out_terms.append(term)
            continue
        own = ell[len(ell) - len(es):] if es else ""
        own = "".join(next(fresh) if d == 1 and full[len(full) - len(es) + k] != 1 else c
                      for k, (c, d) in enumerate(zip(own, es)))
        out_terms.append(term.replace("...", own))
    return out_terms, rhs.replace("...", ell)


@vjp(EinsumOp)
def _einsum(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    dy = dys[0]
    assert dy is not None
    equation = op.properties["equation"].data  # type: ignore[union-attr]
    shapes = [nn.shape_of(x) for x in op.operands]
    terms, out = explicit_einsum(equation, shapes)
    sizes = {c: d for t, s in zip(terms, shapes) for c, d in zip(t, s)}
    grads: Grads = []
    for i, term in enumerate(terms):
        if not want[i]:
            grads.append(None)
            continue
        # a repeated letter (a diagonal): each later occurrence gets a fresh letter, tied
        # to the first by an identity matrix, so the gradient lands on the diagonal
        fresh = iter(c for c in string.ascii_letters if c not in "".join(terms) + out)
        target, eyes, first = "", [], set()
        for c in term:
            if c in first:
                f = next(fresh)
                eyes.append((c + f, np.eye(sizes[c])))
                target += f
            else:
                first.add(c)
                target += c
        others = [(t, v) for j, (t, v) in enumerate(zip(terms, op.operands)) if j != i]
        seen = set(out).union(*[set(t) for t, _ in others], *[set(s) for s, _ in eyes])
        alone = "".join(c for c in target if c not in seen)
        operands, subs = [dy] + [v for _, v in others], [out] + [t for t, _ in others]
        for sub, eye in eyes:
            operands.append(e.constant(eye, dy))
            subs.append(sub)
        if alone:
            operands.append(e.constant(np.ones([sizes[c] for c in alone]), dy))
            subs.append(alone)
        grad_eq = ",".join(subs) + "->" + target
        assert einsum_shape(grad_eq, [nn.shape_of(v) for v in operands]) == shapes[i]
        grads.append(e.make(EinsumOp, operands, {"equation": StringAttr(grad_eq)}))
    return grads


@vjp(ConvTransposeOp)
def _conv_transpose(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]
                    ) -> Grads:
    dy = dys[0]
    assert dy is not None
    x, w = op.operands[0], op.operands[1]
    xs, ws, ys = nn.shape_of(x), nn.shape_of(w), nn.shape_of(dy)
    nd = len(xs) - 2
    strides, pads, dil = window_params(op.properties, nd)
    outpad = nn.prop_ints(op, "output_padding", (0,) * nd)
    grads: Grads = [None] * len(op.operands)
    if want[0] or want[1]:
        # dy padded by the pads and cropped by output_padding (nn.pad, negative crops) to the
        # full correlation's reach, (n-1)·s + (k-1)·d + 1 per axis: the convolution then
        # runs without pads and maps it back to exactly x's size, any output_padding
        lo, hi = pads[:nd], [p - o for p, o in zip(pads[nd:], outpad)]
        if any(lo) or any(hi):
            dy = e.make(ix.PadOp, [dy], {"pads": nn.int_array([0, 0, *lo, 0, 0, *hi])})
        ys = nn.shape_of(dy)
        props = {"strides": nn.int_array(strides[-2:] if nd > 1 else (1, *strides)),
                 "pads": nn.int_array([0] * 4),
                 "dilations": nn.int_array(dil[-2:] if nd > 1 else (1, *dil)),
                 "groups": op.properties.get("groups")}
        if nd == 1:  # as 2-D with a unit height
            x2 = e.reshape(x, (*xs[:2], 1, xs[2]))
            w2 = e.reshape(w, (*ws[:2], 1, ws[2]))
            dy2 = e.reshape(dy, (*ys[:2], 1, ys[2]))
        else:
            x2, w2, dy2 = x, w, dy
        if nd == 3:
            grads[0], grads[1] = _conv_transpose_3d(e, x, w, dy, strides[0], dil[0], props,
                                                    want)
        else:
            if want[0]:
                grads[0] = e.reshape(e.make(nn.Conv2dOp, [dy2, w2], props), xs)
            if want[1]:
                dw = e.grad_op(g.Conv2dWeightGradOp, [dy2, x2], [w2], props).results[0]
                grads[1] = e.reshape(dw, ws)
    if len(op.operands) > 2 and want[2]:
        f = nn.shape_of(dys[0])[1]
        per_channel = e.grad_op(g.SumToOp, [dys[0]], [TensorType(nn.value_element_type(dy),
                                                                [f] + [1] * nd)]).results[0]
        grads[2] = e.reshape(per_channel, (f,))
    return grads


def _conv_transpose_3d(e: Emitter, x: SSAValue, w: SSAValue, dy: SSAValue, stride: int,
                       dil: int, props: dict[str, Attribute | None],
                       want: list[bool]
                       ) -> tuple[SSAValue | None, SSAValue | None]:
    """3-D as a sum over the depth taps of 2-D ones: for tap t the depth-strided slice of the
    padded dy (depth folded into the batch) against w[:, :, t]; dx the sum of the taps'
    nn.conv2d, dw the taps' nn.conv2d_weight_grad concatenated along depth."""
    xs, ws = nn.shape_of(x), nn.shape_of(w)
    n, c, depth = xs[:3]
    fold = [0, 2, 1, 3, 4]
    xt = e.reshape(e.make(nn.TransposeOp, [x], {"perm": nn.int_array(fold)}),
                   (n * depth, c, *xs[3:])) if want[1] else x
    dx: SSAValue | None = None
    dws: list[SSAValue] = []
    elem = nn.value_element_type(w)
    for t in range(ws[2]):
        slab = e.make(nn.SliceOp, [dy], {
            "starts": nn.int_array([t * dil]), "ends": nn.int_array([t * dil + (depth - 1)
                                                                     * stride + 1]),
            "axes": nn.int_array([2]), "steps": nn.int_array([stride])})
        slab = e.make(nn.TransposeOp, [slab], {"perm": nn.int_array(fold)})
        sh = nn.shape_of(slab)
        slab = e.reshape(slab, (n * depth, sh[2], *sh[3:]))
        w_t = e.reshape(e.make(nn.SliceOp, [w], {
            "starts": nn.int_array([t]), "ends": nn.int_array([t + 1]),
            "axes": nn.int_array([2])}), (ws[0], ws[1], *ws[3:]))
        if want[0]:
            part = e.make(nn.Conv2dOp, [slab, w_t], props)
            dx = part if dx is None else e.make(nn.AddOp, [dx, part])
        if want[1]:
            dw_t = e.grad_op(g.Conv2dWeightGradOp, [slab, xt],
                             [TensorType(elem, [ws[0], ws[1], *ws[3:]])], props).results[0]
            dws.append(e.reshape(dw_t, (ws[0], ws[1], 1, *ws[3:])))
    if dx is not None:
        dx = e.make(nn.TransposeOp, [e.reshape(dx, (n, depth, c, *xs[3:]))],
                    {"perm": nn.int_array(fold)})
    dw = None
    if dws:
        dw = dws[0] if len(dws) == 1 else e.make(nn.ConcatOp, dws, {"axis": nn.i64_attr(2)})
    return dx, dw


def _lrn_parts(e: Emitter, op: Operation) -> SSAValue:
    x = op.operands[0]
    shape = nn.shape_of(x)
    c = shape[1]
    size = nn.prop_int(op, "size", 1)
    before, after = (size - 1) // 2, -(-(size - 1) // 2)
    ch = np.arange(c)
    band = ((ch[:, None] >= ch[None, :] - before) & (ch[:, None] <= ch[None, :] + after))
    spatial = string.ascii_uppercase[:len(shape) - 2]
    total = e.make(EinsumOp, [e.make(nn.MulOp, [x, x]), e.constant(band.astype(float), x)],
                   {"equation": StringAttr(f"nc{spatial},cd->nd{spatial}")})
    scale = e.constant(np.full((1,), nn.prop_float(op, "alpha", 1e-4) / size), x)
    bias = e.constant(np.full((1,), nn.prop_float(op, "bias", 1.0)), x)
    beta = e.constant(np.full((1,), nn.prop_float(op, "beta", 0.75)), x)
    denom = e.make(nn.PowOp, [e.make(nn.AddOp, [e.make(nn.MulOp, [total, scale]), bias]), beta])
    return e.make(nn.DivOp, [x, denom])


@vjp(LRNOp)
def _lrn(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    return by_decomposition(e, op, dys, want, _lrn_parts)


def resize_matrices(op: Operation) -> dict[int, np.ndarray]:
    """Axis -> the [out, in] matrix `nn.resize` applies along it (identity axes left out)."""
    from irflow.dialects.nn.resize_plan import resize_plans

    in_shape, out_shape = nn.shape_of(op.operands[0]), nn.shape_of(op.results[0])
    mats: dict[int, np.ndarray] = {}
    for axis, idx, coeffs, extrapolated in resize_plans(op):
        if nn.prop_str(op, "mode", "nearest") == "nearest":  # the kernel picks the argmax tap
            pick = np.argmax(coeffs, axis=1)
            coeffs = np.zeros_like(coeffs)
            coeffs[np.arange(len(pick)), pick] = 1.0
        m = np.zeros((out_shape[axis], in_shape[axis]))
        rows = np.broadcast_to(np.arange(out_shape[axis])[:, None], idx.shape)
        np.add.at(m, (rows, idx), coeffs)
        if extrapolated is not None:
            m[extrapolated] = 0.0
        mats[axis] = m
    return mats


@vjp(ResizeOp)
def _resize(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    dy = dys[0]
    assert dy is not None
    mats = resize_matrices(op)
    rank = len(nn.shape_of(dy))
    lower, upper = string.ascii_lowercase, string.ascii_uppercase
    dy_sub = "".join(lower[k] if k in mats else upper[k] for k in range(rank))
    operands, subs = [dy], [dy_sub]
    for axis, m in mats.items():
        operands.append(e.constant(m, dy))
        subs.append(lower[axis] + upper[axis])
    if len(operands) == 1:
        return [dy]
    return [e.make(EinsumOp, operands,
                   {"equation": StringAttr(",".join(subs) + "->" + upper[:rank])})]


def _pool_count(kernel: Sequence[int], strides: Sequence[int], pads: Sequence[int],
                dil: Sequence[int], in_spatial: Sequence[int], out: Sequence[int],
                include_pad: bool) -> np.ndarray:
    """The avg kernel's divisor per output place (1, 1, *out), counted as it counts."""
    nd = len(kernel)
    lo = list(pads[:nd])
    hi = [max(pads[nd + i], (out[i] - 1) * strides[i] + dil[i] * (kernel[i] - 1) + 1
              - in_spatial[i] - lo[i]) for i in range(nd)]
    valid = np.zeros([in_spatial[i] + lo[i] + hi[i] for i in range(nd)])
    if include_pad:  # the explicit pads count, the ceil_mode extension does not
        valid[tuple(slice(0, in_spatial[i] + lo[i] + pads[nd + i]) for i in range(nd))] = 1
    else:
        valid[tuple(slice(lo[i], lo[i] + in_spatial[i]) for i in range(nd))] = 1
    count = np.zeros(out)
    for tap in itertools.product(*(range(k) for k in kernel)):
        count += valid[tuple(slice(t * d, t * d + (o - 1) * s + 1, s)
                             for t, d, s, o in zip(tap, dil, strides, out))]
    return count.reshape(1, 1, *out)


def _window_sum_adjoint(e: Emitter, dy: SSAValue, x: SSAValue, kernel: Sequence[int],
                        strides: Sequence[int], pads: Sequence[int], dil: Sequence[int]
                        ) -> SSAValue:
    """Sᵀ dy: each output place's dy added to every input place of its window."""
    xs, ys = nn.shape_of(x), nn.shape_of(dy)
    nd = len(kernel)
    ends, outpad = [], []
    for i in range(nd):
        reach = (ys[2 + i] - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - pads[i]
        ends.append(max(reach - xs[2 + i], 0))
        outpad.append(max(xs[2 + i] - reach, 0))
    flat = e.reshape(dy, (xs[0] * xs[1], 1, *ys[2:]))
    ones = e.constant(np.ones((1, 1, *kernel)), dy)
    props = {"strides": nn.int_array(strides), "pads": nn.int_array(list(pads[:nd]) + ends),
             "dilations": nn.int_array(dil), "output_padding": nn.int_array(outpad)}
    return e.reshape(e.make(ConvTransposeOp, [flat, ones], props), xs)


def _max_pool_by_taps(e: Emitter, op: Operation, dy: SSAValue, kernel: Sequence[int],
                      strides: Sequence[int], pads: Sequence[int], dil: Sequence[int]
                      ) -> SSAValue:
    """n-D or dilated max: per tap (in order) the strided view of the −inf-padded input,
    dy where it equals the result and no earlier tap did (the first maximum, as
    nn.maxpool_grad), written back with nn.slice_grad; the sum cropped to the input."""
    x, y = op.operands[0], op.results[0]
    xs, out = nn.shape_of(x), nn.shape_of(y)[2:]
    nd = len(kernel)
    lo = list(pads[:nd])
    hi = [max(pads[nd + i], (out[i] - 1) * strides[i] + dil[i] * (kernel[i] - 1) + 1
              - xs[2 + i] - lo[i]) for i in range(nd)]
    xp = e.make(ix.PadOp, [x], {"pads": nn.int_array([0, 0, *lo, 0, 0, *hi]),
                                "value": FloatAttr(float("-inf"), f64)})
    zeros = e.zeros(dy)
    axes = nn.int_array(range(2, 2 + nd))
    taken: SSAValue | None = None
    acc: SSAValue | None = None
    for tap in itertools.product(*(range(k) for k in kernel)):
        where = {"starts": nn.int_array([t * d for t, d in zip(tap, dil)]),
                 "ends": nn.int_array([t * d + (o - 1) * s + 1
                                       for t, d, s, o in zip(tap, dil, strides, out)]),
                 "axes": axes, "steps": nn.int_array(strides)}
        eq = e.value(LOGIC_OPS["equal"].make([e.make(nn.SliceOp, [xp], where), y],
                                             element_type=i1))
        take = eq if taken is None else e.make(LOGIC_OPS["and"], [eq, e.make(
            MATH_OPS["not"], [taken])])
        taken = eq if taken is None else e.make(LOGIC_OPS["or"], [taken, eq])
        routed = e.value(LOGIC_OPS["where"].create(operands=[take, dy, zeros],
                                                   result_types=[dy.type]))
        back = e.grad_op(g.SliceGradOp, [routed], [xp], where).results[0]
        acc = back if acc is None else e.make(nn.AddOp, [acc, back])
    assert acc is not None
    crop = {"starts": nn.int_array(lo), "ends": nn.int_array([a + b for a, b in zip(lo, xs[2:])]),
            "axes": axes}
    return e.make(nn.SliceOp, [acc], crop)


@vjp(PoolOp)
def _nd_pool(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    dy = dys[0]
    assert dy is not None
    x = op.operands[0]
    mode = nn.prop_str(op, "mode", "max")
    kernel = nn.prop_ints(op, "kernel", ())
    nd = len(kernel)
    strides, pads, dil = window_params(op.properties, nd)
    if mode == "max":
        if nd != 2 or any(d != 1 for d in dil):
            return [_max_pool_by_taps(e, op, dy, kernel, strides, pads, dil)]
        props = {"kernel": nn.int_array(kernel), "strides": nn.int_array(strides),
                 "pads": nn.int_array(pads), "ceil_mode": op.properties.get("ceil_mode")}
        return [e.grad_op(g.MaxPoolGradOp, [x, dy], [x], props).results[0]]
    if mode == "avg":
        count = _pool_count(kernel, strides, pads, dil, nn.shape_of(x)[2:],
                            nn.shape_of(dy)[2:], bool(nn.prop_int(op, "count_include_pad", 0)))
        scaled = e.make(nn.DivOp, [dy, e.constant(count, dy)])
        return [_window_sum_adjoint(e, scaled, x, kernel, strides, pads, dil)]
    p = nn.prop_int(op, "p", 2)
    y = op.results[0]
    local = e.make(nn.MulOp, [dy, e.make(nn.PowOp, [y, e.constant(np.full((1,), 1.0 - p), y)])])
    back = _window_sum_adjoint(e, local, x, kernel, strides, pads, dil)
    absx = e.make(MATH_OPS["abs"], [x])
    slope = e.make(nn.MulOp, [e.make(MATH_OPS["sign"], [x]),
                              e.make(nn.PowOp, [absx, e.constant(np.full((1,), p - 1.0), x)])])
    return [e.make(nn.MulOp, [back, slope])]


__all__ = ["explicit_einsum", "resize_matrices"]
