"""How the next points are chosen: grid, random, NSGA-II (Optuna) and HAQ-style ILP.

Every strategy is ask/tell: `ask()` returns the next batch of points (all evaluated in
parallel on Dask), `tell(points, rows)` gives back their rows in the same order; an empty
batch ends the search. Each is deterministic for a seed: the batches depend only on the
seed and on the rows told, never on the order in which workers finished.

- `grid`: every point of the space, one batch;
- `random`: `trials` distinct points drawn with `numpy.random.default_rng(seed)`;
- `nsga2`: Optuna's `NSGAIISampler` (population `population`, `seed`), one generation per
  batch, `trials` points in all; constraint violations are set on each trial
  (`Trial.set_constraint`: the sampler's constrained domination), failed points are told
  as failed trials;
- `haq`: mixed precision under latency budgets, as HAQ poses it (Wang et al., CVPR 2019),
  solved exactly: batch 1 measures each layer's sensitivity (the model with that one
  layer at a setting — each w × a, or `[search] settings` — every other at w8a8: its
  output SQNR and its cycles); batch 2 is,
  for each budget b in `budgets`, the solution of the ILP

      minimize   Σ_l Σ_s noise[l, s] · x[l, s]          noise = 10^(−SQNR/10)
      subject to Σ_s x[l, s] = 1 for each layer l
                 Σ_l Σ_s Δcycles[l, s] · x[l, s] ≤ (b − 1) · cycles(uniform w8a8)
                 x binary

  (`scipy.optimize.milp`): noise powers of independent layers add, cycle changes add; the
  solutions are then evaluated exactly like any point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from irflow.search.space import CONSTRAINTS, GLOBAL_KNOBS, Space, point_key


class Strategy(Protocol):
    def ask(self) -> list[dict[str, Any]]: ...

    def tell(self, points: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]]) -> None: ...


def violations(space: Space, row: dict[str, Any]) -> list[float]:
    """One number per constraint: ≤ 0 when met (Optuna's convention), in the metric's unit."""
    out = []
    for key, limit in space.constraints:
        metric, kind = CONSTRAINTS[key]
        if row.get("status") != "ok":
            out.append(math.inf)
            continue
        if kind == "drop":
            value = row.get("accuracy_drop")
        else:
            value = row.get(metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append(math.inf)
        elif kind == "min":
            out.append(limit - value)
        else:
            out.append(value - limit)
    return out


def feasible(space: Space, row: dict[str, Any]) -> bool:
    return row.get("status") == "ok" and all(v <= 0 for v in violations(space, row))


class Grid:
    def __init__(self, space: Space):
        self.space, self.asked = space, False

    def ask(self) -> list[dict[str, Any]]:
        if self.asked:
            return []
        self.asked = True
        return list(self.space.grid())

    def tell(self, points: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]]) -> None:
        pass


class Random(Grid):
    def ask(self) -> list[dict[str, Any]]:
        if self.asked:
            return []
        self.asked = True
        space = self.space
        if space.size <= space.trials:
            return list(space.grid())
        rng = np.random.default_rng(space.seed)
        points: dict[str, dict[str, Any]] = {}
        while len(points) < space.trials:
            p = {k.name: k.values[int(rng.integers(len(k.values)))] for k in space.knobs}
            points.setdefault(point_key(p), p)
        return list(points.values())


class NSGA2:
    def __init__(self, space: Space):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space = space
        self.optuna = optuna
        sampler = optuna.samplers.NSGAIISampler(population_size=space.population,
                                                seed=space.seed)
        self.study = optuna.create_study(
            directions=[o.direction for o in space.objectives], sampler=sampler)
        self.pending: list[Any] = []
        self.asked = 0

    def ask(self) -> list[dict[str, Any]]:
        n = min(self.space.population, self.space.trials - self.asked)
        if n <= 0:
            return []
        self.pending = [self.study.ask() for _ in range(n)]
        self.asked += n
        return [{k.name: t.suggest_categorical(k.name, list(k.values)) for k in self.space.knobs}
                for t in self.pending]

    def tell(self, points: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]]) -> None:
        for trial, row in zip(self.pending, rows):
            for (key, _), v in zip(self.space.constraints, violations(self.space, row)):
                trial.set_constraint(key, v if math.isfinite(v) else 1e300)
            values = [row.get(o.metric) for o in self.space.objectives]
            if row.get("status") != "ok" or any(
                    v is None or not math.isfinite(v) for v in values):
                self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(trial, values)
        self.pending = []


def settings_of(space: Space) -> list[tuple[int, int]]:
    """The (w_bits, a_bits) choices of a per-layer space (haq's settings)."""
    layer = space.layers[0]
    values = {**dict(space.fixed), **{k.name: k.values for k in space.knobs}}

    def choices(key: str) -> tuple[Any, ...]:
        v = values.get(f"{key}.{layer}", (8,))
        return v if isinstance(v, tuple) else (v,)

    return [(w, a) for w in choices("w_bits") for a in choices("a_bits")]


def uniform_point(space: Space, w: int, a: int, sparsity: str = "dense",
                  only: str | None = None, baseline: bool = False) -> dict[str, Any]:
    """A point with every compression unit at (w, a, sparsity) — or, with `only`, that
    unit at (w, a) and the others at w8a8 — on the base machine, first architecture.
    `baseline`: with the named pipelines' whole-model settings (min-max calibration and
    weight clipping), whatever the space fixes, so that `int8` means irflow's `int8`."""
    point: dict[str, Any] = {}
    if baseline:
        point.update({key: values[0] for key, values in GLOBAL_KNOBS.items()})
    for k in space.knobs:
        if k.kind == "arch":
            point[k.name] = k.values[0]
    for unit in space.units():
        suffix = "" if space.per == "model" else f".{unit}"
        mine = only is None or unit == only
        point[f"w_bits{suffix}"] = w if mine else 8
        point[f"a_bits{suffix}"] = a if mine else 8
        point[f"sparsity{suffix}"] = sparsity if mine else "dense"
    return point


class HAQ:
    def __init__(self, space: Space):
        self.space = space
        self.stage = 0
        self.settings = list(space.haq_settings) or [s for s in settings_of(space)
                                                     if s != (8, 8)]
        self.rows: dict[str, dict[str, Any]] = {}

    def sensitivity_points(self) -> list[dict[str, Any]]:
        pts = [uniform_point(self.space, 8, 8)]
        for layer in self.space.layers:
            for w, a in self.settings:
                pts.append(uniform_point(self.space, w, a, only=layer))
        return pts

    def ask(self) -> list[dict[str, Any]]:
        self.stage += 1
        if self.stage == 1:
            return self.sensitivity_points()
        if self.stage == 2:
            return self.solve()
        return []

    def tell(self, points: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]]) -> None:
        for p, r in zip(points, rows):
            self.rows[point_key(p)] = r

    def solve(self) -> list[dict[str, Any]]:
        from scipy.optimize import Bounds, LinearConstraint, milp

        base = self.rows[point_key(uniform_point(self.space, 8, 8))]
        if base.get("status") != "ok":
            return []
        layers, options = self.space.layers, [(8, 8), *self.settings]
        noise, dcyc = [], []
        for layer in layers:
            for w, a in options:
                if (w, a) == (8, 8):
                    r = base
                else:
                    r = self.rows[point_key(uniform_point(self.space, w, a, only=layer))]
                ok = r.get("status") == "ok" and r.get("sqnr_db") is not None
                noise.append(10 ** (-r["sqnr_db"] / 10) if ok else 1e9)
                dcyc.append((r["cycles"] - base["cycles"]) if ok else 0.0)
        n, k = len(layers), len(options)
        one_each = np.zeros((n, n * k))
        for i in range(n):
            one_each[i, i * k:(i + 1) * k] = 1
        points: dict[str, dict[str, Any]] = {}
        for b in self.space.budgets:
            budget = (b - 1.0) * base["cycles"]
            res = milp(c=np.asarray(noise), integrality=np.ones(n * k),
                       bounds=Bounds(0, 1),
                       constraints=[LinearConstraint(one_each, 1, 1),
                                    LinearConstraint(np.asarray(dcyc)[None, :], -np.inf,
                                                     budget)])
            if res.x is None:
                continue  # no assignment meets this budget
            choice = np.asarray(res.x).reshape(n, k).argmax(1)
            p = uniform_point(self.space, 8, 8)
            for layer, c in zip(layers, choice):
                p[f"w_bits.{layer}"], p[f"a_bits.{layer}"] = options[c]
            points.setdefault(point_key(p), p)
        return list(points.values())


def make_strategy(space: Space) -> Strategy:
    return {"grid": Grid, "random": Random, "nsga2": NSGA2, "haq": HAQ}[space.strategy](space)


__all__ = ["Strategy", "Grid", "Random", "NSGA2", "HAQ", "make_strategy", "violations",
           "feasible", "uniform_point", "settings_of"]
