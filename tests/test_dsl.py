"""The model DSL: what it builds, how weights are named and initialized, language features.

Numerical checks run the compiled module on the reference executor and compare with
numpy written independently from the weight store's arrays.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from datasets import DIGITS, reference
from xdsl.dialects.builtin import FileLineColLoc

import irflow.io
from irflow.backends.reference import run
from irflow.diagnostics import IrflowError
from irflow.dialects import nn
from irflow.frontends.dsl import LAYERS, compile_file, compile_source
from irflow.graph import input_names, main_func, output_names
from irflow.weights import WeightStore, weights_of

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SMALL = """\
# a small CNN
block unit(x, ch, stride=1) {
  conv = conv2d(x, out=ch, kernel=3, stride=stride, pad=1, bias=false)
  bn = batchnorm(conv)
  return relu(bn)
}

model small(image: f32[2, 3, 16, 16]) {
  stem = unit(image, ch=8)
  down = unit(stem, ch=16, stride=2)     # 16x8x8
  pooled = global_avg_pool(down)
  head = linear(flatten(pooled), out=5)
  probs = softmax(head)
  return head, probs
}
"""


def ops_of(module) -> list:
    return list(main_func(module).body.blocks[0].ops)


def rng_inputs(module, seed: int = 0) -> dict[str, np.ndarray]:
    f = main_func(module)
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(a.type.get_shape()).astype(np.float32)
            for n, a in zip(input_names(f), f.body.blocks[0].args)}


def test_small_model_structure_names_and_locations() -> None:
    module = compile_source(SMALL, "small.irf")
    f = main_func(module)
    assert input_names(f) == ["image"]
    assert output_names(f) == ["head", "probs"]
    assert [str(t) for t in f.function_type.outputs.data] == [
        "tensor<2x5xf32>", "tensor<2x5xf32>"]
    store = weights_of(module)
    assert sorted(store) == sorted([
        "stem.conv.weight", "stem.bn.weight", "stem.bn.bias", "stem.bn.running_mean",
        "stem.bn.running_var", "down.conv.weight", "down.bn.weight", "down.bn.bias",
        "down.bn.running_mean", "down.bn.running_var", "head.weight", "head.bias"])
    assert store["down.conv.weight"].shape == (16, 8, 3, 3)
    convs = [op for op in ops_of(module) if isinstance(op, nn.Conv2dOp)]
    assert [str(c.results[0].type) for c in convs] == [
        "tensor<2x8x16x16xf32>", "tensor<2x16x8x8xf32>"]
    # every op (weights included) carries the location of its layer call
    for op in ops_of(module)[:-1]:
        assert isinstance(op.location, FileLineColLoc), op
        assert op.location.filename.data == "small.irf"
    # both convs come from line 3 (inside the block), column 10 (`conv2d(`)
    assert {(c.location.line.data, c.location.column.data) for c in convs} == {(3, 10)}
    head = next(op for op in ops_of(module) if isinstance(op, nn.LinearOp))
    assert (head.location.line.data, head.location.column.data) == (12, 10)
    text = irflow.io.print_module(module, debuginfo=True)
    assert 'loc("small.irf":12:10)' in text


def test_small_model_numerics_match_numpy() -> None:
    module = compile_source(SMALL)
    w = weights_of(module)
    x = rng_inputs(module)["image"]

    def conv(x, wt, stride):
        pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        n, c, h, wd = pad.shape
        f, _, kh, kw = wt.shape
        oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
        out = np.zeros((n, f, oh, ow), np.float64)
        for i in range(kh):
            for j in range(kw):
                patch = pad[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
                out += np.einsum("nchw,fc->nfhw", patch, wt[:, :, i, j])
        return out

    def unit(x, p, stride):
        y = conv(x, w[f"{p}.conv.weight"], stride)
        scale = w[f"{p}.bn.weight"] / np.sqrt(w[f"{p}.bn.running_var"] + 1e-5)
        shift = w[f"{p}.bn.bias"] - w[f"{p}.bn.running_mean"] * scale
        return np.maximum(y * scale[:, None, None] + shift[:, None, None], 0)

    y = unit(unit(x, "stem", 1), "down", 2).mean(axis=(2, 3))
    head = y @ w["head.weight"].T + w["head.bias"]
    probs = np.exp(head - head.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    out = run(module, {"image": x})
    np.testing.assert_allclose(out["head"], head, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["probs"], probs, rtol=1e-4, atol=1e-6)


def test_seeded_weights_are_deterministic_and_depend_on_seed_and_name() -> None:
    a, b, c = (weights_of(compile_source(SMALL, seed=s)) for s in (0, 0, 1))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
        assert not np.array_equal(a[key], c[key]), key
    # a weight depends on its name only: adding a layer elsewhere leaves it unchanged
    bigger = SMALL.replace("  probs = softmax(head)",
                           "  extra = linear(head, out=3)\n  probs = softmax(head)")
    d = weights_of(compile_source(bigger))
    np.testing.assert_array_equal(a["down.conv.weight"], d["down.conv.weight"])
    assert "extra.weight" in d


def test_initializers_follow_torch_defaults() -> None:
    src = ("model m(x: f32[1, 64, 8, 8]) {\n  c = conv2d(x, out=128, kernel=3)\n"
           "  b = batchnorm(c)\n  return b\n}")
    w = weights_of(compile_source(src))
    bound = 1 / math.sqrt(64 * 9)  # kaiming-uniform(a=√5): U(±1/√fan_in)
    for key in ("c.weight", "c.bias"):
        assert w[key].dtype == np.float32
        assert np.abs(w[key]).max() <= bound
        assert np.abs(w[key]).max() > 0.95 * bound
    assert w["c.weight"].std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    # batchnorm: perturbed around identity so that folding is exercised
    assert np.all((w["b.weight"] >= 0.8) & (w["b.weight"] <= 1.2))
    assert np.all((w["b.running_var"] >= 0.8) & (w["b.running_var"] <= 1.2))
    assert np.abs(w["b.running_mean"]).max() <= 0.1 and w["b.running_mean"].std() > 0


def test_weights_from_npz_round_trip(tmp_path: Path) -> None:
    seeded = compile_source(SMALL, seed=3)
    npz = tmp_path / "small.npz"
    weights_of(seeded).save(npz)
    src = tmp_path / "small.irf"
    src.write_text(SMALL)
    loaded = irflow.io.load(src, weights=npz)  # the .irf frontend through irflow.io
    for key, array in weights_of(seeded).items():
        np.testing.assert_array_equal(weights_of(loaded)[key], array)
    x = rng_inputs(seeded)
    np.testing.assert_array_equal(run(seeded, x)["head"], run(loaded, x)["head"])


def test_load_options_a_format_does_not_take_are_irflow_errors(tmp_path: Path) -> None:
    src = tmp_path / "small.irf"
    src.write_text(SMALL)
    with pytest.raises(IrflowError, match=r"input shape \(--input-shape\) applies to .onnx "
                       r"models only, not to .irf"):
        irflow.io.load(src, input_shapes={"image": [2, 3, 16, 16]})
    mlir = tmp_path / "small.mlir"
    irflow.io.save(compile_source(SMALL), mlir)
    with pytest.raises(IrflowError, match=r"weights file \(--weights\) applies to .irf "
                       r"models only, not to .mlir"):
        irflow.io.load(mlir, weights=tmp_path / "small.npz")


def test_weight_store_is_a_mapping_for_missing_names_too() -> None:
    store = WeightStore({"a": np.zeros(2, np.float32)})
    assert store.get("b") is None and store.pop("b", 7) == 7
    with pytest.raises(IrflowError, match="weight 'b' is not in the weight store"):
        store["b"]


def test_a_failed_weights_save_keeps_the_old_file_and_leaves_no_temporary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = weights_of(compile_source(SMALL, seed=3))
    npz = tmp_path / "small.npz"
    store.save(npz)
    before = npz.read_bytes()

    def broken_savez(f, **arrays) -> None:
        f.write(b"half an npz")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        store.save(npz)
    assert npz.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.npz"]


def test_digits_cnn_with_trained_onnx_weights_matches_onnxruntime_logits(
        tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    model = onnx.load(DIGITS / "digits_cnn.onnx")
    npz = tmp_path / "digits.npz"
    np.savez(npz, **{t.name: numpy_helper.to_array(t) for t in model.graph.initializer})
    import irflow.zoo

    module = compile_file(irflow.zoo.source_path("digits_cnn"), weights=npz)
    ref = reference("digits_cnn")
    for i in range(16):
        out = run(module, {"input": ref["input"][i:i + 1]})["logits"]
        np.testing.assert_allclose(out[0], ref["logits"][i], atol=1e-4)


LANGUAGE = """\
block twice(x, n) {
  # a block calling a block, returning two values
  a = scale(x, k=n)
  b = scale(a, k=n * 2)
  return a, b
}

