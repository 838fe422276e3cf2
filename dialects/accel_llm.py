"""Iteration spaces of the decoder-LLM ops (`nn.rms_norm`, `nn.rotary`, `nn.attention`);
`accel.layer_space` delegates these kinds here.

- `nn.rms_norm`: vector unit, one point per normalized row (the normalized axes whole
  in every tile, like `nn.layernorm`); ops per point = the row length.
- `nn.rotary`: vector unit, loops b, h, s with the head dimension whole; cos/sin rows
  follow b and s (broadcast over heads); ops per point = the head dimension.
- `nn.attention`: PE array, loops b, g (key/value head), r (query head within the
  group), m (query row); a tile holds whole key/value sequences of its heads, so
  grouped query heads reuse one K/V load while r and m step inside g. MACs per point
  = T·(D + Dv) (QKᵀ and PV for one query row). The model charges the masked half of a
  causal prefill too (a PE array computes the full tile and the mask zeroes it) and
  leaves the softmax's exponentials out (they overlap on the vector unit).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from xdsl.ir import Attribute

from irflow.dialects import accel, nn

KINDS = frozenset({"nn.rms_norm", "nn.rotary", "nn.attention"})


def llm_space(kind: str, shapes: Sequence[tuple[int, ...]], out: tuple[int, ...],
              params: Mapping[str, Attribute]) -> accel.Space:
    on, full, zero = accel.on, accel.FULL, accel.ZERO
    if kind == "nn.rms_norm":
        axis = nn.prop_int(params, "axis", -1) % len(out)
        norm = list(range(axis, len(out)))
        ext = {f"d{i}": s for i, s in enumerate(out) if i < axis}
        x = accel.Access(out, tuple(full if i in norm else on(f"d{i}") for i in range(len(out))))
        scale = accel.Access((1,) * axis + tuple(out[axis:]),
                             tuple(zero if i < axis else full for i in range(len(out))))
        return accel.Space(kind, "vector", tuple(ext), ext, (x, scale), x,
                           ops_per_point=math.prod(out[a] for a in norm))
    if kind == "nn.rotary":
        b, h, s, d = out
        ext = {"b": b, "h": h, "s": s}
        x = accel.Access(out, (on("b"), on("h"), on("s"), full))
        table = accel.Access((b, 1, s, d // 2), (on("b"), zero, on("s"), full))
        return accel.Space(kind, "vector", tuple(ext), ext, (x, table, table), x,
                           ops_per_point=3 * d)
    if kind == "nn.attention":
        (b, hq, s, d), (_, hkv, t, _), (_, _, _, dv) = shapes
        g = hq // hkv
        ext = {"b": b, "g": hkv, "r": g, "m": s}
        q = accel.Access((b, hkv, g, s, d), (on("b"), on("g"), on("r"), on("m"), full))
        k = accel.Access((b, hkv, t, d), (on("b"), on("g"), full, full))
        v = accel.Access((b, hkv, t, dv), (on("b"), on("g"), full, full))
        y = accel.Access((b, hkv, g, s, dv), (on("b"), on("g"), on("r"), on("m"), full))
        return accel.Space(kind, "pe", tuple(ext), ext, (q, k, v), y,
                           macs_per_point=t * (d + dv))
    raise AssertionError(kind)
