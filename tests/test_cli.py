"""The `irflow` command line: each subcommand on small inputs, and bad input giving one
clear line, a non-zero exit, no traceback and no half-written output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from datasets import DIGITS, reference

from irflow.cli import main

SMALL = "digits_cnn"  # the zoo's 1x1x8x8 CNN: fast everywhere


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_zoo_lists_models(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "zoo")
    assert code == 0
    for name in ("lenet5", "resnet18", "mobilenetv2", SMALL):
        assert name in out
    assert "(default)" in out


def test_opt_prints_ir_and_writes_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run_cli(capsys, "opt", SMALL, "-p", "default")
    assert code == 0
    assert "func.func @main" in out and "nn.conv2d" in out
    target = tmp_path / "m.mlir"
    code, _, _ = run_cli(capsys, "opt", SMALL, "-o", str(target))
    assert code == 0 and target.exists() and target.with_suffix(".npz").exists()
    # the written file loads back and optimizes again
    code, out2, _ = run_cli(capsys, "opt", str(target))
    assert code == 0 and "nn.conv2d" in out2


def test_opt_generic_and_print_after_all(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "opt", SMALL, "--generic", "-p", "fuse-activation,cse",
                             "--print-ir-after-all", "--timing")
    assert code == 0
    assert '"nn.conv2d"' in out
    assert "fuse-activation" in err and "cse" in err


def test_opt_dump_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, _ = run_cli(capsys, "opt", SMALL, "-p", "fold-batchnorm,fuse-activation",
                         "--dump-dir", str(tmp_path / "dumps"))
    assert code == 0
    names = sorted(p.name for p in (tmp_path / "dumps").glob("*.mlir"))
    assert len(names) == 3, names
    assert "fuse-activation" in names[-1]


def test_run_reference_saves_outputs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    x = np.random.default_rng(1).random((1, 1, 8, 8), dtype=np.float32)
    from irflow import zoo
    from irflow.backends.reference import run
    from irflow.graph import input_names, main_func

    module = zoo.load(SMALL)
    name = input_names(main_func(module))[0]
    np.savez(tmp_path / "in.npz", **{name: x})
    code, out, _ = run_cli(capsys, "run", SMALL, "--backend", "reference", "-p", "",
                           "--inputs", str(tmp_path / "in.npz"),
                           "--outputs", str(tmp_path / "out.npz"))
    assert code == 0
    assert "nn.conv2d" in out and "MACs" in out
    expected = run(zoo.load(SMALL), {name: x})
    with np.load(tmp_path / "out.npz") as got:
        assert set(got.files) == set(expected)
        for key, value in expected.items():
            np.testing.assert_array_equal(got[key], value)


def test_show_dot(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "show", SMALL)
    assert code == 0
    assert out.startswith("digraph") and "conv2d" in out and "1x16x8x8" in out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["run", "resnet81", "--backend", "reference"], "did you mean 'resnet18'"),
        (["opt", "nope.mlir"], "nope.mlir: no such file"),
        (["opt", "model.xyz"], "unknown model format '.xyz'"),
        (["opt", SMALL, "-p", "fold-batchnrom"], "did you mean"),
        (["run", SMALL, "--backend", "reference", "--inputs", "missing.npz"], "missing.npz"),
        (["opt", "x.onnx", "--input-shape", "input"], "--input-shape expects NAME="),
        (["opt", "lenet5", "--input-shape", "y=1x1x32x32"], "zoo model 'lenet5' has no input 'y'"),
    ],
)
def test_bad_input_is_one_clear_line(capsys: pytest.CaptureFixture[str], argv: list[str],
                                     fragment: str) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert code == 1
    assert fragment in err, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_bad_mlir_reports_file_line_col(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    bad = tmp_path / "bad.mlir"
    bad.write_text(
        "builtin.module {\n"
        "  func.func @main(%x: tensor<1x3xf32>) -> tensor<1x3xf32> {\n"
        "    %y = nn.relux %x : tensor<1x3xf32>\n"
        "    func.return %y : tensor<1x3xf32>\n"
        "  }\n"
        "}\n"
    )
    out_file = tmp_path / "out.mlir"
    code, _, err = run_cli(capsys, "opt", str(bad), "-o", str(out_file))
    assert code == 1
    assert f"{bad}:3:" in err and "nn.relux" in err
    assert not out_file.exists(), "nothing is written when the input is bad"


def test_console_script_exit_status_and_no_traceback(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("irflow")
    proc = subprocess.run([str(exe), "opt", str(tmp_path / "none.mlir")], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "no such file" in proc.stderr
    proc = subprocess.run([str(exe), "--debug", "opt", str(tmp_path / "none.mlir")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr




def test_run_onnx_model_with_named_inputs(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    ref = reference("digits_cnn_bn")
    np.savez(tmp_path / "in.npz", input=ref["input"][:16])
    code, out, _ = run_cli(capsys, "run", str(DIGITS / "digits_cnn_bn.onnx"), "--backend",
                           "reference", "--input-shape", "input=16x1x8x8",
                           "--inputs", str(tmp_path / "in.npz"),
                           "--outputs", str(tmp_path / "out.npz"))
    assert code == 0
    with np.load(tmp_path / "out.npz") as got:
        assert got.files == ["logits"]
        np.testing.assert_allclose(got["logits"], ref["logits"][:16], atol=1e-5)


def test_input_shape_resizes_a_zoo_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "opt", "digits_cnn", "--input-shape", "input=4x1x8x8")
    assert code == 0
    assert "tensor<4x1x8x8xf32>" in out and "tensor<1x1x8x8xf32>" not in out


def test_export_subcommand_runs_in_onnxruntime(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from irflow import zoo
    from irflow.backends.reference import run

    target = tmp_path / "m.onnx"
    code, _, _ = run_cli(capsys, "export", SMALL, "-o", str(target))
    assert code == 0
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(2).random((1, 1, 8, 8), dtype=np.float32)
    name = session.get_inputs()[0].name
    (got,) = session.run(None, {name: x})
    (expected,) = run(zoo.load(SMALL), {name: x}).values()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_irflow_load_picks_frontend_by_extension(tmp_path: Path) -> None:
    import irflow
    from irflow import zoo

    irflow.save(zoo.load(SMALL), tmp_path / "m.mlir")
    assert "nn.conv2d" in str(irflow.load(tmp_path / "m.mlir"))
    module = irflow.load(DIGITS / "digits_mlp.onnx", input_shapes={"input": [1, 64]})
    assert "nn.linear" in str(module)


def test_pass_warnings_are_one_line_each(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "opt", SMALL, "-p", "prune{mode=channel ratio=0.5}")
    assert code == 0
    lines = err.strip().splitlines()
    assert lines and all(line.startswith("irflow: warning: ") for line in lines), err
    assert "graph output" in err


def test_show_svg_when_graphviz_is_installed(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    import shutil

    target = tmp_path / "g.svg"
    code, _, err = run_cli(capsys, "show", SMALL, "-o", str(target))
    if shutil.which("dot") is None:
        assert code == 1 and "Graphviz" in err and not target.exists()
    else:
        assert code == 0 and "<svg" in target.read_text()
