"""The core ONNX converters (opset 13+): element-wise math, Conv/Gemm/MatMul, pooling and
normalization, and the shape family (Reshape, Slice, Gather, Constant, Cast, ...).

Each converter maps one ONNX node to `nn` ops through the `_Importer`; values known at import
time (initializers, shape chains) fold to numpy arrays. Registered with `@_converter` on
import, like the family modules (`onnx_ops`, `onnx_spatial`, ...).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import (
    StringAttr,
)
from xdsl.ir import Attribute, SSAValue

from irflow.dialects import nn
from irflow.frontends.onnx import (
    UnsupportedOperatorError,
    _converter,
    _Importer,
    _Node,
    _onnx_elem_to_np,
)
from irflow.weights import value_dtype

# --------------------------------------------------------------------------------------
# Converters: elementwise


_UNARY: dict[str, type[nn.UnaryOp]] = {
    "Relu": nn.ReluOp, "Sigmoid": nn.SigmoidOp, "Tanh": nn.TanhOp, "Erf": nn.ErfOp,
    "Sqrt": nn.SqrtOp, "Exp": nn.ExpOp, "Neg": nn.NegOp, "HardSwish": nn.HardSwishOp,
}
_BINARY: dict[str, type[nn.BinaryOp]] = {
    "Add": nn.AddOp, "Sub": nn.SubOp, "Mul": nn.MulOp, "Div": nn.DivOp, "Pow": nn.PowOp,
}


@_converter(*_UNARY)
def _unary(im: _Importer, node: _Node) -> list[SSAValue]:
    return [im.make(_UNARY[node.op_type], [im.value(0)])]


@_converter("HardSigmoid")
def _hardsigmoid(im: _Importer, node: _Node) -> list[SSAValue]:
    return [im.make(nn.HardSigmoidOp, [im.value(0)], alpha=im.f64("alpha"), beta=im.f64("beta"))]


@_converter("Gelu")
def _gelu(im: _Importer, node: _Node) -> list[SSAValue]:
    approx = im.attr("approximate", "none")
    return [im.make(nn.GeluOp, [im.value(0)], approximate=StringAttr(approx))]


@_converter(*_BINARY)
def _binary(im: _Importer, node: _Node) -> list[SSAValue]:
    a, b = im.value(0), im.value(1)
    if node.op_type == "Pow" and b in im.known and value_dtype(b) != value_dtype(a):
        b = im.placeholder(im.known[b].array.astype(value_dtype(a)), im.known[b].hint)
    return [im.make(_BINARY[node.op_type], [a, b])]


@_converter("Clip")
def _clip(im: _Importer, node: _Node) -> list[SSAValue]:
    x = im.value(0)
    lo = im.const_scalar(1, "Clip min") if im.has(1) else None
    hi = im.const_scalar(2, "Clip max") if im.has(2) else None
    if lo == 0.0 and hi == 6.0:
        return [im.make(nn.Relu6Op, [x])]
    return [im.make(nn.ClipOp, [x], min=None if lo is None else nn.f64(lo),
                    max=None if hi is None else nn.f64(hi))]


# --------------------------------------------------------------------------------------
# Converters: contractions, normalization, pooling


def _spatial_pads(im: _Importer, in_hw: Sequence[int], kernel: Sequence[int],
                  strides: Sequence[int], dilations: Sequence[int]) -> list[int]:
    """ONNX `pads` / `auto_pad` as [top, left, bottom, right]."""
    auto = im.attr("auto_pad", "NOTSET")
    if auto == "NOTSET":
        pads = im.ints("pads", [0, 0, 0, 0])
        if len(pads) != 4:
            raise im.error(f"expects 4 pads for a 2-D window, got {pads}")
        return pads
    if auto == "VALID":
        return [0, 0, 0, 0]
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise im.error(f"unknown auto_pad '{auto}'")
    lo, hi = [], []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        lo.append(small if auto == "SAME_UPPER" else big)
        hi.append(big if auto == "SAME_UPPER" else small)
    return lo + hi


def _require_rank4(im: _Importer, x: SSAValue) -> tuple[int, ...]:
    shape = nn.shape_of(x)
    if len(shape) != 4:
        raise UnsupportedOperatorError(
            f"only 2-D {im.node.op_type} (a rank-4 NCHW input) is supported, got input shape "  # type: ignore[union-attr]
            f"{list(shape)}",
            im.where(),
        )
    return shape


@_converter("Conv")
def _conv(im: _Importer, node: _Node) -> list[SSAValue]:
    x, w = im.value(0), im.value(1)
    b = im.value(2) if im.has(2) else None
    if len(nn.shape_of(x)) == 5:  # 3-D: depth taps stacked as channels of one 2-D conv
        from irflow.frontends.onnx_conv3d import conv3d

        return conv3d(im, x, w, b)
    if len(nn.shape_of(x)) != 4:
        raise UnsupportedOperatorError(
            f"only 1-, 2- and 3-D Conv (a rank-3, 4 or 5 input) is supported, got input "
            f"shape {list(nn.shape_of(x))}", im.where())
    shape = _require_rank4(im, x)
    kernel = im.ints("kernel_shape", nn.shape_of(w)[2:])
    strides = im.ints("strides", [1, 1])
    dilations = im.ints("dilations", [1, 1])
    pads = _spatial_pads(im, shape[2:], kernel, strides, dilations)
    op = nn.Conv2dOp(x, w, b, strides=strides, pads=pads, dilations=dilations,
                     groups=int(im.attr("group", 1)))
    return [im.emit1(op)]


def _transpose2d(im: _Importer, v: SSAValue, hint: str | None = None) -> SSAValue:
    return im.make(nn.TransposeOp, [v], hint, perm=nn.int_array([1, 0]))


@_converter("Gemm")
def _gemm(im: _Importer, node: _Node) -> list[SSAValue]:
    """Y = alpha * A' B' + beta * C  ->  nn.linear(A', W = alpha * B'^T, bias = beta * C)."""
    a, b = im.value(0), im.value(1)
    if len(nn.shape_of(a)) != 2 or len(nn.shape_of(b)) != 2:
        raise im.error(f"expects 2-D A and B, got {list(nn.shape_of(a))} and "
                       f"{list(nn.shape_of(b))}")
    alpha, beta = float(im.attr("alpha", 1.0)), float(im.attr("beta", 1.0))
    wname = node.inputs[1]
    if im.attr("transA", 0):
        a = _transpose2d(im, a)
    w = b if im.attr("transB", 0) else _transpose2d(im, b, wname)
    if alpha != 1.0:
        w = im.make(nn.MulOp, [w, im.scalar(alpha, w)], wname)
    n_out = nn.shape_of(w)[0]
    bias, extra = None, None
    if im.has(2):
        c = im.value(2)
        if beta != 1.0:
            c = im.make(nn.MulOp, [c, im.scalar(beta, c)], node.inputs[2])
        cshape = nn.shape_of(c)
        if cshape == (n_out,):
            bias = c
        elif cshape == (1, n_out):
            bias = im.emit1(nn.ReshapeOp(c, [n_out]), node.inputs[2])
        else:
            extra = c
    y = im.make(nn.LinearOp, [a, w, bias])
    if extra is not None:
        y = im.make(nn.AddOp, [y, extra])
    return [y]


@_converter("MatMul")
def _matmul(im: _Importer, node: _Node) -> list[SSAValue]:
    return [im.make(nn.MatmulOp, [im.value(0), im.value(1)])]


@_converter("BatchNormalization")
def _batchnorm(im: _Importer, node: _Node) -> list[SSAValue]:
    if im.attr("training_mode", 0):
        raise UnsupportedOperatorError(
            "BatchNormalization with training_mode=1 is not supported (inference only)",
            im.where(),
        )
    operands = [im.value(i) for i in range(5)]
    return [im.make(nn.BatchNormOp, operands, epsilon=im.f64("epsilon"))]


@_converter("LayerNormalization")
def _layernorm(im: _Importer, node: _Node) -> list[SSAValue]:
    operands = [im.value(0), im.value(1), im.value(2) if im.has(2) else None]
    return [im.make(nn.LayerNormOp, operands, axis=nn.i64_attr(im.attr("axis", -1)),
                    epsilon=im.f64("epsilon"))]


@_converter("Softmax")
def _softmax(im: _Importer, node: _Node) -> list[SSAValue]:
    return [im.make(nn.SoftmaxOp, [im.value(0)], axis=nn.i64_attr(im.attr("axis", -1)))]


@_converter("ReduceMean")
def _reduce_mean(im: _Importer, node: _Node) -> list[SSAValue]:
    x = im.value(0)
    rank = len(nn.shape_of(x))
    if im.opset >= 18:
        axes = [int(a) for a in im.const(1, "ReduceMean axes").reshape(-1)] if im.has(1) else []
    else:
        axes = im.ints("axes", [])
    if not axes:
        if im.attr("noop_with_empty_axes", 0):
            return [x]
        axes = list(range(rank))
    return [im.make(nn.ReduceMeanOp, [x], axes=nn.int_array(axes),
                    keepdims=nn.i64_attr(im.attr("keepdims", 1)))]


@_converter("MaxPool", "AveragePool")
def _pool(im: _Importer, node: _Node) -> list[SSAValue]:
    x = im.value(0)
    shape = _require_rank4(im, x)
    kernel = im.ints("kernel_shape", [])
    strides = im.ints("strides", [1, 1])
    if any(d != 1 for d in im.ints("dilations", [1, 1])):
        raise UnsupportedOperatorError(
            f"{node.op_type} with dilations {im.ints('dilations', [])} is not supported "
            "(only 1)",
            im.where(),
        )
    pads = _spatial_pads(im, shape[2:], kernel, strides, [1, 1])
    props: dict[str, Attribute | None] = {
        "kernel": nn.int_array(kernel), "strides": nn.int_array(strides),
        "pads": nn.int_array(pads), "ceil_mode": nn.i64_attr(im.attr("ceil_mode", 0)),
    }
    if node.op_type == "AveragePool":
        props["count_include_pad"] = nn.i64_attr(im.attr("count_include_pad", 0))
        return [im.make(nn.AvgPoolOp, [x], **props)]
    return [im.make(nn.MaxPoolOp, [x], **props)]


@_converter("GlobalAveragePool")
def _gap(im: _Importer, node: _Node) -> list[SSAValue]:
    return [im.make(nn.GlobalAvgPoolOp, [im.value(0)])]


# --------------------------------------------------------------------------------------
# Converters: data movement and shape computations


@_converter("Flatten")
def _flatten(im: _Importer, node: _Node) -> list[SSAValue]:
    return [im.make(nn.FlattenOp, [im.value(0)], axis=nn.i64_attr(im.attr("axis", 1)))]


def _reshape(im: _Importer, x: SSAValue, shape: Sequence[int]) -> SSAValue:
    return im.emit1(nn.ReshapeOp(x, shape))


@_converter("Reshape")
def _reshape_node(im: _Importer, node: _Node) -> list[SSAValue]:
    x = im.value(0)
    src = nn.shape_of(x)
    spec = [int(d) for d in im.const(1, "Reshape shape").reshape(-1)]
    allowzero = im.attr("allowzero", 0)
    if not allowzero and any(d == 0 and i >= len(src) for i, d in enumerate(spec)):
        raise im.error(f"Reshape shape {spec} copies (0) a dimension that the {len(src)}-D "
                       "input does not have")
    out = [src[i] if d == 0 and not allowzero else d for i, d in enumerate(spec)]
    if out.count(-1) > 1:
        raise im.error(f"Reshape shape {spec} has more than one -1")
    if -1 in out:
        rest = math.prod(d for d in out if d != -1)
        total = math.prod(src)
        if rest == 0 or total % rest:
            raise im.error(f"cannot reshape {list(src)} to {spec}")
        out[out.index(-1)] = total // rest
    if math.prod(out) != math.prod(src) or min(out, default=1) < 0:
        raise im.error(f"cannot reshape {list(src)} to {spec} (= {out})")
    return [_reshape(im, x, out)]


@_converter("Squeeze")
def _squeeze(im: _Importer, node: _Node) -> list[SSAValue]:
    x = im.value(0)
    src = nn.shape_of(x)
    if im.has(1):
        raw = [int(a) for a in im.const(1, "Squeeze axes").reshape(-1)]
        if any(not -len(src) <= a < len(src) for a in raw):
            raise im.error(f"Squeeze axes {raw} are out of range for shape {list(src)}")
        axes = {a % len(src) for a in raw}
        if any(src[a] != 1 for a in axes):
            raise im.error(f"cannot squeeze axes {sorted(axes)} of shape {list(src)}")
    else:
        axes = {i for i, d in enumerate(src) if d == 1}
    return [_reshape(im, x, [d for i, d in enumerate(src) if i not in axes])]


@_converter("Unsqueeze")
def _unsqueeze(im: _Importer, node: _Node) -> list[SSAValue]:
    x = im.value(0)
    src = list(nn.shape_of(x))
    raw = [int(a) for a in im.const(1, "Unsqueeze axes").reshape(-1)]
    rank = len(src) + len(raw)
    axes = sorted(a % rank for a in raw)
    if len(set(axes)) != len(axes) or any(not -rank <= a < rank for a in raw):
        raise im.error(f"invalid Unsqueeze axes {raw} for shape {src}")
    out = src
    for a in axes:
        out.insert(a, 1)
    return [_reshape(im, x, out)]


@_converter("Transpose")
def _transpose(im: _Importer, node: _Node) -> list[SSAValue]:
    x = im.value(0)
    perm = im.ints("perm", list(reversed(range(len(nn.shape_of(x))))))
    return [im.make(nn.TransposeOp, [x], perm=nn.int_array(perm))]


@_converter("Concat")
def _concat(im: _Importer, node: _Node) -> list[SSAValue]:
    operands = [im.value(i) for i in range(len(node.inputs)) if im.has(i)]
    return [im.make(nn.ConcatOp, operands, axis=nn.i64_attr(im.attr("axis")))]


@_converter("Split")
def _split(im: _Importer, node: _Node) -> list[SSAValue]:
    x = im.value(0)
    shape = nn.shape_of(x)
    axis = int(im.attr("axis", 0))
    if not -len(shape) <= axis < len(shape):
        raise im.error(f"Split axis {axis} is out of range for shape {list(shape)}")
    dim = shape[axis % len(shape)]
    n = len(node.outputs)
    if im.has(1):
        sizes = [int(s) for s in im.const(1, "Split sizes").reshape(-1)]
    else:
        parts = int(im.attr("num_outputs", n))
        chunk = -(-dim // parts)
        sizes = [min(chunk, dim - i * chunk) for i in range(parts)]
    return im.emit(nn.SplitOp.make([x], {"axis": nn.i64_attr(axis),
                                         "sizes": nn.int_array(sizes)}))


@_converter("Slice")
def _slice(im: _Importer, node: _Node) -> list[SSAValue]:
    x = im.value(0)
    shape = nn.shape_of(x)
    starts = [int(v) for v in im.const(1, "Slice starts").reshape(-1)]
    ends = [int(v) for v in im.const(2, "Slice ends").reshape(-1)]
    axes = ([int(v) for v in im.const(3, "Slice axes").reshape(-1)] if im.has(3)
            else list(range(len(starts))))
    steps = ([int(v) for v in im.const(4, "Slice steps").reshape(-1)] if im.has(4)
             else [1] * len(starts))
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise im.error("Slice starts, ends, axes and steps must have equal lengths, got "
                       f"{len(starts)}, {len(ends)}, {len(axes)} and {len(steps)}")
    if any(not -len(shape) <= a < len(shape) for a in axes):
        raise im.error(f"Slice axes {axes} are out of range for shape {list(shape)}")
    axes = [a % len(shape) for a in axes]

    # Clamp INT64_MAX-style bounds to [-(n+1), n]: same slice, readable numbers.
    def clamp(v: int, a: int) -> int:
        return max(-(shape[a] + 1), min(v, shape[a]))

    return [im.make(nn.SliceOp, [x],
                    starts=nn.int_array([clamp(s, a) for s, a in zip(starts, axes)]),
                    ends=nn.int_array([clamp(e, a) for e, a in zip(ends, axes)]),
                    axes=nn.int_array(axes), steps=nn.int_array(steps))]


@_converter("Gather")
def _gather(im: _Importer, node: _Node) -> list[SSAValue]:
    return [im.make(nn.GatherOp, [im.value(0), im.value(1)],
                    axis=nn.i64_attr(im.attr("axis", 0)))]


@_converter("Identity", "Dropout")
def _forward(im: _Importer, node: _Node) -> list[SSAValue]:
    if (node.op_type == "Dropout" and im.has(2)
            and bool(im.const_scalar(2, "Dropout training_mode"))):
        raise UnsupportedOperatorError("Dropout with training_mode=true is not supported",
                                       im.where())
    return [im.value(0)]


@_converter("Constant")
def _constant(im: _Importer, node: _Node) -> list[np.ndarray]:
    from onnx import numpy_helper

    attrs = node.attrs
    if "value" in attrs:
        return [numpy_helper.to_array(attrs["value"])]
    if "value_float" in attrs:
        return [np.asarray(attrs["value_float"], np.float32)]
    if "value_floats" in attrs:
        return [np.asarray(attrs["value_floats"], np.float32)]
    if "value_int" in attrs:
        return [np.asarray(attrs["value_int"], np.int64)]
    if "value_ints" in attrs:
        return [np.asarray(attrs["value_ints"], np.int64)]
    raise UnsupportedOperatorError(
        f"Constant with attribute(s) {sorted(attrs)} is not supported (use value, "
        "value_float(s) or value_int(s))",
        im.where(),
    )


@_converter("Shape")
def _shape(im: _Importer, node: _Node) -> list[np.ndarray]:
    dims = nn.shape_of(im.value(0))
    start, end = int(im.attr("start", 0)), im.attr("end")
    return [np.asarray(dims[start:None if end is None else int(end)], np.int64)]


@_converter("ConstantOfShape")
def _constant_of_shape(im: _Importer, node: _Node) -> list[np.ndarray]:
    from onnx import numpy_helper

    shape = [int(d) for d in im.const(0, "ConstantOfShape shape").reshape(-1)]
    value = im.attr("value")
    fill = (numpy_helper.to_array(value).reshape(-1) if value is not None
            else np.zeros(1, np.float32))
    return [np.full(shape, fill[0], fill.dtype)]


@_converter("Cast")
def _cast(im: _Importer, node: _Node) -> list[SSAValue | np.ndarray]:
    x = im.value(0)
    to = _onnx_elem_to_np(int(im.attr("to")))
    if x in im.known:
        return [im.known[x].array.astype(to)]
    if value_dtype(x) == to:
        return [x]
    raise UnsupportedOperatorError(
        f"Cast of a runtime value from {value_dtype(x)} to {to} is not "
        "supported (only casts of import-time constants, or to the same type)",
        im.where(),
    )


