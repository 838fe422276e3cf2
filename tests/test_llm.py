"""Decoder-LLM ops and the decoder family: shapes, reference semantics, prefill/decode
consistency, the simulator against the reference, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.utils.exceptions import VerifyException

from irflow import zoo
from irflow.analysis import param_count, total_macs
from irflow.backends import sim
from irflow.backends.reference import run
from irflow.diagnostics import IrflowError, ParseError
from irflow.dialects import nn
from irflow.frontends.dsl import compile_source
from irflow.graph import GraphBuilder
from irflow.zoo import decoder

RNG = np.random.default_rng(11)


def r(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def one_op(cls: type[nn.NNOp], arrays: list[np.ndarray], **props) -> dict[str, np.ndarray]:
    g = GraphBuilder()
    args = [g.input(f"x{i}", list(a.shape)) for i, a in enumerate(arrays)]
    op = g.add(cls.make(args, props))
    module = g.finish([op.results[0]], ["y"])
    return run(module, {f"x{i}": a for i, a in enumerate(arrays)})["y"]


def numpy_attention(q, k, v, causal):  # noqa: ANN001, ANN201 - float64 textbook version
    b, hq, s, d = q.shape
    t = k.shape[2]
    rep = hq // k.shape[1]
    k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
    scores = q.astype(np.float64) @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
    if causal:
        for i in range(s):
            scores[:, :, i, t - s + i + 1:] = -np.inf
    p = np.exp(scores - scores.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


@pytest.mark.parametrize("s,t,causal", [(5, 5, True), (1, 9, True), (3, 7, True), (4, 6, False)])
def test_grouped_query_attention_matches_numpy(s: int, t: int, causal: bool) -> None:
    q, k, v = r(1, 6, s, 8), r(1, 2, t, 8), r(1, 2, t, 8)
    y = one_op(nn.AttentionOp, [q, k, v], causal=nn.i64_attr(1) if causal else None)
    np.testing.assert_allclose(y, numpy_attention(q, k, v, causal), rtol=1e-5, atol=1e-5)


def test_rotary_is_a_complex_rotation_and_rms_norm_normalizes() -> None:
    x, ang = r(1, 3, 4, 8), RNG.uniform(0, 6, (1, 4, 4))
    y = one_op(nn.RotaryOp, [x, np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)])
    z = (x[..., :4] + 1j * x[..., 4:]) * np.exp(1j * ang)[:, None]
    np.testing.assert_allclose(y, np.concatenate([z.real, z.imag], -1), rtol=1e-5, atol=1e-5)
    x, g = r(2, 5, 16), r(16)
    want = x / np.sqrt((x.astype(np.float64) ** 2).mean(-1, keepdims=True) + 1e-5) * g
    np.testing.assert_allclose(one_op(nn.RMSNormOp, [x, g]), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls,shapes,props,message", [
    (nn.AttentionOp, [(1, 6, 2, 8), (1, 4, 5, 8), (1, 4, 5, 8)], {},
     "query heads (6) a multiple of key/value heads (4)"),
    (nn.AttentionOp, [(1, 4, 6, 8), (1, 2, 5, 8), (1, 2, 5, 8)], {"causal": nn.i64_attr(1)},
     "at most as many queries (6) as keys (5)"),
    (nn.RotaryOp, [(1, 2, 4, 8), (1, 4, 3), (1, 4, 4)], {}, "cos of shape 1x4x4"),
    (nn.RMSNormOp, [(1, 4, 8), (4,)], {}, "scale of shape 8"),
])
def test_shape_errors_name_the_op_and_shapes(cls, shapes, props, message) -> None:  # noqa: ANN001
    g = GraphBuilder()
    args = [g.input(f"x{i}", list(s)) for i, s in enumerate(shapes)]
    with pytest.raises(VerifyException, match=message.replace("(", r"\(").replace(")", r"\)")):
        cls.make(args, props)


def test_presets_match_their_published_shapes() -> None:
    assert decoder.PRESETS["tinyllama-1b"].param_count() == 1_100_048_384  # TinyLlama-1.1B
    module = zoo.load("decoder-15m", entry="prefill", seq=4)
    assert param_count(module) == decoder.PRESETS["decoder-15m"].param_count() == 15_733_632


def _feeds_from(prefill: dict[str, np.ndarray], token: np.ndarray, layers: int) -> dict:
    feeds = {"input_ids": token}
    for i in range(layers):
        feeds[f"past.{i}.key"] = prefill[f"present.{i}.key"]
        feeds[f"past.{i}.value"] = prefill[f"present.{i}.value"]
    return feeds


@pytest.fixture(scope="module")
def decoded() -> dict:
    """Prefill of 6 tokens, prefill of the first 5 + one decode step of the 6th."""
    toks = np.random.default_rng(0).integers(0, 16384, (1, 6))
    full = zoo.load("decoder-15m", entry="prefill", seq=6)
    head = zoo.load("decoder-15m", entry="prefill", seq=5)
    step = zoo.load("decoder-15m", entry="decode", cache=5)
    a, b = run(full, {"input_ids": toks}), run(head, {"input_ids": toks[:, :5]})
    feeds = _feeds_from(b, toks[:, 5:], 6)
    return {"full": (full, a, {"input_ids": toks}), "step": (step, run(step, feeds), feeds)}


def test_decode_continues_the_prefill(decoded: dict) -> None:
    _, a, _ = decoded["full"]
    step, c, _ = decoded["step"]
    np.testing.assert_allclose(c["logits"][0, 0], a["logits"][0, -1], rtol=1e-4, atol=1e-5)
    for i in (0, 5):  # the updated cache is the 6-token prefill's cache
        np.testing.assert_allclose(c[f"present.{i}.key"], a[f"present.{i}.key"], atol=1e-5)
        np.testing.assert_allclose(c[f"present.{i}.value"], a[f"present.{i}.value"], atol=1e-5)
    # decode's MACs: the weights once per token, attention over 6 keys
    cfg = decoder.PRESETS["decoder-15m"]
    attn = cfg.layers * cfg.heads * 6 * 2 * cfg.head_dim
    assert total_macs(step) == cfg.param_count() - cfg.hidden * (2 * cfg.layers + 1) + attn


@pytest.mark.parametrize("which", ["full", "step"])
def test_simulator_matches_the_reference(decoded: dict, which: str) -> None:
    module, ref, feeds = decoded[which]
    out = sim.simulate(module, feeds).outputs
    for k in ("logits", "present.0.key", "present.5.value"):
        np.testing.assert_allclose(out[k], ref[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_bad_input_is_one_clear_line() -> None:
    with pytest.raises(IrflowError, match="KV cache of 2048 \\+ 1 new token\\(s\\) exceeds the "
                       "model's maximum of 2048 positions"):
        zoo.load("decoder-15m", entry="decode", cache=2048)
    module = zoo.load("decoder-15m", entry="prefill", seq=2)
    with pytest.raises(IrflowError, match=r"nn.gather index 16384 is out of range"):
        run(module, {"input_ids": np.array([[3, 16384]])})
    with pytest.raises(ParseError, match="rope_table expects an even dim"):
        compile_source('model m(x: f32[1]) {\n  t = rope_table(kind="cos", dim=3, positions=2)\n'
                       "  return t\n}", "m.irf")


def test_decode_worked_example() -> None:
    """docs/llm.md's example: decoder-15m, decode with L = 64, fp32, default machine."""
    from irflow.backends.sim.decode_bound import decode_bound

    module = zoo.load("decoder-15m", entry="decode", cache=64)
    bound = decode_bound(module)
    assert bound.weight_bytes == 15_733_632 * 4 + 2 * 32 * 4 == 62_934_784
    assert bound.kv_read_bytes == 6 * 2 * 2 * 64 * 64 * 4 == 393_216
    # the cache is updated in place: the step writes one new row per layer, K and V
    assert bound.kv_written_bytes == 6 * 2 * 2 * 1 * 64 * 4 == 6_144
    assert bound.cycles == 63_334_144 / 32 == 1_979_192
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal((1, 2, 64, 64)).astype(np.float32)
             for i in range(6) for n in (f"past.{i}.key", f"past.{i}.value")}
    total = sim.simulate(module, {"input_ids": np.array([[7]]), **feeds}).report.total
    assert total.roofline_bound == "memory"  # by MAC count against bytes
    # the simulated schedule agrees: a fold of 256 fp32 weights (1 KiB) loads in 32
    # cycles over the 32 B/cycle load path, as fast as DRAM delivers it, and the folds
    # pipeline behind each other (docs/llm.md): within 10 % of the limit
    assert total.limited_by == "bandwidth"
    assert bound.cycles < total.cycles <= 1.10 * bound.cycles
    assert total.pe_cycles <= total.cycles
    assert bound.total_bytes <= total.dram_bytes_read + total.dram_bytes_written


@pytest.mark.slow
def test_prefill_is_compute_bound() -> None:
    module = zoo.load("decoder-15m", entry="prefill", seq=128)
    ids = np.random.default_rng(0).integers(0, 16384, (1, 128))
    total = sim.simulate(module, {"input_ids": ids}).report.total
    assert total.roofline_bound == "compute" and total.limited_by == "compute"


def test_lazy_weights_are_the_eager_ones() -> None:
    """The decoder family builds lazily: the same seeded arrays, made on first read."""
    from irflow.weights import weights_of

    text = decoder.source("decoder-15m", "prefill", 4, 0)
    lazy = compile_source(text, "d.irf", lazy=True)
    eager = compile_source(text, "d.irf")
    a, b = weights_of(lazy), weights_of(eager)
    assert sorted(a) == sorted(b)
    for key in ("embed_tokens.weight", "layers.3.mlp.down_proj.weight", "rope.sin"):
        np.testing.assert_array_equal(a[key], b[key])
