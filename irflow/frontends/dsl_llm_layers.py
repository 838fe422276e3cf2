"""The DSL layers of the decoder-LLM ops: `rms_norm`, `rotary`, `sdpa` (scaled dot-product
attention: `nn.attention`), `rope_table`, `tied_linear`.

    rope.cos = rope_table(kind="cos", dim=64, positions=8, offset=0)   # [1, 8, 32]
    q = rotary(q, rope.cos, rope.sin)
    y = sdpa(q, k, v, causal=true)                                   # grouped-query
    h = rms_norm(x, eps=1e-5)                                        # `.weight` [hidden]

`rope_table` is a weight named by its variable, like `parameter`, whose value is not
random: the rotary angles `(offset + p) / base^(2i/dim)` for positions p < `positions`,
so a decode step at cache length L uses `offset=L`. Registered into the layer table of
`dsl_layers` on import.
"""

from __future__ import annotations

import numpy as np
from xdsl.ir import SSAValue

from irflow.diagnostics import ParseError
from irflow.dialects import nn
from irflow.frontends.dsl_layers import (
    _NORM_SCALE,
    LayerCall,
    Opt,
    _as_bool,
    _as_choice,
    _as_int,
    as_float,
    layer,
)


def rope_angles(dim: int, positions: int, offset: int, base: float) -> np.ndarray:
    """[positions, dim/2] angles (offset + p) · base^(−2i/dim), in float64."""
    inv = base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)
    return np.outer(np.arange(offset, offset + positions, dtype=np.float64), inv)


@layer("rms_norm", weighted=True, eps=Opt(as_float, 1e-5))
def _rms_norm(c: LayerCall) -> SSAValue:
    """RMS normalization over the last axis; `.weight` [last axis]."""
    (x,) = c.args
    shape = nn.shape_of(x)
    if not shape:
        raise ParseError("rms_norm expects a tensor of rank >= 1, got a scalar", c.where)
    g = c.weight("weight", shape[-1:], _NORM_SCALE)
    eps = c.opts["eps"]
    return c.make(nn.RMSNormOp, [x, g], {"epsilon": None if eps == 1e-5 else nn.f64(eps)})


@layer("rotary", inputs=3)
def _rotary(c: LayerCall) -> SSAValue:
    """Rotary embedding of x [B, H, S, D] by cos, sin [B, S, D/2] (halves rotated)."""
    return c.make(nn.RotaryOp, c.args)


@layer("sdpa", inputs=3, causal=Opt(_as_bool, False), scale=Opt(as_float, None))
def _attention(c: LayerCall) -> SSAValue:
    """softmax(q kᵀ · scale) v, grouped-query; `causal=true` masks keys after each query."""
    scale = c.opts["scale"]
    return c.make(nn.AttentionOp, c.args, {
        "causal": nn.i64_attr(1) if c.opts["causal"] else None,
        "scale": None if scale is None else nn.f64(scale)})


@layer("rope_table", inputs=0, weighted=True, kind=Opt(_as_choice("cos", "sin")),
       dim=Opt(_as_int), positions=Opt(_as_int), offset=Opt(_as_int, 0),
       base=Opt(as_float, 10000.0))
def _rope_table(c: LayerCall) -> SSAValue:
    """cos or sin of the rotary angles of `positions` positions from `offset`: [1, P, dim/2]."""
    o = c.opts
    if o["dim"] < 2 or o["dim"] % 2 or o["positions"] < 1 or o["offset"] < 0:
        raise ParseError(f"rope_table expects an even dim >= 2, positions >= 1 and offset >= 0, "
                         f"got dim {o['dim']}, positions {o['positions']}, offset {o['offset']}",
                         c.where)
    fn = np.cos if o["kind"] == "cos" else np.sin

    def init(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        angles = rope_angles(o["dim"], o["positions"], o["offset"], o["base"])
        return fn(angles).astype(np.float32).reshape(shape)

    return c.weight("", (1, o["positions"], o["dim"] // 2), init)



@layer("tied_linear", inputs=2)
def _tied_linear(c: LayerCall) -> SSAValue:
    """y = x·Wᵀ with the weight [out, in] given as a tensor (tied embeddings)."""
    return c.make(nn.LinearOp, c.args)
