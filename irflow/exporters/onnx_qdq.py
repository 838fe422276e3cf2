"""Quantized IR → ONNX in QDQ form (QuantizeLinear / DequantizeLinear around float ops).

`export_onnx` calls `export_quantized` for every op that touches a `!quant.uniform`
type. The ONNX graph is the standard "QDQ" format that onnxruntime and TensorRT fuse
into integer kernels:

* a quantized activation is an int8/uint8 ONNX tensor (`quant.qcast` →
  `QuantizeLinear`, `quant.dcast` → `DequantizeLinear`, `irq.requantize` →
  both);
* a quantized weight is an int8 initializer (int4 values held in int8, as irflow
  holds them) read through `DequantizeLinear` (per-axis: `axis` attribute), an int32
  bias likewise (scale s_x·s_w, zero point 0);
* an nn op on quantized operands becomes `DequantizeLinear` on each operand, the float
  op (and its fused activation), and `QuantizeLinear` to its result type — or, for an
  int32 accumulator result, nothing more: that value is exported as the float it
  stands for (ONNX QuantizeLinear has no int32 output before opset 21), and the
  `quant.dcast` reading it becomes an `Identity`.

    %y = nn.conv2d %xq, %wq, %bq {act = "relu"} : (...) -> tensor<...x!quant.uniform<u8:f32, s>>

becomes

    x_dq = DequantizeLinear(xq, s_x, z_x); w_dq = DequantizeLinear(wq, s_w, 0, axis=0)
    b_dq = DequantizeLinear(bq, s_x·s_w, 0, axis=0)
    y_f = Relu(Conv(x_dq, w_dq, b_dq)); y = QuantizeLinear(y_f, s, 0)

onnxruntime then computes each integer op in its own way (a float requantization
rounded half to even, where irflow uses the Q31 multiplier of `irflow.intmath`), so
results agree within one quantization step per element of each quantized tensor, not
bit for bit (tests/test_onnx_qdq.py measures it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from xdsl.dialects.builtin import TensorType, f32
from xdsl.ir import Block, Operation, SSAValue

from irflow.dialects import nn, quant
from irflow.dialects.quant import UniformQuantizedType, quant_type
from irflow.weights import numpy_dtype

if TYPE_CHECKING:
    from irflow.exporters.onnx import _Exporter


def is_quantized_op(op: Operation) -> bool:
    """Whether `export_quantized` must handle `op` (a quant cast or an nn op on quant types)."""
    if isinstance(op, quant.QuantizeOp | quant.DequantizeOp | quant.RequantizeOp
                  | quant.StorageCastOp):
        return True
    if isinstance(op, nn.ConstantOp):
        return False  # the exporter writes the storage array as an initializer
    return any(quant_type(v) is not None for v in (*op.operands, *op.results))


def _is_accumulator(q: UniformQuantizedType) -> bool:
    return q.bits == 32


def _is_accumulator_type(value: SSAValue) -> bool:
    q = quant_type(value)
    return q is not None and _is_accumulator(q)


def _float_accumulator(ex: _Exporter, value: SSAValue, name: str) -> bool:
    """Whether `value` is an int32 accumulator exported as the float it stands for (not a
    constant, nor an integer operator's int32 result, `onnx_qlinear`)."""
    q = quant_type(value)
    return (q is not None and _is_accumulator(q) and not isinstance(value.owner, nn.ConstantOp)
            and name not in ex.integers)


def _params(ex: _Exporter, q: UniformQuantizedType, hint: str) -> tuple[str, str, dict[str, Any]]:
    """Scale and zero-point constants (and the `axis` attribute) for Q/DQ nodes."""
    scale = q.scale_values().astype(np.float32)
    zp = q.zero_point_values().astype(numpy_dtype(q))
    attrs: dict[str, Any] = {}
    if q.is_per_axis:
        attrs["axis"] = q.quantized_axis
    else:
        scale, zp = scale.reshape(()), zp.reshape(())
    return ex.const(scale, f"{hint}_scale"), ex.const(zp, f"{hint}_zero_point"), attrs


def _as_float(ex: _Exporter, value: SSAValue, name: str) -> str:
    """The float ONNX tensor standing for `value` (a shared DequantizeLinear)."""
    q = quant_type(value)
    if q is None or _float_accumulator(ex, value, name):
        return name  # float already (an exported accumulator is float too)
    if name not in ex.dequantized:
        out = ex.fresh(f"{name}/dequantized")
        scale, zp, attrs = _params(ex, q, "dq")
        ex.node("DequantizeLinear", [name, scale, zp], [out], "/dequantize", **attrs)
        ex.dequantized[name] = out
    return ex.dequantized[name]


def _float_twin(op: Operation) -> Operation:
    """A detached copy of `op` on f32 tensors of the same shapes (the exporter reads
    shapes and float dtypes from it)."""

    def f32_of(v: SSAValue) -> TensorType:
        return TensorType(f32, nn.shape_of(v))

    block = Block(arg_types=[f32_of(v) for v in op.operands])
    return op.create(operands=list(block.args), result_types=[f32_of(r) for r in op.results],
                     properties=dict(op.properties), attributes=dict(op.attributes))


def export_quantized(ex: _Exporter, op: Operation, ins: list[str], outs: list[str]) -> None:
    """Emit the QDQ nodes of one quantized op (see the module docstring)."""
    from irflow.exporters.onnx import ExportError, _export_op
    from irflow.exporters.onnx_qlinear import try_export_integer

    if isinstance(op, quant.StorageCastOp):  # ONNX holds quantized values as their integers
        if _float_accumulator(ex, op.input, ins[0]):
            raise ex.error("cannot export quant.scast of an int32 accumulator held as float")
        ex.node("Identity", ins, outs)
        if quant_type(op.input) is None and _is_accumulator_type(op.output):
            ex.integers.add(outs[0])
        elif ins[0] in ex.integers:
            ex.integers.add(outs[0])
        return
    if try_export_integer(ex, op, ins, outs):
        return
    if isinstance(op, quant.QuantizeOp):
        q = quant_type(op.output)
        assert q is not None
        scale, zp, attrs = _params(ex, q, "q")
        ex.node("QuantizeLinear", [ins[0], scale, zp], outs, **attrs)
        return
    if isinstance(op, quant.DequantizeOp):
        q = quant_type(op.input)
        assert q is not None
        if _float_accumulator(ex, op.input, ins[0]):
            ex.node("Identity", ins, outs)
            return
        scale, zp, attrs = _params(ex, q, "dq")
        ex.node("DequantizeLinear", [ins[0], scale, zp], outs, **attrs)
        return
    float_ins = [_as_float(ex, v, n) for v, n in zip(op.operands, ins)]
    if isinstance(op, quant.RequantizeOp):
        float_outs = [ex.temp("requantize_float")]
        ex.node("Identity", float_ins, float_outs, "/float")
    else:
        float_outs = []
        for r, name in zip(op.results, outs):
            q = quant_type(r)
            keep_float = q is None or _is_accumulator(q)
            float_outs.append(name if keep_float else ex.temp("float_result"))
        try:
            _export_op(ex, _float_twin(op), float_ins, float_outs)
        except ExportError as e:
            raise ExportError(e.message, op) from None
    for r, f, name in zip(op.results, float_outs, outs):
        q = quant_type(r)
        if q is None or _is_accumulator(q) or f == name:
            continue
        scale, zp, attrs = _params(ex, q, "q")
        ex.node("QuantizeLinear", [f, scale, zp], [name], "/quantize", **attrs)


__all__ = ["is_quantized_op", "export_quantized"]
