"""irflow's generic IR form is MLIR: `mlir-opt-19 --allow-unregistered-dialect` parses and
verifies it, and its output parses back into the same module — for every zoo model at every
stage (nn, after `default`, `int8`, `w4a8`, `int8-sparse`, and lowered to `accel`).
Optional: skipped when the binary is absent (Debian's `mlir-19-tools`; `.ci/run` installs
it when apt is available)."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from xdsl.dialects.builtin import ModuleOp

from irflow import zoo
from irflow.compare import fresh_copy
from irflow.frontends.dsl import compile_source
from irflow.io import parse_mlir, print_module
from irflow.pipeline import run_pipeline

MLIR_OPT = shutil.which("mlir-opt-19") or shutil.which("mlir-opt")
pytestmark = [pytest.mark.skipif(MLIR_OPT is None, reason="mlir-opt-19 is not installed"),
              pytest.mark.filterwarnings("ignore::UserWarning")]  # prune's "left dense" notes
FILECHECK = Path(__file__).parent / "filecheck" / "dialects"

# Smaller versions of the big zoo models (same op kinds, smaller shapes; BERT with 2 of its
# 12 layers and a 1,000-token vocabulary), so calibrating and lowering every stage stays
# fast: (regex, replacement) edits of the model source, each of which must apply.
SMALL_INPUT = "1, 3, 224, 224", "1, 3, 32, 32"
SMALLER: dict[str, tuple[tuple[str, str], ...]] = {
    "resnet18": (SMALL_INPUT,), "resnet34": (SMALL_INPUT,), "resnet50": (SMALL_INPUT,),
    "mobilenetv2": (SMALL_INPUT,),
    "transformer_encoder": (("1, 128, 256", "1, 16, 256"),),
    "bert-base": (("i64\\[1, 128\\]", "i64[1, 16]"), ("ends=\\[128\\]", "ends=[16]"),
                  ("num=30522", "num=1000"),
                  ("\\n  encoder\\.layer\\.([2-9]|1[01]) = [^\\n]*", ""),
                  ("= encoder\\.layer\\.11\\n", "= encoder.layer.1\\n")),
}
SLOW = {"mobilenetv2", "resnet34", "resnet50", "bert-base"}  # several seconds a stage
STAGES = ["nn", "default", "int8", "w4a8", "int8-sparse", "default+lower", "int8+lower"]


def mlir_opt(text: str) -> str:
    assert MLIR_OPT is not None
    proc = subprocess.run(
        [MLIR_OPT, "--allow-unregistered-dialect", "--mlir-print-op-generic", "-"],
        input=text, capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout



def assert_round_trips(module: ModuleOp) -> None:
    generic = print_module(module, generic=True)
    back = parse_mlir(mlir_opt(generic))
    assert back.is_structurally_equivalent(parse_mlir(generic))


@functools.cache
def _small_zoo(name: str) -> str:
    source = zoo.source(name)
    for pattern, replacement in SMALLER.get(name, ()):
        source, n = re.subn(pattern, replacement, source)
        assert n, f"{name}: '{pattern}' no longer matches the zoo source; update SMALLER"
    return source


@functools.cache
def _pipeline_stage(name: str, pipeline: str) -> ModuleOp:
    """The model after `pipeline` ("nn": as compiled), computed once per test session."""
    if pipeline == "nn":
        return compile_source(_small_zoo(name), f"{name}.irf", seed=0)
    module = fresh_copy(_pipeline_stage(name, "nn"))
    run_pipeline(module, pipeline)
    return module


def stage(name: str, stage_name: str) -> ModuleOp:
    """`nn`, a named pipeline's result, or `<pipeline>+lower` (that result lowered)."""
    pipeline, _, lowered = stage_name.partition("+")
    module = _pipeline_stage(name, pipeline)
    if lowered:
        from irflow.backends.sim import lower
        from irflow.backends.sim.machine import load_machine

        return lower(module, load_machine("default"))  # a lowered copy
    return module


@pytest.mark.parametrize("stage_name", STAGES)
@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in zoo.names()])
def test_zoo_stage_round_trips_through_mlir_opt(name: str, stage_name: str) -> None:
    module = stage(name, stage_name)
    if stage_name in {"int8", "w4a8", "int8-sparse"}:
        # the quantized stages really use upstream's casts and irflow's requantize
        assert {"quant.qcast", "quant.dcast"} <= {op.name for op in module.walk()}
    assert_round_trips(module)


@pytest.mark.parametrize("dialect", ["nn", "quant"])
def test_every_op_passes_mlir_opt(dialect: str) -> None:
    from irflow.dialects.nn import NN
    from irflow.dialects.quant import IRQ, QUANT

    seen: set[str] = set()
    # nn's table-driven families and n-D spatial ops have their own files
    files = ["ops.mlir", "families.mlir", "spatial.mlir"] if dialect == "nn" else ["ops.mlir"]
    cases = [c for f in files for c in (FILECHECK / dialect / f).read_text().split("// -----")]
    for case in cases:
        module = parse_mlir(case)
        seen |= {op.name for op in module.walk()}
        assert_round_trips(module)
    ops = NN.operations if dialect == "nn" else [  # the ops of dialects/quant.py
        op for op in (*QUANT.operations, *IRQ.operations)
        if op.__module__ == "irflow.dialects.quant"]
    missing = {op.name for op in ops} - seen
    assert not missing, f"{dialect}/ops.mlir does not exercise {sorted(missing)}"


def test_irflow_casts_are_upstream_ops() -> None:
    """mlir-opt verifies quant.qcast with upstream's verifier: an integer result is rejected
    (so the names are upstream's ops, not unregistered ones that anything would pass)."""
    assert MLIR_OPT is not None
    bad = ('"func.func"() <{function_type = (tensor<4xf32>) -> (), sym_name = "f"}> ({\n'
           '^bb0(%x: tensor<4xf32>):\n'
           '  %q = "quant.qcast"(%x) : (tensor<4xf32>) -> tensor<4xi8>\n'
           '  "func.return"() : () -> ()\n}) : () -> ()\n')
    proc = subprocess.run([MLIR_OPT, "--allow-unregistered-dialect", "-"], input=bad,
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "'quant.qcast' op result #0 must be" in proc.stderr
