"""Reference kernels of the decoder-LLM ops (`dialects/nn/llm.py`): RMSNorm, rotary
embedding and grouped-query attention with an end-aligned causal mask.

Float tensors compute in their own precision with float32 accumulation, like the other
kernels. `attention` is also the simulator's tile kernel: it takes the query rows a tile
holds (`row0` = the first row's index) and the whole key/value sequence.
"""

from __future__ import annotations

import numpy as np

from irflow.backends.reference.kernels import Kernel, register_kernel, softmax
from irflow.dialects import nn


def rms_norm(x: np.ndarray, scale: np.ndarray, axis: int, eps: float) -> np.ndarray:
    """x / √(mean(x²) + ε) · scale over the axes `axis`..end (float32 accumulation, or
    float64 for float64 x)."""
    axes = tuple(range(axis % x.ndim, x.ndim))
    acc = np.promote_types(x.dtype, np.float32)
    xf = x.astype(acc, copy=False)
    ms = np.mean(xf * xf, axis=axes, keepdims=True)
    ms += acc.type(eps)
    y = xf / np.sqrt(ms)
    y *= scale
    return y.astype(x.dtype, copy=False)


def rotary(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate the halves of x's last axis ([B, H, S, D]) by cos/sin ([B, S, D/2], or any
    shape that reshapes to [B, 1, S, D/2] for x's B and S)."""
    half = x.shape[-1] // 2
    c = cos.reshape(x.shape[0], 1, x.shape[2], half)
    s = sin.reshape(x.shape[0], 1, x.shape[2], half)
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1).astype(x.dtype, copy=False)


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float, causal: bool,
              row0: int = 0, rows: int | None = None) -> np.ndarray:
    """softmax(q kᵀ · scale [+ causal mask]) v, grouped by key/value head.

    q [B, Hkv, G, S', D] (the G query heads sharing each key/value head; S' query rows
    starting at row `row0` of `rows`), k [B, Hkv, T, D], v [B, Hkv, T, Dv]. Query row
    i sits at key position T − rows + i and, when causal, sees keys 0 ..= that position.
    """
    t = k.shape[2]
    rows = q.shape[3] if rows is None else rows
    scores = np.matmul(q, np.swapaxes(k, -1, -2)[:, :, None])  # B, Hkv, G, S', T
    scores *= scores.dtype.type(scale)
    if causal:
        pos = t - rows + row0 + np.arange(q.shape[3])
        masked = np.arange(t)[None, :] > pos[:, None]
        scores[..., masked] = -np.inf
    probs = softmax(scores, axis=-1)
    return np.matmul(probs, v[:, :, None]).astype(q.dtype, copy=False)


def attention_scale(op: nn.AttentionOp) -> float:
    """The op's `scale`, or 1/√D."""
    return nn.prop_float(op, "scale", float(nn.shape_of(op.q)[-1]) ** -0.5)


@register_kernel(nn.RMSNormOp)
def _rms_norm(op: nn.RMSNormOp) -> Kernel:
    axis, eps = nn.prop_int(op, "axis", -1), nn.prop_float(op, "epsilon", 1e-5)
    return lambda x, scale: rms_norm(x, scale, axis, eps)


@register_kernel(nn.RotaryOp)
def _rotary(op: nn.RotaryOp) -> Kernel:
    return rotary


@register_kernel(nn.AttentionOp)
def _attention(op: nn.AttentionOp) -> Kernel:
    scale, causal = attention_scale(op), bool(nn.prop_int(op, "causal", 0))
    b, hq, s, d = nn.shape_of(op.q)
    hkv = nn.shape_of(op.k)[1]

    def run(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
        y = attention(q.reshape(b, hkv, hq // hkv, s, d), k, v, scale, causal)
        return y.reshape(b, hq, s, v.shape[-1])

    return run
