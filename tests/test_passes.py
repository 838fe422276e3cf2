"""Passes, pipelines, the pass manager and the registry.

Semantic twins: every pass runs the reference executor before and after on seeded
inputs. Bounds: `fuse-activation`, `cse`, `dce`, `canonicalize` are exact (bit-identical:
the same kernels run on the same values); `fold-batchnorm` is within float32 rounding,
asserted as |after - before| <= FOLD_BOUND * max(max|before|, 1). The folded weights are
computed in float64 and rounded once, so each accumulated product moves by about one
float32 ulp (1.2e-7 relative). Measured worst case: 0.9e-7 on the block net below,
1.6e-7 on ResNet-18, 2.6e-7 on MobileNetV2 (default pipeline, seeded batchnorm stats);
the bound leaves an 8x margin and still fails for a 1e-4 relative error in the mean.
"""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest
from filecheck import filecheck
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.passes import ModulePass

from irflow import registry
from irflow.backends.reference import run
from irflow.diagnostics import IrflowError, PassError
from irflow.dialects import nn
from irflow.frontends.dsl import compile_source
from irflow.graph import GraphBuilder
from irflow.io import parse_mlir, print_module
from irflow.pipeline import (
    PassManager,
    parse_pipeline,
    pipeline_text,
    run_pipeline,
)
from irflow.pipelines import PIPELINES
from irflow.weights import WeightStore, attach_weights, weights_of

REPO = Path(__file__).resolve().parents[1]
FOLD_BOUND = 2e-6  # see the module docstring

# A small residual CNN with batchnorms, in the DSL (so weights are #nn.weight constants in
# a store and ops carry source locations).
BLOCK_NET = """\
model block_net(x: f32[2, 3, 12, 12]) {
  conv1 = conv2d(x, out=16, kernel=3, stride=2, pad=1, bias=false)
  bn1 = batchnorm(conv1)
  conv2 = conv2d(relu(bn1), out=16, kernel=3, pad=1)
  bn2 = batchnorm(conv2)
  short = conv2d(x, out=16, kernel=1, stride=2, bias=false)
  bn3 = batchnorm(short)
  dw = conv2d(relu(add(bn2, bn3)), out=16, kernel=3, pad=1, groups=16, bias=false)
  bn4 = batchnorm(dw)
  pool = global_avg_pool(relu6(bn4))
  fc = linear(flatten(pool), out=10)
  return sigmoid(fc)
}
"""


def block_net(seed: int = 0) -> ModuleOp:
    module = compile_source(BLOCK_NET, "block_net.irf", seed=seed)
    _randomize_batchnorm_stats(module, seed)
    return module


def _randomize_batchnorm_stats(module: ModuleOp, seed: int) -> None:
    """Make every batchnorm a non-trivial affine map (initializers may give 1s and 0s)."""
    rng = np.random.default_rng(seed)
    store = weights_of(module)
    for op in module.walk():
        if not isinstance(op, nn.BatchNormOp):
            continue
        for operand, (lo, hi) in zip(op.operands[1:], [(0.5, 2), (-1, 1), (-1, 1), (0.2, 3)]):
            const = operand.owner
            assert isinstance(const, nn.ConstantOp) and isinstance(const.value, nn.WeightAttr)
            shape = store[const.value.key].shape
            store[const.value.key] = rng.uniform(lo, hi, shape).astype(np.float32)


def inputs_for(module: ModuleOp, seed: int = 1) -> dict[str, np.ndarray]:
    from irflow.graph import input_names, main_func

    f = main_func(module)
    rng = np.random.default_rng(seed)
    return {
        name: rng.standard_normal(nn.shape_of(arg)).astype(np.float32)
        for name, arg in zip(input_names(f), f.body.blocks[0].args)
    }


def twin(module: ModuleOp, spec: str, seed: int = 1):
    """Outputs before and after running `spec`, and the pipeline result."""
    feeds = inputs_for(module, seed)
    before = run(module, feeds)
    result = run_pipeline(module, spec)
    after = run(module, feeds)
    assert before.keys() == after.keys()
    return before, after, result


