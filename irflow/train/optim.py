"""Optimizers over named numpy parameters, with torch.optim's update rules.

    >>> opt = make_optimizer(OptimizerConfig("adamw", lr=1e-3, weight_decay=0.01), params)
    >>> opt.step(grads, lr=schedule.lr(step))      # updates `params` in place

- `sgd`: torch.optim.SGD — weight decay added to the gradient, momentum buffer
  b = μ·b + (1 − dampening)·g (b = g on the first step), Nesterov g + μ·b;
- `adam`: torch.optim.Adam — L2 weight decay added to the gradient, bias-corrected
  moments, p −= lr · m̂ / (√v̂ + ε);
- `adamw`: torch.optim.AdamW — decoupled decay p *= 1 − lr·λ before the Adam step.

`clip_grad_norm` is torch.nn.utils.clip_grad_norm_ (global L2 norm over all gradients).
Where this differs from torch: updates are computed in the parameters' dtype (float32),
`amsgrad`/`maximize`/`foreach` options do not exist, and the state is a plain dict of
arrays (`state_dict()` / `load_state_dict()`, saved in checkpoints).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from irflow.diagnostics import IrflowError

OPTIMIZERS = ("sgd", "adam", "adamw")


@dataclass(frozen=True)
class OptimizerConfig:
    name: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0          # sgd
    dampening: float = 0.0         # sgd
    nesterov: bool = False         # sgd
    betas: tuple[float, float] = (0.9, 0.999)  # adam, adamw
    eps: float = 1e-8              # adam, adamw
    weight_decay: float = 0.0      # L2 (sgd, adam) or decoupled (adamw; torch default 1e-2)

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise IrflowError(f"optimizer must be one of {list(OPTIMIZERS)}, got '{self.name}'")
        if not self.lr > 0:
            raise IrflowError(f"learning rate must be > 0, got {self.lr}")
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise IrflowError("Nesterov momentum requires a momentum > 0 and zero dampening")
        if self.weight_decay < 0 or self.momentum < 0:
            raise IrflowError("weight decay and momentum must be >= 0")


class Optimizer:
    """Updates `params` (name -> array) in place from gradients of the same names."""

    def __init__(self, config: OptimizerConfig, params: Mapping[str, np.ndarray]):
        self.config = config
        self.params = params
        self.state: dict[str, np.ndarray] = {}
        self.steps = 0

    def step(self, grads: Mapping[str, np.ndarray], lr: float | None = None) -> None:
        lr = self.config.lr if lr is None else lr
        self.steps += 1
        for name, p in self.params.items():
            self._update(name, p, np.asarray(grads[name], p.dtype), lr)

    def _update(self, name: str, p: np.ndarray, g: np.ndarray, lr: float) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"steps": np.asarray(self.steps)} | {f"state.{k}": v for k, v in
                                                    self.state.items()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        self.steps = int(state["steps"])
        self.state = {k.removeprefix("state."): np.array(v) for k, v in state.items()
                      if k.startswith("state.")}


class SGD(Optimizer):
    def _update(self, name: str, p: np.ndarray, g: np.ndarray, lr: float) -> None:
        c = self.config
        if c.weight_decay:
            g = g + p.dtype.type(c.weight_decay) * p
        if c.momentum:
            buf = self.state.get(f"{name}.momentum")
            if buf is None:
                buf = self.state[f"{name}.momentum"] = g.copy()
            else:
                buf *= p.dtype.type(c.momentum)
                buf += p.dtype.type(1 - c.dampening) * g
            g = g + p.dtype.type(c.momentum) * buf if c.nesterov else buf
        p -= p.dtype.type(lr) * g


class Adam(Optimizer):
    decoupled = False

    def _update(self, name: str, p: np.ndarray, g: np.ndarray, lr: float) -> None:
        c = self.config
        b1, b2 = c.betas
        t = p.dtype.type
        if c.weight_decay:
            if self.decoupled:
                p *= t(1 - lr * c.weight_decay)
            else:
                g = g + t(c.weight_decay) * p
        m = self.state.setdefault(f"{name}.exp_avg", np.zeros_like(p))
        v = self.state.setdefault(f"{name}.exp_avg_sq", np.zeros_like(p))
        m *= t(b1)
        m += t(1 - b1) * g
        v *= t(b2)
        v += t(1 - b2) * g * g
        bc1 = 1 - b1 ** self.steps
        bc2 = 1 - b2 ** self.steps
        denom = np.sqrt(v) / t(np.sqrt(bc2))
        denom += t(c.eps)
        p -= t(lr / bc1) * m / denom


class AdamW(Adam):
    decoupled = True


def make_optimizer(config: OptimizerConfig, params: Mapping[str, np.ndarray]) -> Optimizer:
    return {"sgd": SGD, "adam": Adam, "adamw": AdamW}[config.name](config, params)


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale all gradients so their global L2 norm is at most `max_norm` (in place, as
    torch.nn.utils.clip_grad_norm_); returns the norm before clipping."""
    total = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values())))
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for g in grads.values():
            g *= g.dtype.type(coef)
    return total


SCHEDULES = ("constant", "step", "cosine")


@dataclass(frozen=True)
class ScheduleConfig:
    """The learning rate at optimizer step t (counted from 0):

    - `constant`: lr;
    - `step`: lr · gamma^(t // step_size) (torch StepLR);
    - `cosine`: eta_min + (lr − eta_min)(1 + cos(π t / total)) / 2 (torch CosineAnnealingLR);

    and with `warmup` > 0 a linear ramp lr · (t + 1) / warmup over the first steps
    (torch LinearLR(start_factor=1/warmup) chained before the schedule, which then counts
    from the end of the warmup).
    """

    kind: str = "constant"
    step_size: int = 1
    gamma: float = 0.1
    total: int = 1
    eta_min: float = 0.0
    warmup: int = 0

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise IrflowError(f"schedule must be one of {list(SCHEDULES)}, got '{self.kind}'")
        if self.step_size < 1 or self.total < 1 or self.warmup < 0:
            raise IrflowError("schedule step size and length must be >= 1, warmup >= 0")

    def lr(self, base: float, t: int) -> float:
        if t < self.warmup:
            return base * (t + 1) / self.warmup
        t -= self.warmup
        if self.kind == "step":
            return base * self.gamma ** (t // self.step_size)
        if self.kind == "cosine":
            total = max(1, self.total - self.warmup)
            return float(self.eta_min + (base - self.eta_min) * (
                1 + np.cos(np.pi * min(t, total) / total)) / 2)
        return base
