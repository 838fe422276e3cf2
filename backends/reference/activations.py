"""The unary activation functions the reference kernels compute, and fused `act`.

Each takes an optional `out` so a fused activation can run in place. `UNARY` maps the
parameterless nn ops to them (`kernels.py` registers the kernels); `fused_activation`
and `with_activation` apply an op's fused `act` property with exactly these functions.
`irflow.backends.reference.kernels` re-exports every name here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from xdsl.ir import Operation

from irflow.diagnostics import ExecutionError
from irflow.dialects import nn

if TYPE_CHECKING:
    from irflow.backends.reference.kernels import Kernel


Unary = Callable[..., np.ndarray]  # (x, out=None) -> ndarray


def _f(x: np.ndarray, v: float) -> np.generic:
    """The scalar `v` in x's element type (keeps float32 math in float32)."""
    return x.dtype.type(v)


def _into(value: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """Write `value` into `out` when given (for functions without an `out=`)."""
    if out is None:
        return value
    out[...] = value
    return out


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.maximum(x, _f(x, 0.0), out=out)


def relu6(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.clip(x, _f(x, 0.0), _f(x, 6.0), out=out)


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 / (1 + exp(-x)), without overflow: exp of -|x| only."""
    e = np.exp(-np.abs(x))
    num = np.where(x >= 0, _f(x, 1.0), e)
    e += _f(x, 1.0)
    return np.divide(num, e, out=out)


def tanh(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.tanh(x, out=out)


def silu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    s = sigmoid(x)
    return np.multiply(x, s, out=out)


def hardsigmoid_fn(alpha: float, beta: float) -> Unary:
    """ONNX HardSigmoid: max(0, min(1, alpha·x + beta))."""

    def hardsigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        y = x * _f(x, alpha)
        y += _f(x, beta)
        return np.clip(y, _f(x, 0.0), _f(x, 1.0), out=out)

    return hardsigmoid


def hardswish(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """x * max(0, min(1, x/6 + 1/2)) (ONNX HardSwish: alpha = 1/6, beta = 0.5)."""
    return np.multiply(x, hardsigmoid_fn(1.0 / 6.0, 0.5)(x), out=out)


# Rational approximation of erf, coefficients from Eigen's `generic_fast_erf_float`
# (SpecialFunctionsImpl.h): a 9/12-degree odd/even rational interpolant for float32.
# Evaluated in float64 and rounded once, it is within 1 ulp of the true erf in float32
# (Eigen's float32 evaluation: ~6 ulp). Eigen returns sign(x) from |x| >= 3.8325; here x
# is clipped to ±3.9, where the interpolant is monotone and just above 1, and the result
# clipped to [-1, 1] — the same values without a (slow) masked select.
_ERF_CLAMP = 3.9
_ERF_ALPHA = (1.128379143519084, 0.18520832239976145, 0.050955695062380861,
              0.0034082910107109506, 0.00022905065861350646)
_ERF_BETA = (1.0, 0.49746925110067538, 0.11098505178285362, 0.014070470171167667,
             0.0010179625278914885, 0.000023547966471313185, -1.1791602954361697e-7)


_BLOCK = 1 << 14
"""Elements per block of the many-pass elementwise kernels (erf, gelu): the float64
temporaries stay in the CPU cache instead of streaming whole tensors ~15 times."""


def _blockwise(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dtype: np.dtype,
               out: np.ndarray | None) -> np.ndarray:
    """`fn` (elementwise) applied block by block: the same numbers as `fn(x)`."""
    if x.size <= _BLOCK:
        return _into(fn(x), out)
    flat = np.ascontiguousarray(x).reshape(-1)
    res = np.empty(flat.size, dtype)
    for i in range(0, flat.size, _BLOCK):
        res[i: i + _BLOCK] = fn(flat[i: i + _BLOCK])
    return _into(res.reshape(x.shape), out)


def erf(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Vectorized erf for float arrays (float32 results within 1 ulp of `math.erf`)."""
    x = np.asarray(x)
    return _blockwise(_erf, x, x.dtype if x.dtype.kind == "f" else np.dtype(np.float32), out)


def _erf(x: np.ndarray) -> np.ndarray:
    xc = np.clip(x, -_ERF_CLAMP, _ERF_CLAMP, dtype=np.float64)  # no ±inf in the polynomials
    x2 = xc * xc
    p = _horner(x2, _ERF_ALPHA)
    p *= xc
    p /= _horner(x2, _ERF_BETA)
    np.clip(p, -1.0, 1.0, out=p)
    return p.astype(x.dtype if x.dtype.kind == "f" else np.float32)


def _horner(t: np.ndarray, coeffs: Sequence[float]) -> np.ndarray:
    """sum(coeffs[i] * t**i), in place on one temporary."""
    acc = t * coeffs[-1]
    acc += coeffs[-2]
    for c in reversed(coeffs[:-2]):
        acc *= t
        acc += c
    return acc


def gelu_fn(approximate: str) -> Unary:
    """ONNX Gelu: exact 0.5·x·(1 + erf(x/√2)), or the tanh approximation."""
    if approximate == "tanh":
        def gelu_tanh(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
            inner = x * x
            inner *= _f(x, 0.044715)
            inner += _f(x, 1.0)
            inner *= x
            inner *= _f(x, math.sqrt(2.0 / math.pi))
            np.tanh(inner, out=inner)
            inner += _f(x, 1.0)
            inner *= _f(x, 0.5)
            return np.multiply(x, inner, out=out)

        return gelu_tanh

    def gelu_block(x: np.ndarray) -> np.ndarray:
        e = _erf(x * _f(x, 1.0 / math.sqrt(2.0)))
        e += _f(x, 1.0)
        e *= _f(x, 0.5)
        return np.multiply(x, e)

    def gelu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if x.dtype.kind != "f":
            return _into(gelu_block(x), out)
        return _blockwise(gelu_block, x, x.dtype, out)

    return gelu


def _clip_fn(lo: float | None, hi: float | None) -> Unary:
    def clip(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.clip(x, None if lo is None else _f(x, lo), None if hi is None else _f(x, hi),
                       out=out)

    return clip


def _ufunc(fn: Callable[..., np.ndarray]) -> Unary:
    return lambda x, out=None: fn(x, out=out)


# Parameterless unary kernels; fused `act` properties reuse exactly these functions.
UNARY: dict[type[Operation], Unary] = {
    nn.ReluOp: relu,
    nn.Relu6Op: relu6,
    nn.SigmoidOp: sigmoid,
    nn.TanhOp: tanh,
    nn.SiluOp: silu,
    nn.HardSwishOp: hardswish,
    nn.ErfOp: erf,
    nn.SqrtOp: _ufunc(np.sqrt),
    nn.ExpOp: _ufunc(np.exp),
    nn.NegOp: _ufunc(np.negative),
}


def fused_activation(op: Operation) -> Unary | None:
    """The unary function named by the op's `act` property (None when absent)."""
    name = nn.fused_act(op)
    if name is None:
        return None
    if name not in nn.FUSABLE_ACTIVATIONS:
        raise ExecutionError(
            f"{op.name} has act '{name}', expected one of {sorted(nn.FUSABLE_ACTIVATIONS)}", op
        )
    return UNARY[nn.FUSABLE_ACTIVATIONS[name]]


def with_activation(op: Operation, kernel: Kernel) -> Kernel:
    """Wrap `kernel` so the op's fused activation runs in place on its fresh result."""
    act = fused_activation(op)
    if act is None:
        return kernel

    def fused(*args: np.ndarray) -> np.ndarray:
        y = kernel(*args)  # the kernels that take `act` always return a fresh array
        return act(y, out=y) if isinstance(y, np.ndarray) else act(y)

    return fused
