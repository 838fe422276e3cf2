"""Quantized IR exported as ONNX QDQ runs in onnxruntime and agrees with irflow's reference.

The bound: every element of every quantized tensor within one quantization step, op by
op (onnxruntime's inputs to an op fed to irflow's kernel for it). onnxruntime rounds its
requantization differently (float multiplier, half to even) from irflow's Q31 fixed
point, hence one step and not bit equality; over several layers the differences
compound, so end to end the bound is a few steps.
"""

from __future__ import annotations

import numpy as np
import pytest
from datasets import DIGITS, calibration_images, reference

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import helper  # noqa: E402
from xdsl.dialects.builtin import NameLoc, StringAttr, UnknownLoc  # noqa: E402

from irflow.backends.reference import compile_function, evaluate_op  # noqa: E402
from irflow.dialects import nn  # noqa: E402
from irflow.dialects.quant import quant_type  # noqa: E402
from irflow.exporters.onnx import export_onnx  # noqa: E402
from irflow.graph import main_func  # noqa: E402
from irflow.io import parse_mlir  # noqa: E402
from irflow.passes.calibrate import calibrate  # noqa: E402
from irflow.pipeline import run_pipeline  # noqa: E402
from irflow.weights import attach_weights, constant_value, weights_of  # noqa: E402


def _ort(model, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)


def _w(rng: np.random.Generator, *shape: int) -> str:
    return np.array2string(rng.standard_normal(shape).astype(np.float32) * 0.5,
                           separator=", ", threshold=10**6, floatmode="unique")


def _cases() -> dict[str, str]:
    rng = np.random.default_rng(0)
    return {
        "conv_relu": f"""
func.func @main(%x: tensor<2x3x6x6xf32>) -> tensor<2x64xf32> {{
  %w = nn.constant dense<{_w(rng, 4, 3, 3, 3)}> : tensor<4x3x3x3xf32>
  %b = nn.constant dense<{_w(rng, 4)}> : tensor<4xf32>
  %y = nn.conv2d %x, %w, %b
      {{pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>, act = "relu"}}
      : (tensor<2x3x6x6xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<2x4x3x3xf32>
  %p = nn.maxpool %y {{kernel = array<i64: 1, 1>}} : (tensor<2x4x3x3xf32>) -> tensor<2x4x3x3xf32>
  %f = nn.reshape %p : (tensor<2x4x3x3xf32>) -> tensor<2x36xf32>
  %v = nn.constant dense<{_w(rng, 64, 36)}> : tensor<64x36xf32>
  %z = nn.linear %f, %v {{act = "relu6"}}
      : (tensor<2x36xf32>, tensor<64x36xf32>) -> tensor<2x64xf32>
  %r = nn.reshape %z : (tensor<2x64xf32>) -> tensor<2x64xf32>
  func.return %r : tensor<2x64xf32>
}}""",
        "add_pool": f"""
func.func @main(%x: tensor<1x4x4x4xf32>) -> tensor<1x4xf32> {{
  %w1 = nn.constant dense<{_w(rng, 4, 4, 1, 1)}> : tensor<4x4x1x1xf32>
  %w2 = nn.constant dense<{_w(rng, 4, 4, 3, 3)}> : tensor<4x4x3x3xf32>
  %a = nn.conv2d %x, %w1 : (tensor<1x4x4x4xf32>, tensor<4x4x1x1xf32>) -> tensor<1x4x4x4xf32>
  %b = nn.conv2d %x, %w2 {{pads = array<i64: 1, 1, 1, 1>}}
      : (tensor<1x4x4x4xf32>, tensor<4x4x3x3xf32>) -> tensor<1x4x4x4xf32>
  %s = nn.add %a, %b {{act = "relu"}}
      : (tensor<1x4x4x4xf32>, tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  %p = nn.avgpool %s {{kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>}}
      : (tensor<1x4x4x4xf32>) -> tensor<1x4x2x2xf32>
  %g = nn.global_avg_pool %p : (tensor<1x4x2x2xf32>) -> tensor<1x4x1x1xf32>
  %f = nn.flatten %g : (tensor<1x4x1x1xf32>) -> tensor<1x4xf32>
  func.return %f : tensor<1x4xf32>
}}""",
        "concat": f"""
func.func @main(%x: tensor<1x2x4x4xf32>) -> tensor<1x4x4x4xf32> {{
  %w = nn.constant dense<{_w(rng, 2, 2, 1, 1)}> : tensor<2x2x1x1xf32>
  %v = nn.constant dense<{_w(rng, 2, 2, 3, 3)}> : tensor<2x2x3x3xf32>
  %a = nn.conv2d %x, %w {{act = "relu"}}
      : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %b = nn.conv2d %x, %v {{pads = array<i64: 1, 1, 1, 1>}}
      : (tensor<1x2x4x4xf32>, tensor<2x2x3x3xf32>) -> tensor<1x2x4x4xf32>
  %c = nn.concat %a, %b {{axis = 1 : i64}}
      : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x4x4x4xf32>
  %r = nn.reshape %c : (tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  func.return %r : tensor<1x4x4x4xf32>
}}""",
        "attention_matmul": f"""
func.func @main(%x: tensor<1x8x16xf32>) -> tensor<1x8x8xf32> {{
  %wq = nn.constant dense<{_w(rng, 16, 16)}> : tensor<16x16xf32>
  %wk = nn.constant dense<{_w(rng, 16, 16)}> : tensor<16x16xf32>
  %q = nn.linear %x, %wq : (tensor<1x8x16xf32>, tensor<16x16xf32>) -> tensor<1x8x16xf32>
  %k = nn.linear %x, %wk : (tensor<1x8x16xf32>, tensor<16x16xf32>) -> tensor<1x8x16xf32>
  %kt = nn.transpose %k {{perm = array<i64: 0, 2, 1>}} : (tensor<1x8x16xf32>) -> tensor<1x16x8xf32>
  %s = nn.matmul %q, %kt : (tensor<1x8x16xf32>, tensor<1x16x8xf32>) -> tensor<1x8x8xf32>
  %r = nn.reshape %s : (tensor<1x8x8xf32>) -> tensor<1x8x8xf32>
  func.return %r : tensor<1x8x8xf32>
}}""",
    }


