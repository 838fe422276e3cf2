"""The built-in models: standard parameter and MAC counts, round-trips, locations.

Reference figures (exact integers, MACs = multiply-accumulates of conv/linear/matmul):

| model | params | MACs | source |
|---|---|---|---|
| LeNet-5 (ReLU, avg-pool, 1x32x32) | 61,706 | 416,520 | LeCun 1998 layer table, by hand |
| ResNet-18 (3x224x224) | 11,689,512 | 1,814,073,344 | torchvision card: 11.7 M, 1.81 GFLOPS |
| MobileNetV2 1.0 (3x224x224) | 3,504,872 | 300,774,272 | torchvision: 3.5 M, 0.30 GFLOPS |
| digits CNN (1x8x8) | 9,930 | 309,248 | tests/data/README.md |
| 2-layer encoder (128x256, 4 heads) | 1,579,520 | 218,103,808 | by hand below |
| ResNet-50 v1.5 (3x224x224) | 25,557,032 | 4,089,184,256 | torchvision card: 25.6 M, 4.09 GFLOPS |
| BERT-base (seq 128, + pooler) | 109,482,240 | 11,174,215,680 | HF bert-base-uncased; by hand |
"""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import FileLineColLoc

import irflow.zoo
from irflow.analysis import model_bytes, op_macs, param_count, total_macs
from irflow.backends.reference import run
from irflow.diagnostics import IrflowError
from irflow.graph import input_names, main_func
from irflow.io import parse_mlir, print_module
from irflow.weights import attach_weights, weights_of


def _lenet_figures() -> tuple[int, int]:
    convs = [(1, 6, 5, 28), (6, 16, 5, 10)]  # (in, out, kernel, output size)
    fcs = [(400, 120), (120, 84), (84, 10)]
    params = sum(o * i * k * k + o for i, o, k, _ in convs) + sum(i * o + o for i, o in fcs)
    macs = sum(o * s * s * i * k * k for i, o, k, s in convs) + sum(i * o for i, o in fcs)
    return params, macs


