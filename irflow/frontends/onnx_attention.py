"""ONNX Attention (opsets 23-24) in every form `nn.attention` does not cover, as ONNX's own
function body written with `nn` ops: 3-D inputs (`q_num_heads`/`kv_num_heads`), past
key/value (the present outputs are their concatenation with K/V), grouped-query heads,
`is_causal` aligned as ONNX aligns it (key j visible to query i iff j <= i + past length),
boolean or additive `attn_mask` (padded to the key length), `softcap`, `softmax_precision`,
`nonpad_kv_seqlen`, and the `qk_matmul_output` of every `qk_matmul_output_mode`:

    Q·√s, K·√s  ->  QKᵀ  ->  softcap  ->  + bias  ->  softmax  ->  (fully masked rows: 0)  ->  ·V

The fused `nn.attention` import (irflow/frontends/onnx_llm.py) is tried first; what it
refuses comes here. Sliding windows (opset 25) stay unsupported.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import i1
from xdsl.ir import SSAValue

from irflow.dialects import nn
from irflow.dialects.nn import indexing as ix
from irflow.dialects.nn.logic import LOGIC_OPS
from irflow.dialects.nn.math import MATH_OPS
from irflow.dialects.nn.reductions import REDUCTION_OPS
from irflow.frontends.onnx import (
    ConstantRequiredError,
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


def _heads(im: _Importer, x: SSAValue, heads: int) -> SSAValue:
    """(B, S, H·D) -> (B, H, S, D)."""
    b, s, hd = nn.shape_of(x)
    x = im.emit1(nn.ReshapeOp(x, (b, s, heads, hd // heads)))
    return im.make(nn.TransposeOp, [x], perm=nn.int_array([0, 2, 1, 3]))


def _repeat_heads(im: _Importer, x: SSAValue, reps: int) -> SSAValue:
    """(B, H, S, D) -> (B, H·reps, S, D), head h repeated `reps` times (numpy repeat)."""
    b, h, s, d = nn.shape_of(x)
    x = im.emit1(nn.ReshapeOp(x, (b, h, 1, s, d)))
    x = im.make(ix.ExpandOp, [x], shape=nn.int_array([b, h, reps, s, d]))
    return im.emit1(nn.ReshapeOp(x, (b, h * reps, s, d)))


def _where(im: _Importer, cond: SSAValue, a: SSAValue, b: SSAValue) -> SSAValue:
    return im.emit1(LOGIC_OPS["where"].make([cond, a, b], {},
                                            element_type=nn.value_element_type(a)))


def _bias_of_mask(im: _Importer, mask: SSAValue, like: SSAValue, kv: int) -> SSAValue:
    """attn_mask padded to `kv` keys (False / −inf) and made additive (0 / −inf)."""
    ms = nn.shape_of(mask)
    boolean = value_dtype(mask) == np.bool_
    if ms[-1] < kv:
        pads = [0] * len(ms) * 2
        pads[2 * len(ms) - 1] = kv - ms[-1]
        mask = im.make(ix.PadOp, [mask], pads=nn.int_array(pads),
                       value=nn.f64(0.0 if boolean else -np.inf))
    if boolean:
        return _where(im, mask, im.scalar(0.0, like), im.scalar(-np.inf, like))
    return mask


def attention(im: _Importer, node: _Node) -> Result:
    """ONNX Attention's function body (module docstring)."""
    if im.attr("left_window_size", -1) != -1 or im.attr("right_window_size", -1) != -1:
        raise UnsupportedOperatorError("Attention with left/right_window_size (opset 25 "
                                       "sliding windows) is not supported", im.where())
    q, k, v = im.value(0), im.value(1), im.value(2)
    three_d = len(nn.shape_of(q)) == 3
    if three_d:
        q = _heads(im, q, int(im.attr("q_num_heads")))
        k = _heads(im, k, int(im.attr("kv_num_heads")))
        v = _heads(im, v, int(im.attr("kv_num_heads")))
    past = 0
    if im.has(4) and im.has(5):
        past = nn.shape_of(im.value(4))[2]
        k = im.make(nn.ConcatOp, [im.value(4), k], axis=nn.i64_attr(2))
        v = im.make(nn.ConcatOp, [im.value(5), v], axis=nn.i64_attr(2))
    present_k, present_v = k, v
    b, hq, sq, d = nn.shape_of(q)
    hk, skv = nn.shape_of(k)[1], nn.shape_of(k)[2]
    if hq != hk:
        if hq % hk:
            raise im.error(f"Attention expects query heads {hq} divisible by key heads {hk}")
        k, v = _repeat_heads(im, k, hq // hk), _repeat_heads(im, v, hq // hk)
    dtype = value_dtype(q)
    scale = im.attr("scale")
    root = np.sqrt(1 / np.sqrt(d) if scale is None else float(scale)).astype(dtype)

    # the additive bias: mask, causal frontier, padding
    bias: SSAValue | None = None
    if im.has(3):
        bias = _bias_of_mask(im, im.value(3), q, skv)
    if im.attr("is_causal", 0) and not im.has(6):
        allowed = np.arange(skv)[None, :] <= np.arange(sq)[:, None] + past
        causal = im.placeholder(np.where(allowed, 0, -np.inf).astype(dtype), "causal")
        bias = causal if bias is None else im.make(nn.AddOp, [bias, causal])
    if im.has(6):  # nonpad_kv_seqlen: keys at or past the length are padding
        lengths = im.emit1(nn.ReshapeOp(im.value(6), (b, 1, 1, 1)))
        keys = im.placeholder(np.arange(skv, dtype=value_dtype(lengths)).reshape(
            1, 1, 1, skv), "keys")
        inside = im.emit1(LOGIC_OPS["less"].make([keys, lengths], {}, element_type=i1))
        pad = _where(im, inside, im.scalar(0.0, q), im.scalar(-np.inf, q))
        if im.attr("is_causal", 0):  # the causal frontier moves to length − queries
            rows = im.placeholder(np.arange(sq, dtype=value_dtype(lengths)).reshape(
                1, 1, sq, 1) - sq, "rows")
            frontier = im.make(nn.AddOp, [rows, lengths])
            ok = im.emit1(LOGIC_OPS["less_or_equal"].make([keys, frontier], {},
                                                          element_type=i1))
            pad = _where(im, ok, pad, im.scalar(-np.inf, q))
        bias = pad if bias is None else im.make(nn.AddOp, [bias, pad])

    qs = im.make(nn.MulOp, [q, im.placeholder(root, "scale")])
    kt = im.make(nn.TransposeOp, [k], perm=nn.int_array([0, 1, 3, 2]))
    ks = im.make(nn.MulOp, [kt, im.placeholder(root, "scale")])
    qk = im.make(nn.MatmulOp, [qs, ks])
    softcap = float(im.attr("softcap", 0.0) or 0.0)
    if softcap > 0:
        c = im.scalar(softcap, qk)
        qk = im.make(nn.MulOp, [im.make(nn.TanhOp, [im.make(nn.DivOp, [qk, c])]), c])
    qkb = qk if bias is None else im.make(nn.AddOp, [qk, bias])
    mode = int(im.attr("qk_matmul_output_mode", 0))
    logits = qkb
    precision = im.attr("softmax_precision")
    if precision is not None and _onnx_elem_to_np(int(precision)) != dtype:
        to = element_type_of(_onnx_elem_to_np(int(precision)))
        logits = im.emit1(MATH_OPS["cast"].make([qkb], {}, element_type=to))
    probs = im.make(nn.SoftmaxOp, [logits], axis=nn.i64_attr(-1))
    if bias is not None:  # rows whose bias is all −inf attend nothing: 0, not NaN
        top = im.make(REDUCTION_OPS["reduce_max"], [bias], axes=nn.int_array([-1]),
                      keepdims=nn.i64_attr(1))
        masked = im.emit1(MATH_OPS["is_inf"].make([top], {"detect_positive": nn.i64_attr(0)},
                                                  element_type=i1))
        probs = _where(im, masked, im.scalar(0.0, probs), probs)
    if probs.type != q.type and value_dtype(probs) != dtype:
        probs = im.emit1(MATH_OPS["cast"].make([probs], {}, element_type=element_type_of(
            dtype)))
    y = im.make(nn.MatmulOp, [probs, v])
    if three_d:
        y = im.make(nn.TransposeOp, [y], perm=nn.int_array([0, 2, 1, 3]))
        y = im.emit1(nn.ReshapeOp(y, (b, sq, hq * nn.shape_of(y)[3])))
    qk_out = {0: qk, 1: qk, 2: qkb, 3: probs}.get(mode, qk)
    return [y, present_k, present_v, qk_out]


@_converter("Attention")
def _attention(im: _Importer, node: _Node) -> Result:
    """`nn.attention` where it fits (onnx_llm.fused_attention), else the function body."""
    from irflow.frontends.onnx_llm import fused_attention  # a sibling converter module

    return _fused_first(fused_attention)(im, node)


def _fused_first(fused: Converter) -> Converter:
    def converted(im: _Importer, node: _Node) -> Result:
        # float16 goes the function body's way: it scales Q and K by √scale each, and
        # float16 rounding tells the two orders apart
        if len([o for o in node.outputs[1:] if o]) == 0 and value_dtype(
                im.value(0)) != np.float16:
            try:
                return fused(im, node)  # type: ignore[return-value]
            except ConstantRequiredError:
                pass  # a run-time mask: the general form takes it as an operand
            except UnsupportedOperatorError:
                pass
        return attention(im, node)

    return converted


__all__: Sequence[str] = ["attention"]


# --------------------------------------------------------------------------------------
# RotaryEmbedding in the forms nn.rotary lacks: 3-D input, interleaved pairs, partial
# rotation (rotary_embedding_dim), as ONNX's function body


def _slice(im: _Importer, x: SSAValue, start: int, end: int, step: int = 1) -> SSAValue:
    return im.make(nn.SliceOp, [x], starts=nn.int_array([start]), ends=nn.int_array([end]),
                   axes=nn.int_array([-1 % len(nn.shape_of(x))]), steps=nn.int_array([step]))


def rotary(im: _Importer, node: _Node) -> Result:
    x, cos, sin = im.value(0), im.value(1), im.value(2)
    shape = nn.shape_of(x)
    if len(shape) == 3:  # (B, S, H·D) -> (B, S, H, D); cos/sin (B, S, r/2) -> (B, S, 1, r/2)
        heads = int(im.attr("num_heads"))
        x = im.emit1(nn.ReshapeOp(x, (*shape[:2], heads, shape[2] // heads)))
        head_axis = 2
    else:  # (B, H, S, D); cos/sin -> (B, 1, S, r/2)
        head_axis = 1
    d = nn.shape_of(x)[-1]
    rot = int(im.attr("rotary_embedding_dim", 0)) or d
    if im.has(3):
        cos = im.make(nn.GatherOp, [cos, im.value(3)], "cos")
        sin = im.make(nn.GatherOp, [sin, im.value(3)], "sin")
    cs = nn.shape_of(cos)
    table = (*cs[:head_axis], 1, *cs[head_axis:])
    cos, sin = (im.emit1(nn.ReshapeOp(t, table)) for t in (cos, sin))
    cos, sin = _slice(im, cos, 0, rot // 2), _slice(im, sin, 0, rot // 2)
    part = _slice(im, x, 0, rot) if rot < d else x
    if im.attr("interleaved", 0):
        x1, x2 = _slice(im, part, 0, rot, 2), _slice(im, part, 1, rot, 2)
    else:
        x1, x2 = _slice(im, part, 0, rot // 2), _slice(im, part, rot // 2, rot)
    o1 = im.make(nn.SubOp, [im.make(nn.MulOp, [x1, cos]), im.make(nn.MulOp, [x2, sin])])
    o2 = im.make(nn.AddOp, [im.make(nn.MulOp, [x2, cos]), im.make(nn.MulOp, [x1, sin])])
    if im.attr("interleaved", 0):
        s1 = nn.shape_of(o1)
        o1, o2 = (im.emit1(nn.ReshapeOp(o, (*s1, 1))) for o in (o1, o2))
        y = im.make(nn.ConcatOp, [o1, o2], axis=nn.i64_attr(-1))
        y = im.emit1(nn.ReshapeOp(y, (*s1[:-1], rot)))
    else:
        y = im.make(nn.ConcatOp, [o1, o2], axis=nn.i64_attr(-1))
    if rot < d:
        y = im.make(nn.ConcatOp, [y, _slice(im, x, rot, d)], axis=nn.i64_attr(-1))
    return [im.emit1(nn.ReshapeOp(y, shape)) if len(shape) == 3 else y]


@_converter("RotaryEmbedding")
def _rotary_any(im: _Importer, node: _Node) -> Result:
    """`nn.rotary` where it fits (onnx_llm), else the function body."""
    from irflow.frontends.onnx_llm import fused_rotary

    try:
        return fused_rotary(im, node)  # type: ignore[return-value]
    except UnsupportedOperatorError:
        return rotary(im, node)
