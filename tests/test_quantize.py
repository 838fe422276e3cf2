"""quantize: integer execution end to end, options, errors, and accuracy floors on real data.

Bounds stated here (seeded inputs from the calibration distribution): int8 per-channel
logits within 35 dB SQNR of float on the zoo CNNs; on the digits models (real data,
tests/data/README.md) int8 agreement >= 99.4 % and SQNR >= 38 dB, w4a8
accuracy within 2 points of float — looser than the issue's targets (99.7 %, 40 dB,
1 point), which `bench/bench_quant_accuracy.py` reports.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from datasets import DIGITS, calibration_images, reference
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view
from xdsl.dialects.builtin import ModuleOp, StringAttr

from irflow import intmath, zoo
from irflow.backends.reference import compile_function, evaluate_op, make_kernel
from irflow.diagnostics import IrflowError, PassError
from irflow.dialects import nn, quant
from irflow.dialects.quant import quant_type
from irflow.graph import input_names, main_func
from irflow.io import load, save
from irflow.passes.calibrate import calibrate
from irflow.pipeline import parse_pipeline, run_pipeline
from irflow.weights import attach_weights, constant_value, weights_of


def _inputs(module: ModuleOp, seed: int, n: int) -> list[dict[str, np.ndarray]]:
    f = main_func(module)
    rng = np.random.default_rng(seed)
    return [{name: rng.uniform(0, 1, tuple(a.type.get_shape())).astype(np.float32)
             for name, a in zip(input_names(f), f.body.blocks[0].args)} for _ in range(n)]


def _sqnr(ref: np.ndarray, got: np.ndarray) -> float:
    ref = ref.astype(np.float64)
    return float(10 * np.log10((ref**2).sum() / ((ref - got) ** 2).sum()))


def _float_and_quantized(name: str, spec: str) -> tuple[ModuleOp, ModuleOp]:
    module = zoo.load(name)
    run_pipeline(module, "default")
    calibrate(module, _inputs(module, 0, 4))
    q = attach_weights(module.clone(), weights_of(module))
    run_pipeline(q, spec)
    return module, q


def _ops(module: ModuleOp, cls: type) -> list:
    return [op for op in module.walk() if isinstance(op, cls)]


@pytest.mark.parametrize("name", ["digits_cnn", "lenet5"])
def test_int8_close_to_float_and_integer_inside(name):
    module, q = _float_and_quantized(name, "quantize")
    # Integer from the first contraction to the last: one quantize, one dequantize.
    assert len(_ops(q, quant.QuantizeOp)) == 1 and len(_ops(q, quant.DequantizeOp)) == 1
    for op in _ops(q, nn.Conv2dOp) + _ops(q, nn.LinearOp):
        assert all(quant_type(v) is not None for v in (*op.operands, *op.results)), op
    fp, qp = compile_function(module), compile_function(q)
    for x in _inputs(module, 1, 3):
        ref, got = fp.run(x)["logits"], qp.run(x, check=True)["logits"]
        assert _sqnr(ref, got) >= 35.0


def test_quantized_conv_is_bit_exact_against_int64_reference():
    """The kernel equals an independent int64 evaluation (tap-by-tap einsum) followed by
    `intmath.requantize`: what the simulator must reproduce on its tiles."""
    _, q = _float_and_quantized("digits_cnn", "quantize")
    conv = _ops(q, nn.Conv2dOp)[1]  # 16 -> 32 channels, 3x3, pad 1, relu
    store = weights_of(q)
    qx, qw = quant_type(conv.operands[0]), quant_type(conv.operands[1])
    qy = quant_type(conv.results[0])
    rng = np.random.default_rng(5)
    x = rng.integers(qx.qmin, qx.qmax + 1, (1, 16, 8, 8)).astype(np.uint8)
    w = constant_value(conv.operands[1].owner, store).astype(np.int64)
    b = constant_value(conv.operands[2].owner, store).astype(np.int64)
    xp = np.pad(x.astype(np.int64) - qx.zero_point, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = sliding_window_view(xp, (3, 3), axis=(2, 3))  # 1,16,8,8,3,3
    acc = np.einsum("nchwij,fcij->nfhw", win, w) + b.reshape(1, -1, 1, 1)
    mult = intmath.quantize_multiplier(qx.scale * qw.scale_values() / qy.scale)
    lo, hi = intmath.activation_range("relu", qy.scale, qy.zero_point, qy.qmin, qy.qmax)
    ref = intmath.requantize(acc, mult.reshape((1, -1, 1, 1)), qy.zero_point, lo, hi,
                             np.uint8)
    got = evaluate_op(conv, [x, constant_value(conv.operands[1].owner, store),
                             constant_value(conv.operands[2].owner, store)])[0]
    assert got.dtype == np.uint8
    assert np.array_equal(got, ref)


def test_save_load_is_bit_exact(tmp_path):
    module, q = _float_and_quantized("lenet5", "quantize{granularity=per-tensor symmetric=false}")
    x = _inputs(module, 2, 1)[0]
    before = compile_function(q).run(x)["logits"]
    save(q, tmp_path / "q.mlir")
    after = compile_function(load(tmp_path / "q.mlir")).run(x)["logits"]
    assert np.array_equal(before, after)


def test_weight_only_needs_no_calibration():
    module = zoo.load("lenet5")
    run_pipeline(module, "default")
    q = attach_weights(module.clone(), weights_of(module))
    run_pipeline(q, "quantize{weight-only=true}")
    consts = [c for c in _ops(q, nn.ConstantOp) if quant_type(c.output) is not None]
    assert len(consts) == 5
    assert all(constant_value(c, weights_of(q)).dtype == np.int8 for c in consts)
    assert not _ops(q, quant.QuantizeOp)
    x = _inputs(module, 3, 1)[0]
    ref, got = compile_function(module).run(x)["logits"], compile_function(q).run(x)["logits"]
    assert _sqnr(ref, got) >= 35.0


def _weight_bits(q: ModuleOp) -> dict[str, int]:
    out = {}
    for c in _ops(q, nn.ConstantOp):
        t = quant_type(c.output)
        if t is not None and t.bits < 32:
            out[c.value.key.split(".")[0]] = t.bits
    return out


def test_first_last_bits_and_config_overrides(tmp_path):
    _, q = _float_and_quantized("lenet5", "quantize{bits=4 first-last-bits=8}")
    assert _weight_bits(q) == {"conv1": 8, "conv2": 4, "fc1": 4, "fc2": 4, "fc3": 8}
    cfg = tmp_path / "layers.json"
    cfg.write_text(json.dumps({"layers": {"fc*": {"bits": 4}, "fc3": {"skip": True},
                                          "conv2": {"granularity": "per-tensor"}}}))
    _, q = _float_and_quantized("lenet5", f'quantize{{config="{cfg}"}}')
    assert _weight_bits(q) == {"conv1": 8, "conv2": 8, "fc1": 4, "fc2": 4}
    fc3 = [op for op in _ops(q, nn.LinearOp) if quant_type(op.results[0]) is None]
    assert len(fc3) == 1  # skipped: stays float, fed by a dequantize
    assert isinstance(fc3[0].operands[0].owner, quant.DequantizeOp)
    conv2 = _ops(q, nn.Conv2dOp)[1]
    assert not quant_type(conv2.operands[1]).is_per_axis
    toml = tmp_path / "layers.toml"
    toml.write_text('[layers."conv*"]\nbits = 3\n')
    with pytest.raises(PassError, match=r'layers."conv\*".bits must be one of \[4, 8\]'):
        parse_pipeline(f'quantize{{config="{toml}"}}')


@pytest.mark.parametrize("spec, message", [
    ("quantize{bits=3}", "option bits must be one of [4, 8]"),
    ("quantize{bits=16}", "option bits must be one of [4, 8]"),
    ("quantize{granularity=per-row}", "option granularity must be one of"),
    ("quantize{act-bits=2}", "option act-bits must be one of [4, 8]"),
    ('quantize{layers="conv1"}', "option layers expects 'pattern:key=value,...' items"),
    ('quantize{layers="conv1:act-bits=2"}', "option layers: 'conv1'.act_bits must be one of"),
    ('quantize{layers="conv1:colour=red"}', "expects keys bits, act_bits, granularity, skip"),
    ("quantize{weight-clip=kl}", "option weight-clip must be one of"),
    ("quantize{method=kl}", "option method must be one of"),
])
def test_unsupported_options_rejected_when_parsed(spec, message):
    with pytest.raises(PassError) as err:
        parse_pipeline(f"default,{spec}")
    assert message in str(err.value)


def test_missing_statistics_name_the_tensor():
    module = zoo.load("digits_cnn")
    with pytest.raises(PassError, match=r"no calibration statistics for %input "
                                        r"\(function argument\)"):
        run_pipeline(module, "default,quantize")
    module = zoo.load("digits_cnn")
    run_pipeline(module, "default")
    calibrate(module, _inputs(module, 0, 1))
    conv = _ops(module, nn.Conv2dOp)[0]
    del conv.attributes["quant.range"]
    with pytest.raises(PassError, match=r"no calibration statistics for .*result of nn.conv2d "
                                        r"at digits_cnn.irf:\d+:\d+"):
        run_pipeline(module, "quantize")


def test_method_option_rederives_ranges():
    module = zoo.load("digits_cnn")
    run_pipeline(module, "default")
    calibrate(module, _inputs(module, 0, 2))
    a = attach_weights(module.clone(), weights_of(module))
    run_pipeline(module, "quantize{method=entropy}")  # same module: histograms known
    run_pipeline(a, "quantize")
    sa = [quant_type(op.results[0]).scale for op in _ops(a, nn.Conv2dOp)]
    sm = [quant_type(op.results[0]).scale for op in _ops(module, nn.Conv2dOp)]
    assert sm != sa
    with pytest.raises(PassError, match="re-derives ranges"):
        run_pipeline(attach_weights(a.clone(), weights_of(a)), "quantize{method=mse}")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["transformer_encoder", "mobilenetv2"])
def test_zoo_models_quantize_and_run(name):
    module, q = _float_and_quantized(name, "quantize")
    x = _inputs(module, 1, 1)[0]
    ref = next(iter(compile_function(module).run(x).values()))
    got = next(iter(compile_function(q).run(x, check=True).values()))
    assert _sqnr(ref, got) >= 20.0


# --------------------------------------------------------------------------------------
# Real data: the digits models


@pytest.mark.parametrize("name", ["digits_mlp", "digits_cnn", "digits_cnn_bn"])
def test_digits_accuracy_floors(name):
    from irflow.frontends.onnx import import_onnx

    ref = reference(name)
    x_test, labels = ref["input"], ref["labels"]
    b = 20
    module = import_onnx(DIGITS / f"{name}.onnx",
                         input_shapes={"input": [b, *x_test.shape[1:]]})
    run_pipeline(module, "default")
    x_cal = calibration_images(name)
    calibrate(module, [{"input": x_cal[i:i + b]} for i in range(0, 100, b)])

    def logits(m: ModuleOp) -> np.ndarray:
        p = compile_function(m)
        return np.concatenate([p.run({"input": x_test[i:i + b]})["logits"]
                               for i in range(0, 360, b)])

    f = logits(module)
    for spec in ("quantize{bits=8 granularity=per-channel}", "quantize{bits=4}"):
        q = attach_weights(module.clone(), weights_of(module))
        run_pipeline(q, spec)
        out = logits(q)
        if "bits=8" in spec:
            assert (out.argmax(1) == f.argmax(1)).mean() >= 0.994, spec
            assert _sqnr(f, out) >= 38.0, spec
        else:
            assert (out.argmax(1) == labels).mean() >= (f.argmax(1) == labels).mean() - 0.02


def test_errors_are_irflow_errors():
    """A quantized op whose operands do not fit the integer kernel fails clearly."""
    _, q = _float_and_quantized("digits_cnn", "quantize")
    conv = _ops(q, nn.Conv2dOp)[0]
    bad = conv.clone()
    bad.properties["act"] = StringAttr("sigmoid")
    with pytest.raises(IrflowError, match="cannot apply act 'sigmoid' in integers"):
        make_kernel(bad)


def test_tiled_execution_through_the_contraction_plan_is_bit_exact():
    """What the simulator does: split K (input channels) and the output channels into
    tiles, accumulate each K-tile exactly, add the partial sums, finish once."""
    from irflow.backends.reference.kernels import conv2d
    from irflow.backends.reference.quant_kernels import contraction_plan

    _, q = _float_and_quantized("digits_cnn", "quantize")
    conv = _ops(q, nn.Conv2dOp)[1]
    store = weights_of(q)
    w = constant_value(conv.operands[1].owner, store)
    b = constant_value(conv.operands[2].owner, store)
    qx = quant_type(conv.operands[0])
    x = np.random.default_rng(6).integers(qx.qmin, qx.qmax + 1, (1, 16, 8, 8)).astype(np.uint8)
    want = evaluate_op(conv, [x, w, b])[0]
    plan = contraction_plan(conv)

    def tile_fn(xt: np.ndarray, wt: np.ndarray) -> np.ndarray:
        return conv2d(xt, wt, None, (1, 1), (1, 1, 1, 1), (1, 1), 1)

    got = np.empty_like(want)
    for f0 in (0, 16):  # output-channel tiles; the plan's per-channel parts are sliced too
        acc = sum(plan.accumulate(tile_fn, x[:, k:k + 8], w[f0:f0 + 16, k:k + 8])
                  for k in (0, 8))
        full = np.zeros((1, 32, 8, 8), np.int64)
        full[:, f0:f0 + 16] = acc
        got[:, f0:f0 + 16] = plan.finish(full, b)[:, f0:f0 + 16]
    assert np.array_equal(got, want)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(layers=st.lists(st.tuples(st.sampled_from(["conv", "linear"]),
                                 st.sampled_from([None, "relu", "relu6"]),
                                 st.integers(2, 6)), min_size=1, max_size=3),
       spec=st.sampled_from(["quantize", "quantize{granularity=per-tensor}",
                             "quantize{symmetric=false}"]),
       seed=st.integers(0, 2**16))
def test_random_graphs_stay_close_to_float(layers, spec, seed):
    """Random conv/linear chains: int8 outputs within 25 dB SQNR of float on the
    calibration distribution, and integer end to end (one quantize, one dequantize)."""
    from irflow.graph import GraphBuilder

    rng = np.random.default_rng(seed)
    g = GraphBuilder()
    x = g.input("x", (2, 3, 6, 6))
    v, c = x, 3
    flat = False
    for kind, act, width in layers:
        if kind == "conv" and not flat:
            w = g.weight("w", rng.standard_normal((width, c, 3, 3)).astype(np.float32) * 0.3)
            v = g.add(nn.Conv2dOp(v, w, pads=(1, 1, 1, 1), act=act)).results[0]
            c = width
        else:
            if not flat:
                v = g.add(nn.FlattenOp.make([v])).results[0]
                c, flat = c * 36, True
            w = g.weight("w", rng.standard_normal((width, c)).astype(np.float32) * 0.3)
            props = {"act": StringAttr(act)} if act else {}
            v = g.add(nn.LinearOp.make([v, w], props)).results[0]
            c = width
    module = g.finish([v], ["y"])
    batches = [{"x": rng.uniform(-1, 1, (2, 3, 6, 6)).astype(np.float32)} for _ in range(3)]
    calibrate(module, batches)
    q = attach_weights(module.clone(), weights_of(module))
    run_pipeline(q, spec)
    assert len(_ops(q, quant.QuantizeOp)) == 1 and len(_ops(q, quant.DequantizeOp)) == 1
    fp, qp = compile_function(module), compile_function(q)
    ref = np.concatenate([fp.run(b)["y"] for b in batches])
    got = np.concatenate([qp.run(b, check=True)["y"] for b in batches])
    if np.abs(ref).max() > 1e-3:  # relu chains can be all zero
        assert _sqnr(ref, got) >= 25.0


def _input_bits(op) -> int:
    return quant_type(op.operands[0]).bits


def test_inline_layers_set_weight_and_input_activation_bits():
    """`layers=` per pattern: conv2 becomes an int4 x int4 contraction (its input, traced
    back through relu to conv1's output, is 4-bit); the others keep w8a8; the simulator
    runs conv2 at the int4 rate, so the program takes fewer cycles than uniform int8."""
    from irflow.backends.sim import simulate

    f, q = _float_and_quantized("digits_cnn", 'quantize{layers="conv2:bits=4,act-bits=4"}')
    x = _inputs(f, 1, 1)[0]["input"]
    _, q8 = _float_and_quantized("digits_cnn", "quantize{bits=8}")
    assert _weight_bits(q) == {"conv1": 8, "conv2": 4, "fc": 8}
    convs, fc = _ops(q, nn.Conv2dOp), _ops(q, nn.LinearOp)[0]
    assert [_input_bits(c) for c in convs] + [_input_bits(fc)] == [8, 4, 8]
    ref = compile_function(f).run({"input": x})["logits"]
    out, out8 = (compile_function(m).run({"input": x})["logits"] for m in (q, q8))
    assert 3.0 < _sqnr(ref, out) < _sqnr(ref, out8)  # 4-bit noise: near float, not as near
    sims = [simulate(m, {"input": x}) for m in (q, q8)]
    np.testing.assert_array_equal(sims[0].outputs["logits"], out)  # bit-exact on the sim
    assert sims[0].report.total.cycles < sims[1].report.total.cycles
