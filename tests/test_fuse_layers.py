"""Layer fusion (`fuse-layers`, `accel.fused`, docs/simulator.md §2.5): a fused group runs
depth-first with the unfused program's numbers, its intermediates never cross DRAM,
halo recompute is counted, the decision follows the estimate, and a requested fusion
that cannot be honoured is a located PassError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from irflow.backends import sim
from irflow.backends.reference.executor import run
from irflow.backends.sim.machine import load_machine
from irflow.diagnostics import PassError
from irflow.dialects import accel
from irflow.dialects import accel_epilogue as ep
from irflow.graph import main_func
from irflow.io import parse_mlir, print_module
from irflow.passes.fuse_layers import FuseLayersPass, fuse_function
from irflow.pipeline import run_pipeline
from irflow.verify import verify_module

M = load_machine("default")


def _w(rng: np.random.Generator, *shape: int) -> str:
    values = (rng.standard_normal(shape) * 0.3).astype(np.float32)
    return np.array2string(values, separator=", ", threshold=10**6, floatmode="unique")


def inverted_residual(c: int = 8, e: int = 32, hw: int = 16, stride: int = 1) -> str:
    """MobileNetV2's block without the skip: expand 1×1 → relu6 → depthwise 3×3 →
    relu6 → project 1×1."""
    rng = np.random.default_rng(0)
    o = (hw - 1) // stride + 1
    x, t, y = (f"tensor<1x{c}x{hw}x{hw}xf32>", f"tensor<1x{e}x{hw}x{hw}xf32>",
               f"tensor<1x{c}x{o}x{o}xf32>")
    d = f"tensor<1x{e}x{o}x{o}xf32>"
    dw = (f"{{pads = array<i64: 1, 1, 1, 1>, groups = {e} : i64, "
          f"strides = array<i64: {stride}, {stride}>}}")
    return f"""
func.func @main(%x: {x}) -> {y} {{
  %w1 = nn.constant dense<{_w(rng, e, c, 1, 1)}> : tensor<{e}x{c}x1x1xf32>
  %w2 = nn.constant dense<{_w(rng, e, 1, 3, 3)}> : tensor<{e}x1x3x3xf32>
  %w3 = nn.constant dense<{_w(rng, c, e, 1, 1)}> : tensor<{c}x{e}x1x1xf32>
  %a = nn.conv2d %x, %w1 : ({x}, tensor<{e}x{c}x1x1xf32>) -> {t}
  %a6 = nn.relu6 %a : {t}
  %b = nn.conv2d %a6, %w2 {dw} : ({t}, tensor<{e}x1x3x3xf32>) -> {d}
  %b6 = nn.relu6 %b : {d}
  %y = nn.conv2d %b6, %w3 : ({d}, tensor<{c}x{e}x1x1xf32>) -> {y}
  func.return %y : {y}
}}"""


def _module(text: str):  # noqa: ANN202
    m = parse_mlir(text)
    run_pipeline(m, "default")
    return m


def _x(shape: tuple[int, ...], seed: int = 1) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(seed).standard_normal(shape).astype(np.float32)}


def _groups(result: sim.SimResult) -> list[accel.FusedOp]:
    assert result.module is not None
    return [op for op in result.module.walk() if isinstance(op, accel.FusedOp)]


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("overlap", ["cache", "recompute"])
def test_inverted_residual_fused_numbers_and_dram(stride: int, overlap: str) -> None:
    m = _module(inverted_residual(stride=stride))
    x = _x((1, 8, 16, 16))
    plain = sim.simulate(m, x)
    fused = sim.simulate(m, x, fuse_layers={"objective": "always", "overlap": overlap,
                                            "band": 2})
    (g,) = _groups(fused)
    assert len(g.layers) == 3 and g.band.value.data == 2
    ref = run(m, x)
    for k in ref:
        np.testing.assert_allclose(fused.outputs[k], plain.outputs[k], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(fused.outputs[k], ref[k], rtol=1e-4, atol=1e-5)
    a, b = plain.report.total, fused.report.total
    x_b, y_b = 8 * 16 * 16 * 4, 8 * (16 // stride) ** 2 * 4
    w_b = 32 * 8 * 4 + 32 * 9 * 4 + 8 * 32 * 4
    # only the group's input, weights and result cross DRAM (the result's lines are
    # read on their write-allocate); layer by layer also moves the intermediates
    assert (b.dram_bytes_read, b.dram_bytes_written) == (x_b + w_b + y_b, y_b)
    assert a.dram_bytes_read > b.dram_bytes_read + 32 * (16 // stride) ** 2 * 4
    assert a.dram_bytes_written > b.dram_bytes_written + 32 * (16 // stride) ** 2 * 4
    # one report row per layer, the bands added up
    names = [s.name for s in fused.report.layers]
    assert names[:3] == [s.name for s in plain.report.layers][:3]
    if overlap == "cache":
        assert b.macs == a.macs
    else:  # the depthwise rows two bands share are computed twice (halo recompute)
        assert b.macs > a.macs


def test_worked_example_dram_bytes() -> None:
    """docs/simulator.md §2.5's worked example (its figures are these)."""
    m = _module(inverted_residual())
    x = _x((1, 8, 16, 16))
    plain = sim.simulate(m, x, numerics=False)
    fused = sim.simulate(m, x, numerics=False, fuse_layers={"objective": "always",
                                                            "band": 2})
    a, b = plain.report.total, fused.report.total
    assert (a.dram_bytes_read, a.dram_bytes_written) == (68736, 65536)
    assert (b.dram_bytes_read, b.dram_bytes_written) == (19584, 8192)
    assert (a.macs, b.macs) == (204800, 204800)
    rec = sim.simulate(m, x, numerics=False, fuse_layers={
        "objective": "always", "band": 2, "overlap": "recompute"}).report.total
    # halo recompute: each band computes 4 expand rows (3 at the edges) for its 2
    # depthwise rows: 30 rows instead of 16, 14 × 16 pixels × 32·8 MACs again
    assert rec.macs - a.macs == 57344
    assert (rec.dram_bytes_read, rec.dram_bytes_written) == (19584, 8192)


