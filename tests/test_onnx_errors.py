"""Bad ONNX input gets one clear `IrflowError`, never a traceback from onnx or numpy."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("onnx")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import helper  # noqa: E402
from onnx_helpers import model, single  # noqa: E402

import irflow.io  # noqa: E402
from irflow.backends.reference import run  # noqa: E402
from irflow.diagnostics import IrflowError  # noqa: E402
from irflow.frontends.onnx import (  # noqa: E402
    SUPPORTED_OPERATORS,
    OnnxImportError,
    UnsupportedOperatorError,
    import_onnx,
)

X = np.zeros((2, 3), np.float32)


def error_of(source, **kwargs) -> str:
    with pytest.raises(IrflowError) as info:
        import_onnx(source, **kwargs)
    assert isinstance(info.value, OnnxImportError)
    return str(info.value)


def test_unsupported_operator_names_op_node_opset_and_the_supported_list() -> None:
    m = single("GridSample", {"x": X}, opset=16)
    with pytest.raises(UnsupportedOperatorError) as info:
        import_onnx(m)
    msg = str(info.value)
    assert "'GridSample'" in msg and "'the_GridSample'" in msg and "opset 16" in msg
    assert "Supported operators: " + ", ".join(SUPPORTED_OPERATORS) in msg
    assert msg.count("\n") == 0


def test_all_unsupported_nodes_are_counted_in_the_one_message() -> None:
    nodes = [helper.make_node("GridSample", ["x"], ["a"], name="l1"),
             helper.make_node("GridSample", ["a"], ["b"], name="l2"),
             helper.make_node("Det", ["b"], ["y"], name="e")]
    msg = error_of(model(nodes, {"x": X}, ["y"]))
    assert "'l1'" in msg and "2 more unsupported node(s) (Det)" in msg


def test_operator_from_another_domain_is_unsupported() -> None:
    node = helper.make_node("FusedGemm", ["x"], ["y"], name="fg", domain="com.microsoft")
    m = model([node], {"x": X}, ["y"])
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    assert "'FusedGemm' from domain 'com.microsoft'" in error_of(m)


def test_opset_newer_than_onnx_knows() -> None:
    assert "opset 29 is not supported (irflow imports opsets 7-28)" in error_of(
        single("Relu", {"x": X}, opset=29))


def test_opset_below_7_is_converted_or_named() -> None:
    """Opsets 1-6 go through onnx.version_converter; a model it cannot convert is one line
    naming the opset."""
    x = np.arange(6, dtype=np.float32).reshape(2, 3) - 3
    out = run(import_onnx(single("Relu", {"x": x}, opset=6)), x)
    np.testing.assert_array_equal(next(iter(out.values())), np.maximum(x, 0))
    msg = error_of(single("Upsample", {"x": X}, inits={"s": np.ones(2, np.float32)}, opset=6))
    assert "opset 6 is not supported" in msg and "version_converter" in msg
    assert msg.count("\n") == 0


def test_malformed_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf\xff\xff\xff")
    assert "not a valid ONNX model" in error_of(bad)


def test_truncated_file(tmp_path: Path) -> None:
    m = single("Conv", {"x": np.zeros((1, 3, 8, 8), np.float32)},
               {"w": np.ones((64, 3, 3, 3), np.float32)})
    data = m.SerializeToString()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    msg = error_of(cut)
    assert "cut.onnx" in msg


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    assert "not an ONNX model" in error_of(empty)


def test_missing_file(tmp_path: Path) -> None:
    assert "no such file" in error_of(tmp_path / "nope.onnx")


def _external(tmp_path: Path) -> Path:
    w = np.arange(12, dtype=np.float32).reshape(4, 3)
    m = single("MatMul", {"x": np.zeros((2, 4), np.float32)}, {"w": w})
    path = tmp_path / "ext.onnx"
    onnx.save_model(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.weights", size_threshold=0)
    return path


def test_external_data_is_loaded(tmp_path: Path) -> None:
    from irflow.backends.reference import run

    x = np.ones((2, 4), np.float32)
    out = run(import_onnx(_external(tmp_path)), {"x": x})["y0"]
    np.testing.assert_array_equal(out, x @ np.arange(12, dtype=np.float32).reshape(4, 3))


def test_missing_external_data_file(tmp_path: Path) -> None:
    path = _external(tmp_path)
    (tmp_path / "ext.weights").unlink()
    msg = error_of(path)
    assert "'w'" in msg and "'ext.weights'" in msg and "does not exist" in msg


def test_cycle_names_the_nodes_on_it() -> None:
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="A"),
             helper.make_node("Relu", ["a"], ["b"], name="B"),
             helper.make_node("Neg", ["b"], ["y"], name="C")]
    msg = error_of(model(nodes, {"x": X}, ["y"]))
    assert "cycle" in msg and "'A' (Add)" in msg and "'B' (Relu)" in msg and "'C'" not in msg


def test_undefined_input() -> None:
    m = model([helper.make_node("Add", ["x", "ghost"], ["y"], name="add")], {"x": X}, ["y"])
    assert "'add' (Add) reads 'ghost'" in error_of(m)


def test_dynamic_inputs_are_all_named_with_the_flag_to_use() -> None:
    node = helper.make_node("Add", ["a", "b"], ["y"])
    m = model([node], {"a": X, "b": X}, ["y"], dynamic={"a": ["N", 3], "b": ["N", "M"]})
    msg = error_of(m)
    assert "'a' [N, 3] (e.g. --input-shape a=1x3)" in msg
    assert "'b' [N, M] (e.g. --input-shape b=1x1)" in msg


def test_input_shape_for_an_unknown_input_or_a_conflicting_dim() -> None:
    m = model([helper.make_node("Relu", ["x"], ["y"])], {"x": X}, ["y"], dynamic={"x": ["N", 3]})
    assert "inputs: 'x'" in error_of(m, input_shapes={"z": [1, 3]})
    assert "does not match the declared shape [N, 3]" in error_of(m, input_shapes={"x": [1, 4]})


def test_runtime_value_where_a_constant_is_needed() -> None:
    m = single("Reshape", {"x": X, "s": np.int64([3, 2])})
    assert "Reshape shape (input 1, 's') must be a constant" in error_of(m)


def test_training_mode_batchnorm() -> None:
    x = np.zeros((1, 2, 3, 3), np.float32)
    c = np.ones(2, np.float32)
    m = single("BatchNormalization", {"x": x}, {"s": c, "b": c, "m": c, "v": c}, training_mode=1)
    assert "training_mode=1" in error_of(m)


def test_shape_error_names_the_node() -> None:
    m = single("Add", {"a": X, "b": np.zeros((4,), np.float32)})
    msg = error_of(m)
    assert "node #1 'the_Add' (Add)" in msg and "broadcast-compatible" in msg


@pytest.mark.parametrize("axes", [[2], [-3]])
def test_squeeze_axis_out_of_range_is_an_error_not_a_wrapped_axis(axes: list[int]) -> None:
    # (1, 3): axis 2 would wrap to 0, which has size 1 and would silently be squeezed
    m = single("Squeeze", {"x": np.zeros((1, 3), np.float32)}, {"axes": np.int64(axes)})
    assert f"Squeeze axes {axes} are out of range for shape [1, 3]" in error_of(m)


def test_4d_conv_is_rejected_clearly() -> None:
    m = single("Conv", {"x": np.zeros((1, 2, 4, 4, 4, 4), np.float32)},
               {"w": np.zeros((3, 2, 1, 1, 1, 1), np.float32)})
    assert "only 1-, 2- and 3-D Conv" in error_of(m)


def test_irflow_load_picks_the_onnx_frontend(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save_model(model([helper.make_node("Relu", ["x"], ["y"])], {"x": X}, ["y"],
                          dynamic={"x": ["N", 3]}), str(path))
    module = irflow.io.load(path, input_shapes={"x": [5, 3]})
    assert "tensor<5x3xf32>" in irflow.io.print_module(module)
    with pytest.raises(OnnxImportError):
        irflow.io.load(path)
