"""Quantized programs on the simulator: bit for bit the reference executor's outputs.

Every zoo model goes through the `int8` pipeline (seeded random calibration data) and
`w4a8`, then runs on the simulator tile by tile — contractions through the reference
kernels' own `contraction_plan` per K-tile and output-channel range, casts, adds and
pools through the reference's integer kernels on the tile — and must give the
reference executor's exact integers (and the exact dequantized floats). A simulator
that requantizes a tile with another tile's multipliers, or reads a shifted slice,
must be caught. Cost side: int8 MACs at the machine's int8 rate, int8 / packed int4
bytes in addresses, line accesses and DRAM traffic.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp

from irflow import zoo
from irflow.backends import sim
from irflow.backends.reference import run
from irflow.backends.sim import executor, tile_kernels
from irflow.backends.sim.machine import load_machine
from irflow.dialects import accel, nn
from irflow.graph import GraphBuilder, input_names, main_func
from irflow.io import parse_mlir, print_module
from irflow.passes.calibrate import set_calibration_data
from irflow.pipeline import run_pipeline
from irflow.weights import attach_weights, weights_of


def model(name: str, pipeline: str, seed: int = 0
          ) -> tuple[ModuleOp, dict[str, np.ndarray]]:
    module = zoo.load(name, seed=seed)
    fn = main_func(module)
    rng = np.random.default_rng(seed)
    shapes = {n: a.type.get_shape() for n, a in zip(input_names(fn), fn.body.blocks[0].args)}
    ids = {n for n, a in zip(input_names(fn), fn.body.blocks[0].args) if "i64" in str(a.type)}

    def sample() -> dict[str, np.ndarray]:
        return {n: rng.integers(0, 100, s) if n in ids else rng.standard_normal(s).astype(
            np.float32) for n, s in shapes.items()}

    set_calibration_data(module, [sample() for _ in range(2)])
    run_pipeline(module, pipeline)
    return module, sample()


def assert_bit_exact(module: ModuleOp, inputs: dict[str, np.ndarray],
                     machine: str | None = None, epilogue: bool = True) -> sim.SimResult:
    ref = run(module, inputs)
    result = sim.simulate(module, inputs, machine=machine, epilogue=epilogue)
    assert result.outputs.keys() == ref.keys()
    for k in ref:
        assert result.outputs[k].dtype == ref[k].dtype
        np.testing.assert_array_equal(result.outputs[k], ref[k], err_msg=k)
    return result


@pytest.mark.parametrize("pipeline", ["int8", "w4a8"])
@pytest.mark.parametrize("name", ["lenet5", "digits_cnn", "transformer_encoder"])
def test_zoo_model_is_bit_exact(name: str, pipeline: str):
    assert_bit_exact(*model(name, pipeline))


@pytest.mark.slow
@pytest.mark.parametrize("pipeline", ["int8", "w4a8"])
@pytest.mark.parametrize("name", ["mobilenetv2", "resnet18", "resnet50"])
def test_big_zoo_model_is_bit_exact(name: str, pipeline: str):
    assert_bit_exact(*model(name, pipeline))


@pytest.mark.slow
def test_bert_base_int8_encoder_is_bit_exact():
    """The encoder output ends in a float layernorm fed by integer layers: exact. The
    pooler's linear keeps its fused tanh, so it stays float and the simulator's K-tiled
    float32 sums differ from the reference's in rounding only."""
    module, inputs = model("bert-base", "int8")
    ref = run(module, inputs)
    out = sim.simulate(module, inputs).outputs
    np.testing.assert_array_equal(out["last_hidden_state"], ref["last_hidden_state"])
    np.testing.assert_allclose(out["pooler_output"], ref["pooler_output"], rtol=1e-4, atol=1e-6)


def test_every_zoo_model_is_covered():
    assert set(zoo.names()) <= {"lenet5", "digits_cnn", "transformer_encoder",
                                "mobilenetv2", "resnet18", "resnet50",
                                "bert-base"}


