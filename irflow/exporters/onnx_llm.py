"""ONNX export of the decoder-LLM ops (opset >= 23): `nn.rms_norm` -> RMSNormalization,
`nn.rotary` -> RotaryEmbedding (interleaved = 0, cos/sin as given), `nn.attention` ->
Attention (4-D; `is_causal = 1` when queries and keys are as many, else the end-aligned
causal mask as a constant boolean `attn_mask`, since ONNX aligns `is_causal` to the
upper left). `irflow.exporters.onnx` calls `export_llm_op` for these op classes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xdsl.ir import Operation

from irflow.dialects import nn
from irflow.frontends.onnx_llm import causal_mask

if TYPE_CHECKING:
    from irflow.exporters.onnx import _Exporter

OPS = (nn.RMSNormOp, nn.RotaryOp, nn.AttentionOp)
OPSET = 23


def export_llm_op(ex: _Exporter, op: Operation, ins: list[str], outs: list[str]) -> None:
    if ex.opset < OPSET:
        raise ex.error(f"{op.name} needs opset >= {OPSET} (ONNX's {_ONNX[type(op)]}), got "
                       f"{ex.opset}")
    if isinstance(op, nn.RMSNormOp):
        attrs = {"axis": nn.prop_int(op, "axis", -1)}
        eps = nn.prop_float(op, "epsilon", 1e-5)
        if eps != 1e-5:
            attrs["epsilon"] = eps
        ex.node("RMSNormalization", ins, outs, **attrs)
    elif isinstance(op, nn.RotaryOp):
        ex.node("RotaryEmbedding", ins, outs)
    else:
        assert isinstance(op, nn.AttentionOp)
        s, t = nn.shape_of(op.q)[2], nn.shape_of(op.k)[2]
        attrs = {}
        if "scale" in op.properties:
            attrs["scale"] = nn.prop_float(op, "scale", 1.0)
        inputs = list(ins)
        if nn.prop_int(op, "causal", 0):
            if s == t:
                attrs["is_causal"] = 1
            elif s > 1:
                inputs.append(ex.const(causal_mask(s, t), "causal_mask"))
        ex.node("Attention", inputs, outs, **attrs)


_ONNX = {nn.RMSNormOp: "RMSNormalization", nn.RotaryOp: "RotaryEmbedding",
         nn.AttentionOp: "Attention"}
__all__ = ["OPS", "export_llm_op"]