SPECS = [
    "quantize{bits=8 granularity=per-channel}",
    "quantize{bits=8 granularity=per-tensor symmetric=false}",
    "quantize{bits=4 granularity=per-channel}",
]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("case", sorted(_cases()))
def test_qdq_within_one_step(case, spec):
    """Per op: onnxruntime's value of every quantized tensor, fed back into irflow's kernel
    for the op that produced it (same inputs for both), agrees within one step."""
    module = parse_mlir(_cases()[case])
    block = main_func(module).body.blocks[0]
    rng = np.random.default_rng(1)
    shape = tuple(block.args[0].type.get_shape())
    batches = [{"x": rng.standard_normal(shape).astype(np.float32)} for _ in range(3)]
    calibrate(module, batches)
    run_pipeline(module, spec)
    for i, op in enumerate(block.ops):
        op.location = NameLoc(StringAttr(f"op{i}"), UnknownLoc())  # ONNX names: op<i>/output_0
    model = export_onnx(module)
    onnx.checker.check_model(model)
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in model.graph.node}
    produced = {}  # ONNX name -> (op, result type)
    for i, op in enumerate(block.ops):
        q = quant_type(op.results[0]) if op.results else None
        if q is not None and not isinstance(op, nn.ConstantOp):
            produced[f"op{i}/output_0"] = (op, q)
    assert len(produced) >= 3
    names = {op.results[0]: name for name, (op, _) in produced.items()}
    for name, (op, q) in produced.items():
        elem = 6 if q.bits == 32 else (3 if q.signed else 2)  # FLOAT, INT8, UINT8
        if q.bits == 32:
            elem = 1
        model.graph.output.append(helper.make_tensor_value_info(
            name, elem, list(op.results[0].type.get_shape())))
    store = weights_of(module)
    x = {"x": rng.standard_normal(shape).astype(np.float32)}
    theirs = dict(zip([o.name for o in model.graph.output], _ort(model, x)))
    for name, (op, q) in produced.items():
        ins = [theirs[names[v]] if v in names else
               (x["x"] if v is block.args[0] else constant_value(v.owner, store))
               for v in op.operands]
        ours = evaluate_op(op, ins)[0]
        if q.bits == 32:  # exported as the float it stands for
            scale = q.scale_values().reshape(q.broadcast_shape(ours.ndim))
            np.testing.assert_allclose(ours * scale, theirs[name], rtol=1e-5,
                                       atol=1e-5 * np.abs(theirs[name]).max())
            continue
        steps = np.abs(ours.astype(np.int64) - theirs[name].astype(np.int64))
        assert steps.max() <= 1, (case, spec, op.name, steps.max())
    # End to end the differences compound over layers: a few steps of the output.
    ours = compile_function(module).run(x)["output0"]
    out_q = quant_type(block.last_op.operands[0].owner.operands[0])
    assert np.abs(ours - theirs["output0"]).max() <= 4 * out_q.scale


def test_weight_only_export_matches():
    module = parse_mlir(_cases()["conv_relu"])
    run_pipeline(module, "quantize{weight-only=true}")
    model = export_onnx(module)
    onnx.checker.check_model(model)
    x = {"x": np.random.default_rng(2).standard_normal((2, 3, 6, 6)).astype(np.float32)}
    np.testing.assert_allclose(compile_function(module).run(x)["output0"], _ort(model, x)[0],
                               rtol=1e-5, atol=1e-5)


def test_digits_model_qdq_agrees():
    from irflow.frontends.onnx import import_onnx

    ref = reference("digits_cnn_bn")
    x_test = ref["input"]
    module = import_onnx(DIGITS / "digits_cnn_bn.onnx", input_shapes={"input": [20, 1, 8, 8]})
    run_pipeline(module, "default")
    x_cal = calibration_images("digits_cnn_bn")
    calibrate(module, [{"input": x_cal[i:i + 20]} for i in range(0, 100, 20)])
    q = attach_weights(module.clone(), weights_of(module))
    run_pipeline(q, "quantize")
    model = export_onnx(q)
    onnx.checker.check_model(model)
    prog = compile_function(q)
    ours = np.concatenate([prog.run({"input": x_test[i:i + 20]})["logits"]
                           for i in range(0, 360, 20)])
    theirs = np.concatenate([_ort(model, {"input": x_test[i:i + 20]})[0]
                             for i in range(0, 360, 20)])
    assert (ours.argmax(1) == theirs.argmax(1)).mean() >= 0.994
    # within one int8 step of the logits' range (the logits themselves stay int32 in irflow)
    assert np.abs(ours - theirs).max() <= np.abs(ours).max() / 127
