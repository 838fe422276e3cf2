"""The simulator's tile kernel for `irq.block_linear` (registered in
`executor.TILE_KERNELS`): a step holds whole groups (loop `kb`), so it dequantizes its
weight slice with the matching scales and accumulates the partial product in float32
across the K steps (the PE array's float32 accumulators); the last step rounds to the
result type."""

from __future__ import annotations

import numpy as np

from irflow.backends.reference.block_kernels import block_matmul
from irflow.backends.sim.executor import TILE_KERNELS, Step, TileKernel
from irflow.dialects import accel


def block_linear_tiles(layer: accel.LayerOp, space: accel.Space) -> TileKernel:
    partial: dict[tuple, np.ndarray] = {}

    def run(step: Step) -> None:
        x, q, s = step.operands[:3]
        z = step.operands[3] if len(step.operands) > 3 else None
        _, tm, tkb, g = x.shape
        tn = q.shape[0]
        w = q.astype(np.float32)
        if z is not None:
            w -= z.astype(np.float32)[:, :, None]
        w *= s.astype(np.float32)[:, :, None]
        y = block_matmul(x.reshape(tm, tkb * g), w.reshape(tn, tkb * g))
        key = (step.tile["m"], step.tile["n"])
        partial[key] = y if step.first else partial[key] + y
        if step.last:
            step.out[...] = partial.pop(key).reshape(step.out.shape)

    return run


TILE_KERNELS[accel.BLOCK_LINEAR] = block_linear_tiles
