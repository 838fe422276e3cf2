"""Kernel of `nn.reduce_grad`: dy broadcast back over the reduced axes times ∂y/∂x, one
row per reduction (`LOCAL`, from x and the result y with the reduced axes kept)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from irflow.backends.reference.kernels import Kernel, register_kernel
from irflow.dialects import nn
from irflow.dialects.nn import gradients as g

Local = Callable[[np.ndarray, np.ndarray, tuple[int, ...]], np.ndarray]


def _extreme(x: np.ndarray, y: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """1/k at each of the k elements equal to the extreme (torch's amax/amin)."""
    hit = (x == y).astype(x.dtype)
    return hit / hit.sum(axis=axes, keepdims=True)


LOCAL: dict[str, Local] = {
    "reduce_sum": lambda x, y, a: np.ones_like(x),
    "reduce_max": _extreme,
    "reduce_min": _extreme,
    "reduce_prod": lambda x, y, a: y / x,  # the product of the others (x ≠ 0)
    "reduce_l1": lambda x, y, a: np.sign(x),
    "reduce_l2": lambda x, y, a: x / y,
    "reduce_log_sum": lambda x, y, a: np.broadcast_to(np.exp(-y), x.shape),
    "reduce_log_sum_exp": lambda x, y, a: np.exp(x - y),
    "reduce_sum_square": lambda x, y, a: 2 * x,
}
assert set(LOCAL) == set(g.REDUCE_GRAD_FNS)


@register_kernel(g.ReduceGradOp)
def _reduce_grad(op: g.ReduceGradOp) -> Kernel:
    local = LOCAL[op.fn.data]
    x_shape = nn.shape_of(op.output)
    rank = len(x_shape)
    axes = tuple(sorted({a % rank for a in nn.prop_ints(op, "axes", ())}))
    kept = tuple(1 if i in axes else d for i, d in enumerate(x_shape))

    def reduce_grad(x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        d = local(x, y.reshape(kept), axes) * dy.reshape(kept)
        return np.ascontiguousarray(d, dtype=x.dtype)

    return reduce_grad
