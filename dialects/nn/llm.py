"""Decoder-LLM graph ops: `nn.rms_norm`, `nn.rotary` and `nn.attention`.

They follow ONNX opset 23's RMSNormalization, RotaryEmbedding (non-interleaved,
without `position_ids`: the cos/sin rows of the token positions are operands) and
Attention (4-D, grouped-query: `q` heads a multiple of the `k`/`v` heads).

    %y = nn.rms_norm %x, %g {epsilon = 1.0e-05 : f64}
         : (tensor<1x8x64xf32>, tensor<64xf32>) -> tensor<1x8x64xf32>
    %r = nn.rotary %q, %cos, %sin
         : (tensor<1x4x8x16xf32>, tensor<1x8x8xf32>, tensor<1x8x8xf32>) -> tensor<1x4x8x16xf32>
    %o = nn.attention %q, %k, %v {causal = 1 : i64}
         : (tensor<1x4x1x16xf32>, tensor<1x2x9x16xf32>, tensor<1x2x9x16xf32>) -> tensor<1x4x1x16xf32>

`nn.attention`'s causal mask is aligned to the end of the key sequence: query `i` of
`S` sits at position `T - S + i` of the `T` keys and sees keys `0 ..= T - S + i`, so
a decode step (S = 1, keys = the KV cache plus the new token) sees every key and a
prefill (S = T) gets the lower-triangular mask. The KV cache is updated outside the op
(`nn.concat` of the cache and the new rows), so the op stays single-result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from xdsl.dialects.builtin import I64, IntegerAttr, TensorType
from xdsl.ir import Attribute
from xdsl.irdl import irdl_op_definition, operand_def, opt_prop_def, prop_def, result_def
from xdsl.utils.exceptions import VerifyException

from irflow.dialects.nn.attributes import F64, f64, i64_attr
from irflow.dialects.nn.base import NNOp
from irflow.dialects.nn.shapes import Shape, normalize_axis, prop_int
from irflow.dialects.nn.shapes import format_shape as _fmt


@irdl_op_definition
class RMSNormOp(NNOp):
    """y = x / √(mean(x², axes axis..end) + ε) · scale (ONNX RMSNormalization, opset 23)."""

    name = "nn.rms_norm"
    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    output = result_def(TensorType)
    axis = prop_def(IntegerAttr[I64], default_value=i64_attr(-1))
    epsilon = prop_def(F64, default_value=f64(1e-5))
    assembly_format = "$input `,` $scale attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        x, scale = shapes
        axis = normalize_axis("nn.rms_norm", prop_int(props, "axis", -1), len(x))
        if scale != x[axis:]:
            raise VerifyException(
                f"nn.rms_norm expects scale of shape {_fmt(x[axis:])}, got {_fmt(scale)}")
        return [x]


@irdl_op_definition
class RotaryOp(NNOp):
    """Rotary position embedding of x [B, H, S, D] by cos, sin [B, S, D/2]: the halves
    (x1, x2) of the last axis become (x1·cos − x2·sin, x2·cos + x1·sin) (ONNX
    RotaryEmbedding, interleaved = 0, no position_ids: the rows are the positions)."""

    name = "nn.rotary"
    input = operand_def(TensorType)
    cos = operand_def(TensorType)
    sin = operand_def(TensorType)
    output = result_def(TensorType)
    assembly_format = "$input `,` $cos `,` $sin attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        x, cos, sin = shapes
        if len(x) != 4 or x[3] % 2:
            raise VerifyException(
                f"nn.rotary expects input [batch, heads, seq, dim] with an even dim, got {_fmt(x)}")
        want = (x[0], x[2], x[3] // 2)
        for role, s in (("cos", cos), ("sin", sin)):
            if s != want:
                raise VerifyException(
                    f"nn.rotary expects {role} of shape {_fmt(want)} (batch, seq, dim/2), "
                    f"got {_fmt(s)}")
        return [x]


@irdl_op_definition
class AttentionOp(NNOp):
    """softmax(q·kᵀ·scale + causal mask)·v per head (ONNX Attention, opset 23, 4-D);
    q [B, Hq, S, D], k [B, Hkv, T, D], v [B, Hkv, T, Dv], Hq a multiple of Hkv (query
    head h reads key/value head h // (Hq / Hkv)); `scale` defaults to 1/√D."""

    name = "nn.attention"
    q = operand_def(TensorType)
    k = operand_def(TensorType)
    v = operand_def(TensorType)
    output = result_def(TensorType)
    causal = prop_def(IntegerAttr[I64], default_value=i64_attr(0))
    scale = opt_prop_def(F64)
    assembly_format = "$q `,` $k `,` $v attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        q, k, v = shapes
        if len(q) != 4 or len(k) != 4 or len(v) != 4:
            raise VerifyException(
                f"nn.attention expects rank-4 q, k, v [batch, heads, seq, dim], got "
                f"{_fmt(q)}, {_fmt(k)}, {_fmt(v)}")
        if k[:3] != v[:3] or q[0] != k[0] or q[3] != k[3]:
            raise VerifyException(
                f"nn.attention expects k [B, Hkv, T, D] and v [B, Hkv, T, Dv] matching q "
                f"[B, Hq, S, D], got q {_fmt(q)}, k {_fmt(k)}, v {_fmt(v)}")
        if k[1] < 1 or q[1] % k[1]:
            raise VerifyException(
                f"nn.attention expects query heads ({q[1]}) a multiple of key/value heads "
                f"({k[1]})")
        if prop_int(props, "causal", 0) and q[2] > k[2]:
            raise VerifyException(
                f"nn.attention (causal) expects at most as many queries ({q[2]}) as keys "
                f"({k[2]})")
        return [(q[0], q[1], q[2], v[3])]


LLM_OPS = (RMSNormOp, RotaryOp, AttentionOp)
