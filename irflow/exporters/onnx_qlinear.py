"""Quantized contractions → ONNX's integer operators (the inverse of
`irflow/frontends/onnx_quant.py`'s QLinearConv / QLinearMatMul / ConvInteger /
MatMulInteger), so that onnxruntime computes them with its integer kernels, bit for bit as
the model it was imported from, instead of as the QDQ float form of `onnx_qdq`:

* `nn.conv2d` / `nn.matmul` on 8-bit quantized operands with an 8-bit per-tensor result
  (and, for a convolution, an optional int32 bias at scale s_x·s_w) → QLinearConv /
  QLinearMatMul;
* the same with an int32 result at scale s_x·s_w and no bias → ConvInteger /
  MatMulInteger; that result stays an int32 ONNX tensor (`_Exporter.integers`), so what
  reads it dequantizes it with DequantizeLinear.

A fused activation, a per-axis input or result, other bit widths, or scales that do not
multiply out fall back to QDQ (`try_export_integer` returns False).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from xdsl.ir import Operation

from irflow.dialects import nn
from irflow.dialects.quant import UniformQuantizedType, quant_type
from irflow.weights import numpy_dtype

if TYPE_CHECKING:
    from irflow.exporters.onnx import _Exporter


def _scale_zp(ex: _Exporter, q: UniformQuantizedType, hint: str) -> tuple[str, str]:
    """Scale (in the expressed float type) and zero point constants: scalars, or 1-D per axis."""
    scale = q.scale_values().astype(numpy_dtype(q.expressed))
    zp = q.zero_point_values().astype(numpy_dtype(q))
    if not q.is_per_axis:
        scale, zp = scale.reshape(()), zp.reshape(())
    return ex.const(scale, f"{hint}_scale"), ex.const(zp, f"{hint}_zero_point")


def _zp(ex: _Exporter, q: UniformQuantizedType, hint: str) -> str:
    zp = q.zero_point_values().astype(numpy_dtype(q))
    return ex.const(zp if q.is_per_axis else zp.reshape(()), f"{hint}_zero_point")


def _weight_axis_ok(op: Operation, qw: UniformQuantizedType) -> bool:
    """A per-axis weight must be per output channel (conv: axis 0; matmul: the last,
    the columns of a 2-D right operand)."""
    if not qw.is_per_axis:
        return True
    rank = len(nn.shape_of(op.operands[1]))
    return qw.quantized_axis == (0 if isinstance(op, nn.Conv2dOp) else rank - 1) and (
        isinstance(op, nn.Conv2dOp) or rank == 2)


def _conv_attrs(op: Operation) -> dict[str, Any]:
    conv = nn.conv2d_params(op)
    return {"kernel_shape": list(nn.shape_of(op.operands[1])[2:]), "strides": conv.strides,
            "pads": conv.pads, "dilations": conv.dilations, "group": conv.groups}


def try_export_integer(ex: _Exporter, op: Operation, ins: list[str], outs: list[str]) -> bool:
    """Emit `op` as an ONNX integer operator when it has one (see the module docstring)."""
    if not isinstance(op, nn.Conv2dOp | nn.MatmulOp) or nn.fused_act(op) is not None:
        return False
    qs = [quant_type(v) for v in op.operands]
    qy = quant_type(op.results[0])
    if qy is None or any(q is None for q in qs) or len(qs) < 2:
        return False
    qx, qw = qs[0], qs[1]
    assert qx is not None and qw is not None
    if qx.bits != 8 or qw.bits != 8 or qx.is_per_axis or not _weight_axis_ok(op, qw):
        return False
    product = qw.scale_values() * qx.scale
    conv = isinstance(op, nn.Conv2dOp)
    if qy.bits == 32:  # ConvInteger / MatMulInteger: y is the exact integer accumulator
        if len(qs) > 2 or not np.allclose(qy.scale_values(), product, rtol=1e-6, atol=0):
            return False
        args = [ins[0], ins[1], _zp(ex, qx, "x"), _zp(ex, qw, "w")]
        if conv:
            ex.node("ConvInteger", args, outs, **_conv_attrs(op))
        else:
            ex.node("MatMulInteger", args, outs)
        ex.integers.add(outs[0])
        return True
    if qy.bits != 8 or qy.is_per_axis:
        return False
    bias: list[str] = []
    if len(qs) > 2:
        qb = qs[2]
        assert qb is not None
        if (not conv or qb.bits != 32 or not isinstance(op.operands[2].owner, nn.ConstantOp)
                or not np.allclose(qb.scale_values(), product, rtol=1e-6, atol=0)):
            return False
        bias = [ins[2]]
    x_s, x_zp = _scale_zp(ex, qx, "x")
    w_s, w_zp = _scale_zp(ex, qw, "w")
    y_s, y_zp = _scale_zp(ex, qy, "y")
    args = [ins[0], x_s, x_zp, ins[1], w_s, w_zp, y_s, y_zp, *bias]
    if conv:
        ex.node("QLinearConv", args, outs, **_conv_attrs(op))
    else:
        ex.node("QLinearMatMul", args, outs)
    return True


__all__ = ["try_export_integer"]
