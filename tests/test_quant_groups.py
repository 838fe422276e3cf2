"""Group-wise weight-only quantization: the block type's syntax, `irq.block_linear`'s
verifier and semantics, the `quantize-groups` and `convert-float` passes, the simulator
against the reference and its packed 4-bit traffic."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import f16
from xdsl.utils.exceptions import VerifyException

from irflow.backends import sim
from irflow.backends.reference import run
from irflow.diagnostics import PassError
from irflow.dialects.quant import UniformQuantizedType
from irflow.graph import GraphBuilder
from irflow.io import parse_mlir, print_module
from irflow.passes.quantize_groups import quantize_groups
from irflow.pipeline import run_pipeline
from irflow.weights import attach_weights, weights_of

RNG = np.random.default_rng(3)


def linear_module(n: int = 48, k: int = 128, m: int = 5, bias: bool = False):  # noqa: ANN201
    from irflow.dialects import nn

    g = GraphBuilder()
    x = g.input("x", [1, m, k])
    w = g.weight("fc.weight", RNG.standard_normal((n, k)).astype(np.float32) * 0.1)
    b = g.weight("fc.bias", RNG.standard_normal(n).astype(np.float32)) if bias else None
    y = g.add(nn.LinearOp.make([x, w, b]))
    return g.finish([y.results[0]], ["y"])


def test_block_type_prints_and_parses() -> None:
    t = UniformQuantizedType.make(4, (), axis=1, block=32, storage_range=(-7, 7), expressed=f16)
    assert str(t) == "!quant.uniform<i4<-7:7>:f16:{1:32}>"
    assert t.block_size == 32 and t.block_axis == 1 and not t.is_per_axis
    text = "func.func @f(%w: tensor<4x64x!quant.uniform<u8:f32:{1:64}>>) -> " \
           "tensor<4x64x!quant.uniform<u8:f32:{1:64}>> {\n  func.return %w : " \
           "tensor<4x64x!quant.uniform<u8:f32:{1:64}>>\n}"
    assert "!quant.uniform<u8:f32:{1:64}>" in print_module(parse_mlir(text, "t.mlir"))


def test_rtn_groups_round_to_nearest_within_half_a_step() -> None:
    w = RNG.standard_normal((8, 64))
    for bits, zp in ((4, False), (8, False), (4, True)):
        q, s, z = quantize_groups(w, bits, 32, zp)
        deq = (q.reshape(8, 2, 32) - (z[..., None] if z is not None else 0)) * s[..., None]
        assert np.abs(deq.reshape(8, 64) - w).max() <= 0.5 * s.max() + 1e-12
        assert q.min() >= (-8 if zp else -7 if bits == 4 else -127)


@pytest.mark.parametrize("spec", ["quantize-groups{bits=4 group=32}",
                                  "quantize-groups{bits=8 group=64}",
                                  "quantize-groups{bits=4 group=32 zero-point=true}",
                                  "convert-float,quantize-groups{bits=4 group=128}"])
def test_block_linear_matches_numpy_and_the_simulator(spec: str) -> None:
    module = linear_module(bias=True)
    w = weights_of(module)["fc.weight"].astype(np.float64)
    b = weights_of(module)["fc.bias"]
    run_pipeline(module, spec)
    text = print_module(module)
    assert "irq.block_linear" in text and "nn.linear" not in text
    assert "fc.weight" not in weights_of(module)  # the float weight is gone
    again = attach_weights(parse_mlir(text, "m.mlir"), weights_of(module))
    x = RNG.standard_normal((1, 5, 128)).astype(np.float32)
    if "convert-float" in spec:
        x = x.astype(np.float16)
    store = weights_of(module)
    key = next(k for k in store if ".q" in k)
    group = int(key.rsplit("g", 1)[1])
    q, s = store[key].astype(np.float64), store["fc.weight.scales"].astype(np.float64)
    z = store.get("fc.weight.zero_points")
    deq = (q.reshape(48, -1, group) - (z[..., None] if z is not None else 0)) * s[..., None]
    want = x.astype(np.float64) @ deq.reshape(48, 128).T + b
    got = run(again, {"x": x})["y"]
    assert got.dtype == x.dtype
    np.testing.assert_allclose(got, want, rtol=2e-3 if x.dtype == np.float16 else 1e-5,
                               atol=2e-2 if x.dtype == np.float16 else 1e-5)
    assert np.abs(deq.reshape(48, 128) - w).max() <= 0.5 * s.max() + 1e-3  # RTN
    out = sim.simulate(module, {"x": x}, machine="default").outputs["y"]
    np.testing.assert_allclose(out.astype(np.float32), got.astype(np.float32), rtol=1e-3,
                               atol=1e-2 if x.dtype == np.float16 else 1e-5)


def test_packed_int4_weights_and_scales_are_what_moves() -> None:
    """w4 g32 with f16 scales: K·N/2 bytes of integers + K·N/32·2 bytes of scales."""
    n, k = 512, 1024
    sizes = {}
    for spec in ("convert-float", "convert-float,quantize-groups{bits=4 group=32}",
                 "convert-float,quantize-groups{bits=8 group=32}"):
        module = linear_module(n, k, m=1)
        run_pipeline(module, spec)
        x = RNG.standard_normal((1, 1, k)).astype(np.float16)
        sizes[spec] = sim.simulate(module, {"x": x}).report.total.dram_bytes_read
    fp16, w4, w8 = sizes.values()
    weights16 = n * k * 2
    assert weights16 <= fp16 <= 1.02 * weights16 + 4096
    assert n * k // 2 + n * k // 32 * 2 <= w4 <= 1.02 * (n * k // 2 + n * k // 16) + 4096
    assert n * k + n * k // 16 <= w8 <= 1.02 * (n * k + n * k // 16) + 4096


def test_bad_group_and_bad_block_linear_are_one_line() -> None:
    with pytest.raises(PassError, match=r"group size 48 does not divide the reduction axis "
                                        r"\(128\) of linear 'fc'"):
        run_pipeline(linear_module(), "quantize-groups{group=48}")
    bad = ("func.func @f(%x: tensor<1x64xf32>, %w: tensor<8x64x!quant.uniform<i4:f32:{1:32}>>,"
           " %s: tensor<8x3xf32>) -> tensor<1x8xf32> {\n  %y = irq.block_linear %x, %w, %s :"
           " (tensor<1x64xf32>, tensor<8x64x!quant.uniform<i4:f32:{1:32}>>, tensor<8x3xf32>)"
           " -> tensor<1x8xf32>\n  func.return %y : tensor<1x8xf32>\n}")
    with pytest.raises(Exception, match=r"expects scales of shape \[8, 2\], got \[8, 3\]"):
        parse_mlir(bad, "b.mlir").verify()


def test_verifier_rejects_a_weight_that_is_not_grouped() -> None:
    from irflow.dialects.quant_block import BlockLinearOp

    g = GraphBuilder()
    x = g.input("x", [1, 64])
    w = g.input("w", [8, 64])
    s = g.input("s", [8, 2])
    with pytest.raises(VerifyException, match="quantized in groups along axis 1"):
        BlockLinearOp(x, w, s).verify()


def test_w4a8_integer_group_sums_are_bit_exact_on_the_simulator() -> None:
    """int8 activations × group-wise int4 weights: exact integer sums per group, the
    float combination in the same order on both executors: identical bits."""
    from irflow.passes.calibrate import set_calibration_data

    module = linear_module(n=40, k=256, m=7)
    set_calibration_data(module, [{"x": RNG.standard_normal((1, 7, 256)).astype(np.float32)}
                                  for _ in range(2)])
    run_pipeline(module, "convert-float,quantize-groups{bits=4 group=64 zero-point=true},"
                         "calibrate,quantize-groups{act-bits=8}")
    text = print_module(module)
    assert "quant.qcast" in text and "!quant.uniform<i8:f16" in text
    x = RNG.standard_normal((1, 7, 256)).astype(np.float16)
    ref = run(module, {"x": x})["y"]
    result = sim.simulate(module, {"x": x}, machine="micro")  # small cache: several K-steps
    np.testing.assert_array_equal(result.outputs["y"], ref)
    assert {s.dtype for s in result.report.layers if s.op == "irq.block_linear"} == {"int8"}
    # the integer semantics, written out
    store = weights_of(module)
    qx_op = next(op for op in module.walk() if op.name == "quant.qcast")
    qt = qx_op.output.type.element_type
    xq = np.clip(np.round(x.astype(np.float64) / qt.scale) + qt.zero_point, -128, 127)
    q = store["fc.weight.q4g64"].astype(np.int64).reshape(40, 4, 64)
    z = store["fc.weight.zero_points"].astype(np.int64)[:, :, None]
    s = store["fc.weight.scales"].astype(np.float64)
    sums = np.einsum("mgk,ngk->mng", (xq[0] - qt.zero_point).reshape(7, 4, 64).astype(np.int64),
                     q - z)
    want = qt.scale * (sums * s[None]).sum(-1)
    np.testing.assert_allclose(ref[0].astype(np.float64), want, rtol=2e-3, atol=2e-2)


def test_act_bits_without_calibration_is_one_line() -> None:
    module = linear_module()
    with pytest.raises(PassError, match="act-bits=8 needs calibrated ranges"):
        run_pipeline(module, "quantize-groups{act-bits=8}")
