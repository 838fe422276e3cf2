"""ONNX's quantized operators into the `quant` dialect: QuantizeLinear → `quant.qcast`,
DequantizeLinear → `quant.dcast`, and QLinearMatMul / QLinearConv / MatMulInteger /
ConvInteger → `nn.matmul` / `nn.conv2d` on `!quant.uniform` operands, whose kernels compute
in integers (`irflow.intmath`: exact int64 accumulation, fixed-point requantization).

Scales and zero points must be known at import time: they are the parameters of the
`!quant.uniform` types (one per tensor, or per axis). Between ONNX nodes a quantized value
is a plain integer tensor, as in ONNX; `quant.scast` reinterprets it as the quantized type
an op reads and back (a cast pair the importer never leaves back to back):

    y = QuantizeLinear(x, 0.1, 128)   ->  %q = quant.qcast %x : tensor<4xf32> to tensor<4xQ>
                                          %y = quant.scast %q : tensor<4xQ> to tensor<4xui8>
    z = DequantizeLinear(y, 0.1, 128) ->  %z = quant.dcast %q : tensor<4xQ> to tensor<4xf32>

with Q = !quant.uniform<u8:f32, 0.1:128>.

Not imported (an `UnsupportedOperatorError` naming the node): blocked quantization
(`block_size`), scales known only at run time (DynamicQuantizeLinear), and storage types
without a numpy dtype (int4/uint4/int2, float8, float4).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Attribute, SSAValue

from irflow.dialects import nn, quant
from irflow.dialects.quant import UniformQuantizedType, quant_type
from irflow.frontends.onnx import (
    UnsupportedOperatorError,
    _converter,
    _Importer,
    _Node,
    _onnx_elem_to_np,
    element_type_of,
)
from irflow.frontends.onnx_core import _spatial_pads
from irflow.weights import value_dtype

Result = list[SSAValue | np.ndarray]


def _qtype(im: _Importer, scale: np.ndarray, zp: np.ndarray, storage: np.dtype,
           axis: int, rank: int, expressed: Attribute) -> UniformQuantizedType:
    """The `!quant.uniform` type of ONNX's (scale, zero point) on `storage` integers."""
    if storage.kind not in "iu" or storage.itemsize > 4:
        raise UnsupportedOperatorError(
            f"{im.node.op_type} on {storage} is not supported (int8/16/32, uint8/16)",  # type: ignore[union-attr]
            im.where())
    per_axis = scale.size > 1
    if scale.ndim > 1:
        raise UnsupportedOperatorError(
            f"{im.node.op_type} with blocked scales of shape {list(scale.shape)} is not "  # type: ignore[union-attr]
            "supported (per-tensor or per-axis only)", im.where())
    return UniformQuantizedType.make(
        storage.itemsize * 8, scale.reshape(-1).astype(np.float64),
        zp.reshape(-1).astype(np.int64), signed=storage.kind == "i",
        axis=axis % rank if per_axis else None, expressed=expressed)


def _params(im: _Importer, scale_i: int, zp_i: int, like: np.dtype, axis: int,
            rank: int, expressed: Attribute, what: str) -> UniformQuantizedType:
    scale = np.asarray(im.const(scale_i, f"{what} scale"))
    if im.has(zp_i):
        zp = np.asarray(im.const(zp_i, f"{what} zero point"))
        storage = zp.dtype
    else:
        storage = like
        zp = np.zeros_like(scale, dtype=np.int64)
    if im.attr("block_size"):
        raise UnsupportedOperatorError(
            f"{im.node.op_type} with block_size {im.attr('block_size')} (blocked "  # type: ignore[union-attr]
            "quantization) is not supported", im.where())
    return _qtype(im, scale, zp, np.dtype(storage), axis, rank, expressed)


def as_quantized(im: _Importer, x: SSAValue, q: UniformQuantizedType) -> SSAValue:
    """`x` (ONNX integers) read as quantized type `q`: a `quant.scast`, the quantized
    value an earlier scast came from, or — for integers known at import time (weights,
    biases) — an `nn.constant` of type `q` holding them."""
    ty = TensorType(q, nn.shape_of(x))
    owner = x.owner
    if isinstance(owner, quant.StorageCastOp) and owner.input.type == ty:
        return owner.input
    known = im.known.get(x)
    if known is not None:
        return im.g.weight(known.hint, known.array, im.node.loc if im.node else None, q)
    return im.emit1(quant.StorageCastOp(x, ty))