def test_micro_machine_tiles_are_bit_exact():
    """Smaller cache, 32 B lines: other tiles, same integers."""
    assert_bit_exact(*model("lenet5", "int8"), machine="micro")


def conv_module(order: str, sizes: str, act: str = "relu", groups: int = 1,
                stride: int = 1, seed: int = 3) -> tuple[ModuleOp, dict]:
    """A quantized 3×3 conv (per-channel int8 weights, int32 bias, u8 result) and a max
    pool, tiled by `sizes`."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder()
    x = g.input("x", (1, 20, 9, 11))
    w = g.weight("w", rng.standard_normal((24, 20 // groups, 3, 3)).astype(np.float32))
    b = g.weight("b", rng.standard_normal(24).astype(np.float32))
    y = g.add(nn.Conv2dOp(x, w, b, strides=(stride, stride), pads=(1, 1, 1, 1), act=act,
                          groups=groups))
    # an integer consumer: the conv requantizes to u8 (a conv feeding only the output
    # would keep its int32 accumulator)
    z = g.add(nn.MaxPoolOp.make([y.results[0]], {"kernel": nn.int_array([3, 3]),
                                                 "strides": nn.int_array([2, 2])}))
    module = g.finish(list(z.results))
    inputs = {"x": rng.standard_normal((1, 20, 9, 11)).astype(np.float32)}
    set_calibration_data(module, [inputs])
    run_pipeline(module, "calibrate,quantize{bits=8 granularity=per-channel}")
    run_pipeline(module, f'tile{{sizes="{sizes}" order="{order}"}}')
    return module, inputs


@pytest.mark.parametrize("order", ["n,g,f,oh,ow,c", "g,f,c,n,oh,ow"])
def test_conv_remainder_tiles_and_outer_reduction_are_bit_exact(order: str):
    """Output channels in 5s (per-channel multipliers per tile), K in 3s (partial sums
    of input channels; the weight-stationary order revisits every output tile)."""
    assert_bit_exact(*conv_module(order, "f=5,c=3,oh=4,ow=5"))


@settings(max_examples=12, deadline=None)
@given(groups=st.sampled_from([1, 2, 4]), stride=st.sampled_from([1, 2]),
       tg=st.integers(1, 4), tf=st.integers(1, 12), tc=st.integers(1, 20),
       toh=st.integers(1, 9), order=st.sampled_from(["n,g,f,oh,ow,c", "g,f,c,n,oh,ow",
                                                      "n,g,oh,ow,f,c", "c,n,g,f,oh,ow"]),
       act=st.sampled_from(["relu", "relu6"]))
def test_grouped_conv_any_tiling_is_bit_exact(groups, stride, tg, tf, tc, toh, order, act):
    """Grouped convs tiled across groups and filters take non-contiguous output-channel
    sets per tile (g·F/G + f): each tile's plan must carry exactly those multipliers."""
    assert_bit_exact(*conv_module(order, f"g={tg},f={tf},c={tc},oh={toh},ow=4", act,
                                  groups, stride))


def test_requantizing_with_another_tiles_multipliers_is_caught(monkeypatch):
    module, inputs = conv_module("n,g,f,oh,ow,c", "f=8,c=7")
    ref = run(module, inputs)
    real = tile_kernels.contraction_plan
    monkeypatch.setattr(tile_kernels, "contraction_plan",
                        lambda op, ch: real(op, (ch + 8) % 24))  # the next tile's parameters
    out = sim.simulate(module, inputs).outputs
    assert not all(np.array_equal(out[k], ref[k]) for k in ref)


def test_shifted_slice_is_caught(monkeypatch):
    module, inputs = conv_module("n,g,f,oh,ow,c", "f=8,c=7,oh=3")
    ref = run(module, inputs)
    real = executor._index

    def shifted(ranges):
        idx = list(real(ranges))
        a = idx[0]
        if a.start is not None and a.start > 0:
            idx[0] = slice(a.start - 1, a.stop - 1 if a.stop else None, a.step)
        return tuple(idx)

    monkeypatch.setattr(executor, "_index", shifted)
    out = sim.simulate(module, inputs).outputs
    assert not all(np.array_equal(out[k], ref[k]) for k in ref)


