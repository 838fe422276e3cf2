"""Epilogue fusion (`fuse-epilogue`, docs/simulator.md §2.4): the fused program computes
the unfused program's numbers (bit for bit; integer programs equal the reference
executor's), never stores or re-reads the intermediates, still reads the residual, and
costs per step max(PE, vector) plus the epilogue's drain."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import TensorType

from irflow.backends import sim
from irflow.backends.reference.executor import run
from irflow.backends.sim.cache import LRUCache
from irflow.backends.sim.cost import layer_stats
from irflow.backends.sim.machine import load_machine
from irflow.backends.sim.trace import LayerTrace, Role, Unit
from irflow.dialects import accel, quant
from irflow.dialects import accel_epilogue as ep
from irflow.dialects.quant import UniformQuantizedType, quant_type
from irflow.graph import main_func
from irflow.io import parse_mlir, print_module
from irflow.passes.calibrate import set_calibration_data
from irflow.passes.fuse_epilogue import fuse_function
from irflow.pipeline import run_pipeline
from irflow.weights import attach_weights, weights_of

M = load_machine("default")


def _w(rng: np.random.Generator, *shape: int, scale: float = 0.3) -> str:
    values = (rng.standard_normal(shape) * scale).astype(np.float32)
    return np.array2string(values, separator=", ", threshold=10**6, floatmode="unique")


def resnet_block() -> str:
    """conv → batchnorm → relu → conv → batchnorm → add(skip) → relu, batchnorm unfolded."""
    rng = np.random.default_rng(0)
    c = "tensor<8xf32>"
    vec = {f"{p}{i}": _w(rng, 8) if p != "v" else np.array2string(
        rng.uniform(0.5, 2, 8).astype(np.float32), separator=", ", floatmode="unique")
        for p in "sbmv" for i in (1, 2)}
    consts = "\n".join(f"  %{k} = nn.constant dense<{v}> : {c}" for k, v in vec.items())
    t = "tensor<1x8x10x10xf32>"
    return f"""
func.func @main(%x: {t}) -> {t} {{
  %w1 = nn.constant dense<{_w(rng, 8, 8, 3, 3)}> : tensor<8x8x3x3xf32>
  %w2 = nn.constant dense<{_w(rng, 8, 8, 3, 3)}> : tensor<8x8x3x3xf32>
{consts}
  %c1 = nn.conv2d %x, %w1 {{pads = array<i64: 1, 1, 1, 1>}} : ({t}, tensor<8x8x3x3xf32>) -> {t}
  %n1 = nn.batchnorm %c1, %s1, %b1, %m1, %v1 : ({t}, {c}, {c}, {c}, {c}) -> {t}
  %r1 = nn.relu %n1 : {t}
  %c2 = nn.conv2d %r1, %w2 {{pads = array<i64: 1, 1, 1, 1>}} : ({t}, tensor<8x8x3x3xf32>) -> {t}
  %n2 = nn.batchnorm %c2, %s2, %b2, %m2, %v2 : ({t}, {c}, {c}, {c}, {c}) -> {t}
  %a = nn.add %n2, %x : ({t}, {t}) -> {t}
  %y = nn.relu %a : {t}
  func.return %y : {t}
}}"""


def ffn_block() -> str:
    """A transformer FFN: matmul → add(bias) → gelu → matmul → add(bias) → add(residual)."""
    rng = np.random.default_rng(1)
    t, h = "tensor<1x12x24xf32>", "tensor<1x12x40xf32>"
    return f"""
func.func @main(%x: {t}) -> {t} {{
  %w1 = nn.constant dense<{_w(rng, 24, 40)}> : tensor<24x40xf32>
  %b1 = nn.constant dense<{_w(rng, 40)}> : tensor<40xf32>
  %w2 = nn.constant dense<{_w(rng, 40, 24)}> : tensor<40x24xf32>
  %b2 = nn.constant dense<{_w(rng, 24)}> : tensor<24xf32>
  %m1 = nn.matmul %x, %w1 : ({t}, tensor<24x40xf32>) -> {h}
  %a1 = nn.add %m1, %b1 : ({h}, tensor<40xf32>) -> {h}
  %g = nn.gelu %a1 : {h}
  %m2 = nn.matmul %g, %w2 : ({h}, tensor<40x24xf32>) -> {t}
  %a2 = nn.add %b2, %m2 : (tensor<24xf32>, {t}) -> {t}
  %y = nn.add %a2, %x : ({t}, {t}) -> {t}
  func.return %y : {t}
}}"""


def norm_block() -> str:
    """Vector-unit producers: matmul → add → layernorm → relu → matmul → softmax → mul
    (a per-column scale) → matmul → add(residual); `int8` puts a `quant.qcast` after the
    relu and the mul (they feed integer matmuls)."""
    rng = np.random.default_rng(3)
    t, h = "tensor<1x12x24xf32>", "tensor<1x12x40xf32>"
    return f"""
