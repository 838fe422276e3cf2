"""The pass registry: built-in entries, registration conflicts, function passes, passes
loaded from files, modules and entry points, the user-pass example, and irflow's passes
under stock xdsl-opt.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from filecheck import filecheck
from test_passes import assert_exact, block_net, count, twin
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from irflow import registry
from irflow.diagnostics import IrflowError, PassError
from irflow.dialects import nn
from irflow.pipeline import parse_pipeline, run_pipeline

REPO = Path(__file__).resolve().parents[1]


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
