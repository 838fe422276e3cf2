"""Evaluate one point: compile -> simulate -> accuracy. This runs inside a Dask worker.

    >>> row = evaluate_point(space, {"w_bits.conv1": 4, "a_bits.conv1": 8, ...})
    >>> row["cycles"], row["accuracy"], row["pipeline"]

Steps, for a point:
1. the float model (the family template filled with the point's `arch.*` values), its
   data set and float outputs — loaded once per worker process and per architecture
   (`model_context`, cached), never per point;
2. a fresh copy compiled with the point's pipeline text (`recipe.pipeline_text`),
   calibrated on the data set's calibration batches. The float part of the pipeline
   (prune, default, calibrate) is run once per worker for all the points that share it
   (`_float_part`, cached) and only the `quantize` step per point: the same passes on the
   same input, so the same result as running the whole text;
3. with a `[finetune]` section, a short fine-tune of the compressed float model before
   `calibrate` and `quantize` (`irflow.search.finetune`: the training loop, prune masks
   kept, QAT for uniformly quantized points); the row's `finetune` says what ran;
4. the simulator on one input batch, on the point's machine: cycles, latency, energy,
   DRAM bytes, per-layer cycles; model bytes from `irflow.analysis.model_bytes`. The
   simulator is exact (numerics, exact cache, cost model), so every point is simulated
   in full — there is no cheaper estimate to confirm later;
5. the reference executor over the evaluation batches (the first batch's outputs are the
   simulator's, which equal the reference executor's: tests/test_sim_quant.py): accuracy
   (digits labels) and the SQNR of the outputs against the float model's,
   10·log10(Σf² / Σ(f − q)²).

A point whose pipeline fails (an `IrflowError`, e.g. a prune the model cannot take) comes
back as a row with `status = "error"` and the message, so one bad point does not stop a
search.
"""

from __future__ import annotations

import functools
import math
import os
import socket
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from irflow.diagnostics import IrflowError
from irflow.search.data import Dataset, load_dataset
from irflow.search.recipe import (
    load_float_model,
    machine_of,
    machine_toml,
    pipeline_parts,
    pipeline_text,
)
from irflow.search.space import Space, knob_values


@dataclass
class _Context:
    module: ModuleOp  # float, as loaded (prune runs before `default`)
    data: Dataset
    float_outputs: np.ndarray
    float_accuracy: float


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    ref = ref.astype(np.float64)
    noise = float(((ref - got) ** 2).sum())
    return math.inf if noise == 0 else float(10 * np.log10(float((ref**2).sum()) / noise))


