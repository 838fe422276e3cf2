"""Kernels of `dialects/nn/math.py` (elementwise math, parameterized activations,
predicates, cast) and `dialects/nn/logic.py` (comparisons, logical/bitwise ops, min/max,
mod, where): one numpy function per row, registered into `KERNELS`.

Float math stays in the input's float type (numpy ufuncs on float32 compute in float32,
as onnxruntime does).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from xdsl.ir import Operation

from irflow import lowp
from irflow.backends.reference.kernels import Kernel, register_kernel, sigmoid
from irflow.dialects import nn
from irflow.dialects.nn.logic import LOGIC_OPS
from irflow.dialects.nn.math import MATH_OPS
from irflow.weights import value_dtype

Fn = Callable[..., np.ndarray]


def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|))."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _mish(x: np.ndarray) -> np.ndarray:
    return x * np.tanh(_softplus(x))


def _sign(x: np.ndarray) -> np.ndarray:
    return np.sign(x).astype(x.dtype, copy=False)


UNARY_MATH: dict[str, Fn] = {
    "abs": np.abs, "log": np.log, "floor": np.floor, "ceil": np.ceil,
    "reciprocal": lambda x: np.reciprocal(x) if x.dtype.kind == "f" else 1 // x,
    "round": np.round,  # round half to even, as ONNX
    "sign": _sign,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos,
    "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh, "asinh": np.arcsinh,
    "acosh": np.arccosh, "atanh": np.arctanh,
    "softplus": _softplus, "softsign": lambda x: x / (1 + np.abs(x)), "mish": _mish,
    "not": np.logical_not, "bitwise_not": np.invert,
}


def _param_activation(short: str, p: dict[str, float]) -> Fn:
    def f(x: np.ndarray, v: float) -> np.generic:
        return x.dtype.type(v)

    if short == "leaky_relu":
        return lambda x: np.where(x >= 0, x, x * f(x, p["alpha"]))
    if short == "elu":
        return lambda x: np.where(x > 0, x, f(x, p["alpha"]) * np.expm1(np.minimum(x, 0)))
    if short == "selu":
        return lambda x: f(x, p["gamma"]) * np.where(
            x > 0, x, f(x, p["alpha"]) * np.expm1(np.minimum(x, 0)))
    if short == "celu":
        return lambda x: np.maximum(x, 0) + np.minimum(
            0, f(x, p["alpha"]) * np.expm1(np.minimum(x, 0) / f(x, p["alpha"])))
    if short == "thresholded_relu":
        return lambda x: np.where(x > f(x, p["alpha"]), x, f(x, 0.0))
    if short == "shrink":
        def shrink(x: np.ndarray) -> np.ndarray:
            lam, bias = f(x, p["lambd"]), f(x, p["bias"])
            return np.where(x < -lam, x + bias, np.where(x > lam, x - bias, f(x, 0.0))
                            ).astype(x.dtype, copy=False)
        return shrink
    raise KeyError(short)


for _short, _fn in UNARY_MATH.items():
    register_kernel(MATH_OPS[_short])(lambda op, fn=_fn: fn)


@register_kernel(*(MATH_OPS[s] for s in nn.math.PARAM_ACTIVATIONS))
def _param(op: Operation) -> Kernel:
    short = op.name.removeprefix("nn.")
    _, defaults, _ = nn.math.PARAM_ACTIVATIONS[short]
    return _param_activation(short, {k: nn.prop_float(op, k, d) for k, d in defaults.items()})


@register_kernel(MATH_OPS["cast"])
def _cast(op: Operation) -> Kernel:
    to = value_dtype(op.results[0])
    saturate = bool(nn.prop_int(op, "saturate", 1))

    def cast(x: np.ndarray) -> np.ndarray:
        if lowp.is_low_precision(to) or lowp.is_low_precision(x.dtype):
            return lowp.cast(x, to, saturate)
        if x.dtype.kind == "f" and to.kind in "iu":
            with np.errstate(invalid="ignore"):
                return np.trunc(x).astype(to)
        return x.astype(to)

    return cast


@register_kernel(MATH_OPS["is_nan"])
def _is_nan(op: Operation) -> Kernel:
    return np.isnan


@register_kernel(MATH_OPS["is_inf"])
def _is_inf(op: Operation) -> Kernel:
    pos, neg = nn.prop_int(op, "detect_positive", 1), nn.prop_int(op, "detect_negative", 1)
    return lambda x: (np.isposinf(x) & bool(pos)) | (np.isneginf(x) & bool(neg))


# --------------------------------------------------------------------------------------
# logic.py


def _mod(fmod: int) -> Fn:
    """ONNX Mod: fmod=1 keeps the dividend's sign (C fmod); fmod=0 the divisor's (Python %)."""
    return np.fmod if fmod else np.mod


def _bit_shift(direction: str) -> Fn:
    return np.left_shift if direction == "LEFT" else np.right_shift


def _prelu(x: np.ndarray, slope: np.ndarray) -> np.ndarray:
    return np.where(x < 0, x * slope, x).astype(x.dtype, copy=False)


BINARY_LOGIC: dict[str, Fn] = {
    "equal": np.equal, "less": np.less, "less_or_equal": np.less_equal,
    "greater": np.greater, "greater_or_equal": np.greater_equal,
    "and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor,
    "bitwise_and": np.bitwise_and, "bitwise_or": np.bitwise_or,
    "bitwise_xor": np.bitwise_xor, "min": np.minimum, "max": np.maximum, "prelu": _prelu,
}

for _short, _fn in BINARY_LOGIC.items():
    register_kernel(LOGIC_OPS[_short])(lambda op, fn=_fn: fn)


@register_kernel(LOGIC_OPS["mod"])
def _mod_kernel(op: Operation) -> Kernel:
    fn = _mod(nn.prop_int(op, "fmod", 0))
    return lambda a, b: fn(a, b).astype(np.result_type(a, b), copy=False)


@register_kernel(LOGIC_OPS["bit_shift"])
def _bit_shift_kernel(op: Operation) -> Kernel:
    fn = _bit_shift(nn.prop_str(op, "direction", "RIGHT"))
    return lambda a, b: fn(a, b).astype(a.dtype, copy=False)


@register_kernel(LOGIC_OPS["where"])
def _where(op: Operation) -> Kernel:
    return np.where


# `sigmoid` is re-exported for activations built from it elsewhere.
__all__ = ["UNARY_MATH", "BINARY_LOGIC", "sigmoid"]