def assert_float_close(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> None:
    for name in before:
        b, a = before[name], after[name]
        scale = float(np.abs(b).max())
        np.testing.assert_allclose(a, b, rtol=0, atol=FOLD_BOUND * max(scale, 1.0), err_msg=name)


def assert_exact(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> None:
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)


def count(module: ModuleOp, cls: type) -> int:
    return sum(isinstance(op, cls) for op in module.walk())


# --------------------------------------------------------------------------------------
# Semantic twins


def test_fold_batchnorm_semantics_on_a_residual_net():
    module = block_net()
    assert count(module, nn.BatchNormOp) == 4
    before, after, result = twin(module, "fold-batchnorm")
    assert count(module, nn.BatchNormOp) == 0
    assert result.passes[0].modified
    assert_float_close(before, after)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fold_batchnorm_semantics_conv_and_linear(seed):
    rng = np.random.default_rng(seed)
    g = GraphBuilder()
    x = g.input("x", [2, 4, 9, 9])
    w = g.weight("c.weight", rng.standard_normal((6, 2, 3, 3)))
    b = g.weight("c.bias", rng.standard_normal(6))
    y = g.add(nn.Conv2dOp(x, w, b, strides=(2, 2), pads=(1, 0, 1, 2), groups=2)).results[0]
    params = [g.weight(f"bn.{k}", rng.uniform(lo, hi, 6)) for k, (lo, hi) in
              [("scale", (-2, 2)), ("bias", (-1, 1)), ("mean", (-1, 1)), ("var", (0.1, 4))]]
    z = g.add(nn.BatchNormOp.make([y, *params], {"epsilon": nn.f64(1e-3)})).results[0]
    flat = g.add(nn.FlattenOp.make([z])).results[0]
    fw = g.weight("fc.weight", rng.standard_normal((5, nn.shape_of(flat)[1])))
    fc = g.add(nn.LinearOp.make([flat, fw])).results[0]
    p2 = [g.weight(f"bn2.{k}", rng.uniform(lo, hi, 5)) for k, (lo, hi) in
          [("scale", (-2, 2)), ("bias", (-1, 1)), ("mean", (-1, 1)), ("var", (0.1, 4))]]
    out = g.add(nn.BatchNormOp.make([fc, *p2])).results[0]
    module = g.finish([out], ["out"])
    before, after, _ = twin(module, "fold-batchnorm", seed)
    assert count(module, nn.BatchNormOp) == 0
    assert_float_close(before, after)


def test_fold_batchnorm_weight_store_names_and_locations():
    module = block_net()
    convs = {op.location: op for op in module.walk() if isinstance(op, nn.Conv2dOp)}
    run_pipeline(module, "fold-batchnorm")
    store = weights_of(module)
    folded = [op for op in module.walk() if isinstance(op, nn.Conv2dOp)]
    assert {op.location for op in folded} == set(convs)  # every conv keeps its location
    keys = {op.value.key for op in module.walk()
            if isinstance(op, nn.ConstantOp) and isinstance(op.value, nn.WeightAttr)}
    assert "conv1.weight.bnfold" in keys and "conv1.bias.bnfold" in keys
    assert all(k in store for k in keys)
    # The erased batchnorm parameters are no longer referenced by any constant.
    assert not any(k.startswith("bn1.") for k in keys)


def test_fuse_activation_is_exact():
    module = block_net()
    run_pipeline(module, "fold-batchnorm")
    before, after, result = twin(module, "fuse-activation")
    assert result.passes[0].modified
    acts = sorted(op.properties["act"].data for op in module.walk()
                  if "act" in op.properties)
    assert acts == ["relu", "relu", "relu6", "sigmoid"]
    assert count(module, nn.ReluOp) == count(module, nn.Relu6Op) == count(module, nn.SigmoidOp) == 0
    assert_exact(before, after)


@pytest.mark.parametrize("spec", ["canonicalize", "cse", "dce"])
def test_cleanup_passes_are_exact(spec):
    g = GraphBuilder()
    x = g.input("x", [2, 8])
    c0 = g.inline(np.full(8, 0.5, np.float32))
    c1 = g.inline(np.full(8, 0.5, np.float32))
    r0 = g.add(nn.ReluOp(x)).results[0]
    r1 = g.add(nn.ReluOp(x)).results[0]
    g.add(nn.SigmoidOp(r1))  # dead
    s0 = g.add(nn.AddOp.make([r0, c0])).results[0]
    s1 = g.add(nn.AddOp.make([r1, c1])).results[0]
    out = g.add(nn.MulOp.make([s0, s1])).results[0]
    module = g.finish([out])
    n = count(module, nn.NNOp) + count(module, nn.ConstantOp)
    before, after, result = twin(module, spec)
    assert count(module, nn.NNOp) + count(module, nn.ConstantOp) < n
    assert result.passes[0].modified
    assert_exact(before, after)


def test_default_pipeline_semantics():
    module = block_net(seed=3)
    before, after, result = twin(module, "default", seed=4)
    assert [p.name for p in result.passes] == [s.split("{")[0] for s in PIPELINES["default"]]
    assert count(module, nn.BatchNormOp) == count(module, nn.ReluOp) == 0
    assert_float_close(before, after)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["resnet18", "mobilenetv2"])
