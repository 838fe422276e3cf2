"""The simulator's tile kernel for `irq.block_linear` (registered in
`executor.TILE_KERNELS`): a step holds whole groups (loop `kb`), so it dequantizes its
weight slice with the matching scales and accumulates the partial product in float32
across the K steps (the PE array's float32 accumulators); the last step rounds to the
result type. With int8 activations (w4a8) the steps compute exact integer group sums."""

from __future__ import annotations

import numpy as np

from irflow.backends.reference.block_kernels import add_groups, block_matmul, integer_group_terms
from irflow.backends.sim.executor import TILE_KERNELS, Step, TileKernel
from irflow.dialects import accel
from irflow.dialects.quant import quant_type


def block_linear_tiles(layer: accel.LayerOp, space: accel.Space) -> TileKernel:
    partial: dict[tuple, np.ndarray] = {}
    qx = quant_type(layer.inputs[0])
    if qx is not None:
        return _integer_tiles(qx.scale, qx.zero_point)

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


def _integer_tiles(x_scale: float, x_zero: int) -> TileKernel:
    """w4a8: exact integer group sums per step, added group by group in float64 in K
    order — the reference kernel's order, so the result is bit-identical."""
    partial: dict[tuple, np.ndarray] = {}

    def run(step: Step) -> None:
        x, q, s = step.operands[:3]
        z = step.operands[3] if len(step.operands) > 3 else None
        _, tm, tkb, g = x.shape
        terms = integer_group_terms(x.reshape(tm, tkb * g), q.reshape(q.shape[0], tkb * g),
                                    s, z, x_zero)
        key = (step.tile["m"], step.tile["n"])
        partial[key] = add_groups(None if step.first else partial[key], terms)
        if step.last:
            y = partial.pop(key) * x_scale
            step.out[...] = y.reshape(step.out.shape)

    return run


TILE_KERNELS[accel.BLOCK_LINEAR] = block_linear_tiles
