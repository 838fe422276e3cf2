"""irflow IR -> ONNX: checker-valid, onnxruntime agrees with the reference executor.

Bound: max abs error <= 1e-5 x max(1, |ref|) between onnxruntime on the exported model
and `irflow.backends.reference.run` on the IR. Stability: for a module `m` imported
from ONNX, `print(import(export(m))) == print(m)` — the whole printed IR (weight names
included; locations are not printed, so node names are not compared).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import numpy as np  # noqa: E402
from datasets import DIGITS as DATA  # noqa: E402
from datasets import reference  # noqa: E402
from onnx_helpers import assert_close, ort_run  # noqa: E402
from test_onnx_import import CASES  # noqa: E402
from xdsl.dialects.builtin import StringAttr  # noqa: E402

from irflow import zoo  # noqa: E402
from irflow.backends.reference import run  # noqa: E402
from irflow.dialects import nn  # noqa: E402
from irflow.exporters.onnx import ExportError, export_onnx  # noqa: E402
from irflow.frontends.onnx import import_onnx  # noqa: E402
from irflow.graph import GraphBuilder, input_names, main_func  # noqa: E402
from irflow.io import parse_mlir, print_module  # noqa: E402

RNG = np.random.default_rng(1)


def r(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def export_and_compare(module, feeds, opset: int = 17):
    """Export, check, run in onnxruntime and compare with the reference executor."""
    model = export_onnx(module, opset=opset)
    onnx.checker.check_model(model, full_check=True)
    ours = run(module, feeds)
    refs = ort_run(model, feeds)
    assert [o.name for o in model.graph.output] == list(ours)
    for (name, value), ref in zip(ours.items(), refs):
        assert_close(ref, value, what=name)
    return model


def random_feeds(module) -> dict[str, np.ndarray]:
    f = main_func(module)
    feeds = {}
    for name, arg in zip(input_names(f), f.body.blocks[0].args):
        shape = nn.shape_of(arg)
        if "f" in str(arg.type.element_type):
            feeds[name] = r(*shape)
        else:
            feeds[name] = RNG.integers(0, 4, shape).astype(np.int64)
    return feeds


@pytest.mark.parametrize("name", ["digits_mlp", "digits_cnn", "digits_cnn_bn"])
def test_digits_roundtrip(name: str, tmp_path: Path) -> None:
    ref = reference(name)
    module = import_onnx(DATA / f"{name}.onnx", input_shapes={"input": ref["input"].shape})
    path = tmp_path / f"{name}.onnx"
    model = export_onnx(module, path)
    assert path.is_file() and os.listdir(tmp_path) == [path.name]  # no temporary left
    onnx.checker.check_model(str(path), full_check=True)
    logits = ort_run(model, {"input": ref["input"]})[0]
    assert float(np.abs(logits - ref["logits"]).max()) <= 1e-5
    assert_close(logits, run(module, {"input": ref["input"]})["logits"])
    assert print_module(import_onnx(path)) == print_module(module)


@pytest.mark.parametrize("name", list(CASES))
def test_imported_case_exports_and_reimports_identically(name: str) -> None:
    m, feeds = CASES[name]
    module = import_onnx(m)
    opset = max(17, m.opset_import[0].version)
    model = export_and_compare(module, feeds, opset)
    assert print_module(import_onnx(model)) == print_module(module)


def _zoo_names() -> list[str]:
    return zoo.names() if hasattr(zoo, "names") else []


@pytest.mark.slow
@pytest.mark.parametrize("name", _zoo_names())
def test_zoo_model_exports(name: str) -> None:
    module = zoo.load(name, seed=0)
    model = export_and_compare(module, random_feeds(module))
    # Export is a fixpoint after one import (fused acts are separate nodes from then on).
    once = import_onnx(model)
    assert print_module(import_onnx(export_onnx(once))) == print_module(once)


# ---- IR the importer never produces ----------------------------------------------------------


def _linear_module(act: str | None, rank3: bool, bias: bool = True):
    g = GraphBuilder()
    x = g.input("x", [2, 5, 16] if rank3 else [5, 16])
    w = g.weight("fc.weight", r(4, 16))
    b = g.weight("fc.bias", r(4)) if bias else None
    y = g.add(nn.LinearOp.make([x, w, b], {"act": StringAttr(act) if act else None}))
    return g.finish([y.results[0]], ["y"])


@pytest.mark.parametrize("act", sorted(nn.FUSABLE_ACTIVATIONS))
def test_fused_activation_exports_as_a_separate_node(act: str) -> None:
    module = _linear_module(act, rank3=False)
    model = export_and_compare(module, {"x": r(5, 16) * 4})
    assert [n.op_type for n in model.graph.node][0] == "Gemm"
    assert len(model.graph.node) > 1


@pytest.mark.parametrize("bias", [True, False])
def test_linear_on_rank3_input_is_transpose_matmul_add(bias: bool) -> None:
    module = _linear_module("relu", rank3=True, bias=bias)
    model = export_and_compare(module, {"x": r(2, 5, 16)})
    ops = [n.op_type for n in model.graph.node]
    assert ops[:2] == ["Transpose", "MatMul"] and ("Add" in ops) == bias


def _unary_module(op):
    g = GraphBuilder()
    x = g.input("x", [3, 7])
    return g.finish([g.add(op(x)).results[0]], ["y"])


@pytest.mark.parametrize("approx", ["none", "tanh"])
@pytest.mark.parametrize("opset", [17, 20])
def test_gelu_is_native_from_opset_20_and_decomposed_below(approx: str, opset: int) -> None:
    module = _unary_module(lambda x: nn.GeluOp(x, approximate=StringAttr(approx)))
    model = export_and_compare(module, {"x": r(3, 7) * 3}, opset)
    assert ([n.op_type for n in model.graph.node] == ["Gelu"]) == (opset == 20)


def test_silu_clip_hardsigmoid_and_reduce_mean_at_opset_18() -> None:
    g = GraphBuilder()
    x = g.input("x", [3, 7])
    s = g.add(nn.SiluOp(x)).results[0]
    c = g.add(nn.ClipOp(s, max=nn.f64(0.7))).results[0]
    h = g.add(nn.HardSigmoidOp(c, alpha=nn.f64(0.3))).results[0]
    m = g.add(nn.ReduceMeanOp.make([h], {"axes": nn.int_array([1]),
                                         "keepdims": nn.i64_attr(0)})).results[0]
    module = g.finish([m, h], ["mean", "h"])
    for opset in (17, 18):
        export_and_compare(module, {"x": r(3, 7) * 3}, opset)


def test_outputs_that_are_inputs_weights_or_repeated_get_identity_nodes() -> None:
    g = GraphBuilder()
    x = g.input("x", [2, 3])
    w = g.weight("k", r(2, 3))
    y = g.add(nn.AddOp.make([x, w])).results[0]
    module = g.finish([y, x, w, y], ["sum", "same_x", "the_k", "sum_again"])
    model = export_and_compare(module, {"x": r(2, 3)})
    assert sorted(n.op_type for n in model.graph.node) == ["Add", "Identity", "Identity",
                                                           "Identity"]


def test_unsupported_op_names_it() -> None:
    module = parse_mlir(
        "func.func @main(%x: tensor<2xf32>) -> tensor<2xf32> {\n"
        "  %y = arith.addf %x, %x : tensor<2xf32>\n"
        "  func.return %y : tensor<2xf32>\n"
        "}\n"
    )
    with pytest.raises(ExportError, match="cannot export 'arith.addf'"):
        export_onnx(module)


def test_layernorm_below_opset_17_and_opset_out_of_range() -> None:
    g = GraphBuilder()
    x = g.input("x", [2, 8])
    s = g.weight("g", np.ones(8, np.float32))
    module = g.finish([g.add(nn.LayerNormOp.make([x, s])).results[0]], ["y"])
    with pytest.raises(ExportError, match="opset >= 17"):
        export_onnx(module, opset=16)
    with pytest.raises(ExportError, match="opset 27"):
        export_onnx(module, opset=27)


@pytest.mark.parametrize("opset", range(13, 27))
def test_export_at_every_supported_opset(opset: int) -> None:
    """Split, ReduceMean and Clip change form across opsets 13-26; each form checks and runs."""
    g = GraphBuilder()
    x = g.input("x", [2, 3, 6, 6])
    w = g.weight("conv.weight", r(4, 3, 3, 3))
    c = g.add(nn.Conv2dOp(x, w, pads=(1, 1, 1, 1), act="relu6")).results[0]
    a, b = g.add(nn.SplitOp.make([c], {"axis": nn.i64_attr(1),
                                       "sizes": nn.int_array([1, 3])})).results
    m = g.add(nn.ReduceMeanOp.make([b], {"axes": nn.int_array([2, 3])})).results[0]
    y = g.add(nn.MulOp.make([a, m])).results[0]
    module = g.finish([y], ["y"])
    model = export_and_compare(module, {"x": r(2, 3, 6, 6)}, opset)
    assert model.opset_import[0].version == opset
    assert print_module(import_onnx(export_onnx(import_onnx(model)))) == print_module(
        import_onnx(model))
