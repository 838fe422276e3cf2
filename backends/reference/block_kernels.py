"""Reference kernel of `irq.block_linear` (group-wise weight-only quantization).

The weight is dequantized in float32 — (q − z) · s per group — and multiplied in
float32; the result is rounded once to the activation type (float16 for w4a16). The
simulator's tiles call `dequantize_groups` and `block_matmul` on their slices.
"""

from __future__ import annotations

import numpy as np

from irflow.backends.reference.kernels import Kernel, register_kernel
from irflow.dialects.quant import quant_type
from irflow.dialects.quant_block import BlockLinearOp

ROWS_PER_CHUNK = 64  # query rows per batch of group sums (bounds the (G, M, N) temporary)


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


def integer_group_terms(xq: np.ndarray, q: np.ndarray, scales: np.ndarray,
                        zero_points: np.ndarray | None, x_zero: int) -> np.ndarray:
    """w4a8: per group g the exact integer sum Σ_{k∈g} (q_x − z_x)(q_w − z_w), times the
    group's weight scale: [G, M, N] float64. xq [M, G·g], q [N, G·g], scales [N, G].

    The sums are computed as float64 matrix products, exact because every partial sum
    is an integer below 2^53 (|q_x − z_x| ≤ 255, |q_w − z_w| ≤ 255, g ≤ 2^16)."""
    m, k = xq.shape
    n, groups = scales.shape
    g = k // groups
    x = (xq.astype(np.float64) - x_zero).reshape(m, groups, g).transpose(1, 0, 2)
    w = q.astype(np.float64).reshape(n, groups, g)
    if zero_points is not None:
        w = w - zero_points.astype(np.float64)[:, :, None]
    sums = np.matmul(x, w.transpose(1, 2, 0))  # G, M, N: exact integers
    return sums * scales.astype(np.float64).T[:, None, :]


def add_groups(acc: np.ndarray | None, terms: np.ndarray) -> np.ndarray:
    """Add the [G, M, N] group terms into `acc` one group after the other (the order the
    simulator's K-steps use, so both give the same float64 bits)."""
    for t in terms:
        acc = t.copy() if acc is None else acc + t
    assert acc is not None
    return acc


@register_kernel(BlockLinearOp)
def _block_linear(op: BlockLinearOp) -> Kernel:
    group = op.group
    qx = quant_type(op.input)
    out_dtype = np.float16 if "f16" in str(op.output.type) else np.float32

    def run(x: np.ndarray, q: np.ndarray, scales: np.ndarray,
            zero_points: np.ndarray | None = None) -> np.ndarray:
        w = dequantize_groups(q, scales, zero_points, group)
        return block_matmul(x, w).astype(x.dtype, copy=False)

    def run_int(x: np.ndarray, q: np.ndarray, scales: np.ndarray,
                zero_points: np.ndarray | None = None) -> np.ndarray:
        assert qx is not None
        rows = x.reshape(-1, x.shape[-1])
        out = np.empty((rows.shape[0], q.shape[0]), out_dtype)
        for r0 in range(0, rows.shape[0], ROWS_PER_CHUNK):
            terms = integer_group_terms(rows[r0: r0 + ROWS_PER_CHUNK], q, scales, zero_points,
                                        qx.zero_point)
            out[r0: r0 + ROWS_PER_CHUNK] = add_groups(None, terms) * qx.scale
        return out.reshape(*x.shape[:-1], q.shape[0])

    return run_int if qx is not None else run
