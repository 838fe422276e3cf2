"""Quantization-aware training: `nn.fake_quant` rounds as `quantize` does, its gradient is
the straight-through estimator, and a QAT-trained model lowers through the PTQ pipeline
to the same integer IR, bit-exact between the simulator and the reference executor."""

from __future__ import annotations

import numpy as np
from test_train import blobs
from xdsl.dialects.builtin import StringAttr, TensorType

from irflow.backends import sim
from irflow.backends.reference import evaluate_op, run
from irflow.dialects import nn, quant
from irflow.dialects.nn.fake_quant import FakeQuantOp
from irflow.frontends.dsl import compile_source
from irflow.graph import GraphBuilder
from irflow.intmath import dequantize
from irflow.passes.calibrate import set_calibration_data
from irflow.pipeline import run_pipeline
from irflow.train.grad import GRAD_PREFIX, STEP_FUNC, grad
from irflow.train.loop import TrainConfig, Trainer
from irflow.train.losses import MSE
from irflow.train.optim import OptimizerConfig
from irflow.train.qat import fake_quantize
from irflow.train.retype import retype
from irflow.weights import attach_weights, constant_value, weights_of

CNN = """
model small(x: f32[1, 2, 4, 4]) {
  conv = conv2d(x, out=8, kernel=3, pad=1)
  pool = maxpool(relu(conv), kernel=2)
  fc = linear(flatten(pool), out=3)
  return fc
}
"""


def test_weight_fake_quant_equals_the_quantize_pass_weights() -> None:
    m = compile_source(CNN, "small.irf", seed=3)
    run_pipeline(m, "default")
    q = attach_weights(m.clone(), weights_of(m))
    set_calibration_data(q, [{"x": blobs().x_train[:1]}])
    run_pipeline(q, "calibrate,quantize{bits=4 granularity=per-channel}")
    w = weights_of(m)["conv.weight"]
    const = next(op for op in q.walk() if isinstance(op, nn.ConstantOp)
                 and isinstance(op.value, nn.WeightAttr) and op.value.key.startswith("conv.w"))
    qt = quant.quant_type(const.output)
    scales = qt.scale_values().reshape(-1, 1, 1, 1)
    stored = dequantize(constant_value(const, weights_of(q)), scales, 0)
    g = GraphBuilder()
    fq = FakeQuantOp.make([g.weight("w", w)], {"mode": StringAttr("weight"),
                                               "bits": nn.i64_attr(4), "axis": nn.i64_attr(0)})
    np.testing.assert_array_equal(evaluate_op(fq, [w])[0], stored)


def test_activation_fake_quant_and_its_straight_through_gradient() -> None:
    g = GraphBuilder()
    x = g.weight("x", np.array([[-0.3, 0.0, 0.26, 0.5, 0.9]], np.float32))
    y = g.add(FakeQuantOp.make([x], {"mode": StringAttr("activation"), "bits": nn.i64_attr(2),
                                     "scale": nn.f64(0.25), "zero_point": nn.i64_attr(0),
                                     "signed": nn.i64_attr(0)})).results[0]
    module = g.finish([y])
    assert run(module, {})["output0"].tolist() == [[0.0, 0.0, 0.25, 0.5, 0.75]]
    step = grad(module, MSE())
    from irflow.backends.reference import compile_function

    target = np.zeros((1, 5), np.float32)
    out = compile_function(step, STEP_FUNC).run({"x": weights_of(module)["x"], "target": target})
    dy = 2 * np.array([0.0, 0.0, 0.25, 0.5, 0.75]) / 5  # d MSE / d y
    inside = np.array([0, 1, 1, 1, 0])  # -0.3 and 0.9 are clamped (u2: 0..3 · 0.25)
    np.testing.assert_allclose(out[GRAD_PREFIX + "x"][0], dy * inside, rtol=1e-6)
    assert "nn.fake_quant_grad" in str(step)


def test_qat_model_lowers_like_ptq_and_is_bit_exact_on_the_simulator() -> None:
    data = blobs(n=128)
    m = compile_source(CNN, "small.irf", seed=0)
    Trainer(m, TrainConfig(epochs=3, batch=8, optimizer=OptimizerConfig("adam", lr=0.02))).fit(
        data)
    run_pipeline(m, "default")
    calib = [{"x": data.x_train[i:i + 16]} for i in range(0, 64, 16)]
    qat = Trainer(fake_quantize(m, calib, bits=4),
                  TrainConfig(epochs=2, batch=8, optimizer=OptimizerConfig("adam", lr=1e-3)))
    assert sum(isinstance(op, FakeQuantOp) for op in qat.module.walk()) == 4
    qat.fit(data)
    programs = []
    for model in (m, qat.trained(m)):
        q = retype(attach_weights(model.clone(), weights_of(model)), batch=16)
        set_calibration_data(q, calib)
        run_pipeline(q, "calibrate,quantize{bits=4 granularity=per-channel}")
        programs.append(q)
    ptq, qat_int = programs

    def skeleton(module):  # noqa: ANN001, ANN202 - op names and storage types, not scales
        return [(op.name, tuple(str(quant.quant_type(r).storage) if quant.quant_type(r)
                                else str(r.type) for r in op.results)) for op in module.walk()]

    assert skeleton(ptq) == skeleton(qat_int)
    assert any(isinstance(r.type, TensorType) and quant.quant_type(r) is not None
               for op in qat_int.walk() for r in op.results)
    x = {"x": data.x_test[:16]}
    ref = run(qat_int, x)
    got = sim.simulate(qat_int, x).outputs
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k])
