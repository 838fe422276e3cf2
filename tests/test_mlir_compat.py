"""irflow's generic IR form is MLIR: `mlir-opt-19 --allow-unregistered-dialect` parses and
verifies it, and its output parses back into the same module — for every zoo model at every
stage (nn, after `default`, `int8`, `w4a8`, `int8-sparse`, and lowered to `accel`).
Optional: skipped when the binary is absent (Debian's `mlir-19-tools`; `.ci/run` installs
it when apt is available)."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest
from xdsl.dialects.builtin import ModuleOp

from irflow import zoo
from irflow.frontends.dsl import compile_source
from irflow.io import parse_mlir, print_module
from irflow.pipeline import run_pipeline

MLIR_OPT = shutil.which("mlir-opt-19") or shutil.which("mlir-opt")
pytestmark = [pytest.mark.skipif(MLIR_OPT is None, reason="mlir-opt-19 is not installed"),
              pytest.mark.filterwarnings("ignore::UserWarning")]  # prune's "left dense" notes
FILECHECK = Path(__file__).parent / "filecheck" / "dialects"

# Smaller inputs than the zoo's (the IR has the same ops; only the shapes shrink), so the
# calibration and lowering of every stage stay fast.
SMALL_INPUT = {"resnet18": ("1, 3, 224, 224", "1, 3, 32, 32"),
               "mobilenetv2": ("1, 3, 224, 224", "1, 3, 32, 32"),
               "transformer_encoder": ("1, 128, 256", "1, 16, 256")}
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
    if name in SMALL_INPUT:
        big, small = SMALL_INPUT[name]
        assert big in source, f"{name}: the zoo's input shape changed; update SMALL_INPUT"
        source = source.replace(big, small, 1)
    return source


def stage(name: str, stage_name: str) -> ModuleOp:
    module = compile_source(_small_zoo(name), f"{name}.irf", seed=0)
    pipeline, _, lowered = stage_name.partition("+")
    if pipeline != "nn":
        run_pipeline(module, pipeline)
    if lowered:
        from irflow.backends.sim import lower
        from irflow.backends.sim.machine import load_machine

        module = lower(module, load_machine("default"))
    return module


@pytest.mark.parametrize("stage_name", STAGES)
@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.slow) if n == "mobilenetv2" else n  # ~3-9 s a stage
    for n in zoo.names()])
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
    # nn's table-driven families have their own file
    files = ["ops.mlir", "families.mlir"] if dialect == "nn" else ["ops.mlir"]
    cases = [c for f in files for c in (FILECHECK / dialect / f).read_text().split("// -----")]
    for case in cases:
        module = parse_mlir(case)
        seen |= {op.name for op in module.walk()}
        assert_round_trips(module)
    ops = NN.operations if dialect == "nn" else (*QUANT.operations, *IRQ.operations)
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
