"""The simulator's tile kernel for `nn.attention` (registered in `executor.TILE_KERNELS`).

A tile holds query rows m0..m1 of some query heads and the whole key/value sequences
of their key/value heads (`accel_llm`); the reference kernel's `attention` computes
it with the rows' causal positions, so a tile reading the wrong rows gives wrong
numbers. `nn.rms_norm` and `nn.rotary` use the generic reference-kernel tile path.
"""

from __future__ import annotations

from irflow.backends.reference.llm_kernels import attention, attention_scale
from irflow.backends.sim.executor import NN_OPS, TILE_KERNELS, Step, TileKernel, _detached
from irflow.dialects import accel, nn


def attention_tiles(layer: accel.LayerOp, space: accel.Space) -> TileKernel:
    op = _detached(layer)
    assert isinstance(op, nn.AttentionOp)
    scale, causal = attention_scale(op), bool(nn.prop_int(op, "causal", 0))
    rows = space.extents["m"]

    def run(step: Step) -> None:
        q, k, v = step.operands
        step.out[...] = attention(q, k, v, scale, causal, step.tile["m"][0], rows)

    return run


assert "nn.attention" in NN_OPS
TILE_KERNELS["nn.attention"] = attention_tiles
