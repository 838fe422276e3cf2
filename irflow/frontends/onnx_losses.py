"""ONNX converters for the loss operators, NegativeLogLikelihoodLoss and
SoftmaxCrossEntropyLoss, and for LayerNormalization's training outputs (Mean, InvStdDev),
by decomposition into existing `nn` ops.

    NLL(x [N, C, d...], t [N, d...], w [C]) with ignore_index ii:
      ignored = equal(t, ii)                     (only with ignore_index)
      t0      = where(ignored, 0, t)             (an index every row may read)
      picked  = gather_elements(x, t0 as [N, 1, d...], axis = 1) as [N, d...]
      wt      = gather(w, t0) (weight) ; where(ignored, 0, wt or 1) (ignore_index)
      loss    = −picked · wt
      none: loss; sum: reduce_sum(loss); mean: reduce_sum(loss) / reduce_sum(wt)
      (reduce_mean(loss) with neither weight nor ignore_index)

    SoftmaxCrossEntropyLoss(scores, labels, w) = NLL(log_softmax(scores, axis 1), ...),
    with the log-probabilities as the optional second output.

These are ONNX's own function bodies (the `_expanded` node tests), written with irflow's
ops; no new op is needed, so the simulator lowers what its ops lower.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import i1
from xdsl.ir import SSAValue

from irflow.dialects import nn
from irflow.dialects.nn import indexing as ix
from irflow.dialects.nn.logic import LOGIC_OPS
from irflow.dialects.nn.reductions import REDUCTION_OPS
from irflow.frontends.onnx import _CONVERTERS, Converter, _converter, _Importer, _Node
from irflow.weights import value_dtype

Result = list[SSAValue | np.ndarray]


def _where(im: _Importer, cond: SSAValue, a: SSAValue, b: SSAValue) -> SSAValue:
    op = LOGIC_OPS["where"].make([cond, a, b], {},
                                 element_type=nn.value_element_type(a))
    return im.emit1(op)


def _sum_all(im: _Importer, x: SSAValue) -> SSAValue:
    axes = list(range(len(nn.shape_of(x))))
    return im.make(REDUCTION_OPS["reduce_sum"], [x], axes=nn.int_array(axes),
                   keepdims=nn.i64_attr(0))


def nll_loss(im: _Importer, x: SSAValue, target: SSAValue, weight: SSAValue | None,
             ignore_index: int | None, reduction: str) -> SSAValue:
    """ONNX NegativeLogLikelihoodLoss on log-probabilities `x` (module docstring)."""
    if reduction not in ("none", "sum", "mean"):
        raise im.error(f"unknown reduction '{reduction}' (none, sum or mean)")
    xs, ts = nn.shape_of(x), nn.shape_of(target)
    if len(xs) < 2 or ts != (xs[0], *xs[2:]):
        raise im.error(f"expects input [N, C, d...] and target [N, d...], got {list(xs)} "
                       f"and {list(ts)}")
    ignored = None
    if ignore_index is not None:
        ii = im.placeholder(np.asarray(ignore_index, value_dtype(target)), "ignore_index")
        ignored = im.emit1(LOGIC_OPS["equal"].make([target, ii], {}, element_type=i1))
        zero = im.placeholder(np.asarray(0, value_dtype(target)), "zero")
        target = _where(im, ignored, zero, target)
    index = im.emit1(nn.ReshapeOp(target, (ts[0], 1, *ts[1:])))
    picked = im.make(ix.GatherElementsOp, [x, index], axis=nn.i64_attr(1))
    loss = im.make(nn.NegOp, [im.emit1(nn.ReshapeOp(picked, ts))])
    wt = None
    if weight is not None:
        wt = im.make(nn.GatherOp, [weight, target], axis=nn.i64_attr(0))
    if ignored is not None:
        zero_f = im.scalar(0.0, loss)
        wt = _where(im, ignored, zero_f, wt if wt is not None else im.scalar(1.0, loss))
        if nn.shape_of(wt) != ts:  # both branches were scalars
            wt = im.make(ix.ExpandOp, [wt], shape=nn.int_array(ts))
    if wt is not None:
        loss = im.make(nn.MulOp, [loss, wt])
    if reduction == "none":
        return loss
    total = _sum_all(im, loss)
    if reduction == "sum":
        return total
    if wt is None:
        return im.make(nn.DivOp, [total, im.scalar(float(np.prod(ts)), total)])
    return im.make(nn.DivOp, [total, _sum_all(im, wt)])


def _ignore_index(im: _Importer) -> int | None:
    value = im.attr("ignore_index")
    return None if value is None else int(value)


@_converter("NegativeLogLikelihoodLoss")
def _nll(im: _Importer, node: _Node) -> Result:
    weight = im.value(2) if im.has(2) else None
    return [nll_loss(im, im.value(0), im.value(1), weight, _ignore_index(im),
                     im.attr("reduction", "mean"))]


@_converter("SoftmaxCrossEntropyLoss")
def _sce(im: _Importer, node: _Node) -> Result:
    log_prob = im.make(REDUCTION_OPS["log_softmax"], [im.value(0)], axis=nn.i64_attr(1))
    weight = im.value(2) if im.has(2) else None
    loss = nll_loss(im, log_prob, im.value(1), weight, _ignore_index(im),
                    im.attr("reduction", "mean"))
    return [loss, log_prob]


__all__: Sequence[str] = ["nll_loss"]


# --------------------------------------------------------------------------------------
# LayerNormalization's training outputs (Mean, InvStdDev), from the same statistics


def _with_statistics(convert: Converter) -> Converter:
    """LayerNormalization whose Mean / InvStdDev outputs are used: `nn.layernorm` for Y,
    and mean = reduce_mean(x), inv = 1 / sqrt(reduce_mean((x − mean)²) + eps) over the
    normalized axes (kept as size 1, as ONNX shapes them)."""

    def converted(im: _Importer, node: _Node) -> Result:
        y = convert(im, node)
        if len([o for o in node.outputs[1:] if o]) == 0:
            return y
        x = im.value(0)
        rank = len(nn.shape_of(x))
        axes = nn.int_array(range(int(im.attr("axis", -1)) % rank, rank))
        mean = im.make(nn.ReduceMeanOp, [x], axes=axes, keepdims=nn.i64_attr(1))
        d = im.make(nn.SubOp, [x, mean])
        var = im.make(nn.ReduceMeanOp, [im.make(nn.MulOp, [d, d])], axes=axes,
                      keepdims=nn.i64_attr(1))
        eps = im.scalar(float(im.attr("epsilon", 1e-5)), var)
        std = im.make(nn.SqrtOp, [im.make(nn.AddOp, [var, eps])])
        inv = im.make(nn.DivOp, [im.scalar(1.0, std), std])
        return [*y, mean, inv]

    return converted


_CONVERTERS["LayerNormalization"] = _with_statistics(_CONVERTERS["LayerNormalization"])
