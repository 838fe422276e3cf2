"""ONNX converters for the table-driven nn families (math, logic, reductions, indexing,
spatial), and the opset-7-to-12 forms of operators whose arguments later became inputs.

Registered into `irflow.frontends.onnx`'s converter table when that module loads (it
imports this one at its end). Each converter reads the node as of the model's opset:

* an argument that is an attribute in old opsets and an input in new ones (Squeeze's
  `axes`, Clip's `min`/`max`, Slice's bounds, Pad's `pads`, TopK's `k`, the Reduce ops'
  `axes`, Split's `split`) is read from either (`_ATTRIBUTE_INPUTS`: the attribute is
  turned into an import-time constant input before the converter runs);
* Softmax, LogSoftmax and Hardmax before opset 13 work on the input flattened to 2-D at
  `axis` (default 1): imported as reshape, the op on the last axis, reshape back;
* a value that fixes a shape must be known at import time (`ConstantRequiredError`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import StringAttr, TensorType, i1, i64
from xdsl.ir import SSAValue

from irflow import lowp
from irflow.dialects import nn
from irflow.dialects.nn import indexing as ix
from irflow.dialects.nn.logic import BINARIES, COMPARISONS, LOGIC_OPS
from irflow.dialects.nn.math import MATH_OPS, PARAM_ACTIVATIONS, UNARY_MATH
from irflow.dialects.nn.reductions import (
    ARG_REDUCTIONS,
    REDUCTION_OPS,
    REDUCTIONS,
    SCANS,
)
from irflow.frontends.onnx import (
    _CONVERTERS,
    Converter,
    UnsupportedOperatorError,
    _converter,
    _Importer,
    _Node,
    _onnx_elem_to_np,
    element_type_of,
)
from irflow.weights import value_dtype

Result = list[SSAValue | np.ndarray]


def _short_of(table: dict[str, str] | dict[str, tuple]) -> dict[str, str]:
    """ONNX operator -> short nn name, from a family table."""
    return {(v if isinstance(v, str) else v[0]): k for k, v in table.items()}


def _axes(im: _Importer, index: int, attr: str = "axes") -> list[int] | None:
    """Axes from input `index` (a constant) or the attribute; None when neither."""
    if im.has(index):
        return [int(a) for a in im.const(index, f"{im.node.op_type} {attr}").reshape(-1)]  # type: ignore[union-attr]
    if attr in im.node.attrs:  # type: ignore[union-attr]
        return im.ints(attr, [])
    return None


# --------------------------------------------------------------------------------------
# Old opsets: attributes that later became inputs


# op -> (last opset where it is an attribute, [(attribute, input index, dtype)])
_ATTRIBUTE_INPUTS: dict[str, tuple[int, list[tuple[str, int, type]]]] = {
    "Squeeze": (12, [("axes", 1, np.int64)]),
    "Unsqueeze": (12, [("axes", 1, np.int64)]),
    "Split": (12, [("split", 1, np.int64)]),
    "Clip": (10, [("min", 1, np.float32), ("max", 2, np.float32)]),
    "Slice": (9, [("starts", 1, np.int64), ("ends", 2, np.int64), ("axes", 3, np.int64)]),
    "Pad": (10, [("pads", 1, np.int64), ("value", 2, np.float32)]),
    "TopK": (9, [("k", 1, np.int64)]),
    "ReduceSum": (12, [("axes", 1, np.int64)]),
    **{op: (17, [("axes", 1, np.int64)]) for op in (
        "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
        "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")},
}


def _with_attribute_inputs(op_type: str, convert: Converter) -> Converter:
    last, rules = _ATTRIBUTE_INPUTS[op_type]

    def upgraded(im: _Importer, node: _Node) -> Result:
        if im.opset <= last:
            for attr, index, dtype in rules:
                if attr not in node.attrs:
                    continue
                value = node.attrs.pop(attr)
                if attr == "value" or (attr in ("min", "max") and node.inputs):
                    x = im.env[node.inputs[0]]
                    dtype = value_dtype(x)
                name = f"{node.name}/{attr}"
                while len(node.inputs) <= index:
                    node.inputs.append("")
                node.inputs[index] = name
                im.env[name] = im.placeholder(np.asarray(value, dtype), name)
        return convert(im, node)  # type: ignore[return-value]

    return upgraded


# --------------------------------------------------------------------------------------
# Elementwise


_MATH = _short_of(UNARY_MATH)
_PARAM = _short_of(PARAM_ACTIVATIONS)
_COMPARE = _short_of(COMPARISONS)
_BINARY = _short_of(BINARIES)


@_converter(*_MATH)
def _math(im: _Importer, node: _Node) -> Result:
    return [im.make(MATH_OPS[_MATH[node.op_type]], [im.value(0)])]


@_converter(*_PARAM)
def _param(im: _Importer, node: _Node) -> Result:
    short = _PARAM[node.op_type]
    _, defaults, _ = PARAM_ACTIVATIONS[short]
    return [im.make(MATH_OPS[short], [im.value(0)], **{k: im.f64(k) for k in defaults})]


@_converter("Swish")
def _swish(im: _Importer, node: _Node) -> Result:
    x = im.value(0)
    alpha = float(im.attr("alpha", 1.0))
    ax = x if alpha == 1.0 else im.make(nn.MulOp, [x, im.scalar(alpha, x)])
    return [im.make(nn.MulOp, [x, im.make(nn.SigmoidOp, [ax])])]


@_converter("IsNaN", "IsInf")
def _predicate(im: _Importer, node: _Node) -> Result:
    if node.op_type == "IsNaN":
        return [im.emit1(MATH_OPS["is_nan"].make([im.value(0)], {}, element_type=i1))]
    props = {k: nn.i64_attr(im.attr(k)) for k in ("detect_positive", "detect_negative")
             if im.attr(k) is not None}
    return [im.emit1(MATH_OPS["is_inf"].make([im.value(0)], props, element_type=i1))]


def _cast_to(im: _Importer, x: SSAValue, to: np.dtype) -> SSAValue | np.ndarray:
    saturate = int(im.attr("saturate", 1))
    if x in im.known:
        return lowp.cast(im.known[x].array, np.dtype(to), bool(saturate))
    if value_dtype(x) == to:
        return x
    props = {} if saturate == 1 else {"saturate": nn.i64_attr(saturate)}
    return im.emit1(MATH_OPS["cast"].make([x], props, element_type=element_type_of(to)))


@_converter("Cast")
def _cast(im: _Importer, node: _Node) -> Result:
    return [_cast_to(im, im.value(0), _onnx_elem_to_np(int(im.attr("to"))))]


@_converter("CastLike")
def _cast_like(im: _Importer, node: _Node) -> Result:
    return [_cast_to(im, im.value(0), value_dtype(im.value(1)))]


@_converter(*_COMPARE)
def _compare(im: _Importer, node: _Node) -> Result:
    cls = LOGIC_OPS[_COMPARE[node.op_type]]
    return [im.emit1(cls.make([im.value(0), im.value(1)], {}, element_type=i1))]


@_converter(*(op for op in _BINARY if op not in ("Min", "Max")))
def _binary(im: _Importer, node: _Node) -> Result:
    short = _BINARY[node.op_type]
    props = {}
    if short == "mod":
        props["fmod"] = nn.i64_attr(im.attr("fmod", 0))
    if short == "bit_shift":
        props["direction"] = StringAttr(im.attr("direction"))
    return [im.make(LOGIC_OPS[short], [im.value(0), im.value(1)], **props)]


_VARIADIC: dict[str, type[nn.NNOp]] = {
    "Min": LOGIC_OPS["min"], "Max": LOGIC_OPS["max"], "Sum": nn.AddOp, "Mean": nn.AddOp,
}


@_converter(*_VARIADIC)
def _variadic(im: _Importer, node: _Node) -> Result:
    """Min/Max/Sum/Mean of n inputs: a left fold of the binary op (Mean: then / n)."""
    xs = [im.value(i) for i in range(len(node.inputs)) if im.has(i)]
    acc = xs[0]
    for x in xs[1:]:
        acc = im.make(_VARIADIC[node.op_type], [acc, x])
    if node.op_type == "Mean" and len(xs) > 1:
        acc = im.make(nn.DivOp, [acc, im.scalar(len(xs), acc)])
    return [acc]


@_converter("Where")
def _where(im: _Importer, node: _Node) -> Result:
    x = im.value(1)
    op = LOGIC_OPS["where"].make([im.value(0), x, im.value(2)], {},
                                 element_type=x.type.element_type)  # type: ignore[attr-defined]
    return [im.emit1(op)]


# --------------------------------------------------------------------------------------
# Reductions, softmax-like maps, scans, top-k


_REDUCE: dict[str, type[nn.NNOp]] = {
    onnx: REDUCTION_OPS[short] for onnx, short in _short_of(REDUCTIONS).items()}
_REDUCE["ReduceMean"] = nn.ReduceMeanOp


@_converter(*_REDUCE)
def _reduce(im: _Importer, node: _Node) -> Result:
    """Reduce* of every opset: axes from the input (ReduceSum >= 13, others >= 18) or the
    attribute; none = all axes, or the input itself with `noop_with_empty_axes`."""
    x = im.value(0)
    axes = _axes(im, 1) or []
    if not axes:
        if im.attr("noop_with_empty_axes", 0):
            return [x]
        axes = list(range(len(nn.shape_of(x))))
    return [im.make(_REDUCE[node.op_type], [x], axes=nn.int_array(axes),
                    keepdims=nn.i64_attr(im.attr("keepdims", 1)))]


@_converter(*_short_of(ARG_REDUCTIONS))
def _arg(im: _Importer, node: _Node) -> Result:
    cls = REDUCTION_OPS[_short_of(ARG_REDUCTIONS)[node.op_type]]
    props = {k: nn.i64_attr(im.attr(k, d)) for k, d in
             (("axis", 0), ("keepdims", 1), ("select_last_index", 0))}
    return [im.emit1(cls.make([im.value(0)], props, element_type=i64))]


_AXIS_MAP = {"Softmax": nn.SoftmaxOp, "LogSoftmax": REDUCTION_OPS["log_softmax"],
             "Hardmax": REDUCTION_OPS["hardmax"]}


@_converter(*_AXIS_MAP)
def _axis_map(im: _Importer, node: _Node) -> Result:
    """Opset >= 13: along `axis` (default -1). Before: on the input flattened to 2-D at
    `axis` (default 1), so a reshape pair around the op on the last axis."""
    x = im.value(0)
    cls = _AXIS_MAP[node.op_type]
    shape = nn.shape_of(x)
    if im.opset >= 13:
        return [im.make(cls, [x], axis=nn.i64_attr(im.attr("axis", -1)))]
    axis = int(im.attr("axis", 1)) % max(len(shape), 1)
    if axis == len(shape) - 1:
        return [im.make(cls, [x], axis=nn.i64_attr(-1))]
    flat = im.emit1(nn.ReshapeOp(x, [math.prod(shape[:axis]), math.prod(shape[axis:])]))
    y = im.make(cls, [flat], axis=nn.i64_attr(-1))
    return [im.emit1(nn.ReshapeOp(y, shape))]


@_converter(*_short_of(SCANS))
def _scan(im: _Importer, node: _Node) -> Result:
    axis = int(im.const(1, f"{node.op_type} axis").reshape(-1)[0])
    cls = REDUCTION_OPS[_short_of(SCANS)[node.op_type]]
    return [im.make(cls, [im.value(0)], axis=nn.i64_attr(axis),
                    exclusive=nn.i64_attr(im.attr("exclusive", 0)),
                    reverse=nn.i64_attr(im.attr("reverse", 0)))]


@_converter("TopK")
def _topk(im: _Importer, node: _Node) -> Result:
    x = im.value(0)
    k = int(im.const(1, "TopK k").reshape(-1)[0])
    props = {"k": nn.i64_attr(k), "axis": nn.i64_attr(im.attr("axis", -1)),
             "largest": nn.i64_attr(im.attr("largest", 1)),
             "sorted": nn.i64_attr(im.attr("sorted", 1))}
    cls = REDUCTION_OPS["topk"]
    shapes = cls.infer_shapes([nn.shape_of(x)], props)
    ty = x.type
    assert isinstance(ty, TensorType)
    op = cls.create(operands=[x], result_types=[TensorType(ty.element_type, shapes[0]),
                                                TensorType(i64, shapes[1])],
                    properties=props)
    return im.emit(op)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------
# Indexing and data movement


@_converter("Expand")
def _expand(im: _Importer, node: _Node) -> Result:
    shape = [int(d) for d in im.const(1, "Expand shape").reshape(-1)]
    return [im.make(ix.ExpandOp, [im.value(0)], shape=nn.int_array(shape))]


@_converter("Tile")
def _tile(im: _Importer, node: _Node) -> Result:
    reps = [int(d) for d in im.const(1, "Tile repeats").reshape(-1)]
    return [im.make(ix.TileOp, [im.value(0)], repeats=nn.int_array(reps))]


@_converter("Pad")
def _pad(im: _Importer, node: _Node) -> Result:
    x = im.value(0)
    rank = len(nn.shape_of(x))
    pads = [int(p) for p in im.const(1, "Pad pads").reshape(-1)]
    value = float(im.const(2, "Pad constant_value").reshape(-1)[0]) if im.has(2) else 0.0
    if im.has(3):  # opset 18: pads for the listed axes only
        axes = [int(a) % rank for a in im.const(3, "Pad axes").reshape(-1)]
        full = [0] * (2 * rank)
        for j, a in enumerate(axes):
            full[a], full[a + rank] = pads[j], pads[j + len(axes)]
        pads = full
    return [im.make(ix.PadOp, [x], pads=nn.int_array(pads),
                    mode=StringAttr(im.attr("mode", "constant")), value=nn.f64(value))]


@_converter("Trilu")
def _trilu(im: _Importer, node: _Node) -> Result:
    k = int(im.const(1, "Trilu k").reshape(-1)[0]) if im.has(1) else 0
    return [im.make(ix.TriluOp, [im.value(0)], upper=nn.i64_attr(im.attr("upper", 1)),
                    k=nn.i64_attr(k))]


@_converter("DepthToSpace", "SpaceToDepth")
def _depth_space(im: _Importer, node: _Node) -> Result:
    props = {"blocksize": nn.i64_attr(im.attr("blocksize"))}
    props["mode"] = StringAttr(im.attr("mode", "DCR"))
    if node.op_type == "DepthToSpace":
        return [im.make(ix.DepthToSpaceOp, [im.value(0)], **props)]
    return [im.make(ix.SpaceToDepthOp, [im.value(0)], **props)]


@_converter("GatherElements")
def _gather_elements(im: _Importer, node: _Node) -> Result:
    return [im.make(ix.GatherElementsOp, [im.value(0), im.value(1)],
                    axis=nn.i64_attr(im.attr("axis", 0)))]


@_converter("GatherND")
def _gather_nd(im: _Importer, node: _Node) -> Result:
    return [im.make(ix.GatherNDOp, [im.value(0), im.value(1)],
                    batch_dims=nn.i64_attr(im.attr("batch_dims", 0)))]


@_converter("ScatterElements", "Scatter")
def _scatter_elements(im: _Importer, node: _Node) -> Result:
    return [im.make(ix.ScatterElementsOp, [im.value(0), im.value(1), im.value(2)],
                    axis=nn.i64_attr(im.attr("axis", 0)),
                    reduction=StringAttr(im.attr("reduction", "none")))]


@_converter("ScatterND")
def _scatter_nd(im: _Importer, node: _Node) -> Result:
    return [im.make(ix.ScatterNDOp, [im.value(0), im.value(1), im.value(2)],
                    reduction=StringAttr(im.attr("reduction", "none")))]


@_converter("OneHot")
def _one_hot(im: _Importer, node: _Node) -> Result:
    depth = int(im.const(1, "OneHot depth").reshape(-1)[0])
    values = im.value(2)
    op = ix.OneHotOp.make([im.value(0), values],
                          {"depth": nn.i64_attr(depth), "axis": nn.i64_attr(im.attr("axis", -1))},
                          element_type=values.type.element_type)  # type: ignore[attr-defined]
    return [im.emit1(op)]


# --------------------------------------------------------------------------------------
# Import-time values: sizes, ranges, value-dependent shapes


@_converter("Size")
def _size(im: _Importer, node: _Node) -> Result:
    return [np.asarray(math.prod(nn.shape_of(im.value(0))), np.int64)]


@_converter("Range")
def _range(im: _Importer, node: _Node) -> Result:
    start, limit, delta = (im.const(i, f"Range {w}") for i, w in
                           enumerate(("start", "limit", "delta")))
    n = max(int(np.ceil((limit - start) / delta)), 0)
    return [(start + np.arange(n) * delta).astype(start.dtype)]


@_converter("NonZero")
def _nonzero(im: _Importer, node: _Node) -> Result:
    x = im.value(0)
    if x not in im.known:
        raise UnsupportedOperatorError(
            "NonZero of a run-time value has a data-dependent output shape, which irflow's "
            "static shapes cannot express; only NonZero of an import-time constant is "
            "supported", im.where())
    return [np.asarray(np.nonzero(im.known[x].array), np.int64)]


@_converter("EyeLike")
def _eye_like(im: _Importer, node: _Node) -> Result:
    x = im.value(0)
    dtype = (_onnx_elem_to_np(int(im.attr("dtype"))) if im.attr("dtype") is not None
             else value_dtype(x))
    rows, cols = nn.shape_of(x)
    return [np.eye(rows, cols, k=int(im.attr("k", 0)), dtype=dtype)]


for _op in _ATTRIBUTE_INPUTS:
    if _op in _CONVERTERS:
        _CONVERTERS[_op] = _with_attribute_inputs(_op, _CONVERTERS[_op])

__all__: Sequence[str] = []


# --------------------------------------------------------------------------------------
# Spatial ops by decomposition: 1-D conv/pool as 2-D, global max pool, instance and
# group normalization on nn.layernorm


def _as_2d(convert: Converter) -> Converter:
    """Conv/MaxPool/AveragePool on a rank-3 (N, C, L) input: the 2-D op on (N, C, 1, L)
    (a weight (F, C/g, K) as (F, C/g, 1, K)), window attributes widened with a unit H axis,
    and the result reshaped back to rank 3."""

    def widened(im: _Importer, node: _Node) -> Result:
        x = im.value(0)
        shape = nn.shape_of(x)
        if len(shape) != 3:
            return convert(im, node)  # type: ignore[return-value]
        for i in range(2 if node.op_type == "Conv" else 1):
            v = im.value(i)
            s = nn.shape_of(v)
            name = f"{node.name}/2d_{i}"
            im.env[name] = im.emit1(nn.ReshapeOp(v, (*s[:2], 1, *s[2:])))
            node.inputs[i] = name
        attrs = node.attrs
        for key, unit in (("kernel_shape", 1), ("strides", 1), ("dilations", 1)):
            if key in attrs:
                attrs[key] = [unit, *attrs[key]]
        if "pads" in attrs:
            attrs["pads"] = [0, attrs["pads"][0], 0, attrs["pads"][1]]
        y = convert(im, node)[0]
        ys = nn.shape_of(y)  # type: ignore[arg-type]
        return [im.emit1(nn.ReshapeOp(y, (ys[0], ys[1], ys[3])))]  # type: ignore[arg-type]

    return widened


for _op in ("Conv", "MaxPool", "AveragePool"):
    _CONVERTERS[_op] = _as_2d(_CONVERTERS[_op])


@_converter("GlobalMaxPool")
def _global_max_pool(im: _Importer, node: _Node) -> Result:
    x = im.value(0)
    axes = list(range(2, len(nn.shape_of(x))))
    return [im.make(REDUCTION_OPS["reduce_max"], [x], axes=nn.int_array(axes))]


def _normalize_trailing(im: _Importer, x: SSAValue, axis: int, eps: float) -> SSAValue:
    """(x − mean) / √(var + eps) over axes [axis, rank): nn.layernorm with a unit scale."""
    ones = im.placeholder(np.ones(nn.shape_of(x)[axis:], value_dtype(x)), "ones")
    return im.make(nn.LayerNormOp, [x, ones, None], axis=nn.i64_attr(axis), epsilon=nn.f64(eps))


def _per_channel(im: _Importer, v: SSAValue, rank: int) -> SSAValue:
    """A [C] scale or bias shaped [C, 1, ...] to broadcast over (N, C, spatial...)."""
    c = nn.shape_of(v)[0]
    return im.emit1(nn.ReshapeOp(v, (c, *([1] * (rank - 2)))))


@_converter("InstanceNormalization")
def _instance_norm(im: _Importer, node: _Node) -> Result:
    x = im.value(0)
    rank = len(nn.shape_of(x))
    y = _normalize_trailing(im, x, 2, float(im.attr("epsilon", 1e-5)))
    y = im.make(nn.MulOp, [y, _per_channel(im, im.value(1), rank)])
    return [im.make(nn.AddOp, [y, _per_channel(im, im.value(2), rank)])]


@_converter("GroupNormalization")
def _group_norm(im: _Importer, node: _Node) -> Result:
    """Normalize each of `num_groups` channel groups: (N, G, C/G·spatial), then scale and
    bias per channel (opset 21; opset 18's per-group scale is repeated per channel)."""
    x = im.value(0)
    shape = nn.shape_of(x)
    g = int(im.attr("num_groups"))
    n, c = shape[0], shape[1]
    if c % g:
        raise im.error(f"GroupNormalization: {c} channels do not split into {g} groups")
    grouped = im.emit1(nn.ReshapeOp(x, (n, g, math.prod(shape[1:]) // g)))
    y = im.emit1(nn.ReshapeOp(
        _normalize_trailing(im, grouped, 2, float(im.attr("epsilon", 1e-5))), shape))
    params = []
    for i in (1, 2):
        v = im.value(i)
        if nn.shape_of(v) == (g,) and g != c:  # opset 18: one value per group
            v = im.make(ix.ExpandOp, [im.emit1(nn.ReshapeOp(v, (g, 1)))],
                        shape=nn.int_array([g, c // g]))
            v = im.emit1(nn.ReshapeOp(v, (c,)))
        params.append(_per_channel(im, v, len(shape)))
    y = im.make(nn.MulOp, [y, params[0]])
    return [im.make(nn.AddOp, [y, params[1]])]