def test_int8_conv_runs_at_the_int8_rate_with_one_byte_elements():
    module, inputs = conv_module("n,g,f,oh,ow,c", "f=24,c=20,oh=9,ow=11")  # one step
    result = assert_bit_exact(module, inputs)
    m = load_machine(None)
    conv = next(s for s in result.report.layers if s.op == "nn.conv2d")
    macs = 24 * 20 * 3 * 3 * 9 * 11  # F · C · kh · kw · OH · OW
    assert conv.macs == macs and conv.dtype == "int8" and conv.steps == 1
    # ws: rows = c·r·s = 180 (12 folds of 16), cols = f = 24 (2 folds), 99 pixels streamed
    # at 1 MAC per PE and cycle; 4,320 int8 weights = 135 cycles over the 32 B/cycle
    # load path, 5.625 per fold, hidden behind the stream; the skew (30) once
    assert m.pe_array.rows == m.pe_array.cols == 16 and m.mapping("conv2d").dataflow == "ws"
    assert conv.compute_cycles == 2382 + 30 == 12 * 2 * 99 + 6 + 30  # ceil(5.625 + 24 x 99)
    assert conv.mapped_cycles == 24 * 99 and conv.pe_busy_cycles == macs / 256
    # bytes: u8/i8 input (1 B), i8 weights (1 B), i32 bias (4 B), u8 output (1 B)
    assert result.traces[1].compulsory_bytes == 20 * 9 * 11 + 24 * 20 * 9 + 24 * 4 + 24 * 9 * 11


def test_int4_weights_are_packed_two_per_byte():
    rng = np.random.default_rng(5)
    g = GraphBuilder()
    x = g.input("x", (4, 96))
    w = g.weight("fc.weight", rng.standard_normal((64, 96)).astype(np.float32))
    y = g.add(nn.LinearOp.make([x, w], {}))
    module = g.finish(list(y.results))
    inputs = {"x": rng.standard_normal((4, 96)).astype(np.float32)}
    set_calibration_data(module, [inputs])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_pipeline(module, "calibrate,quantize{bits=4 granularity=per-channel}")
    result = assert_bit_exact(module, inputs)
    assert result.module is not None
    weight = next(op for op in result.module.walk() if isinstance(op, accel.WeightOp))
    assert accel.stored_nbytes(weight) == 64 * 96 // 2
    lin = next(s for s in result.report.layers if s.op == "nn.linear")
    assert lin.cache_by_role.weight.misses * 64 == 64 * 96 // 2  # 3 KiB: 48 lines
    assert lin.dtype == "int8"  # w4a8: int8 activations set the MAC rate


def test_quant_casts_are_vector_layers():
    module, inputs = model("lenet5", "int8")
    result = assert_bit_exact(module, inputs, epilogue=False)  # the default fuses the dcast
    kinds = {s.op: s for s in result.report.layers}
    assert kinds["quant.qcast"].unit == "vector"
    assert kinds["quant.dcast"].unit == "vector"
    assert kinds["quant.qcast"].vector_ops == 32 * 32


def test_lowered_quantized_sparse_program_round_trips_and_runs():
    """Quantized types, quant-cast layers and compressed weights print, parse back, and
    the parsed program runs to the same integers."""
    module, inputs = model("digits_cnn", "int8-sparse")
    lowered = sim.lower(module, load_machine(None))
    text = print_module(lowered)
    assert '"quant.qcast"' in text and 'accel.format = "2:4"' in text
    again = attach_weights(parse_mlir(text, "q.mlir"), weights_of(lowered))
    assert print_module(again) == text
    ref = run(module, inputs)
    out = sim.simulate(again, inputs).outputs
    for k in ref:
        np.testing.assert_array_equal(out[k], ref[k])