func.func @main(%x: {t}) -> {t} {{
  %w1 = nn.constant dense<{_w(rng, 24, 40)}> : tensor<24x40xf32>
  %b1 = nn.constant dense<{_w(rng, 40)}> : tensor<40xf32>
  %g = nn.constant dense<{_w(rng, 40, scale=1.0)}> : tensor<40xf32>
  %be = nn.constant dense<{_w(rng, 40)}> : tensor<40xf32>
  %w2 = nn.constant dense<{_w(rng, 40, 40)}> : tensor<40x40xf32>
  %c = nn.constant dense<{_w(rng, 40, scale=1.0)}> : tensor<40xf32>
  %w3 = nn.constant dense<{_w(rng, 40, 24)}> : tensor<40x24xf32>
  %m1 = nn.matmul %x, %w1 : ({t}, tensor<24x40xf32>) -> {h}
  %a1 = nn.add %m1, %b1 : ({h}, tensor<40xf32>) -> {h}
  %n = nn.layernorm %a1, %g, %be : ({h}, tensor<40xf32>, tensor<40xf32>) -> {h}
  %r = nn.relu %n : {h}
  %m2 = nn.matmul %r, %w2 : ({h}, tensor<40x40xf32>) -> {h}
  %s = nn.softmax %m2 {{axis = -1 : i64}} : {h}
  %p = nn.mul %s, %c : ({h}, tensor<40xf32>) -> {h}
  %m3 = nn.matmul %p, %w3 : ({h}, tensor<40x24xf32>) -> {t}
  %y = nn.add %m3, %x : ({t}, {t}) -> {t}
  func.return %y : {t}
}}"""


def attn_block() -> str:
    """Attention with the exporters' head transposes: q/k/v matmul → add(bias) → reshape
    → transpose (k: to 0,2,3,1) → scores matmul → mul → softmax (axis 3 of 4; the
    matmul's tile view merges the batch axes) → context matmul →
    transpose → reshape → output matmul → add(residual); `int8` puts a `quant.qcast`
    after each transpose (the integer score and context matmuls read it)."""
    rng = np.random.default_rng(4)
    t, h4, k4 = "tensor<1x12x24xf32>", "tensor<1x12x2x12xf32>", "tensor<1x2x12x12xf32>"
    w = "tensor<24x24xf32>"
    proj = "\n".join(f"""  %w{n} = nn.constant dense<{_w(rng, 24, 24)}> : {w}
  %b{n} = nn.constant dense<{_w(rng, 24)}> : tensor<24xf32>
  %m{n} = nn.matmul %x, %w{n} : ({t}, {w}) -> {t}
  %a{n} = nn.add %m{n}, %b{n} : ({t}, tensor<24xf32>) -> {t}
  %r{n} = nn.reshape %a{n} : ({t}) -> {h4}""" for n in "qkv")
    return f"""
func.func @main(%x: {t}) -> {t} {{
{proj}
  %wo = nn.constant dense<{_w(rng, 24, 24)}> : {w}
  %sc = nn.constant dense<0.288675> : tensor<f32>
  %q = nn.transpose %rq {{perm = array<i64: 0, 2, 1, 3>}} : ({h4}) -> {k4}
  %k = nn.transpose %rk {{perm = array<i64: 0, 2, 3, 1>}} : ({h4}) -> {k4}
  %v = nn.transpose %rv {{perm = array<i64: 0, 2, 1, 3>}} : ({h4}) -> {k4}
  %s = nn.matmul %q, %k : ({k4}, {k4}) -> {k4}
  %s2 = nn.mul %s, %sc : ({k4}, tensor<f32>) -> {k4}
  %p = nn.softmax %s2 {{axis = 3 : i64}} : {k4}
  %c = nn.matmul %p, %v : ({k4}, {k4}) -> {k4}
  %ct = nn.transpose %c {{perm = array<i64: 0, 2, 1, 3>}} : ({k4}) -> {h4}
  %cr = nn.reshape %ct : ({h4}) -> {t}
  %o = nn.matmul %cr, %wo : ({t}, {w}) -> {t}
  %y = nn.add %o, %x : ({t}, {t}) -> {t}
  func.return %y : {t}
}}"""


def enc_block() -> str:
    """A BERT encoder's second half: matmul → add(bias) → add(residual) → layernorm,
    whose result feeds the FFN (matmul → add → gelu → matmul → add) and its residual add
    → layernorm; `int8` puts a `quant.qcast` between the first layernorm and the FFN
    matmul: the layernorm's result has two uses, the cast and the float residual add."""
    rng = np.random.default_rng(5)
    t, h = "tensor<1x12x24xf32>", "tensor<1x12x40xf32>"
    v24, v40 = "tensor<24xf32>", "tensor<40xf32>"
    return f"""
func.func @main(%x: {t}) -> {t} {{
  %w1 = nn.constant dense<{_w(rng, 24, 24)}> : tensor<24x24xf32>
  %b1 = nn.constant dense<{_w(rng, 24)}> : {v24}
  %g = nn.constant dense<{_w(rng, 24, scale=1.0)}> : {v24}
  %be = nn.constant dense<{_w(rng, 24)}> : {v24}
  %w2 = nn.constant dense<{_w(rng, 24, 40)}> : tensor<24x40xf32>
  %b2 = nn.constant dense<{_w(rng, 40)}> : {v40}
  %w3 = nn.constant dense<{_w(rng, 40, 24)}> : tensor<40x24xf32>
  %b3 = nn.constant dense<{_w(rng, 24)}> : {v24}
  %m1 = nn.matmul %x, %w1 : ({t}, tensor<24x24xf32>) -> {t}
  %a1 = nn.add %m1, %b1 : ({t}, {v24}) -> {t}
  %r1 = nn.add %a1, %x : ({t}, {t}) -> {t}
  %n1 = nn.layernorm %r1, %g, %be : ({t}, {v24}, {v24}) -> {t}
  %m2 = nn.matmul %n1, %w2 : ({t}, tensor<24x40xf32>) -> {h}
  %a2 = nn.add %m2, %b2 : ({h}, {v40}) -> {h}
  %gl = nn.gelu %a2 : {h}
  %m3 = nn.matmul %gl, %w3 : ({h}, tensor<40x24xf32>) -> {t}
  %a3 = nn.add %m3, %b3 : ({t}, {v24}) -> {t}
  %r2 = nn.add %a3, %n1 : ({t}, {t}) -> {t}
  %y = nn.layernorm %r2, %g, %be : ({t}, {v24}, {v24}) -> {t}
  func.return %y : {t}
}}"""


TILES = {"resnet": 'tile{sizes="f=3,oh=4,c=5"}', "ffn": 'tile{sizes="m=5,n=16,k=7"}',
         "norm": 'tile{sizes="m=5,n=16,k=7,d1=5"}', "attn": 'tile{sizes="m=5,n=7,k=5"}',
         "enc": 'tile{sizes="m=5,k=7,d1=5"}'}
"""Tiles that cut channels, rows and the reduction, with remainders everywhere."""
SOURCES = {"resnet": resnet_block, "ffn": ffn_block, "norm": norm_block,
           "attn": attn_block, "enc": enc_block}


def build(name: str, pipeline: str) -> tuple[object, dict[str, np.ndarray]]:
    module = parse_mlir(SOURCES[name](), f"{name}.mlir")
    shape = main_func(module).body.blocks[0].args[0].type.get_shape()
    rng = np.random.default_rng(2)
    sample = lambda: {"x": rng.standard_normal(shape).astype(np.float32)}  # noqa: E731
    if pipeline != "none":
        set_calibration_data(module, [sample() for _ in range(2)])
        run_pipeline(module, pipeline)
    return module, sample()


def lowered(module, tiles: str = "") -> tuple[object, object]:
    """(unfused, fused) lowered copies of `module` (tiled with `tiles` first if given)."""
    if tiles:
        module = attach_weights(module.clone(), weights_of(module))
        run_pipeline(module, tiles)
    plain = sim.lower(module, M, epilogue=False)
    fused = attach_weights(plain.clone(), weights_of(plain))
    fuse_function(main_func(fused), M.cache.line_bytes)
    return plain, fused


def epilogues(module) -> dict[str, list[str]]:
    return {op.label.data: [s.kind for s in ep.stages(op)] for op in module.walk()
            if isinstance(op, accel.LayerOp) and op.epilogue is not None}


@pytest.mark.parametrize("tiles", [False, True])
@pytest.mark.parametrize("name,pipeline", [("resnet", "none"), ("resnet", "int8"),
                                           ("ffn", "none"), ("ffn", "int8"),
                                           ("norm", "none"), ("norm", "int8"),
                                           ("attn", "none"), ("attn", "int8"),
                                           ("enc", "none"), ("enc", "int8")])
def test_fused_numbers_equal_the_unfused_program(name, pipeline, tiles):
    module, x = build(name, pipeline)
    plain, fused = lowered(module, TILES[name] if tiles else "")
    kinds = epilogues(fused)
    want = {("resnet", "none"): [["nn.batchnorm", "nn.relu"], ["nn.batchnorm", "nn.add",
                                                               "nn.relu"]],
            ("resnet", "int8"): [["nn.add", "quant.dcast"]],  # bn folded, relus are `act`s
            ("ffn", "none"): [["nn.add", "nn.gelu"], ["nn.add", "nn.add"]],
            ("ffn", "int8"): [["quant.dcast", "nn.add", "nn.gelu", "quant.qcast"],
                              ["quant.dcast", "nn.add", "nn.add"]],
            ("norm", "none"): [["nn.add"], ["nn.relu"], ["nn.mul"], ["nn.add"]],
            ("norm", "int8"): [["quant.dcast", "nn.add"], ["nn.relu", "quant.qcast"],
                               ["quant.dcast"], ["nn.mul", "quant.qcast"],
                               ["nn.add", "quant.dcast"]],
            ("attn", "none"): [["nn.add", "nn.transpose"]] * 3 + [["nn.mul"], ["nn.transpose"],
                                                                  ["nn.add"]],
            ("attn", "int8"): [["quant.dcast", "nn.add", "quant.qcast", "nn.transpose"]] * 3
            + [["quant.dcast", "nn.mul"], ["quant.qcast"], ["nn.transpose"],
               ["nn.add", "quant.dcast"]],
            ("enc", "none"): [["nn.add", "nn.add", "nn.layernorm"], ["nn.add", "nn.gelu"],
                              ["nn.add", "nn.add", "nn.layernorm"]],
            ("enc", "int8"): [  # the first layernorm's qcast: a side output
                ["quant.dcast", "nn.add", "nn.add", "nn.layernorm", "quant.qcast"],
                ["quant.dcast", "nn.add", "nn.gelu", "quant.qcast"],
                ["quant.dcast", "nn.add", "nn.add", "nn.layernorm"]]}[name, pipeline]
    if not tiles:  # untiled, the matmuls' tiles hold whole rows: softmax/layernorm join
        want = {("norm", "none"): [["nn.add"], ["nn.add", "nn.layernorm", "nn.relu"],
                                   ["nn.softmax", "nn.mul"]],
                ("norm", "int8"): [["nn.add", "quant.dcast"],
                                   ["quant.dcast", "nn.add", "nn.layernorm", "nn.relu",
                                    "quant.qcast"],
                                   ["quant.dcast", "nn.softmax", "nn.mul", "quant.qcast"]],
                ("attn", "none"): [["nn.add", "nn.transpose"]] * 3 + [
                    ["nn.add"], ["nn.mul", "nn.softmax"], ["nn.transpose"]],
                ("attn", "int8"): [["quant.dcast", "nn.add", "quant.qcast", "nn.transpose"]]
                * 3 + [["nn.add", "quant.dcast"], ["nn.transpose"],
                       ["quant.dcast", "nn.mul", "nn.softmax", "quant.qcast"]],
                }.get((name, pipeline), want)
    assert sorted(kinds.values()) == sorted(want)
    ref = run(module, x)
    a, b = sim.simulate(plain, x).outputs, sim.simulate(fused, x).outputs
    for k in ref:
        np.testing.assert_array_equal(b[k], a[k])
        if pipeline == "int8":  # integer programs: the reference executor's bits
            np.testing.assert_array_equal(b[k], ref[k])
        else:
            np.testing.assert_allclose(b[k], ref[k], rtol=1e-4, atol=1e-5)


def test_requantize_chain_is_fused_and_bit_exact():
    """matmul (int32, per-channel scales) → irq.requantize (cut per tile) → dcast → ..."""
    module, x = build("ffn", "int8")
    fn = main_func(module)
    d = next(op for op in fn.walk() if isinstance(op, quant.DequantizeOp)
             and quant_type(op.input).is_per_axis)
    shape = d.output.type.get_shape()
    q8 = TensorType(UniformQuantizedType.make(8, 0.02, 3), shape)
    r = quant.RequantizeOp(d.input, q8)
    d2 = quant.DequantizeOp(r.output, d.output.type)
    fn.body.blocks[0].insert_ops_before([r, d2], d)
    d.output.replace_all_uses_with(d2.output)
    d.detach()
    d.erase()
    plain, fused = lowered(module, TILES["ffn"])
    assert any(k[:2] == ["irq.requantize", "quant.dcast"] for k in epilogues(fused).values())
    ref = run(module, x)
    out = sim.simulate(fused, x).outputs
    for k in ref:
        np.testing.assert_array_equal(out[k], ref[k])
    text = print_module(fused)  # the epilogue prints and parses back
    again = attach_weights(parse_mlir(text, "f.mlir"), weights_of(fused))
    assert print_module(again) == text


def test_intermediates_are_not_stored_and_the_residual_is_read():
    module, x = build("ffn", "none")
    plain, fused = lowered(module)
    a, b = sim.simulate(plain, x), sim.simulate(fused, x)
    layer = next(op for op in main_func(fused).walk() if isinstance(op, accel.LayerOp)
                 and [s.kind for s in ep.stages(op)] == ["nn.add", "nn.add"])
    trace = next(t for t in b.traces if t.name == layer.label.data)
    line = M.cache.line_bytes

    def lines_of(value) -> set[int]:
        addr = accel.address_of(value)
        return set(range(addr // line, -(-(addr + accel.nbytes(value.type)) // line)))

    residual, out = layer.inputs[-1], layer.output
    read = set(trace.line[~trace.write & (trace.role == int(Role.INPUT))].tolist())
    assert lines_of(residual) <= read  # the residual is still read
    assert set(trace.line[trace.write].tolist()) == lines_of(out)  # only the final result
    assert len(b.traces) == len(a.traces) - 4  # two adds, a gelu, an add: no layers now
    ta, tb = a.report.total, b.report.total
    assert tb.dram_bytes_read + tb.dram_bytes_written < ta.dram_bytes_read + ta.dram_bytes_written
    assert tb.cycles < ta.cycles


def test_worked_example_of_the_pipelined_epilogue():
    """docs/simulator.md §2.4: one int8 step of a 64×16·16×16 matmul (8 + 64 + 30 = 102
    PE cycles) with its requantization and a dcast, add, gelu, qcast epilogue: per
    output element 2 + 2 + 1 + 8 + 2 = 15 vector cycles over 64 lanes,
    V = ceil(1024 · 15 / 64) = 240; C = max(102, 240) + ceil(16 · 15 / 64) = 244."""
    ms_space = accel.layer_space("nn.matmul", [(64, 16), (16, 16)], (64, 16), {})
    from irflow.backends.sim.mapping import map_space

    ms = map_space(ms_space)
    kinds = ("quantize", "quantize", "add", "gelu", "quantize")

    def trace(epilogue: tuple[str, ...], ops: int) -> LayerTrace:
        e = np.zeros(0)
        return LayerTrace("l", "nn.matmul", Unit.PE_ARRAY, "int8", e.astype(np.int64),
                          e.astype(bool), e.astype(np.int8), e.astype(np.int32),
                          np.array([64 * 16 * 16]), np.array([ops]), "quantize",
                          map_space=ms, step_tiles=np.array([[1, 64, 16, 16]]),
                          epilogue=epilogue)

    def cost(t: LayerTrace):
        return layer_stats(t, LRUCache(M.cache.geometry).access(t.line, t.write), M)

    fused = cost(trace(kinds, 1024 * len(kinds)))
    assert fused.pe_cycles == 102 and fused.cycles == 244
    assert fused.vector_ops == 5 * 1024
    own = cost(trace((), 1024))  # the layer alone: its requantization, V = 32
    assert own.cycles == 102


def test_pass_options_and_errors():
    from irflow.diagnostics import PassError
    from irflow.passes.fuse_epilogue import FuseEpiloguePass

    module, _ = build("ffn", "none")
    plain = sim.lower(module, M, epilogue=False)
    only_add = attach_weights(plain.clone(), weights_of(plain))
    run_pipeline(only_add, "fuse-epilogue{only=add}")
    assert sorted(epilogues(only_add).values()) == [["nn.add"], ["nn.add", "nn.add"]]
    with pytest.raises(PassError, match="option 'only' expects kinds from"):
        FuseEpiloguePass(only=("maxpool",))
    with pytest.raises(PassError, match="run it after lower-to-accel"):
        run_pipeline(module, "fuse-epilogue")


def test_vector_producers_chain_their_point_wise_consumers():
    """layernorm → relu → qcast and softmax → mul → qcast run as one vector layer each
    (tiled with a remainder, softmax's axis whole): the intermediates are neither
    stored nor re-read, the per-column operand is still read, and each fused layer's
    compute is the sum of its ops' vector work (no drain: the same unit)."""
    module, x = build("norm", "int8")
    plain, fused = lowered(module, TILES["norm"])
    by_kind = {op.kind.data: [s.kind for s in ep.stages(op)] for op in main_func(
        fused).walk() if isinstance(op, accel.LayerOp) and op.epilogue is not None}
    assert by_kind["nn.layernorm"] == ["nn.relu", "quant.qcast"]
    assert by_kind["nn.softmax"] == ["nn.mul", "quant.qcast"]
    a, b = sim.simulate(plain, x), sim.simulate(fused, x)
    soft = next(op for op in main_func(fused).walk() if isinstance(op, accel.LayerOp)
                and op.kind.data == "nn.softmax")
    trace = next(t for t in b.traces if t.name == soft.label.data)
    line = M.cache.line_bytes

    def lines_of(value) -> set[int]:
        addr = accel.address_of(value)
        return set(range(addr // line, -(-(addr + accel.nbytes(value.type)) // line)))

    assert trace.unit == Unit.VECTOR and trace.epilogue == ("softmax", "mul", "quantize")
    assert set(trace.line[trace.write].tolist()) == lines_of(soft.output)  # int8 only
    read = set(trace.line[~trace.write].tolist())
    assert lines_of(soft.inputs[-1]) <= read  # the per-column scale is read
    assert trace.step_vector_ops.sum() == 3 * 12 * 40  # one op per element per op
    stats = next(s for s in b.report.layers if s.name == soft.label.data)
    cpe = 5 + 1 + 2
    assert stats.vector_ops == 3 * 12 * 40
    assert stats.compute_cycles == sum(-(-e * cpe // M.vector.lanes) for e in (200, 200, 80))
    assert len(b.traces) == len(a.traces) - 9  # relu, mul, two qcasts; 5 into the matmuls
    ta, tb = a.report.total, b.report.total
    assert tb.dram_bytes_read + tb.dram_bytes_written < ta.dram_bytes_read + ta.dram_bytes_written
    assert tb.cycles < ta.cycles


def test_worked_example_of_a_vector_chain():
    """docs/simulator.md §2.4: one step of a softmax over 8 rows of 128 (1,024 elements)
    with a `nn.mul` and a `quant.qcast` in its epilogue: Σ cpe = 5 + 1 + 2 = 8,
    C = V = ceil(1024 · 8 / 64) = 128 — the three layers' vector work, without a drain."""
    def trace(epilogue: tuple[str, ...]) -> LayerTrace:
        e = np.zeros(0)
        return LayerTrace("s", "nn.softmax", Unit.VECTOR, "fp32", e.astype(np.int64),
                          e.astype(bool), e.astype(np.int8), e.astype(np.int32),
                          np.array([0]), np.array([1024 * max(len(epilogue), 1)]),
                          "softmax", epilogue=epilogue)

    def cost(t: LayerTrace):
        return layer_stats(t, LRUCache(M.cache.geometry).access(t.line, t.write), M)

    fused = cost(trace(("softmax", "mul", "quantize")))
    assert fused.cycles == 128 and fused.vector_ops == 3 * 1024
    assert cost(trace(())).cycles == 80  # the softmax alone: ceil(1024 · 5 / 64)


def test_transposes_are_stored_through_the_layout():
    """The head transposes fold into the matmuls' output paths (and the qcast after each
    into the chain before the layout): no transpose or cast layer is left, each fused
    layer writes exactly the lines of its transposed result (no intermediate), the
    program moves fewer DRAM bytes and the IR prints and parses back."""
    module, x = build("attn", "int8")
    plain, fused = lowered(module, TILES["attn"])
    kinds = [op.kind.data for op in main_func(fused).walk() if isinstance(op, accel.LayerOp)]
    assert "nn.transpose" not in kinds and "quant.qcast" in kinds  # the input's qcast
    assert kinds.count("quant.qcast") == 1
    a, b = sim.simulate(plain, x), sim.simulate(fused, x)
    line = M.cache.line_bytes
    for op in main_func(fused).walk():
        if not (isinstance(op, accel.LayerOp) and ep.layout(op) is not None):
            continue
        trace = next(t for t in b.traces if t.name == op.label.data)
        addr, n = accel.address_of(op.output), accel.nbytes(op.output.type)
        written = set(trace.line[trace.write & (trace.role == int(Role.OUTPUT))].tolist())
        assert written == set(range(addr // line, -(-(addr + n) // line)))
    ta, tb = a.report.total, b.report.total
    assert tb.dram_bytes_read + tb.dram_bytes_written < ta.dram_bytes_read + ta.dram_bytes_written
    assert tb.cycles < ta.cycles
    text = print_module(fused)
    again = attach_weights(parse_mlir(text, "f.mlir"), weights_of(fused))
    assert print_module(again) == text
    for k, v in sim.simulate(again, x).outputs.items():
        np.testing.assert_array_equal(v, a.outputs[k])


def test_worked_example_of_a_layout_store():
    """docs/simulator.md §2.4: a 16-row tile of TinyBERT's 128×312 Q/K projection stored
    through the head split (1×128×12×26) and a permutation, in int8: contiguous, its
    4,992 bytes are 78 lines; as Q's `0,2,1,3` (12 runs of 16·26 = 416 bytes) 84 lines;
    as K's `0,2,3,1` (312 runs of 16 bytes) 312 lines, each a quarter written. In fp32
    all three are 312 lines (K's runs of 64 bytes fill a line each)."""
    from xdsl.dialects.builtin import DenseArrayBase, f32, i8, i64

    from irflow.backends.sim.epilogue import layout_lines
    from irflow.backends.sim.placement import _Tensor

    result = accel.layer_space("nn.matmul", [(1, 128, 312), (312, 312)], (1, 128, 312),
                               {}).result
    tile = [(0, 1, 1), (16, 32, 1), (0, 312, 1)]

    def lines(perm: tuple[int, ...], elem) -> int:
        stage = ep.Stage(ep.LAYOUT, "t", (ep.CHAIN,), TensorType(elem, [1, 128, 312]),
                         TensorType(elem, [1, 12, 128, 26]),
                         {"perm": DenseArrayBase.from_list(i64, list(perm)),
                          "shape": DenseArrayBase.from_list(i64, [1, 128, 12, 26])})
        out = _Tensor(np.zeros(0, np.int8), 4096, Role.OUTPUT, bits=(elem.bitwidth, 1))
        return len(layout_lines(stage, result, out, 64, tile))

    assert (lines((0, 1, 2, 3), i8), lines((0, 2, 1, 3), i8), lines((0, 2, 3, 1), i8)) == (
        78, 84, 312)
    assert {lines(p, f32) for p in ((0, 1, 2, 3), (0, 2, 1, 3), (0, 2, 3, 1))} == {312}


def test_worked_example_of_a_row_wise_stage():
    """docs/simulator.md §2.4: one int8 step of TinyBERT's score matmul (6 heads × 32
    rows × 128 columns, k = 26: PE 3,109 cycles) whose tile holds whole rows takes the
    softmax into its output path: its requantization, dcast, the 1/√d mul, softmax and
    qcast, Σ cpe = 2 + 2 + 1 + 5 + 2 = 12, V = ceil(24,576 · 12 / 64) = 4,608,
    C = max(3,109, 4,608) + ceil(16 · 12 / 64) = 4,611; without the softmax and qcast
    the step is 3,109 + 2 = 3,111, and the softmax layer's own vector work alone
    ceil(24,576 · 7 / 64) = 2,688 more."""
    from irflow.backends.sim.mapping import map_space

    ms = map_space(accel.layer_space("nn.matmul", [(6, 32, 26), (6, 26, 128)], (6, 32, 128),
                                     {}))
    elems = 6 * 32 * 128

    def cost(epilogue: tuple[str, ...]):
        e = np.zeros(0)
        t = LayerTrace("s", "nn.matmul", Unit.PE_ARRAY, "int8", e.astype(np.int64),
                       e.astype(bool), e.astype(np.int8), e.astype(np.int32),
                       np.array([elems * 26]), np.array([elems * len(epilogue)]), "quantize",
                       map_space=ms, step_tiles=np.array([[6, 32, 128, 26]]),
                       epilogue=epilogue)
        return layer_stats(t, LRUCache(M.cache.geometry).access(t.line, t.write), M)

    fused = cost(("quantize", "quantize", "mul", "softmax", "quantize"))
    assert (fused.pe_cycles, fused.cycles, fused.vector_ops) == (3109, 4611, 5 * elems)
    assert cost(("quantize", "quantize", "mul")).cycles == 3111
    assert -(-elems * (5 + 2) // M.vector.lanes) == 2688


def test_a_two_use_value_stores_its_cast_as_a_side_output():
    """int8: the first layernorm's result feeds the float residual add and, through a
    qcast, the FFN's integer matmul. The matmul before it applies the layernorm in its
    output path and stores both the float result and the int8 cast (`accel.side`): no
    qcast layer is left, the side output's lines are written by that layer and read by
    the FFN matmul; the IR prints, parses and verifies back."""
    from irflow.dialects.accel_side import SideOp

    module, x = build("enc", "int8")
    plain, fused = lowered(module, TILES["enc"])
    fn = main_func(fused)
    assert [op.kind.data for op in fn.walk() if isinstance(op, accel.LayerOp)] == [
        "quant.qcast"] + ["nn.matmul"] * 3  # the input's cast, then three matmuls
    side = next(op for op in fn.walk() if isinstance(op, SideOp))
    layer = side.source.owner
    assert isinstance(layer, accel.LayerOp)
    assert [(s.kind, s.side) for s in ep.stages(layer)][-2:] == [
        ("nn.layernorm", -1), ("quant.qcast", 0)]
    b = sim.simulate(fused, x)
    line = M.cache.line_bytes
    addr, n = accel.address_of(side.output), accel.nbytes(side.output.type)
    lines = set(range(addr // line, -(-(addr + n) // line)))
    trace = next(t for t in b.traces if t.name == layer.label.data)
    writes = trace.line[trace.write & np.isin(trace.line, list(lines))]
    assert set(writes.tolist()) == lines  # by this layer, tile by tile (5-row tiles
    # share lines: a line two tiles touch is written twice, as the main result's are)
    user = next(u.operation for u in side.output.uses)
    read = next(t for t in b.traces if t.name == user.label.data)
    assert lines <= set(read.line[~read.write].tolist())
    text = print_module(fused)
    assert "accel.side %" in text
    again = attach_weights(parse_mlir(text, "f.mlir"), weights_of(fused))
    assert print_module(again) == text
    for k, v in sim.simulate(again, x).outputs.items():
        np.testing.assert_array_equal(v, b.outputs[k])


def test_worked_example_of_a_side_output():
    """docs/simulator.md §2.4: one int8 step of TinyBERT's attention-output matmul (16
    rows × 312, k = 312: PE 6,438 cycles) with its requantization, dcast, bias add,
    residual add, LayerNorm and the side output's qcast: Σ cpe = 2 + 2 + 1 + 1 + 5 + 2
    = 13, V = ceil(4,992 · 13 / 64) = 1,014, C = max(6,438, 1,014) + ceil(16 · 13 / 64)
    = 6,442 — the LayerNorm and the cast hide under the PE array (6,440 without them)."""
    from irflow.backends.sim.mapping import map_space

    ms = map_space(accel.layer_space("nn.matmul", [(1, 16, 312), (312, 312)], (1, 16, 312),
                                     {}))
    elems = 16 * 312

    def cost(epilogue: tuple[str, ...]):
        e = np.zeros(0)
        t = LayerTrace("o", "nn.matmul", Unit.PE_ARRAY, "int8", e.astype(np.int64),
                       e.astype(bool), e.astype(np.int8), e.astype(np.int32),
                       np.array([elems * 312]), np.array([elems * len(epilogue)]),
                       "quantize", map_space=ms, step_tiles=np.array([[1, 16, 312, 312]]),
                       epilogue=epilogue)
        return layer_stats(t, LRUCache(M.cache.geometry).access(t.line, t.write), M)

    fused = cost(("quantize", "quantize", "add", "add", "layernorm", "quantize"))
    assert (fused.pe_cycles, fused.cycles, fused.vector_ops) == (6438, 6442, 6 * elems)
    assert cost(("quantize", "quantize", "add", "add")).cycles == 6440


def test_layouts_and_sides_can_be_turned_off():
    """`fuse-epilogue{layouts=false}` keeps the transposes as layers, `{sides=false}` the
    two-use value's qcast."""
    from irflow.dialects.accel_side import SideOp

    for name, option, gone in (("attn", "layouts=false", "nn.transpose"),
                               ("enc", "sides=false", "quant.qcast")):
        module, _ = build(name, "int8")
        plain = sim.lower(module, M, epilogue=False)
        on = attach_weights(plain.clone(), weights_of(plain))
        off = attach_weights(plain.clone(), weights_of(plain))
        run_pipeline(on, "fuse-epilogue")
        run_pipeline(off, f"fuse-epilogue{{{option}}}")

        def layers(m) -> list[str]:
            return [op.kind.data for op in main_func(m).walk()
                    if isinstance(op, accel.LayerOp)]

        assert layers(off).count(gone) == layers(on).count(gone) + (
            4 if gone == "nn.transpose" else 1)  # q, k, v and the context
        assert any(isinstance(op, SideOp) for op in on.walk()) == (name == "enc")
        assert not any(isinstance(op, SideOp) for op in off.walk())
