"""Reference kernel of `irq.block_linear` (group-wise weight-only quantization).

The weight is dequantized in float32 — (q − z) · s per group — and multiplied in
float32; the result is rounded once to the activation type (float16 for w4a16). The
simulator's tiles call `dequantize_groups` and `block_matmul` on their slices.
"""

from __future__ import annotations

import numpy as np

from irflow.backends.reference.kernels import Kernel, register_kernel
from irflow.dialects.quant_block import BlockLinearOp


def dequantize_groups(q: np.ndarray, scales: np.ndarray, zero_points: np.ndarray | None,
                      group: int) -> np.ndarray:
    """Float32 weights [N, K] from integers [N, K] and per-group scales [N, K/group]."""
    n, k = q.shape
    w = q.reshape(n, k // group, group).astype(np.float32)
    if zero_points is not None:
        w -= zero_points.astype(np.float32)[:, :, None]
    w *= scales.astype(np.float32)[:, :, None]
    return w.reshape(n, k)


def block_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x [..., K] · w [N, K]ᵀ in float32."""
    k = x.shape[-1]
    y = x.reshape(-1, k).astype(np.float32, copy=False) @ w.T
    return y.reshape(*x.shape[:-1], w.shape[0])


@register_kernel(BlockLinearOp)
def _block_linear(op: BlockLinearOp) -> Kernel:
    group = op.group

    def run(x: np.ndarray, q: np.ndarray, scales: np.ndarray,
            zero_points: np.ndarray | None = None) -> np.ndarray:
        w = dequantize_groups(q, scales, zero_points, group)
        return block_matmul(x, w).astype(x.dtype, copy=False)

    return run