def _encoder_figures() -> tuple[int, int]:
    seq, hidden, heads, ffn, layers = 128, 256, 4, 1024, 2
    params = (4 * (hidden * hidden + hidden)            # q, k, v, out projections
              + hidden * ffn + ffn + ffn * hidden + hidden  # FFN
              + 2 * 2 * hidden)                           # two LayerNorms
    macs = (4 * seq * hidden * hidden                     # projections
            + 2 * heads * seq * seq * (hidden // heads)   # QKᵀ and PV
            + 2 * seq * hidden * ffn)                     # FFN
    return layers * params, layers * macs


def _bert_base_figures() -> tuple[int, int]:
    seq, hidden, heads, ffn, layers, vocab = 128, 768, 12, 3072, 12, 30522
    embeddings = (vocab + 512 + 2) * hidden + 2 * hidden     # word, position, type, LayerNorm
    layer = (4 * (hidden * hidden + hidden) + hidden * ffn + ffn + ffn * hidden + hidden
             + 2 * 2 * hidden)
    pooler = hidden * hidden + hidden
    macs = (4 * seq * hidden * hidden + 2 * heads * seq * seq * (hidden // heads)
            + 2 * seq * hidden * ffn)
    return embeddings + layers * layer + pooler, layers * macs + hidden * hidden


STANDARD = {
    "lenet5": _lenet_figures(),
    "resnet18": (11_689_512, 1_814_073_344),
    "mobilenetv2": (3_504_872, 300_774_272),
    "digits_cnn": (9_930, 309_248),
    "transformer_encoder": _encoder_figures(),
    "resnet50": (25_557_032, 4_089_184_256),
    "bert-base": _bert_base_figures(),
}


def test_names_and_descriptions() -> None:
    assert irflow.zoo.names() == sorted(STANDARD)
    assert irflow.zoo.DEFAULT_MODEL in irflow.zoo.names()
    for name in irflow.zoo.names():
        line = irflow.zoo.describe(name)
        assert line and "\n" not in line and not line.startswith("#")
        assert irflow.zoo.source_path(name).name == f"{name}.irf"


def test_unknown_model_suggests_a_name() -> None:
    with pytest.raises(IrflowError, match="unknown zoo model 'resnet19'; did you mean 'resnet18'"):
        irflow.zoo.load("resnet19")


def test_hand_figures_agree_with_the_literature() -> None:
    assert _lenet_figures() == (61_706, 416_520)
    assert _encoder_figures() == (1_579_520, 218_103_808)
    assert _bert_base_figures() == (109_482_240, 11_174_215_680)


@pytest.fixture(scope="module")
def models() -> dict:
    return {name: irflow.zoo.load(name) for name in irflow.zoo.names()}


@pytest.mark.parametrize("name", sorted(STANDARD))
def test_parameter_and_mac_counts(models: dict, name: str) -> None:
    params, macs = STANDARD[name]
    module = models[name]
    assert param_count(module) == params
    assert total_macs(module) == macs
    # model bytes: every stored array as f32, batchnorm buffers included
    assert model_bytes(module) == 4 * sum(a.size for a in weights_of(module).values())


def test_op_macs_per_layer(models: dict) -> None:
    module = models["resnet18"]
    macs = [op_macs(op) for op in main_func(module).body.blocks[0].ops]
    assert macs[:6].count(0) == 5  # weights and input are free
    assert max(macs) == 64 * 112 * 112 * 3 * 7 * 7  # the stem conv, 118 M MACs
    assert sum(1 for m in macs if m) == 21  # 20 convs + fc


@pytest.mark.parametrize("name", sorted(STANDARD))
def test_round_trip_text_and_outputs(models: dict, name: str) -> None:
    module = models[name]
    text = print_module(module, debuginfo=True)
    again = attach_weights(parse_mlir(text, f"{name}.mlir"), weights_of(module))
    assert print_module(again, debuginfo=True) == text
    assert print_module(again) == print_module(module)
    generic = parse_mlir(print_module(module, generic=True, debuginfo=True), f"{name}.mlir")
    assert print_module(generic, debuginfo=True) == text
    f = main_func(module)
    rng = np.random.default_rng(7)
    inputs = {n: (rng.integers(0, 100, a.type.get_shape()) if "i64" in str(a.type)
                  else rng.standard_normal(a.type.get_shape()).astype(np.float32))
              for n, a in zip(input_names(f), f.body.blocks[0].args)}
    before, after = run(module, inputs), run(again, inputs)
    assert before.keys() == after.keys()
    for key in before:
        assert np.isfinite(before[key]).all()
        np.testing.assert_array_equal(before[key], after[key])


@pytest.mark.parametrize("name", sorted(STANDARD))
def test_every_op_has_a_source_location(models: dict, name: str) -> None:
    ops = list(main_func(models[name]).body.blocks[0].ops)[:-1]  # the return has none
    source = irflow.zoo.source(name).splitlines()
    for op in ops:
        loc = op.location
        assert isinstance(loc, FileLineColLoc) and loc.filename.data == f"{name}.irf", op
        # the location points at a layer call in the source
        line = source[loc.line.data - 1]
        assert line[loc.column.data - 1].isalpha() and "(" in line[loc.column.data - 1:]


def test_resnet18_weight_names_match_torchvision(models: dict) -> None:
    names = set(weights_of(models["resnet18"]))
    # torchvision's state_dict has 122 entries: these 102 plus 20 num_batches_tracked
    assert len(names) == 102
    for key in ("conv1.weight", "bn1.running_var", "layer1.0.conv1.weight",
                "layer2.0.downsample.0.weight", "layer4.1.bn2.bias", "fc.weight", "fc.bias"):
        assert key in names
    assert not any(k.startswith("layer1.0.downsample") for k in names)


def test_mobilenetv2_weight_names_match_torchvision(models: dict) -> None:
    names = set(weights_of(models["mobilenetv2"]))
    for key in ("features.0.0.weight", "features.1.conv.0.0.weight", "features.1.conv.1.weight",
                "features.2.conv.1.0.weight", "features.17.conv.3.running_mean",
                "features.18.1.weight", "classifier.1.bias"):
        assert key in names
    assert len(names) == 262  # torchvision: 314 entries minus 52 num_batches_tracked


def test_seed_changes_weights_not_structure() -> None:
    a, b = irflow.zoo.load("lenet5", seed=0), irflow.zoo.load("lenet5", seed=1)
    assert print_module(a) == print_module(b)
    assert not np.array_equal(weights_of(a)["conv1.weight"], weights_of(b)["conv1.weight"])


def test_model_bytes_counts_packed_storage_bits() -> None:
    from xdsl.dialects.builtin import IntegerType, f16

    from irflow.dialects import nn, quant
    from irflow.graph import GraphBuilder

    g = GraphBuilder()
    x = g.input("x", [1, 6])
    w4 = g.weight("w4", np.zeros((5, 3), np.int8), element_type=IntegerType(4))  # 15 × 4 bits
    wq = g.weight("wq", np.zeros((2, 6), np.int8),
                  element_type=quant.UniformQuantizedType.make(8, 0.1))      # 12 × 8 bits
    wh = g.weight("wh", np.zeros(7, np.float16), element_type=f16)            # 7 × 16 bits
    outs = [g.add(nn.ReluOp(v)).results[0] for v in (w4, wq, wh)]
    module = g.finish([x, *outs])
    assert model_bytes(module) == 8 + 12 + 14  # ceil(60 / 8) = 8
    # every weight feeds an nn op, none as a batchnorm buffer: all are parameters
    assert param_count(module) == 15 + 12 + 7


def test_transformer_encoder_matches_a_numpy_encoder(models: dict) -> None:
    """The DSL encoder is the textbook one: per-head softmax(QKᵀ/√d)V, post-norm, GELU."""
    from math import erf, sqrt

    module = models["transformer_encoder"]
    w = {k: v.astype(np.float64) for k, v in weights_of(module).items()}
    x = np.random.default_rng(3).standard_normal((1, 128, 256))
    gelu = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / sqrt(2))))

    def layernorm(v, p):
        mu, var = v.mean(-1, keepdims=True), v.var(-1, keepdims=True)
        return (v - mu) / np.sqrt(var + 1e-5) * w[f"{p}.weight"] + w[f"{p}.bias"]

    def lin(v, p):
        return v @ w[f"{p}.weight"].T + w[f"{p}.bias"]

    h = x[0]
    for i in range(2):
        p = f"layers.{i}"
        q, k, v = (lin(h, f"{p}.self_attn.{n}").reshape(128, 4, 64).transpose(1, 0, 2)
                   for n in "qkv")
        scores = q @ k.transpose(0, 2, 1) / 8.0
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        attn = (probs @ v).transpose(1, 0, 2).reshape(128, 256)
        h = layernorm(h + lin(attn, f"{p}.self_attn.out_proj"), f"{p}.norm1")
        ffn = lin(gelu(lin(h, f"{p}.linear1")), f"{p}.linear2")
        h = layernorm(h + ffn, f"{p}.norm2")
    out = run(module, {"x": x.astype(np.float32)})["out"]
    np.testing.assert_allclose(out[0], h, atol=2e-4)