def drop_dead_storage_casts(module: ModuleOp) -> None:
    """Erase the `quant.scast`s nothing reads (a quantized value's integer view that only
    fed casts back to the same type)."""
    for op in reversed(list(module.walk())):
        if isinstance(op, quant.StorageCastOp) and not op.output.uses:
            op.detach()
            op.erase()


def as_integers(im: _Importer, q: SSAValue) -> SSAValue:
    """A quantized value as ONNX sees it: its storage integers."""
    qt = quant_type(q)
    assert qt is not None
    storage = np.dtype(f"{'i' if qt.signed else 'u'}{qt.bits // 8}")
    return im.emit1(quant.StorageCastOp(q, TensorType(element_type_of(storage),
                                                       nn.shape_of(q))))


# --------------------------------------------------------------------------------------
# QuantizeLinear, DequantizeLinear


@_converter("QuantizeLinear")
def _quantize_linear(im: _Importer, node: _Node) -> Result:
    x = im.value(0)
    rank = len(nn.shape_of(x))
    like = (_onnx_elem_to_np(int(im.attr("output_dtype"))) if im.attr("output_dtype")
            else np.dtype(np.uint8))
    q = _params(im, 1, 2, like, int(im.attr("axis", 1)), max(rank, 1),
                nn.value_element_type(x), "QuantizeLinear")
    qx = im.emit1(quant.QuantizeOp(x, TensorType(q, nn.shape_of(x))))
    return [as_integers(im, qx)]


@_converter("DequantizeLinear")
def _dequantize_linear(im: _Importer, node: _Node) -> Result:
    x = im.value(0)
    rank = len(nn.shape_of(x))
    scale = im.value(1)
    out = (element_type_of(_onnx_elem_to_np(int(im.attr("output_dtype"))))
           if im.attr("output_dtype") else nn.value_element_type(scale))
    q = _params(im, 1, 2, value_dtype(x), int(im.attr("axis", 1)), max(rank, 1), out,
                "DequantizeLinear")
    if np.dtype(value_dtype(x)) != np.dtype(f"{'i' if q.signed else 'u'}{q.bits // 8}"):
        raise im.error(f"DequantizeLinear input {value_dtype(x)} does not match its zero "
                       f"point's type {q.storage}")
    qx = as_quantized(im, x, q)
    return [im.emit1(quant.DequantizeOp(qx, TensorType(out, nn.shape_of(x))))]


# --------------------------------------------------------------------------------------
# Integer contractions


def _contraction(im: _Importer, cls: type[nn.NNOp], operands: Sequence[SSAValue | None],
                 result: UniformQuantizedType, props: dict[str, Attribute] | None = None
                 ) -> SSAValue:
    return im.emit1(cls.make(list(operands), props or {}, element_type=result))


def _operand(im: _Importer, i: int, scale_i: int | None, zp_i: int | None, axis: int,
             what: str) -> tuple[SSAValue, UniformQuantizedType]:
    """Input `i` read as a quantized type (scale 1 when `scale_i` is None)."""
    x = im.value(i)
    rank = len(nn.shape_of(x))
    dtype = np.dtype(value_dtype(x))
    scale = (np.asarray(im.const(scale_i, f"{what} scale")) if scale_i is not None
             else np.ones((), np.float32))
    zp = (np.asarray(im.const(zp_i, f"{what} zero point")) if zp_i is not None and
          im.has(zp_i) else np.zeros((), dtype))
    if zp.size > 1 and scale.size == 1:
        scale = np.full(zp.shape, float(scale.reshape(-1)[0]), np.float32)
    if scale.size > 1 and zp.size == 1:
        zp = np.full(scale.shape, int(zp.reshape(-1)[0]), dtype)
    expressed = (nn.value_element_type(im.value(scale_i)) if scale_i is not None
                 else element_type_of(np.float32))
    q = _qtype(im, scale, zp.astype(dtype), dtype, axis, max(rank, 1), expressed)
    return as_quantized(im, x, q), q


