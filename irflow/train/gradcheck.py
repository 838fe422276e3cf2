"""`gradcheck`: the gradients `grad` computes against central finite differences.

Like `torch.autograd.gradcheck`, in float64, but along a few random directions instead
of every coordinate (a whole model has thousands of weights): for a direction d over all
trainable weights, the directional derivative ∇L·d from `@train_step` must match
(L(w + εd) − L(w − εd)) / 2ε, with L evaluated by the same program.

    >>> m64 = retype(zoo.load("digits_cnn"), batch=2, dtype=np.float64)
    >>> report = gradcheck(m64, CrossEntropy(), {"input": x}, {"labels": y})
    >>> report.worst_rel_error < 1e-6
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from irflow.backends.reference import compile_function
from irflow.diagnostics import IrflowError
from irflow.train.grad import GRAD_PREFIX, STEP_FUNC, grad, signature
from irflow.train.losses import CrossEntropy, Loss
from irflow.weights import weights_of


@dataclass
class GradCheck:
    """Per direction: the analytic and the finite-difference directional derivative."""

    analytic: list[float] = field(default_factory=list)
    numeric: list[float] = field(default_factory=list)
    grad_norm: float = 0.0
    params: tuple[str, ...] = ()

    @property
    def rel_errors(self) -> list[float]:
        """|analytic − numeric| relative to the gradient's norm (the largest directional
        derivative along a unit direction), so a direction nearly orthogonal to the
        gradient does not divide by ~0."""
        scale = max(self.grad_norm, 1e-12)
        return [abs(a - n) / scale for a, n in zip(self.analytic, self.numeric)]

    @property
    def worst_rel_error(self) -> float:
        return max(self.rel_errors, default=0.0)


def gradcheck(module: ModuleOp, loss: Loss | None = None,
              inputs: Mapping[str, np.ndarray] | None = None,
              targets: Mapping[str, np.ndarray] | None = None, *, directions: int = 3,
              eps: float = 1e-6, seed: int = 0) -> GradCheck:
    """Check `grad(module, loss)` along `directions` random unit directions (module in
    float64 for a meaningful check: float32 finite differences are noise at eps ~1e-3)."""
    step = grad(module, loss if loss is not None else CrossEntropy())
    sig = signature(step)
    prog = compile_function(step, STEP_FUNC)
    store = weights_of(module)
    params = {n: np.asarray(store[n], np.float64) for n in sig.params}
    if any(store[n].dtype != np.float64 for n in sig.params):
        raise IrflowError("gradcheck expects a float64 module (retype(..., dtype=np.float64))")
    feed = dict(inputs or {}) | dict(targets or {})
    out = prog.run(feed | params)
    rng = np.random.default_rng(seed)
    norm2 = sum(float((out[GRAD_PREFIX + n] ** 2).sum()) for n in params)
    result = GradCheck(grad_norm=float(np.sqrt(norm2)), params=sig.params)
    for _ in range(directions):
        d = {n: rng.standard_normal(p.shape) for n, p in params.items()}
        norm = np.sqrt(sum(float((v * v).sum()) for v in d.values())) or 1.0
        d = {n: v / norm for n, v in d.items()}
        analytic = sum(float((out[GRAD_PREFIX + n] * d[n]).sum()) for n in params)
        plus = prog.run(feed | {n: p + eps * d[n] for n, p in params.items()})["loss"]
        minus = prog.run(feed | {n: p - eps * d[n] for n, p in params.items()})["loss"]
        result.analytic.append(analytic)
        result.numeric.append(float(plus - minus) / (2 * eps))
    return result
