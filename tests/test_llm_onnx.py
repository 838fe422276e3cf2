"""The decoder ops through ONNX opset 23: export runs in onnxruntime with the reference's
numbers; import of what irflow exports (and of position_ids) gives the same IR; the
forms irflow does not support are one clear error."""

from __future__ import annotations

import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import numpy as np  # noqa: E402
from onnx import helper  # noqa: E402
from onnx_helpers import assert_close, ort_run  # noqa: E402

from irflow import zoo  # noqa: E402
from irflow.backends.reference import run  # noqa: E402
from irflow.exporters.onnx import ExportError, export_onnx  # noqa: E402
from irflow.frontends.onnx import UnsupportedOperatorError, import_onnx  # noqa: E402
from irflow.io import print_module  # noqa: E402


def _feeds(module) -> dict[str, np.ndarray]:  # noqa: ANN001
    from irflow.graph import input_names, main_func

    rng = np.random.default_rng(5)
    fn = main_func(module)
    return {n: (rng.integers(0, 16384, a.type.get_shape()) if "i64" in str(a.type)
                else rng.standard_normal(a.type.get_shape()).astype(np.float32))
            for n, a in zip(input_names(fn), fn.body.blocks[0].args)}


@pytest.mark.parametrize("entry,kw", [("prefill", {"seq": 5}), ("decode", {"cache": 4})])
def test_decoder_exports_to_opset_23_and_imports_back(entry: str, kw: dict) -> None:
    module = zoo.load("decoder-15m", entry=entry, **kw)
    model = export_onnx(module, opset=23)
    onnx.checker.check_model(model, full_check=True)
    ops = {n.op_type for n in model.graph.node}
    assert {"RMSNormalization", "RotaryEmbedding", "Attention"} <= ops
    feeds = _feeds(module)
    ours = run(module, feeds)
    for (name, value), ref in zip(ours.items(), ort_run(model, feeds)):
        assert_close(value, ref, rtol=1e-4, what=name)
    once = import_onnx(model)
    assert print_module(import_onnx(export_onnx(once, opset=23))) == print_module(once)
    again = run(once, feeds)
    for name, value in ours.items():
        np.testing.assert_allclose(again[name], value, rtol=1e-5, atol=1e-5, err_msg=name)


def test_causal_attention_with_fewer_queries_exports_an_end_aligned_mask() -> None:
    from irflow.dialects import nn
    from irflow.graph import GraphBuilder

    g = GraphBuilder()
    q, k, v = g.input("q", [1, 4, 3, 8]), g.input("k", [1, 2, 7, 8]), g.input("v", [1, 2, 7, 8])
    y = g.add(nn.AttentionOp.make([q, k, v], {"causal": nn.i64_attr(1)}))
    module = g.finish([y.results[0]], ["y"])
    model = export_onnx(module, opset=23)
    feeds = _feeds(module)
    assert_close(run(module, feeds)["y"], ort_run(model, feeds)[0], rtol=1e-5)
    assert "causal = 1" in print_module(import_onnx(model))
    with pytest.raises(ExportError, match="nn.attention needs opset >= 23"):
        export_onnx(module, opset=21)


def _single(op_type: str, inputs: list, outputs: list, inits: list = (), **attrs):  # noqa: ANN202
    node = helper.make_node(op_type, [i.name for i in inputs] + [t.name for t in inits],
                            [o.name for o in outputs], **attrs)
    graph = helper.make_graph([node], "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    model.ir_version = 10  # what opset 23 needs, and onnxruntime reads
    return model


def _vi(name: str, shape: list[int]):  # noqa: ANN202
    return helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape)


def test_rotary_with_position_ids_imports_as_gathered_tables() -> None:
    rng = np.random.default_rng(0)
    cos, sin = rng.standard_normal((2, 16, 4)).astype(np.float32)
    pos = np.array([[3, 4, 5]], np.int64)
    inits = [onnx.numpy_helper.from_array(a, n) for a, n in ((cos, "cos"), (sin, "sin"),
                                                               (pos, "pos"))]
    model = _single("RotaryEmbedding", [_vi("x", [1, 2, 3, 8])], [_vi("y", [1, 2, 3, 8])],
                    inits)
    module = import_onnx(model)
    x = rng.standard_normal((1, 2, 3, 8)).astype(np.float32)
    assert_close(run(module, {"x": x})["y"], ort_run(model, {"x": x})[0], rtol=1e-5)


def test_attention_forms_nn_attention_lacks_import_as_the_function_body() -> None:
    """ONNX's upper-left causal mask with fewer queries than keys, softcap and the QK
    output (irflow/frontends/onnx_attention.py), checked against onnxruntime."""
    model = _single("Attention", [_vi("q", [1, 2, 3, 4]), _vi("k", [1, 2, 5, 4]),
                                  _vi("v", [1, 2, 5, 4])], [_vi("y", [1, 2, 3, 4])],
                    is_causal=1, softcap=2.0)
    module = import_onnx(model)
    assert "nn.attention" not in print_module(module)
    rng = np.random.default_rng(1)
    feeds = {n: rng.standard_normal(s).astype(np.float32)
             for n, s in (("q", (1, 2, 3, 4)), ("k", (1, 2, 5, 4)), ("v", (1, 2, 5, 4)))}
    assert_close(run(module, feeds)["y"], ort_run(model, feeds)[0], rtol=1e-5)


def test_unsupported_attention_forms_are_one_line() -> None:
    model = _single("Attention", [_vi("q", [1, 2, 3, 4]), _vi("k", [1, 2, 5, 4]),
                                  _vi("v", [1, 2, 5, 4])], [_vi("y", [1, 2, 3, 4])],
                    is_causal=1)
    model.graph.node[0].attribute.append(helper.make_attribute("left_window_size", 2))
    model.opset_import[0].version = 25
    with pytest.raises(UnsupportedOperatorError, match="sliding windows"):
        import_onnx(model)