def test_default_pipeline_on_zoo_models(model):
    from irflow import zoo

    module = zoo.load(model, seed=0)
    _randomize_batchnorm_stats(module, 0)
    n_bn = count(module, nn.BatchNormOp)
    before, after, _ = twin(module, "default")
    assert n_bn > 0 and count(module, nn.BatchNormOp) == 0
    assert_float_close(before, after)


@dataclass(frozen=True)
class Layer:
    """One random layer: conv (+bias) [-> batchnorm] [-> activation] [+ residual [-> relu]]."""

    out: int
    depthwise: bool
    kernel: int
    bias: bool
    batchnorm: bool
    conv_is_output: bool  # a second user of the conv result: batchnorm must not fold
    act: str | None
    pre_act_is_output: bool  # a second user of the activation's input: must not fuse
    residual: bool
    relu_after_add: bool


LAYER = st.builds(Layer, out=st.sampled_from([0, 2, 3]), depthwise=st.booleans(),
                  kernel=st.sampled_from([1, 3]), bias=st.booleans(), batchnorm=st.booleans(),
                  conv_is_output=st.booleans(),
                  act=st.sampled_from([None, "relu", "relu6", "sigmoid", "silu", "gelu"]),
                  pre_act_is_output=st.booleans(), residual=st.booleans(),
                  relu_after_add=st.booleans())


