"""Pipelines and the pass manager: parsing pipeline text (options, named pipelines,
errors), verification after each pass with the failing pass named, IR printing and
dumps, change flags and the timing report. The passes' own semantics are
tests/test_passes.py, the registry tests/test_registry.py.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from filecheck import filecheck
from test_passes import block_net, inputs_for
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.passes import ModulePass

from irflow import registry
from irflow.backends.reference import run
from irflow.diagnostics import IrflowError, PassError
from irflow.dialects import nn
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
