"""What a compression buys on a machine: one model through several pipelines, side by side.

A *stage* is a named pipeline (`irflow.pipelines.PIPELINES`); a comparison runs each
stage on a fresh copy of the model (module and weight store cloned), simulates it on
the same machine with the same inputs, and tabulates per stage: cycles, latency, DRAM
bytes, cache hit rate, energy (total and by part) and model bytes — each with its ratio
to the first stage (the baseline, normally the fp32 `default`). Accuracy is not part of
it (bench/bench_quant_accuracy.py and bench/bench_prune_accuracy.py measure that).

    >>> from irflow.compare import compare
    >>> module = irflow.zoo.load("lenet5")
    >>> x = np.random.default_rng(0).standard_normal((1, 1, 32, 32), np.float32)
    >>> c = compare(module, ("default", "int8"), {"x": x}, machine="default")
    >>> print(c.table())
    >>> c.ratio("int8", "cycles")       # int8 cycles ÷ fp32 cycles

The stage lists behind `irflow run --pipeline int8` (and `w4a8`, `int8-sparse`) are
`irflow.pipelines.COMPARISONS`. Quantized stages calibrate on the batches given
(`calibration_batches`: an `.npz` as `--calib` takes, else seeded random inputs, which
the comparison says in its `calibration` line).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from irflow.diagnostics import IrflowError, did_you_mean
from irflow.pipelines import COMPARISONS, PIPELINES
from irflow.weights import WeightStore, attach_weights, weights_of

if TYPE_CHECKING:  # the sim backend is imported lazily (the CLI's other commands skip it)
    from irflow.backends.sim import SimResult
    from irflow.backends.sim.machine import Machine
    from irflow.backends.sim.report import SimReport

SCHEMA = "irflow.compare/1"
RANDOM_CALIBRATION_BATCHES = 4  # as many as the `calibrate` pass uses when given no data


# --------------------------------------------------------------------------------------
# Stages


def parse_stages(text: str | Sequence[str]) -> tuple[str, ...]:
    """`"default,int8"` (or a sequence of names) -> the stage names, each checked to be a
    named pipeline; a bad name is an `IrflowError` with a "did you mean"."""
    names = [s.strip() for s in text.split(",")] if isinstance(text, str) else list(text)
    names = [n for n in names if n]
    if not names:
        raise IrflowError("--compare expects comma-separated pipeline names, e.g. "
                          "'default,int8', got nothing")
    for name in names:
        if name not in PIPELINES:
            raise IrflowError(f"unknown stage '{name}'{did_you_mean(name, list(PIPELINES))}; "
                              f"stages are named pipelines: {', '.join(PIPELINES)}")
    if len(set(names)) != len(names):
        raise IrflowError(f"--compare names a stage twice: {', '.join(names)}")
    return tuple(names)


def stages_for(pipeline: str | None) -> tuple[str, ...] | None:
    """The comparison `irflow run --pipeline NAME` shows by default (None: no comparison)."""
    return COMPARISONS.get(pipeline) if pipeline else None


def fresh_copy(module: ModuleOp) -> ModuleOp:
    """A clone of `module` with its own copy of the weight store (arrays copied), so a
    pipeline run on the copy leaves the original, and every other copy, as they were."""
    store = WeightStore({k: np.array(v, copy=True) for k, v in weights_of(module).items()})
    return attach_weights(module.clone(), store)


def calibration_batches(module: ModuleOp, npz: str | None = None, seed: int = 0
                        ) -> tuple[list[dict[str, np.ndarray]], str]:
    """Calibration batches for the quantized stages and a line saying where they came
    from: the `.npz` (as `--calib` takes it), else seeded random inputs."""
    from irflow.passes.calibrate import calibration_from_npz, random_batches

    if npz:
        batches = calibration_from_npz(module, npz)
        return batches, f"{npz} ({len(batches)} batches)"
    batches = random_batches(module, RANDOM_CALIBRATION_BATCHES, seed)
    return batches, (f"{len(batches)} batches of seeded random inputs (seed {seed}): no "
                     "--calib given, so quantized ranges exercise the pipeline, not real data")


# --------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Metric:
    """One row of the comparison: a figure of a stage, how to print it, its JSON key."""

    key: str
    label: str
    value: Callable[[StageResult], float]
    fmt: Callable[[float], str]


def _si(x: float) -> str:
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def _bytes(n: float) -> str:
    for div, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= div:
            return f"{n / div:.3g} {suffix}"
    return f"{n:.0f} B"


def _joules(pj: float) -> str:
    for div, unit in ((1e9, "mJ"), (1e6, "µJ"), (1e3, "nJ")):
        if abs(pj) >= div:
            return f"{pj / div:.3g} {unit}"
    return f"{pj:.3g} pJ"


# The rows, in table order. `dram_bytes` is read + written; energy parts add up to the total.
METRICS: tuple[Metric, ...] = (
    Metric("cycles", "cycles", lambda s: s.report.total.cycles, _si),
    Metric("macs", "MACs", lambda s: s.report.total.macs, _si),
    Metric("latency_ms", "latency", lambda s: s.report.total.latency_ms, lambda x: f"{x:.4g} ms"),
    Metric("dram_bytes", "DRAM bytes",
           lambda s: s.report.total.dram_bytes_read + s.report.total.dram_bytes_written, _bytes),
    Metric("dram_bytes_read", "  read", lambda s: s.report.total.dram_bytes_read, _bytes),
    Metric("dram_bytes_written", "  written", lambda s: s.report.total.dram_bytes_written,
           _bytes),
    Metric("cache_hit_rate", "cache hit rate", lambda s: s.report.total.cache.hit_rate,
           lambda x: f"{100 * x:.1f} %"),
    Metric("energy_pj", "energy", lambda s: s.report.total.energy.total_pj, _joules),
    Metric("energy_mac_pj", "  MAC", lambda s: s.report.total.energy.mac_pj, _joules),
    Metric("energy_vector_pj", "  vector", lambda s: s.report.total.energy.vector_pj, _joules),
    Metric("energy_cache_pj", "  cache", lambda s: s.report.total.energy.cache_pj, _joules),
    Metric("energy_dram_pj", "  DRAM", lambda s: s.report.total.energy.dram_pj, _joules),
    Metric("model_bytes", "model bytes", lambda s: s.model_bytes, _bytes),
)
METRIC_KEYS: tuple[str, ...] = tuple(m.key for m in METRICS)


@dataclass(frozen=True)
class StageResult:
    """One stage: its pipeline, the simulation of its output, and its packed weight bytes."""

    name: str
    pipeline: str  # the named pipeline's steps, comma-joined (one level of expansion)
    result: SimResult
    model_bytes: int  # irflow.analysis.model_bytes of the compiled nn module, on the machine
    pipeline_seconds: float = 0.0
    simulate_seconds: float = 0.0

    @property
    def report(self) -> SimReport:
        return self.result.report

    def figures(self) -> dict[str, float]:
        return {m.key: m.value(self) for m in METRICS}


@dataclass(frozen=True)
class Comparison:
    """Stages of one model on one machine; the first stage is the baseline of every ratio."""

    model: str
    machine: str
    stages: tuple[StageResult, ...]
    calibration: str = ""  # where the quantized stages' calibration data came from
    notes: tuple[str, ...] = field(default=())

    @property
    def baseline(self) -> StageResult:
        return self.stages[0]

    def stage(self, name: str) -> StageResult:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def value(self, stage: str, metric: str) -> float:
        return self.stage(stage).figures()[metric]

    def ratio(self, stage: str, metric: str) -> float:
        """`metric` of `stage` ÷ the baseline's (NaN when the baseline's is 0)."""
        base = self.baseline.figures()[metric]
        return self.value(stage, metric) / base if base else math.nan

    # ------------------------------------------------------------------ text

    def table(self) -> str:
        """Metrics down, stages across; each cell `value (ratio×)` against the baseline."""
        head = [f"irflow compare: {self.model or 'program'} on machine '{self.machine}', "
                f"{len(self.stages)} stages, ratios to '{self.baseline.name}'"]
        head += [f"  {s.name}: {s.pipeline}" for s in self.stages]
        if self.calibration:
            head.append(f"  calibration: {self.calibration}")
        figures = [s.figures() for s in self.stages]
        rows = [["metric", *(s.name for s in self.stages)]]
        for m in METRICS:
            base = figures[0][m.key]
            cells = [m.label, m.fmt(base)]
            for f in figures[1:]:
                ratio = f"{f[m.key] / base:.3f}×" if base else "-"
                cells.append(f"{m.fmt(f[m.key])} ({ratio})")
            rows.append(cells)
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]

        def line(r: list[str]) -> str:
            return "  ".join([r[0].ljust(widths[0])]
                             + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]).rstrip()

        rule = "  ".join("-" * w for w in widths)
        out = [*head, "", line(rows[0]), rule, *(line(r) for r in rows[1:])]
        if self.notes:
            out += ["", "notes:", *(f"  - {n}" for n in self.notes)]
        return "\n".join(out)

    def _repr_html_(self) -> str:
        """A Jupyter cell shows the stages side by side (irflow/notebook.py)."""
        from irflow.notebook import comparison_html

        return comparison_html(self.to_dict())

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        """Schema `irflow.compare/1` (docs/simulator.md, "comparison")."""
        base = self.baseline.figures()
        stages = []
        for s in self.stages:
            f = s.figures()
            stages.append({
                "name": s.name,
                "pipeline": s.pipeline,
                "figures": f,
                "ratio": {k: (f[k] / base[k] if base[k] else None) for k in METRIC_KEYS},
                "seconds": {"pipeline": s.pipeline_seconds, "simulate": s.simulate_seconds},
            })
        return {"schema": SCHEMA, "model": self.model, "machine": self.machine,
                "baseline": self.baseline.name, "calibration": self.calibration,
                "stages": stages, "notes": list(self.notes)}


# --------------------------------------------------------------------------------------
# Running


def pipeline_of(name: str) -> str:
    """A named pipeline's steps, comma-joined (what the table's legend shows)."""
    return ",".join(PIPELINES[name])


def run_stage(module: ModuleOp, name: str, inputs: Mapping[str, np.ndarray], *,
              machine: Machine | str | None, model: str = "",
              calibration: list[dict[str, np.ndarray]] | None = None) -> StageResult:
    """Run named pipeline `name` on `module` (in place) and simulate it on `machine`.

    `calibration` batches are attached for the `calibrate` pass (else it falls back to
    its own seeded random inputs, with a warning)."""
    from irflow.backends.sim import simulate
    from irflow.passes.calibrate import set_calibration_data
    from irflow.pipeline import run_pipeline

    if calibration is not None:
        set_calibration_data(module, calibration)
    start = time.perf_counter()
    run_pipeline(module, name, verify_each=True)
    compiled = time.perf_counter()
    result = simulate(module, inputs, machine=machine, model=model)
    return stage_result(name, module, result, compiled - start, time.perf_counter() - compiled)


def stage_result(name: str, module: ModuleOp, result: SimResult, pipeline_seconds: float = 0.0,
                 simulate_seconds: float = 0.0) -> StageResult:
    """A `StageResult` from a stage that already ran (`module`: its nn-level output)."""
    from irflow.analysis import model_bytes

    return StageResult(name, pipeline_of(name), result,
                       model_bytes(module, result.report.machine),
                       pipeline_seconds, simulate_seconds)


def compare(module: ModuleOp, stages: Sequence[str], inputs: Mapping[str, np.ndarray], *,
            machine: Machine | str | None = None, model: str = "",
            calibration: list[dict[str, np.ndarray]] | None = None,
            calibration_note: str = "", done: Mapping[str, StageResult] | None = None,
            progress: Callable[[str], None] | None = None) -> Comparison:
    """Run every stage on a fresh copy of `module` (left unchanged) and compare them.

    `machine`: a `Machine`, preset name, TOML path or None (default). `calibration`:
    batches for the quantized stages (None: `calibration_batches(module)`, seeded random).
    `done`: stages already run (by name), reused instead of run again. `progress` is
    called with a line before each stage runs. Warnings the stages' passes raise are
    recorded as the comparison's `notes` ("stage: message"), not shown.
    """
    from irflow.backends.sim.machine import Machine, load_machine

    names = parse_stages(stages)
    if not isinstance(machine, Machine):
        machine = load_machine(machine)
    if calibration is None:
        calibration, calibration_note = calibration_batches(module)
    results, notes = [], []
    for i, name in enumerate(names):
        if done and name in done:
            results.append(done[name])
            continue
        if progress is not None:
            progress(f"compare: stage {i + 1}/{len(names)} '{name}' ({pipeline_of(name)})")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UserWarning)
                results.append(run_stage(fresh_copy(module), name, inputs, machine=machine,
                                         model=model, calibration=calibration))
        except IrflowError as e:  # keep its location and class; say which stage it was
            e.message = f"comparison stage '{name}': {e.message}"
            raise
        # pass warnings (e.g. prune's explained skips) become the comparison's notes
        notes += dict.fromkeys(f"{name}: {w.message}" for w in caught)
    quantized = any("calibrate" in _expanded_names(n) for n in names)
    return Comparison(model, machine.name, tuple(results),
                      calibration_note if quantized else "", tuple(notes))


def _expanded_names(name: str) -> list[str]:
    """The pass names a named pipeline expands to."""
    from irflow.pipeline import parse_pipeline

    return [p.name for p in parse_pipeline(name)]


__all__ = ["SCHEMA", "METRICS", "METRIC_KEYS", "Metric", "StageResult", "Comparison",
           "compare", "run_stage", "stage_result", "parse_stages", "stages_for",
           "fresh_copy", "calibration_batches", "pipeline_of"]