def build_conv_graph(seed: int, c: int, hw: int, layers: list[Layer]) -> ModuleOp:
    rng = np.random.default_rng(seed)
    g = GraphBuilder()
    v = g.input("x", [1, c, hw, hw])
    outputs = []
    for i, layer in enumerate(layers):
        f = c if layer.out == 0 else layer.out * c if layer.out == 2 else 3
        groups = c if (f == c and c > 1 and layer.depthwise) else 1
        k = layer.kernel
        w = g.weight(f"l{i}.w", rng.standard_normal((f, c // groups, k, k)))
        b = g.weight(f"l{i}.b", rng.standard_normal(f)) if layer.bias else None
        y = g.add(nn.Conv2dOp(v, w, b, pads=(k // 2,) * 4, groups=groups)).results[0]
        if layer.batchnorm:
            if layer.conv_is_output:
                outputs.append(y)
            params = [g.weight(f"l{i}.bn{j}", rng.uniform(lo, hi, f)) for j, (lo, hi)
                      in enumerate([(-2, 2), (-1, 1), (-1, 1), (0.1, 3)])]
            y = g.add(nn.BatchNormOp.make([y, *params])).results[0]
        if layer.act is not None and layer.pre_act_is_output:
            outputs.append(y)
        if layer.act == "gelu":
            y = g.add(nn.GeluOp(y)).results[0]
        elif layer.act is not None:
            y = g.add(nn.FUSABLE_ACTIVATIONS[layer.act](y)).results[0]
        if f == c and layer.residual:
            y = g.add(nn.AddOp.make([y, v])).results[0]
            if layer.relu_after_add:
                y = g.add(nn.ReluOp(y)).results[0]
        v, c = y, f
    return g.finish([v, *outputs])


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), c=st.integers(1, 4), hw=st.integers(3, 6),
       layers=st.lists(LAYER, min_size=1, max_size=4))
def test_default_pipeline_property(seed, c, hw, layers):
    """Random conv chains: same outputs after `default`, and nothing foldable is left."""
    module = build_conv_graph(seed, c, hw, layers)
    before, after, _ = twin(module, "default")
    assert_float_close(before, after)
    for op in module.walk():
        producer = op.operands[0].owner if op.operands else None
        if not isinstance(producer, (nn.Conv2dOp, nn.AddOp)):
            continue
        foldable = producer.results[0].has_one_use() and "act" not in producer.properties
        if isinstance(op, nn.BatchNormOp):
            assert not (foldable and isinstance(producer, nn.Conv2dOp)), "batchnorm left"
        if type(op) in nn.FUSABLE_ACTIVATIONS.values():
            assert not foldable, f"{op.name} left unfused"


# --------------------------------------------------------------------------------------
# Pipeline parsing


def test_parse_pipeline_with_options_and_named_pipelines():
    passes = parse_pipeline("fuse-activation{only=relu,relu6},default,cse")
    names = [p.name for p in passes]
    assert names == ["fuse-activation", *[s for s in PIPELINES["default"]], "cse"]
    assert passes[0] == registry.get_pass("fuse-activation")(only=("relu", "relu6"))
    assert parse_pipeline("") == ()


def test_pipeline_text_round_trips():
    passes = parse_pipeline("fuse-activation{only=relu},cse")
    assert parse_pipeline(pipeline_text(passes)) == passes


@pytest.mark.parametrize("spec,message", [
    ("fold-batchnrom", "unknown pass 'fold-batchnrom' (did you mean 'fold-batchnorm'?)"),
    ("defualt", "unknown pass 'defualt' (did you mean 'default'?)"),
    ("fuse-activation{onli=relu}",
     "pass 'fuse-activation' has no option 'onli' (did you mean 'only'?) (options: only)"),
    ("fuse-activation{only=gelu}", "pass 'fuse-activation': option 'only' expects activations"),
    ("fuse-activation{only=3}", "option 'only' expects tuple[str, ...], got '3'"),
    ("default{x=1}", "named pipeline 'default' takes no options"),
    ("cse,,dce", "bad pipeline 'cse,,dce' at column 5: Expected pass name here"),
    ("fold-batchnorm{", "bad pipeline 'fold-batchnorm{' at column 16"),
])
def test_pipeline_errors(spec, message):
    with pytest.raises(PassError) as info:
        parse_pipeline(spec)
    assert message in str(info.value)


def test_bad_option_type_names_pass_option_and_type():
    @dataclass(frozen=True)
    class Bits(ModulePass):
        name = "test-bits"
        bits: int = 8

        def apply(self, ctx: Context, op: ModuleOp) -> None:
            pass

    registry.register_pass(Bits)
    try:
        assert parse_pipeline("test-bits{bits=4}") == (Bits(bits=4),)
        with pytest.raises(PassError, match=r"pass 'test-bits' option 'bits' expects int, "
                                            r"got 'eight'"):
            parse_pipeline("test-bits{bits=eight}")
    finally:
        registry.unregister_pass("test-bits")


def test_named_pipelines_and_passes_do_not_clash():
    assert not set(PIPELINES) & set(registry.pass_names())
    for name in PIPELINES:
        parse_pipeline(name)  # every step of every named pipeline is a real pass


# --------------------------------------------------------------------------------------
# PassManager


@dataclass(frozen=True)
class BreakStrides(ModulePass):
    """Deliberately leaves invalid IR: a conv with one stride."""

    name = "test-break-strides"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for o in op.walk():
            if isinstance(o, nn.Conv2dOp):
                o.properties["strides"] = nn.int_array([1])
                return


@dataclass(frozen=True)
class Explode(ModulePass):
    name = "test-explode"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        raise RuntimeError("boom")


@pytest.fixture
def test_passes():
    for cls in (BreakStrides, Explode):
        registry.register_pass(cls)
    yield
    for cls in (BreakStrides, Explode):
        registry.unregister_pass(cls.name)


def test_verify_failure_names_the_pass_the_passes_before_and_the_op(test_passes):
    module = block_net()
    with pytest.raises(PassError) as info:
        run_pipeline(module, "fold-batchnorm,fuse-activation,test-break-strides,cse")
    err = info.value
    assert "pass 'test-break-strides' left invalid IR (after fold-batchnorm, fuse-activation)" \
        in err.message
    assert "nn.conv2d expects 2 strides" in err.message
    assert isinstance(err.where, nn.Conv2dOp)
    assert str(err).startswith("block_net.irf:")  # the op's source location


def test_invalid_ir_is_shown_when_ir_printing_was_asked_for(test_passes, tmp_path):
    out = io.StringIO()
    with pytest.raises(PassError):
        run_pipeline(block_net(), "cse,test-break-strides", print_ir_after_all=True, out=out)
    assert "// -----// IR Dump After test-break-strides Failed //----- //" in out.getvalue()
    assert "strides = array<i64: 1>" in out.getvalue()
    with pytest.raises(PassError):
        run_pipeline(block_net(), "cse,test-break-strides", dump_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "00-input.mlir", "01-cse.mlir", "02-test-break-strides.invalid.mlir", "weights.npz"]
    quiet = io.StringIO()
    with pytest.raises(PassError):
        run_pipeline(block_net(), "test-break-strides", out=quiet)
    assert quiet.getvalue() == ""


def test_dump_dir_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(IrflowError, match="--dump-dir .*cannot create it"):
        run_pipeline(block_net(), "cse", dump_dir=blocker / "dumps")


def test_verify_each_false_skips_verification(test_passes):
    result = run_pipeline(block_net(), "test-break-strides", verify_each=False)
    assert result.passes[0].name == "test-break-strides"


def test_a_pass_that_raises_is_wrapped(test_passes):
    with pytest.raises(PassError, match=r"pass 'test-explode' failed \(after cse\): "
                                        r"RuntimeError: boom"):
        run_pipeline(block_net(), "cse,test-explode")
    with pytest.raises(PassError, match=r"\(it ran first\)"):
        run_pipeline(block_net(), "test-explode")


def test_an_irflow_error_inside_a_pattern_names_the_pass():
    module = block_net()
    del weights_of(module)["conv1.weight"]
    with pytest.raises(PassError) as info:
        run_pipeline(module, "cse,fold-batchnorm")
    assert "pass 'fold-batchnorm' failed (after cse): weight 'conv1.weight' is not in the " \
        "weight store" in str(info.value)


def test_invalid_input_is_reported_before_any_pass():
    g = GraphBuilder()
    x = g.input("x", [1, 3, 8, 8])
    w = g.input("w", [4, 3, 3, 3])
    y = g.add(nn.Conv2dOp(x, w)).results[0]
    module = g.finish([y])
    next(o for o in module.walk() if isinstance(o, nn.Conv2dOp)).properties["groups"] = \
        nn.i64_attr(0)
    with pytest.raises(PassError, match="input IR"):
        run_pipeline(module, "cse")


def test_modified_flags():
    result = run_pipeline(block_net(), "cse,fold-batchnorm,fold-batchnorm,fuse-activation,dce")
    assert [(p.name, p.modified) for p in result.passes] == [
        ("cse", False), ("fold-batchnorm", True), ("fold-batchnorm", False),
        ("fuse-activation", True), ("dce", False)]
    assert result.modified


@dataclass(frozen=True)
class _MarkConvs(ModulePass):
    """Sets an attribute on every conv in place (same op objects, new attribute values)."""

    name = "test-mark-convs"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for o in op.walk():
            if isinstance(o, nn.Conv2dOp):
                o.attributes["test.mark"] = StringAttr("seen")


@dataclass(frozen=True)
class _ScaleWeights(ModulePass):
    """Changes only weight arrays (the IR text stays the same)."""

    name = "test-scale-weights"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        store = weights_of(op)
        for key in list(store):
            store[key] = store[key] * 2


def test_modified_sees_in_place_and_weight_only_changes():
    from irflow.pipeline import PassManager

    result = PassManager([_MarkConvs(), _MarkConvs(), _ScaleWeights()]).run(block_net())
    # an attribute set in place is a change; setting an equal value again is not;
    # arrays replaced in the weight store are a change though the text is the same
    assert [p.modified for p in result.passes] == [True, False, True]


def test_print_ir_after_all():
    out = io.StringIO()
    module = block_net()
    run_pipeline(module, "fold-batchnorm,cse", print_ir_after_all=True, out=out)
    text = out.getvalue()
    headers = [line for line in text.splitlines() if "IR Dump After" in line]
    assert headers == ["// -----// IR Dump After fold-batchnorm //----- //",
                       "// -----// IR Dump After cse //----- //"]
    assert text.endswith(print_module(module) + "\n")  # the last dump is the final IR
    filecheck("// CHECK: IR Dump After fold-batchnorm\n// CHECK-NOT: nn.batchnorm\n"
              "// CHECK: IR Dump After cse", text)


def test_print_ir_after_named_pass_and_after_change():
    out = io.StringIO()
    run_pipeline(block_net(), "cse,fold-batchnorm,dce", print_ir_after=frozenset({"dce"}),
                 out=out)
    assert out.getvalue().count("IR Dump After") == 1 and "After dce" in out.getvalue()

    out = io.StringIO()
    run_pipeline(block_net(), "cse,fold-batchnorm,dce,fuse-activation",
                 print_ir_after_change=True, out=out)
    headers = [line for line in out.getvalue().splitlines() if "IR Dump After" in line]
    assert headers == ["// -----// IR Dump After fold-batchnorm //----- //",
                       "// -----// IR Dump After fuse-activation //----- //"]

    with pytest.raises(PassError, match="did you mean 'fold-batchnorm'"):
        PassManager(parse_pipeline("cse"), print_ir_after=frozenset({"fold-batchnom"}))


def test_dump_dir(tmp_path):
    module = block_net()
    store = weights_of(module)
    original = set(store)
    dump = tmp_path / "dumps"
    result = run_pipeline(module, "fold-batchnorm,fuse-activation,cse", dump_dir=dump)
    names = sorted(p.name for p in dump.iterdir())
    assert names == ["00-input.mlir", "01-fold-batchnorm.mlir", "02-fuse-activation.mlir",
                     "03-cse.mlir", "weights.npz"]
    assert [p.name for p in result.dumped] == names[:4] + ["weights.npz"]
    assert (dump / "03-cse.mlir").read_text() == print_module(module)
    # One weights file serves every dump: it holds the input's arrays and the folded ones.
    saved = WeightStore.load(dump / "weights.npz")
    assert original <= set(saved) and "conv1.weight.bnfold" in saved
    for mlir in sorted(dump.glob("*.mlir")):
        m = attach_weights(parse_mlir(mlir.read_text(), str(mlir)), saved)
        run(m, inputs_for(m))  # every dump loads and runs with that one file


def test_timing_report():
    out = io.StringIO()
    result = run_pipeline(block_net(), "fold-batchnorm,cse", timing=True, out=out)
    report = out.getvalue()
    assert report == result.timing_report()
    lines = report.splitlines()
    assert "Pass execution timing report" in report
    rows = [line for line in lines if "%)" in line]
    assert [r.split("%)")[1].split()[0] for r in rows] == [
        "fold-batchnorm", "cse", "(verify)", "(printing,", "Total"]
    assert "(no change)" in rows[1]
    assert rows[-1].strip().startswith(f"{result.total_seconds:.4f} (100.0%)")
    assert result.total_seconds >= sum(p.seconds for p in result.passes) + result.verify_seconds


def test_generic_dumps():
    out = io.StringIO()
    run_pipeline(block_net(), "cse", print_ir_after_all=True, generic=True, out=out)
    assert '"nn.conv2d"(' in out.getvalue()


# --------------------------------------------------------------------------------------
# Registry


@pytest.mark.parametrize("name", sorted(registry.PASSES))
def test_every_builtin_entry_imports_and_matches_its_name(name):
    cls = registry.get_pass(name)
    assert cls.name == name
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    assert registry.pass_summary(name)  # a docstring to list


def test_register_pass_conflicts():
    @dataclass(frozen=True)
    class Fake(ModulePass):
        name = "cse"

        def apply(self, ctx: Context, op: ModuleOp) -> None:
            pass

    with pytest.raises(PassError, match="already taken"):
        registry.register_pass(Fake)
    registry.register_pass(registry.get_pass("cse"))  # a built-in class itself is fine
    assert registry.get_pass("cse") is not Fake

    with pytest.raises(PassError, match="not a pass"):
        registry.register_pass(int)  # type: ignore[arg-type]


def test_function_pass():
    seen: list[tuple[int, bool]] = []

    @registry.module_pass("test-count-relus")
    def count_relus(ctx: Context, module: ModuleOp, *, scale: int = 1,
                    verbose: bool = False) -> None:
        """Counts relus."""
        seen.append((scale * count(module, nn.ReluOp), verbose))

    try:
        assert issubclass(count_relus, ModulePass) and count_relus.name == "test-count-relus"
        run_pipeline(block_net(), "test-count-relus{scale=10 verbose=true}")
        assert seen == [(20, True)]  # relu(bn1) and relu(add)
        assert registry.pass_summary("test-count-relus") == "Counts relus."
    finally:
        registry.unregister_pass("test-count-relus")


def test_load_pass_errors(tmp_path):
    with pytest.raises(PassError, match="no such file"):
        registry.load_pass(str(tmp_path / "missing.py") + ":X")
    bad = tmp_path / "bad.py"
    bad.write_text("raise ValueError('broken plugin')\n")
    with pytest.raises(PassError, match="importing .*bad.py failed: ValueError: broken plugin"):
        registry.load_pass(f"{bad}:X")
    ok = tmp_path / "mine.py"
    ok.write_text(
        "from dataclasses import dataclass\nfrom xdsl.passes import ModulePass\n"
        "@dataclass(frozen=True)\nclass MyPass(ModulePass):\n    name = 'test-mine'\n"
        "    def apply(self, ctx, op):\n        pass\nclass NotAPass:\n    pass\n")
    with pytest.raises(PassError, match=r"has no class 'MyPas' \(did you mean 'MyPass'\?\)"):
        registry.load_pass(f"{ok}:MyPas")
    with pytest.raises(PassError, match="NotAPass is not a pass"):
        registry.load_pass(f"{ok}:NotAPass")
    with pytest.raises(PassError, match="cannot import module 'no_such_module_xyz'"):
        registry.load_pass("no_such_module_xyz:Pass")
    try:
        (cls,) = registry.load_pass(str(ok))  # no class name: every pass in the file
        assert cls.name == "test-mine"
        registry.load_pass(f"{ok}:MyPass")  # loading the same file again is fine
        assert registry.get_pass("test-mine").__name__ == "MyPass"
    finally:
        registry.unregister_pass("test-mine")


def test_load_pass_from_a_module():
    (cls,) = registry.load_pass("irflow.passes.fuse_activation:FuseActivationPass")
    assert cls is registry.get_pass("fuse-activation")


def test_entry_point_plugins(monkeypatch):
    good = EntryPoint("fuse-activation-plugin", "irflow.passes.fuse_activation:FuseActivationPass",
                      registry.ENTRY_POINT_GROUP)
    broken = EntryPoint("broken", "no_such_module_xyz:P", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_plugin_entry_points",
                        lambda: {"fuse-activation-plugin": good, "broken": broken})
    assert "broken" in registry.pass_names()
    with pytest.raises(PassError, match="entry point name must equal the pass's `name`"):
        registry.get_pass("fuse-activation-plugin")
    with pytest.raises(PassError, match="plugin pass 'broken'.*cannot be loaded"):
        parse_pipeline("broken")


def test_registry_errors_are_irflow_errors():
    with pytest.raises(IrflowError, match="unknown pass 'nope'"):
        registry.get_pass("nope")


# --------------------------------------------------------------------------------------
# The user-pass example and stock xdsl-opt


def test_example_custom_pass():
    example = REPO / "examples" / "custom_pass.py"
    classes = registry.load_pass(f"{example}:DecomposeRelu6")
    try:
        module = block_net()
        run_pipeline(module, "fold-batchnorm")
        before, after, result = twin(module, "decompose-relu6,count-ops")
        assert count(module, nn.Relu6Op) == 0 and count(module, nn.ClipOp) == 1
        assert_exact(before, after)
        assert [p.name for p in result.passes] == ["decompose-relu6", "count-ops"]
        assert [c.name for c in classes] == ["decompose-relu6"]
    finally:
        registry.unregister_pass("decompose-relu6")
        registry.unregister_pass("count-ops")


def test_stock_xdsl_opt_runs_irflow_passes(tmp_path):
    xdsl_opt = Path(sys.executable).parent / "xdsl-opt"
    if not xdsl_opt.exists():
        pytest.skip(f"{xdsl_opt} is not installed")
    src = tmp_path / "in.mlir"
    src.write_text((REPO / "tests/filecheck/passes/default.mlir").read_text())
    proc = subprocess.run([str(xdsl_opt), str(src), "-p", "fold-batchnorm,fuse-activation,dce"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    filecheck("// CHECK: nn.conv2d %x, %{{.*}}, %{{.*}} {act = \"relu\"}\n"
              "// CHECK-NEXT: nn.add %{{.*}}, %x {act = \"relu\"}\n"
              "// CHECK-NOT: nn.batchnorm", proc.stdout)
