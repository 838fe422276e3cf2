"""f'(x) of the differentiable rows of `dialects/nn/math.py` (`DIFFERENTIABLE_MATH`): the
table `nn.activation_grad`'s kernel reads for those `fn`s. `p` holds the forward op's
float properties (alpha, gamma, lambd, ...; the VJP always sets them). At a kink the
derivative is torch's choice (abs: 0 at 0; leaky_relu: 1 at 0)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from irflow.backends.reference.kernels import sigmoid
from irflow.backends.reference.math_kernels import _softplus
from irflow.dialects.nn.math import DIFFERENTIABLE_MATH

Props = Mapping[str, float | str | None]
Derivative = Callable[[np.ndarray, Props], np.ndarray]


def _f(x: np.ndarray, p: Props, key: str) -> np.generic:
    return x.dtype.type(p[key])  # type: ignore[arg-type]


def _mish(x: np.ndarray, p: Props) -> np.ndarray:
    t = np.tanh(_softplus(x))
    return t + x * sigmoid(x) * (1 - t * t)


def _exp_branch(x: np.ndarray, p: Props) -> np.ndarray:
    """elu's: 1 for x > 0, alpha·exp(x) below."""
    return np.where(x > 0, 1, _f(x, p, "alpha") * np.exp(np.minimum(x, 0)))


MATH_DERIVATIVES: dict[str, Derivative] = {
    "abs": lambda x, p: np.sign(x),
    "log": lambda x, p: 1 / x,
    "reciprocal": lambda x, p: -1 / (x * x),
    "sin": lambda x, p: np.cos(x),
    "cos": lambda x, p: -np.sin(x),
    "tan": lambda x, p: 1 + np.tan(x) ** 2,
    "asin": lambda x, p: 1 / np.sqrt(1 - x * x),
    "acos": lambda x, p: -1 / np.sqrt(1 - x * x),
    "atan": lambda x, p: 1 / (1 + x * x),
    "sinh": lambda x, p: np.cosh(x),
    "cosh": lambda x, p: np.sinh(x),
    "asinh": lambda x, p: 1 / np.sqrt(x * x + 1),
    "acosh": lambda x, p: 1 / np.sqrt(x * x - 1),
    "atanh": lambda x, p: 1 / (1 - x * x),
    "softplus": lambda x, p: sigmoid(x),
    "softsign": lambda x, p: 1 / (1 + np.abs(x)) ** 2,
    "mish": _mish,
    "leaky_relu": lambda x, p: np.where(x >= 0, 1, _f(x, p, "alpha")),
    "elu": _exp_branch,
    "selu": lambda x, p: _f(x, p, "gamma") * _exp_branch(x, p),
    "celu": lambda x, p: np.where(x > 0, 1, np.exp(np.minimum(x, 0) / _f(x, p, "alpha"))),
    "thresholded_relu": lambda x, p: (x > _f(x, p, "alpha")),
    "shrink": lambda x, p: (np.abs(x) > _f(x, p, "lambd")),
}
assert set(MATH_DERIVATIVES) == set(DIFFERENTIABLE_MATH)


def math_derivative(fn: str, x: np.ndarray, p: Props) -> np.ndarray:
    """f'(x) in x's dtype."""
    return np.asarray(MATH_DERIVATIVES[fn](x, p)).astype(x.dtype, copy=False)