def run_outputs(module: ModuleOp, data: Dataset,
                first: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Every evaluation batch through the reference executor (`first`: the first batch's
    outputs, already computed); outputs flattened per sample, concatenated."""
    from irflow.backends.reference import compile_function

    program = compile_function(module)
    outs = []
    for i, x in enumerate(data.evaluation):
        result = first if (i == 0 and first is not None) else program.run({data.input: x})
        outs.append(np.concatenate([np.asarray(v, np.float64).reshape(len(x), -1)
                                    for v in result.values()], axis=1))
    return np.concatenate(outs)


def _accuracy(outputs: np.ndarray, labels: np.ndarray | None) -> float:
    if labels is None:
        return math.nan
    return float(100.0 * (outputs[:, :10].argmax(1) == labels).mean())


@functools.lru_cache(maxsize=8)
def model_context(space: Space, arch: tuple[tuple[str, Any], ...]) -> _Context:
    module = load_float_model(space.source, space.input_shape, space.weights, dict(arch))
    data = load_dataset(module, space.data_kind, space.calibration, space.evaluation,
                        space.data_seed)
    from irflow.compare import fresh_copy
    from irflow.pipeline import run_pipeline

    ref = fresh_copy(module)
    run_pipeline(ref, "default")
    outputs = run_outputs(ref, data)
    return _Context(module, data, outputs, _accuracy(outputs, data.labels))


@functools.lru_cache(maxsize=4)
def _float_part(space: Space, arch: tuple[tuple[str, Any], ...], steps: str) -> ModuleOp:
    """The model after the float part of a pipeline (prune, default, calibrate)."""
    from irflow.compare import fresh_copy
    from irflow.passes.calibrate import set_calibration_data
    from irflow.pipeline import run_pipeline

    ctx = model_context(space, arch)
    module = fresh_copy(ctx.module)
    set_calibration_data(module, ctx.data.calibration)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # prune's explained skips: the figures tell
        run_pipeline(module, steps)
    return module


def evaluate_point(space: Space, point: dict[str, Any]) -> dict[str, Any]:
    """The figures of one point, as one results-table row (see module docstring)."""
    start = time.perf_counter()
    row: dict[str, Any] = {"pipeline": pipeline_text(space, point),
                           "machine": machine_toml(space, point),
                           "worker": f"{socket.gethostname()}:{os.getpid()}"}
    try:
        row.update(_measure(space, point, row["machine"]))
        row["status"] = "ok"
    except IrflowError as e:
        row.update(status="error", error=str(e))
    row["seconds"] = time.perf_counter() - start
    return row


def _measure(space: Space, point: dict[str, Any], mtext: str) -> dict[str, Any]:
    from irflow.analysis import model_bytes
    from irflow.backends.sim import simulate
    from irflow.compare import fresh_copy
    from irflow.pipeline import run_pipeline

    arch = tuple(sorted(knob_values(point, "arch").items()))
    ctx = model_context(space, arch)
    machine = machine_of(space.machine_base, mtext)
    float_steps, quantize = pipeline_parts(space, point)
    tuned = ""
    if space.finetune is None:
        module = fresh_copy(_float_part(space, arch, float_steps))
    else:
        module, tuned = _finetuned(space, point, arch, float_steps, ctx)
    if quantize:
        run_pipeline(module, quantize)
    sim = simulate(module, {ctx.data.input: ctx.data.evaluation[0]}, machine=machine)
    t = sim.report.total
    layer_cycles: dict[str, int] = {}
    for s in sim.report.layers:
        layer_cycles[s.name] = layer_cycles.get(s.name, 0) + s.cycles
    outputs = run_outputs(module, ctx.data, sim.outputs)
    accuracy = _accuracy(outputs, ctx.data.labels)
    return {
        "cycles": float(t.cycles), "latency_ms": float(t.latency_ms),
        "energy_pj": float(t.energy.total_pj),
        "dram_bytes": float(t.dram_bytes_read + t.dram_bytes_written),
        "model_bytes": float(model_bytes(module, machine)),
        "accuracy": accuracy, "sqnr_db": sqnr_db(ctx.float_outputs, outputs),
        "float_accuracy": ctx.float_accuracy,
        "accuracy_drop": ctx.float_accuracy - accuracy,
        "layer_cycles": layer_cycles, "finetune": tuned,
    }


def _finetuned(space: Space, point: dict[str, Any], arch: tuple[tuple[str, Any], ...],
               float_steps: str, ctx: _Context) -> tuple[ModuleOp, str]:
    """The float part of the pipeline with a fine-tune before `calibrate` (see
    `irflow.search.finetune`), and what the row's `finetune` column says."""
    from irflow.compare import fresh_copy
    from irflow.passes.calibrate import set_calibration_data
    from irflow.pipeline import run_pipeline
    from irflow.search.finetune import finetune, uniform_bits
    from irflow.search.space import unit_settings

    assert space.finetune is not None
    steps = float_steps.split(",")
    calibrate = [s for s in steps if s.startswith("calibrate")]
    prune_default = ",".join(s for s in steps if not s.startswith("calibrate"))
    per_layer = {n: (u.w_bits, u.a_bits) for u in unit_settings(space, point)
                 for n in u.layers}
    qat = uniform_bits(per_layer) if calibrate else None
    module = finetune(fresh_copy(_float_part(space, arch, prune_default)), space.finetune,
                      space.seed, ctx.data.calibration, qat)
    if calibrate:
        set_calibration_data(module, ctx.data.calibration)
        run_pipeline(module, calibrate[0])
    return module, space.finetune.describe(f"w{qat[0]}a{qat[1]}" if qat else "")


__all__ = ["evaluate_point", "model_context", "sqnr_db", "run_outputs"]
