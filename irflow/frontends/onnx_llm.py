"""ONNX import of the opset-23 decoder-LLM operators: RMSNormalization, RotaryEmbedding
and Attention (registered into `irflow.frontends.onnx`'s converter table on import).

- RMSNormalization -> `nn.rms_norm` (scale of the normalized axes' shape);
- RotaryEmbedding, 4-D input, `interleaved = 0`, full rotation -> `nn.rotary`; with
  `position_ids` the cos/sin rows are gathered first (`nn.gather`);
- Attention, 4-D Q/K/V without past key/value and without softcap -> `nn.attention`
  (`fused_attention`; the other forms: irflow/frontends/onnx_attention.py):
  `is_causal = 1` when there are as many queries as keys, or a constant boolean mask that
  is the end-aligned causal mask (what irflow exports) or all true; anything else is an
  `UnsupportedOperatorError` naming the node.
"""

from __future__ import annotations

import numpy as np
from xdsl.ir import SSAValue

from irflow.dialects import nn
from irflow.frontends.onnx import UnsupportedOperatorError, _converter, _Importer, _Node


def causal_mask(s: int, t: int) -> np.ndarray:
    """[S, T] booleans, true where query i (at position T − S + i) may see key j."""
    return np.arange(t)[None, :] <= (t - s + np.arange(s))[:, None]


@_converter("RMSNormalization")
def _rms_norm(im: _Importer, node: _Node) -> list[SSAValue]:
    return [im.make(nn.RMSNormOp, [im.value(0), im.value(1)],
                    axis=nn.i64_attr(im.attr("axis", -1)), epsilon=im.f64("epsilon"))]


def fused_rotary(im: _Importer, node: _Node) -> list[SSAValue]:
    """RotaryEmbedding as one `nn.rotary` (registered by irflow/frontends/onnx_attention.py,
    which takes every form this refuses)."""
    x, cos, sin = im.value(0), im.value(1), im.value(2)
    shape = nn.shape_of(x)
    if len(shape) != 4 or im.attr("interleaved", 0) or im.attr("rotary_embedding_dim", 0) not in (
            0, shape[-1]):
        raise UnsupportedOperatorError(
            "only 4-D RotaryEmbedding with interleaved=0 and full rotation is supported, got "
            f"input {list(shape)}, interleaved={im.attr('interleaved', 0)}, "
            f"rotary_embedding_dim={im.attr('rotary_embedding_dim', 0)}", im.where())
    if im.has(3):
        pos = im.value(3)
        cos = im.make(nn.GatherOp, [cos, pos], "cos")
        sin = im.make(nn.GatherOp, [sin, pos], "sin")
    return [im.make(nn.RotaryOp, [x, cos, sin])]


def fused_attention(im: _Importer, node: _Node) -> list[SSAValue]:
    """Attention as one `nn.attention` (registered by irflow/frontends/onnx_attention.py,
    which takes every form this refuses)."""
    q, k, v = im.value(0), im.value(1), im.value(2)
    qs, ks = nn.shape_of(q), nn.shape_of(k)
    unsupported = []
    if len(qs) != 4:
        unsupported.append(f"3-D inputs (got Q {list(qs)})")
    if im.has(4) or im.has(5):
        unsupported.append("past_key/past_value inputs")
    if im.attr("softcap", 0.0) or im.attr("qk_matmul_output_mode", 0):
        unsupported.append("softcap or qk_matmul_output_mode")
    if im.has(6):  # opset 24
        unsupported.append("nonpad_kv_seqlen")
    if im.attr("left_window_size", -1) != -1 or im.attr("right_window_size", -1) != -1:
        unsupported.append("left/right_window_size")  # opset 25
    if unsupported:
        raise UnsupportedOperatorError(f"Attention with {', '.join(unsupported)} is not "
                                       "supported", im.where())
    s, t = qs[2], ks[2]
    causal = bool(im.attr("is_causal", 0))
    if causal and s != t:
        raise UnsupportedOperatorError(
            f"Attention is_causal=1 with {s} queries and {t} keys is ONNX's upper-left "
            "mask; irflow's causal mask is end-aligned (give the mask as attn_mask)", im.where())
    if im.has(3):
        mask = np.asarray(im.const(3, "Attention attn_mask"))
        if mask.dtype != np.bool_ or mask.reshape(-1, s, t).shape[0] != 1:
            raise UnsupportedOperatorError("Attention attn_mask must be a constant boolean "
                                           f"[{s}, {t}] mask", im.where())
        if np.array_equal(mask.reshape(s, t), causal_mask(s, t)):
            causal = True
        elif not mask.all():
            raise UnsupportedOperatorError("Attention attn_mask must be all true or the "
                                           "end-aligned causal mask", im.where())
    return [im.make(nn.AttentionOp, [q, k, v], causal=nn.i64_attr(1) if causal else None,
                    scale=im.f64("scale"))]
