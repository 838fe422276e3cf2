"""Low-precision float element types (irflow/lowp.py): bf16 and float8 values import from
ONNX, casts to float8 saturate as ONNX Cast does, and ops on them compute in float32 and
round each result to the declared type."""

from __future__ import annotations

import numpy as np
import pytest

ml_dtypes = pytest.importorskip("ml_dtypes")
pytest.importorskip("onnx")

from onnx import TensorProto, helper  # noqa: E402

from irflow.backends.reference import run  # noqa: E402
from irflow.frontends.onnx import import_onnx  # noqa: E402
from irflow.io import print_module  # noqa: E402


def _model(nodes: list, inputs: list, outputs: list) -> object:
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    return m


def test_cast_to_float8_saturates_unless_told_not_to() -> None:
    x = np.asarray([1e6, -1e6, np.inf, 0.3, np.nan], np.float32)
    for saturate in (1, 0):
        node = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT8E4M3FN,
                                saturate=saturate)
        m = _model([node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT8E4M3FN, [5])])
        module = import_onnx(m)
        assert "f8E4M3FN" in print_module(module)
        (y,) = run(module, {"x": x}).values()
        assert y.dtype == np.dtype(ml_dtypes.float8_e4m3fn)
        got = y.astype(np.float32)
        if saturate:
            np.testing.assert_array_equal(got[:3], [448.0, -448.0, 448.0])
        else:
            assert np.isnan(got[:3]).all()
        assert got[3] == np.float32(0.3).astype(ml_dtypes.float8_e4m3fn).astype(np.float32)


def test_bf16_matmul_rounds_its_float32_result() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4)).astype(ml_dtypes.bfloat16)
    b = rng.standard_normal((4, 2)).astype(ml_dtypes.bfloat16)
    node = helper.make_node("MatMul", ["a", "b"], ["y"])
    m = _model([node], [helper.make_tensor_value_info("a", TensorProto.BFLOAT16, [3, 4]),
                        helper.make_tensor_value_info("b", TensorProto.BFLOAT16, [4, 2])],
               [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [3, 2])])
    (y,) = run(import_onnx(m), {"a": a, "b": b}).values()
    assert y.dtype == np.dtype(ml_dtypes.bfloat16)
    expected = (a.astype(np.float32) @ b.astype(np.float32)).astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(y, expected)
