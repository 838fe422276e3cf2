"""`quantize`'s scales: the quantized type of an activation range and of a weight tensor.

Pure functions of numbers (no IR rewriting): symmetric narrow-range weight scales per
output channel or per tensor (clip `minmax` or `mse`), per-tensor activation types
from a calibrated range, every scale rounded to float32 so all executors and ONNX see
the same number. `irflow.train.qat` and the fake-quant kernels use the same formulas.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from xdsl.ir import Operation

from irflow import intmath
from irflow.dialects import nn
from irflow.dialects.quant import UniformQuantizedType

WEIGHT_CLIPS = ("minmax", "mse")


def _f32(x: float | np.ndarray) -> Any:
    """Round scales to float32 so every executor and ONNX see the same number."""
    return np.asarray(x, np.float32).astype(np.float64)


def activation_type(lo: float, hi: float, symmetric: bool, bits: int = 8
                    ) -> UniformQuantizedType:
    """The per-tensor type of an activation with range [lo, hi]."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if symmetric:
        if lo >= 0:  # non-negative: unsigned storage, zero point 0
            qmax = (1 << bits) - 1
            scale = float(_f32(hi / qmax)) if hi > 0 else 1.0
            return UniformQuantizedType.make(bits, scale, 0, signed=False)
        qmax = (1 << (bits - 1)) - 1
        amax = max(-lo, hi)
        return UniformQuantizedType.make(bits, float(_f32(amax / qmax)), 0)
    qmin, qmax = intmath.storage_range(bits)
    scale = float(_f32((hi - lo) / (qmax - qmin))) if hi > lo else 1.0
    zp = int(np.clip(np.rint(qmin - lo / scale), qmin, qmax))
    return UniformQuantizedType.make(bits, scale, zp)


def weight_scales(w: np.ndarray, bits: int, axis: int | None, clip: str) -> np.ndarray:
    """Symmetric narrow-range scales: one per slice along `axis` (or one in total)."""
    qmax = (1 << (bits - 1)) - 1
    mat = (np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1) if axis is not None
           else w.reshape(1, -1)).astype(np.float64)
    amax = np.abs(mat).max(axis=1)
    if clip == "mse":
        best = amax.copy()
        best_err = np.full(len(amax), np.inf)
        for alpha in np.linspace(0.5, 1.0, 51):
            t = np.maximum(amax * alpha, 1e-30)[:, None]
            s = t / qmax
            err = ((np.clip(np.rint(mat / s), -qmax, qmax) * s - mat) ** 2).sum(axis=1)
            better = err < best_err
            best = np.where(better, t[:, 0], best)
            best_err = np.where(better, err, best_err)
        amax = best
    scales = _f32(np.where(amax > 0, amax / qmax, 1.0))
    return np.where(scales > 0, scales, 1.0)


def weight_axis(op: Operation) -> int:
    """The weight's output-channel axis: 0 for conv2d [F,C,kh,kw] and linear [out,in],
    the last for matmul's rhs [.., K, N]."""
    if isinstance(op, nn.MatmulOp):
        return len(nn.shape_of(op.operands[1])) - 1
    return 0
