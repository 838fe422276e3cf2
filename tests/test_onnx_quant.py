"""ONNX's quantized operators imported into the `quant` dialect (irflow/frontends/onnx_quant.py):
QOperator models (QLinearConv, QLinearMatMul between QuantizeLinear and DequantizeLinear)
match onnxruntime within one quantization step and simulate bit for bit like the
reference executor; integer values crossing the graph boundary are `quant.scast`s."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import helper  # noqa: E402
from onnx_helpers import model, ort_run  # noqa: E402

from irflow.backends.reference import run  # noqa: E402
from irflow.backends.sim import simulate  # noqa: E402
from irflow.frontends.onnx import import_onnx  # noqa: E402
from irflow.io import print_module  # noqa: E402

RNG = np.random.default_rng(3)
S_X, Z_X, S_Y, Z_Y = np.float32(0.02), np.uint8(128), np.float32(0.05), np.uint8(120)


def _qlinear_conv_model() -> tuple[object, dict[str, np.ndarray]]:
    x = RNG.uniform(-2, 2, (1, 3, 8, 8)).astype(np.float32)
    w = RNG.integers(-100, 100, (4, 3, 3, 3)).astype(np.int8)
    s_w = np.asarray([0.01, 0.02, 0.015, 0.03], np.float32)  # per output channel
    b = RNG.integers(-500, 500, 4).astype(np.int32)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s_x", "z_x"], ["xq"], name="q"),
        helper.make_node("QLinearConv", ["xq", "s_x", "z_x", "w", "s_w", "z_w", "s_y", "z_y",
                                         "b"], ["yq"], name="qconv", pads=[1, 1, 1, 1]),
        helper.make_node("DequantizeLinear", ["yq", "s_y", "z_y"], ["y"], name="dq"),
    ]
    inits = {"s_x": S_X, "z_x": Z_X, "w": w, "s_w": s_w, "z_w": np.zeros(4, np.int8),
             "s_y": S_Y, "z_y": Z_Y, "b": b}
    return model(nodes, {"x": x}, ["y"], inits, opset=13), {"x": x}


def _qlinear_matmul_model() -> tuple[object, dict[str, np.ndarray]]:
    x = RNG.uniform(-2, 2, (4, 16)).astype(np.float32)
    w = RNG.integers(0, 255, (16, 8)).astype(np.uint8)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s_x", "z_x"], ["xq"], name="q"),
        helper.make_node("QLinearMatMul", ["xq", "s_x", "z_x", "w", "s_w", "z_w", "s_y",
                                           "z_y"], ["yq"], name="qmm"),
        helper.make_node("DequantizeLinear", ["yq", "s_y", "z_y"], ["y"], name="dq"),
    ]
    inits = {"s_x": S_X, "z_x": Z_X, "w": w, "s_w": np.float32(0.004), "z_w": np.uint8(127),
             "s_y": np.float32(0.1), "z_y": Z_Y}
    return model(nodes, {"x": x}, ["y"], inits, opset=13), {"x": x}


@pytest.mark.parametrize("build", [_qlinear_conv_model, _qlinear_matmul_model])
def test_qoperator_model_matches_onnxruntime_and_simulates_bit_exactly(build) -> None:  # type: ignore[no-untyped-def]
    m, feeds = build()
    module = import_onnx(m)
    text = print_module(module)
    assert "quant.scast" not in text  # Q -> QLinear* -> DQ stays quantized end to end
    assert "quant.qcast" in text and "quant.dcast" in text
    (ours,) = run(module, feeds).values()
    (theirs,) = ort_run(m, feeds)
    step = float(S_Y) if "qconv" in text else 0.1
    assert np.max(np.abs(ours - theirs)) <= step * 1.001  # onnxruntime rounds in float
    (simulated,) = simulate(module, feeds, machine="default").outputs.values()
    np.testing.assert_array_equal(simulated, ours)


def test_integer_graph_inputs_and_outputs_are_storage_casts() -> None:
    """An ONNX uint8 input read as a quantized type, and the quantized result given back
    as its integers (the backend node tests' shape)."""
    a = RNG.integers(0, 255, (2, 3)).astype(np.uint8)
    b = RNG.integers(0, 255, (3, 2)).astype(np.uint8)
    node = helper.make_node("MatMulInteger", ["a", "b", "za", "zb"], ["y"], name="mmi")
    m = model([node], {"a": a, "b": b}, ["y"],
              {"za": np.uint8(12), "zb": np.uint8(200)}, opset=13)
    module = import_onnx(m)
    assert print_module(module).count("quant.scast") == 3
    (ours,) = run(module, {"a": a, "b": b}).values()
    expected = (a.astype(np.int32) - 12) @ (b.astype(np.int32) - 200)
    assert ours.dtype == np.int32
    np.testing.assert_array_equal(ours, expected)
    # a storage cast is a vector-unit layer (dialects/accel_vector.py): bit for bit
    sim = simulate(module, {"a": a, "b": b}, machine="default")
    assert "quant.scast" in {t.op for t in sim.traces}
    np.testing.assert_array_equal(next(iter(sim.outputs.values())), expected)
