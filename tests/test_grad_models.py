"""`grad` on whole models: every zoo model's gradient against finite differences (float64,
a small input, random directions); the gradient function as IR (prints, parses back,
verifies); the errors for what cannot be differentiated."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from unittest.mock import patch

import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp, f64

from irflow import zoo
from irflow.diagnostics import IrflowError
from irflow.dialects import nn
from irflow.frontends.dsl import compile_source
from irflow.graph import GraphBuilder, input_names, main_func
from irflow.io import parse_mlir, print_module
from irflow.train.grad import STEP_FUNC, grad, signature
from irflow.train.gradcheck import gradcheck
from irflow.train.losses import MSE, CrossEntropy
from irflow.train.retype import retype
from irflow.train.vjp import NotDifferentiable
from irflow.weights import numpy_dtype
from irflow.zoo import decoder


def _bert_small() -> ModuleOp:
    """bert-base's own DSL source with tiny dimensions (hidden 16, 2 heads, FFN 32, 2
    layers, vocabulary 40, 8 tokens) and one output (the pooler's, which every weight
    reaches): the full model has 110 M weights, too many for float64 finite differences."""
    src = zoo.source("bert-base")
    for old, new in {"30522": "40", "512, 768": "16, 768", "768": "16", "3072": "32",
                     "heads=12": "heads=2", "128": "8",
                     "last_hidden_state = encoder.layer.11\n":
                         "last_hidden_state = encoder.layer.1\n",
                     "return last_hidden_state, pooler_output": "return pooler_output"}.items():
        assert old in src, old
        src = src.replace(old, new)
    src = re.sub(r"  encoder\.layer\.([2-9]|1[01]) = .*\n", "", src)
    return compile_source(src, "bert-small.irf", seed=0)


def _decoder_small() -> ModuleOp:
    """The decoder family's smallest preset (decoder-15m) with tiny dimensions (2 layers,
    hidden 16, 4 heads over 2 KV heads, SwiGLU 24, vocabulary 32), its prefill entry on
    6 tokens, with the logits as the one output (the KV cache outputs dropped)."""
    tiny = replace(decoder.PRESETS["decoder-15m"], layers=2, hidden=16, heads=4, kv_heads=2,
                   intermediate=24, vocab=32)
    with patch.dict(decoder.PRESETS, {"decoder-tiny": tiny}):
        src = decoder.source("decoder-tiny", "prefill", seq=6)
    src, n = re.subn(r"return logits, .*", "return logits", src)
    assert n == 1
    return compile_source(src, "decoder-tiny.irf", seed=0)


# Zoo models too large for float64 finite differences, rebuilt small from their own source.
SMALL: dict[str, Callable[[], ModuleOp]] = {"bert-base": _bert_small,
                                           "decoder-15m": _decoder_small}

# (model, input shape for the check): small spatial sizes keep float64 checks fast. Every
# zoo model has its line here (test_every_zoo_model_is_checked).
ZOO = [
    ("digits_cnn", None),
    ("lenet5", None),
    ("mobilenetv2", [2, 3, 16, 16]),
    pytest.param("resnet18", [1, 3, 16, 16], marks=pytest.mark.slow),
    pytest.param("resnet50", [1, 3, 16, 16], marks=pytest.mark.slow),
    ("transformer_encoder", [2, 8, 256]),
    ("bert-base", None),
    ("decoder-15m", None),
]


def test_every_zoo_model_is_checked() -> None:
    checked = {p.values[0] if hasattr(p, "values") else p[0] for p in ZOO}
    assert set(zoo.names()) <= checked


@pytest.mark.parametrize(("name", "shape"), ZOO)
def test_zoo_model_gradient_matches_finite_differences(name: str, shape: list[int] | None
                                                       ) -> None:
    if name in SMALL:
        module = retype(SMALL[name](), dtype=np.float64)
    else:
        module = zoo.load(name)
        x_name = input_names(main_func(module))[0]
        module = retype(module, batch=2, input_shapes={x_name: shape} if shape else None,
                        dtype=np.float64)
    fn = main_func(module)
    x_name = input_names(fn)[0]
    rng = np.random.default_rng(0)
    arg = fn.body.blocks[0].args[0]
    if numpy_dtype(nn.value_element_type(arg)).kind == "f":
        x = rng.standard_normal(nn.shape_of(arg))
    else:  # token ids (the small models' vocabularies hold at least 16 tokens)
        x = rng.integers(0, 16, nn.shape_of(arg))
    out = nn.shape_of(fn.get_return_op().operands[0])  # type: ignore[union-attr]
    if len(out) == 2:
        loss, targets = CrossEntropy(0.1), {"labels": rng.integers(0, out[1], out[0])}
    else:  # the encoders output hidden states: regress them
        loss, targets = MSE(), {"target": rng.standard_normal(out)}
    report = gradcheck(module, loss, {x_name: x}, targets, directions=2)
    assert report.worst_rel_error < 1e-6, (report.analytic, report.numeric)


def test_gradient_function_is_printed_parsed_and_verified() -> None:
    step = grad(retype(zoo.load("digits_cnn"), batch=4))
    text = print_module(step)
    for piece in ("@train_step", "nn.cross_entropy_grad", "nn.conv2d_weight_grad",
                  "nn.maxpool_grad", 'nn.activation_grad', '"grad:conv1.weight"'):
        assert piece in text
    again = parse_mlir(text)
    assert print_module(again) == text
    sig = signature(step)
    assert sig.inputs == ("input",) and sig.targets == ("labels",)
    assert sig.params == ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                          "fc.weight", "fc.bias")


def test_batchnorm_statistics_are_not_trainable() -> None:
    step = grad(retype(zoo.load("mobilenetv2"), batch=1, input_shapes={"x": [1, 3, 8, 8]}))
    params = signature(step).params
    assert "features.0.1.weight" in params or any(p.endswith(".0.1.weight") for p in params)
    assert not any(p.endswith("running_mean") or p.endswith("running_var") for p in params)


def test_op_without_vjp_on_the_path_is_named() -> None:
    from irflow.dialects import quant

    g = GraphBuilder()
    x = g.input("x", [2, 3])
    w = g.weight("w", np.ones((4, 3), np.float32))
    y = g.add(nn.LinearOp.make([x, w])).results[0]
    qt = quant.UniformQuantizedType.make(8, 0.1, 0)
    from xdsl.dialects.builtin import TensorType

    q = g.add(quant.QuantizeOp(y, TensorType(qt, [2, 4]))).results[0]
    z = g.add(quant.DequantizeOp(q, y.type)).results[0]
    with pytest.raises(NotDifferentiable, match="quant.dcast has no gradient"):
        grad(g.finish([z]), CrossEntropy())


def test_unused_or_unknown_trainable_weight() -> None:
    module = retype(zoo.load("digits_cnn"), batch=2)
    with pytest.raises(IrflowError, match="'nope' is not in the weight store"):
        grad(module, trainable=["nope"])
    assert STEP_FUNC == "train_step"


@pytest.mark.parametrize("short", ["floor", "round", "sign"])
def test_piecewise_constant_math_is_not_differentiable(short: str) -> None:
    g = GraphBuilder()
    x = g.input("x", [2, 3], f64)
    w = g.weight("w", np.ones((3,)), element_type=f64)
    y = g.add(nn.MATH_OPS[short].make([g.add(nn.MulOp.make([x, w])).results[0]])).results[0]
    with pytest.raises(NotDifferentiable, match=f"nn.{short} has no gradient"):
        grad(g.finish([y]), MSE())