def test_fused_group_prints_parses_and_verifies() -> None:
    m = _module(inverted_residual())
    lowered = sim.lower(m, M, fuse_layers={"objective": "always"})
    text = print_module(lowered)
    assert 'accel.fused "' in text and "accel.yield" in text
    again = parse_mlir(text)
    verify_module(again)
    assert print_module(again) == text
    x = _x((1, 8, 16, 16))
    (got,), (want,) = sim.simulate(again, x).outputs.values(), run(m, x).values()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _lowered(text: str):  # noqa: ANN202
    return sim.lower(_module(text), M)


def test_requested_fusion_errors_name_the_layer() -> None:
    low = _lowered(inverted_residual())
    labels = [op.label.data for op in main_func(low).body.blocks[0].ops
              if isinstance(op, accel.LayerOp)]
    assert len(labels) == 3
    with pytest.raises(PassError, match="no layer 'nope'"):
        FuseLayersPass(layers=f"{labels[0]},nope").fuse(low.clone(), M)
    with pytest.raises(PassError, match=f"cannot fuse layer '{labels[0]}' into "
                                        f"'{labels[2]}': its result goes to layer"):
        FuseLayersPass(layers=f"{labels[0]},{labels[2]}").fuse(low.clone(), M)
    with pytest.raises(PassError, match=f"layer '{labels[0]}' cannot be fused .* ring "
                                        "buffers need"):
        FuseLayersPass(layers=",".join(labels), budget=0.001).fuse(low.clone(), M)
    with pytest.raises(PassError, match="two or more layers"):
        FuseLayersPass(layers=labels[0]).fuse(low.clone(), M)
    with pytest.raises(PassError, match="objective"):
        FuseLayersPass(objective="fast")
    ok = low.clone()
    (d,) = FuseLayersPass(layers=",".join(labels[1:])).fuse(ok, M)
    assert d.chosen and d.labels == labels[1:]
    verify_module(ok)


def test_pipeline_option_runs_on_the_accel_program() -> None:
    m = _module(inverted_residual())
    with pytest.raises(PassError, match="run it after lower-to-accel"):
        run_pipeline(m.clone(), "fuse-layers")
    run_pipeline(m, "tile,plan-memory,lower-to-accel,fuse-epilogue,"
                    "fuse-layers{objective=always band=4}")
    assert sum(isinstance(op, accel.FusedOp) for op in m.walk()) == 1
    with pytest.raises(PassError, match="fuse-epilogue runs before fuse-layers"):
        run_pipeline(m, "fuse-epilogue")  # its memory re-plan does not know fused groups