def _result_type(im: _Importer, s_i: int, zp_i: int, expressed: Attribute
                 ) -> UniformQuantizedType:
    scale = np.asarray(im.const(s_i, "y scale"))
    zp = np.asarray(im.const(zp_i, "y zero point"))
    return _qtype(im, scale, zp, zp.dtype, 0, 1, expressed)


def _i32(expressed: Attribute, scales: np.ndarray, axis: int | None
         ) -> UniformQuantizedType:
    """The int32 accumulator type at scale s_x · s_w (per output channel on `axis`)."""
    per_axis = scales.size > 1
    return UniformQuantizedType.make(32, scales.reshape(-1).astype(np.float64), 0,
                                     axis=axis if per_axis else None, expressed=expressed)


@_converter("QLinearMatMul")
def _qlinear_matmul(im: _Importer, node: _Node) -> Result:
    b_rank = len(nn.shape_of(im.value(3)))
    a, _ = _operand(im, 0, 1, 2, 0, "QLinearMatMul a")
    b, _ = _operand(im, 3, 4, 5, b_rank - 1, "QLinearMatMul b")
    y = _contraction(im, nn.MatmulOp, [a, b],
                     _result_type(im, 6, 7, nn.value_element_type(im.value(1))))
    return [as_integers(im, y)]


@_converter("MatMulInteger")
def _matmul_integer(im: _Importer, node: _Node) -> Result:
    b_rank = len(nn.shape_of(im.value(1)))
    a, qa = _operand(im, 0, None, 2, 0, "MatMulInteger a")
    b, qb = _operand(im, 1, None, 3, b_rank - 1, "MatMulInteger b")
    if qa.is_per_axis:
        raise UnsupportedOperatorError("MatMulInteger with a per-row a_zero_point is not "
                                       "supported", im.where())
    scales = np.asarray(qb.scale_values()) * qa.scale
    out_rank = len(nn.MatmulOp.infer_shapes([nn.shape_of(a), nn.shape_of(b)], {})[0])
    y = _contraction(im, nn.MatmulOp, [a, b],
                     _i32(qa.expressed, scales, out_rank - 1 if scales.size > 1 else None))
    return [as_integers(im, y)]


def _conv_props(im: _Importer, x: SSAValue, w: SSAValue) -> dict[str, Attribute]:
    shape = nn.shape_of(x)
    if len(shape) != 4:
        raise UnsupportedOperatorError(
            f"{im.node.op_type} on a rank-{len(shape)} input is not supported (2-D only)",  # type: ignore[union-attr]
            im.where())
    kernel = im.ints("kernel_shape", nn.shape_of(w)[2:])
    strides = im.ints("strides", [1, 1])
    dil = im.ints("dilations", [1, 1])
    return {"strides": nn.int_array(strides), "dilations": nn.int_array(dil),
            "pads": nn.int_array(_spatial_pads(im, shape[2:], kernel, strides, dil)),
            "groups": nn.i64_attr(int(im.attr("group", 1)))}


@_converter("ConvInteger")
def _conv_integer(im: _Importer, node: _Node) -> Result:
    x, qx = _operand(im, 0, None, 2, 1, "ConvInteger x")
    w, qw = _operand(im, 1, None, 3, 0, "ConvInteger w")
    scales = np.asarray(qw.scale_values()) * qx.scale
    y = _contraction(im, nn.Conv2dOp, [x, w], _i32(qx.expressed, scales,
                                                   1 if scales.size > 1 else None),
                     _conv_props(im, x, w))
    return [as_integers(im, y)]


@_converter("QLinearConv")
def _qlinear_conv(im: _Importer, node: _Node) -> Result:
    x, qx = _operand(im, 0, 1, 2, 1, "QLinearConv x")
    w, qw = _operand(im, 3, 4, 5, 0, "QLinearConv w")
    bias = None
    if im.has(8):
        scales = np.asarray(qw.scale_values()) * qx.scale
        qb = _i32(qx.expressed, scales, 0 if scales.size > 1 else None)
        bias = as_quantized(im, im.value(8), qb)
    y = _contraction(im, nn.Conv2dOp, [x, w, bias],
                     _result_type(im, 6, 7, qx.expressed), _conv_props(im, x, w))
    return [as_integers(im, y)]


__all__ = ["as_quantized", "as_integers", "drop_dead_storage_casts"]
