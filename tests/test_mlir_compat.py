"""irflow's generic IR form is MLIR: `mlir-opt-19 --allow-unregistered-dialect` parses and
verifies it, and its output parses back into the same module. Optional: skipped when the
binary is absent (Debian's `mlir-19-tools`; `.ci/run` installs it when apt is available)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from irflow import zoo
from irflow.io import parse_mlir, print_module

MLIR_OPT = shutil.which("mlir-opt-19") or shutil.which("mlir-opt")
pytestmark = pytest.mark.skipif(MLIR_OPT is None, reason="mlir-opt-19 is not installed")


def mlir_opt(text: str) -> str:
    assert MLIR_OPT is not None
    proc = subprocess.run(
        [MLIR_OPT, "--allow-unregistered-dialect", "--mlir-print-op-generic", "-"],
        input=text, capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("name", ["digits_cnn", "lenet5", "mobilenetv2", "transformer_encoder"])
def test_zoo_generic_form_round_trips_through_mlir_opt(name: str) -> None:
    module = zoo.load(name)
    back = parse_mlir(mlir_opt(print_module(module, generic=True)))
    assert back.is_structurally_equivalent(parse_mlir(print_module(module, generic=True)))


def test_every_nn_op_passes_mlir_opt() -> None:
    from pathlib import Path

    from irflow.dialects.nn import NN

    folder = Path(__file__).parent / "filecheck" / "dialects" / "nn"
    cases = [c for name in ("ops.mlir", "families.mlir")
             for c in (folder / name).read_text().split("// -----")]
    seen: set[str] = set()
    for case in cases:
        module = parse_mlir(case)
        seen |= {op.name for op in module.walk()}
        back = parse_mlir(mlir_opt(print_module(module, generic=True)))
        assert back.is_structurally_equivalent(module)
    missing = {op.name for op in NN.operations} - seen
    assert not missing, f"ops.mlir and families.mlir do not exercise {sorted(missing)}"