def test_decision_follows_the_estimate() -> None:
    """Large weights re-fetched per band (ResNet-like 3×3 convs on 256 channels) do not
    pay; a small-weight inverted residual does."""
    small = _lowered(inverted_residual(c=16, e=96, hw=56))
    (d,) = fuse_function(main_func(small), M, objective="dram")
    assert d.chosen and d.fused.dram_bytes < d.unfused.dram_bytes
    t = "tensor<1x256x14x14xf32>"
    big = f"""
func.func @main(%x: {t}) -> {t} {{
  %w1 = nn.constant dense<0.01> : tensor<256x256x3x3xf32>
  %w2 = nn.constant dense<0.02> : tensor<256x256x3x3xf32>
  %a = nn.conv2d %x, %w1 {{pads = array<i64: 1, 1, 1, 1>}} : ({t}, tensor<256x256x3x3xf32>) -> {t}
  %r = nn.relu %a : {t}
  %y = nn.conv2d %r, %w2 {{pads = array<i64: 1, 1, 1, 1>}} : ({t}, tensor<256x256x3x3xf32>) -> {t}
  func.return %y : {t}
}}"""
    low = _lowered(big)
    (d,) = fuse_function(main_func(low), M, objective="dram")
    assert not d.chosen and d.fused.dram_bytes > d.unfused.dram_bytes
    assert not any(isinstance(op, accel.FusedOp) for op in low.walk())


def test_attention_matmul_softmax_matmul() -> None:
    """The transformer encoder's attention (matmul → softmax → matmul; `fuse-epilogue`
    puts the scale and the softmax in the first matmul's output path, the head merge's
    transpose in the second's) fused in row blocks of queries: the unfused numbers."""
    from irflow import zoo
    from irflow.inputs import random_inputs

    m = zoo.load("transformer_encoder", seed=0)
    run_pipeline(m, "default")
    x = random_inputs(m, 0)
    plain = sim.simulate(m, x)
    fused = sim.simulate(m, x, fuse_layers={"layers": "matmul_0,matmul_1"})
    (g,) = _groups(fused)
    assert [op.kind.data for op in g.layers] == ["nn.matmul", "nn.matmul"]
    assert [s.kind for s in ep.stages(g.layers[0])] == ["nn.mul", "nn.softmax"]
    assert g.band_loop.data == "m"
    for k in plain.outputs:
        np.testing.assert_allclose(fused.outputs[k], plain.outputs[k], rtol=1e-5, atol=1e-6)
    a, b = plain.report.total, fused.report.total
    assert b.dram_bytes_read + b.dram_bytes_written < a.dram_bytes_read + a.dram_bytes_written
    low = sim.lower(m, M, epilogue=False)  # the head transposes as layers of their own
    with pytest.raises(PassError, match=r"layer 'transpose_0' \(nn.transpose\) cannot be "
                                        "banded by rows"):
        FuseLayersPass(layers="transpose_0,matmul_0").fuse(low, M)


def test_transformer_every_chain_fused() -> None:
    """`always` on the transformer encoder: attention and the feed-forward pair
    (linear → gelu epilogue → linear, its residual add in linear2's epilogue, then the
    layernorm) run depth-first with the unfused numbers."""
    from irflow import zoo
    from irflow.inputs import random_inputs

    m = zoo.load("transformer_encoder", seed=0)
    run_pipeline(m, "default")
    x = random_inputs(m, 0)
    plain = sim.simulate(m, x)
    fused = sim.simulate(m, x, fuse_layers={"objective": "always"})
    kinds = [[op.kind.data for op in g.layers] for g in _groups(fused)]
    assert ["nn.matmul", "nn.matmul"] in kinds  # the softmax is in the first's epilogue
    assert ["nn.linear", "nn.linear", "nn.layernorm"] in kinds
    for k in plain.outputs:
        np.testing.assert_allclose(fused.outputs[k], plain.outputs[k], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_int8_mobilenetv2_fused_bit_exact_and_fewer_dram_bytes() -> None:
    """Issue 10's "fused MobileNetV2 moves measurably fewer DRAM bytes than layer by
    layer", in int8, with the unfused program's integers bit for bit."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    from bench_fusion import compile_model

    m, x = compile_model("mobilenetv2", "int8")
    plain = sim.simulate(m, x, progress=False)
    fused = sim.simulate(m, x, progress=False, fuse_layers={"objective": "dram"})
    assert len(_groups(fused)) >= 10
    for k in plain.outputs:
        np.testing.assert_array_equal(fused.outputs[k], plain.outputs[k])
    a, b = plain.report.total, fused.report.total
    assert b.dram_bytes_read + b.dram_bytes_written < 0.5 * (
        a.dram_bytes_read + a.dram_bytes_written)
    assert a.macs == b.macs


def test_cli_fuse_layers_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from irflow.cli import main

    path = tmp_path / "block.mlir"
    path.write_text(inverted_residual())
    assert main(["run", str(path), "--fuse-layers", "always"]) == 0
    out = capsys.readouterr().out
    assert "fused group 'conv2d_0'" in out
    assert main(["run", str(path)]) == 0
    assert "fused group" not in capsys.readouterr().out
