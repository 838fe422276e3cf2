"""ONNX operators that are compositions of existing `nn` ops, converted as ONNX's own
function bodies: CausalConvWithState (27), CenterCropPad (18), LpNormalization,
MeanVarianceNormalization, and Dropout's mask output in inference.

- CausalConvWithState: x = concat(past_state or zeros, input) along the sequence;
  output = depthwise conv (`nn.conv2d` on (N, C, 1, L), groups = C) + bias, then the
  `activation` (silu/swish: x·sigmoid(x)); present_state = the last kernel − 1 steps of x;
- CenterCropPad: per axis a centred `nn.slice` (crop) or `nn.pad` (pad), the begin side
  getting the smaller half;
- LpNormalization: x / ‖x‖ₚ along `axis` (`nn.reduce_l1`/`nn.reduce_l2`), 0 where the
  norm is 0;
- MeanVarianceNormalization: (x − mean) / √(mean((x − mean)²)) over `axes` (no epsilon);
- Dropout with its mask used, in inference: the mask is all true.
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
from irflow.frontends.onnx import (
    _CONVERTERS,
    Converter,
    UnsupportedOperatorError,
    _converter,
    _Importer,
    _Node,
)
from irflow.weights import value_dtype

Result = list[SSAValue | np.ndarray]


@_converter("CausalConvWithState")
def _causal_conv(im: _Importer, node: _Node) -> Result:
    x, w = im.value(0), im.value(1)
    n, c, length = nn.shape_of(x)
    k = nn.shape_of(w)[-1]
    if k < 2:
        raise UnsupportedOperatorError("CausalConvWithState with kernel size 1 has an empty "
                                       "state, which irflow cannot express", im.where())
    past = im.value(3) if im.has(3) else im.placeholder(
        np.zeros((n, c, k - 1), value_dtype(x)), "past_state")
    padded = im.make(nn.ConcatOp, [past, x], axis=nn.i64_attr(2))
    total = length + k - 1
    x4 = im.emit1(nn.ReshapeOp(padded, (n, c, 1, total)))
    w4 = im.emit1(nn.ReshapeOp(w, (*nn.shape_of(w)[:2], 1, k)))
    y = im.emit1(nn.Conv2dOp(x4, w4, im.value(2) if im.has(2) else None, groups=c))
    y = im.emit1(nn.ReshapeOp(y, (n, c, length)))
    act = im.attr("activation", "none")
    if act in ("silu", "swish"):
        y = im.make(nn.MulOp, [y, im.make(nn.SigmoidOp, [y])])
    elif act not in ("none", "", None):
        raise UnsupportedOperatorError(f"CausalConvWithState activation '{act}' is not "
                                       "supported", im.where())
    state = im.make(nn.SliceOp, [padded], starts=nn.int_array([total - (k - 1)]),
                    ends=nn.int_array([total]), axes=nn.int_array([2]),
                    steps=nn.int_array([1]))
    return [y, state]


@_converter("CenterCropPad")
def _center_crop_pad(im: _Importer, node: _Node) -> Result:
    x = im.value(0)
    shape = nn.shape_of(x)
    rank = len(shape)
    target = [int(v) for v in im.const(1, "CenterCropPad shape").reshape(-1)]
    axes = [a % rank for a in (im.attr("axes") or range(rank))]
    for a, size in zip(axes, target):
        have = nn.shape_of(x)[a]
        if size < have:
            start = (have - size) // 2
            x = im.make(nn.SliceOp, [x], starts=nn.int_array([start]),
                        ends=nn.int_array([start + size]), axes=nn.int_array([a]),
                        steps=nn.int_array([1]))
        elif size > have:
            pads = [0] * (2 * rank)
            pads[a] = (size - have) // 2
            pads[rank + a] = size - have - pads[a]
            x = im.make(ix.PadOp, [x], pads=nn.int_array(pads))
    return [x]


@_converter("LpNormalization")
def _lp_normalization(im: _Importer, node: _Node) -> Result:
    x = im.value(0)
    p = int(im.attr("p", 2))
    if p not in (1, 2):
        raise im.error(f"LpNormalization expects p = 1 or 2, got {p}")
    norm = im.make(REDUCTION_OPS["reduce_l1" if p == 1 else "reduce_l2"], [x],
                   axes=nn.int_array([int(im.attr("axis", -1))]), keepdims=nn.i64_attr(1))
    zero = im.scalar(0.0, x)
    is_zero = im.emit1(LOGIC_OPS["equal"].make([norm, zero], {}, element_type=i1))
    safe = im.emit1(LOGIC_OPS["where"].make([is_zero, im.scalar(1.0, x), norm], {},
                                            element_type=nn.value_element_type(x)))
    y = im.make(nn.DivOp, [x, safe])
    return [im.emit1(LOGIC_OPS["where"].make([is_zero, zero, y], {},
                                             element_type=nn.value_element_type(x)))]


@_converter("MeanVarianceNormalization")
def _mvn(im: _Importer, node: _Node) -> Result:
    x = im.value(0)
    axes = nn.int_array(im.ints("axes", [0, 2, 3]))
    mean = im.make(nn.ReduceMeanOp, [x], axes=axes, keepdims=nn.i64_attr(1))
    d = im.make(nn.SubOp, [x, mean])
    var = im.make(nn.ReduceMeanOp, [im.make(nn.MulOp, [d, d])], axes=axes,
                  keepdims=nn.i64_attr(1))
    return [im.make(nn.DivOp, [d, im.make(nn.SqrtOp, [var])])]


def _dropout_mask(convert: Converter) -> Converter:
    """Dropout in inference passes its input through; its mask is all true."""

    def converted(im: _Importer, node: _Node) -> Result:
        y = convert(im, node)
        if len(node.outputs) > 1 and node.outputs[1]:
            return [*y, np.ones(nn.shape_of(im.value(0)), np.bool_)]
        return y

    return converted


_CONVERTERS["Dropout"] = _dropout_mask(_CONVERTERS["Dropout"])

__all__: Sequence[str] = []


@_converter("SwiGLU")
def _swiglu(im: _Importer, node: _Node) -> Result:
    """SwiGLU(a, b) = a·sigmoid(alpha·a)·b (ONNX's body: Swish, then Mul)."""
    a, b = im.value(0), im.value(1)
    alpha = float(im.attr("alpha", 1.0))
    scaled = a if alpha == 1.0 else im.make(nn.MulOp, [a, im.scalar(alpha, a)])
    swish = im.make(nn.MulOp, [a, im.make(nn.SigmoidOp, [scaled])])
    return [im.make(nn.MulOp, [swish, b])]


@_converter("BitCast")
def _bitcast(im: _Importer, node: _Node) -> Result:
    from irflow.dialects.nn.bitcast import BitcastOp
    from irflow.frontends.onnx import _onnx_elem_to_np, element_type_of

    to = element_type_of(_onnx_elem_to_np(int(im.attr("to"))))
    return [im.emit1(BitcastOp.make([im.value(0)], {}, element_type=to))]


@_converter("AffineGrid")
def _affine_grid(im: _Importer, node: _Node) -> Result:
    """grid = base · θᵀ: `base` holds each output position's normalized (x, y[, z], 1)
    (an import-time constant), θ is (N, 2, 3) or (N, 3, 4); one `nn.matmul`."""
    theta = im.value(0)
    size = [int(v) for v in im.const(1, "AffineGrid size").reshape(-1)]
    spatial = size[2:]
    align = bool(im.attr("align_corners", 0))

    def coords(n: int) -> np.ndarray:
        if align:
            return np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1)
        return (2 * np.arange(n) + 1) / n - 1

    axes = np.meshgrid(*(coords(n) for n in spatial), indexing="ij")  # (D,) H, W
    columns = [a.reshape(-1) for a in reversed(axes)]  # x (W), y (H)[, z (D)]
    base = np.stack([*columns, np.ones_like(columns[0])], axis=1).astype(value_dtype(theta))
    base_v = im.placeholder(base, "affine_base")
    theta_t = im.make(nn.TransposeOp, [theta], perm=nn.int_array([0, 2, 1]))
    grid = im.make(nn.MatmulOp, [base_v, theta_t])
    return [im.emit1(nn.ReshapeOp(grid, (size[0], *spatial, len(spatial))))]