block scale(x, k=1.0) {
  if k == 1 {
    return x
  } elif k > 100 {
    return neg(x)
  } else {
    return mul(x, k)
  }
}

model lang(x: f32[2, 6, 4]) {
  s = shape(x)
  n = s[-1] // 2 + len([1, 2]) - 1         # 4 // 2 + 2 - 1 = 3
  big = max(n, 2) ** 2                      # 9
  p, q = twice(x, n=n)                      # x * 3, x * 18
  parts = split(q, axis=1, parts=3)
  first = parts[0]
  r = reshape(first, shape=[0, -1])         # [2, 8]
  t = transpose(r, perm=[1, 0])
  sl = slice(x, starts=[1], ends=[5], axes=[1], steps=[2])   # rows 1 and 3
  cat = concat(sl, sl, axis=1)
  cl = clip(cat, min=-0.5, max=float(big) / 18)
  m = reduce_mean(p, axes=[1], keepdims=false)
  d = div(sub(2.0, m), 4)
  if rank(x) == 3 and not (n < 3) {
    flag = relu(t)
  }
  return flag, cl, d, p
}
"""


def test_language_features_evaluate_at_compile_time_and_run() -> None:
    module = compile_source(LANGUAGE)
    x = rng_inputs(module)["x"]
    out = run(module, {"x": x})
    q = x * 3 * 6
    first = q[:, 0:2, :]
    np.testing.assert_allclose(out["flag"], np.maximum(first.reshape(2, 8).T, 0), rtol=1e-6)
    sl = x[:, 1:5:2, :]
    np.testing.assert_allclose(out["cl"], np.clip(np.concatenate([sl, sl], 1), -0.5, 0.5))
    np.testing.assert_allclose(out["d"], (2.0 - (x * 3).mean(1)) / 4, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["p"], x * 3, rtol=1e-6)
    assert not any(isinstance(op, nn.NegOp) for op in ops_of(module))


def test_layer_table_covers_every_nn_op() -> None:
    """Compile a program calling every layer; together they produce every nn op."""
    src = """\
