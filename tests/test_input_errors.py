"""Ordinary mistakes in the input get one clear line and exit 1, never an internal error
(exit 70): the cases of issue 16, each as it was reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from irflow.alloc import alloc_limit, check_alloc
from irflow.cli import main
from irflow.diagnostics import IrflowError

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    rc = main(list(argv))
    err = capsys.readouterr().err
    return rc, err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if "warning" not in ln]
    assert len(lines) == 1, err
    assert "internal error" not in lines[0] and "Traceback" not in err
    return lines[0]


def _onnx(path: Path, dims: list[int], nodes: list | None = None) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes or [helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    path.write_bytes(model.SerializeToString())
    return path


def test_dsl_nested_500_deep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "deep.irf"
    src.write_text("model m(x: f32[1, 4]) {\n  y = " + "relu(" * 500 + "x" + ")" * 500
                   + "\n  return y\n}\n")
    rc, err = run(capsys, "opt", str(src))
    assert rc == 1
    assert f"{src}:2:" in one_error_line(err) and "nested more than 256 deep" in err
    chain = tmp_path / "chain.irf"  # deep without brackets: a long operator chain
    chain.write_text("model m(x: f32[1, 4]) {\n  y = " + " + ".join(["x"] * 3000)
                     + "\n  return y\n}\n")
    rc, err = run(capsys, "opt", str(chain))
    assert rc == 1 and "nested too deeply" in one_error_line(err)


def test_dsl_nested_200_deep_still_compiles(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "ok.irf"
    src.write_text("model m(x: f32[1, 4]) {\n  y = " + "relu(" * 200 + "x" + ")" * 200
                   + "\n  return y\n}\n")
    assert run(capsys, "opt", str(src))[0] == 0


@pytest.mark.parametrize("flag", ["--inputs", "--calib", "--weights"])
@pytest.mark.parametrize("payload", [b"garbage", b"PK\x03\x04truncated", b""])
def test_corrupt_npz(flag: str, payload: bytes, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(payload)
    model = str(Path(__file__).parent.parent / "irflow" / "zoo" / "digits_cnn.irf")
    argv = ["run", model, flag, str(bad), "--backend", "reference"]
    if flag == "--calib":
        argv += ["-p", "int8"]
    rc, err = run(capsys, *argv)
    assert rc == 1 and f"{bad}: cannot read" in one_error_line(err)


def test_corrupt_weights_beside_mlir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "opt", "digits_cnn", "-o", str(tmp_path / "m.mlir"))[0] == 0
    (tmp_path / "m.npz").write_bytes(b"PK\x05\x06" + b"\0" * 10)
    rc, err = run(capsys, "opt", str(tmp_path / "m.mlir"))
    assert rc == 1 and "m.npz: cannot read weights" in one_error_line(err)


def test_linear_out_0_is_rejected_by_the_verifier(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "zero.irf"
    src.write_text("model m(x: f32[1, 4]) {\n  y = linear(x, out=0)\n  return y\n}\n")
    for argv in (["opt", str(src)], ["run", str(src)], ["run", str(src), "--backend",
                                                         "reference"]):
        rc, err = run(capsys, *argv)
        line = one_error_line(err)
        assert rc == 1 and f"{src}:2:7" in line and "at least one element" in line


def test_onnx_dims_of_2_to_the_40_are_refused_before_allocating(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = _onnx(tmp_path / "big.onnx", [1, 1 << 40])
    assert run(capsys, "opt", str(big))[0] == 0  # no array is made: the IR is fine
    for backend in ("reference", "sim"):
        rc, err = run(capsys, "run", str(big), "--backend", backend)
        line = one_error_line(err)
        assert rc == 1 and "random input 'x'" in line and "allocation limit" in line
        assert "8,796,093,022,208 bytes" in line


def test_allocation_limit_is_configurable(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    model = str(Path(__file__).parent.parent / "examples" / "tiny_mlp.irf")
    mlir = str(tmp_path / "m.mlir")
    assert run(capsys, "opt", model, "-o", mlir)[0] == 0
    monkeypatch.setenv("IRFLOW_ALLOC_LIMIT", "4K")
    assert alloc_limit() == 4096
    with pytest.raises(IrflowError, match=r"weight 'w': \[2048\] float32 needs 8.0 KiB"):
        check_alloc([2048], np.float32, "weight 'w'")
    # the DSL refuses to initialize a weight (tiny_mlp's fc1 weight: 32 KiB) ...
    rc, err = run(capsys, "opt", model)
    assert rc == 1 and "tiny_mlp.irf:5:9: error: weight 'fc1.weight' of linear" in err
    assert "allocation limit of 4.0 KiB" in one_error_line(err)
    # ... the reference executor a value, before running
    rc, err = run(capsys, "run", mlir, "--backend", "reference", "-p", "")
    assert rc == 1 and "allocation limit of 4.0 KiB" in one_error_line(err)
    assert "'nn.constant': error: weight 'fc1.weight': [128, 64] float32" in err
    monkeypatch.setenv("IRFLOW_ALLOC_LIMIT", "34K")  # fc1 fits, the whole memory not
    rc, err = run(capsys, "run", mlir, "--no-compare")
    assert rc == 1 and "the simulated memory" in one_error_line(err)
    monkeypatch.setenv("IRFLOW_ALLOC_LIMIT", "lots")
    rc, err = run(capsys, "run", model)
    assert rc == 1 and "IRFLOW_ALLOC_LIMIT='lots'" in one_error_line(err)


def test_onnx_tensor_written_by_two_nodes(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = _onnx(tmp_path / "dup.onnx", [1, 4], [
        helper.make_node("Relu", ["x"], ["t"], name="first"),
        helper.make_node("Sigmoid", ["x"], ["t"], name="second"),
        helper.make_node("Relu", ["t"], ["y"], name="third"),
    ])
    rc, err = run(capsys, "opt", str(path))
    assert rc == 1
    assert "tensor 't' is written by two nodes: 'first' (Relu) and 'second' (Sigmoid)" in \
        one_error_line(err)


@pytest.mark.parametrize("dim", [0, -3])
def test_onnx_zero_or_negative_dim_is_not_called_dynamic(
        dim: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = run(capsys, "opt", str(_onnx(tmp_path / "m.onnx", [1, dim])))
    line = one_error_line(err)
    assert rc == 1 and f"input 'x' declares dimension 1 as {dim}" in line
    assert "dynamic" not in line


def test_tile_sizes_with_an_unknown_loop(capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = run(capsys, "opt", "digits_cnn", "-p", 'default,tile{sizes="zz=4"}')
    assert rc == 1 and "sizes names loop(s) ['zz'] that no layer has" in one_error_line(err)
    assert run(capsys, "opt", "digits_cnn", "-p", 'default,tile{sizes="f=4"}')[0] == 0


def test_inputs_of_the_wrong_dtype(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f64, i8 = tmp_path / "f64.npz", tmp_path / "i8.npz"
    np.savez(f64, input=np.zeros((1, 1, 8, 8), np.float64))
    np.savez(i8, input=np.zeros((1, 1, 8, 8), np.int8))
    rc, err = run(capsys, "run", "digits_cnn", "--inputs", str(f64), "--backend", "reference")
    assert rc == 0 and "input 'input' is float64, converted to the model's float32" in err
    for backend in ("reference", "sim"):
        rc, err = run(capsys, "run", "digits_cnn", "--inputs", str(i8), "--backend", backend)
        assert rc == 1
        assert "input 'input' is int8, the model expects float32" in one_error_line(err)
    wrong = tmp_path / "shape.npz"
    np.savez(wrong, input=np.zeros((1, 8, 8), np.float32))
    rc, err = run(capsys, "run", "digits_cnn", "--inputs", str(wrong))
    assert rc == 1 and "has shape [1, 8, 8], the model expects [1, 1, 8, 8]" in err


@pytest.mark.parametrize("backend", ["reference", "sim"])
def test_all_nan_input_to_an_int8_pipeline(backend: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    nan = tmp_path / "nan.npz"
    np.savez(nan, input=np.full((1, 1, 8, 8), np.nan, np.float32))
    rc, err = run(capsys, "run", "digits_cnn", "-p", "int8", "--no-compare", "--inputs",
                  str(nan), "--backend", backend)
    line = one_error_line(err)
    assert rc == 1 and "cannot quantize NaN" in line and "64 of 64 values" in line
    assert "digits_cnn.irf:" in line  # the op at fault