model all(x: f32[1, 4, 8, 8], ids: i64[1, 3], seq: f32[1, 6, 16]) {
  c = conv2d(x, out=4, kernel=3, pad=[1, 1], dilation=1, groups=2)
  b = batchnorm(c)
  acts = [relu(b), relu6(b), sigmoid(b), tanh(b), silu(b), hardswish(b), erf(b), exp(b),
          neg(b), gelu(b), gelu(b, approximate="tanh"), hardsigmoid(b, alpha=0.1),
          clip(b, max=1.0), sqrt(relu(b))]
  e = add(sub(acts[0], acts[1]), mul(div(acts[2], 2.0), pow(acts[3], 2)))
  mp = maxpool(e, kernel=2)
  ap = avgpool(e, kernel=3, stride=1, pad=1, count_include_pad=true)
  g = global_avg_pool(concat(mp, slice(ap, starts=[0, 0], ends=[4, 4], axes=[2, 3]), axis=1))
  h = reshape(flatten(g), shape=[1, 8])
  fc = linear(h, out=6)
  emb = embedding(ids, num=10, dim=16)
  pos = parameter(shape=[1, 6, 16], init="zeros")
  ln = layernorm(add(seq, pos))
  att = softmax(matmul(ln, transpose(ln, perm=[0, 2, 1])), axis=-1)
  red = reduce_mean(att, axes=[-1])
  a1, a2 = split(gather(emb, ids, axis=1), axis=2, sizes=[1, 2])
  q4 = reshape(seq, shape=[1, 2, 6, 8])
  rc = rope_table(kind="cos", dim=8, positions=6)
  rs = rope_table(kind="sin", dim=8, positions=6)
  qn = rms_norm(q4)
  llm = sdpa(rotary(qn, rc, rs), q4, q4, causal=true)
  return fc, red, a1, a2, llm
}
"""
    module = compile_source(src)
    produced = {type(op) for op in ops_of(module)}
    from irflow.dialects.nn.fake_quant import FAKE_QUANT_OPS
    from irflow.dialects.nn.gradients import GRADIENT_OPS
    from irflow.dialects.nn.losses import LOSS_OPS

    training = {*GRADIENT_OPS, *LOSS_OPS, *FAKE_QUANT_OPS}  # emitted by irflow.train, not layers
    # The table-driven families have their own every-op program (tests/test_nn_families.py).
    families = {*nn.MATH_OPS.values(), *nn.LOGIC_OPS.values(), *nn.REDUCTION_OPS.values(),
                *nn.INDEXING_OPS.values()}
    # The n-D spatial ops have no DSL layer yet: ONNX reaches them (tests/test_onnx_spatial.py,
    # tests/test_onnx_compose.py and the backend node tests).
    onnx_only = set(nn.SPATIAL_OPS.values())
    every = set(nn.NN.operations) - training - families - onnx_only
    assert every - produced == set(), f"no DSL layer produces {every - produced}"
    assert weights_of(module)["pos"].shape == (1, 6, 16)
    assert not weights_of(module)["pos"].any()
    rng = np.random.default_rng(0)
    out = run(module, {"x": rng.standard_normal((1, 4, 8, 8)).astype(np.float32),
                       "ids": np.array([[1, 2, 0]]),
                       "seq": rng.standard_normal((1, 6, 16)).astype(np.float32)})
    assert out["fc"].shape == (1, 6) and np.isfinite(out["fc"]).all()
    np.testing.assert_allclose(out["red"], np.full((1, 6, 1), 1 / 6), rtol=1e-5)
    assert {s.name for s in LAYERS.values()} == set(LAYERS)


def test_examples_compile() -> None:
    paths = sorted(EXAMPLES.glob("*.irf"))
    assert len(paths) >= 2
    for path in paths:
        module = irflow.io.load(path)
        assert ops_of(module), path
        out = run(module, rng_inputs(module))
        assert all(np.isfinite(v).all() for v in out.values()), path
