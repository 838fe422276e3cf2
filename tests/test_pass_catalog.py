"""Discoverability: `irflow passes` lists every registered pass (built-in, loaded, plugin)
with its options and summary; `irflow --version`; plugin passes reach `xdsl-opt` too."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from irflow.cli import main
from irflow.pass_catalog import catalog, options_of
from irflow.pipelines import PIPELINES
from irflow.registry import get_pass, pass_names, unregister_pass

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_passes_lists_every_pass_with_options_and_summary(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["passes"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for name in pass_names():
        row = next(line for line in lines if line.startswith(name + " "))
        assert len(row.split(None, 2)) == 3, row  # name, origin, summary
    # options in pipeline spelling with type and default, under their pass
    at = lines.index(next(line for line in lines if line.startswith("quantize ")))
    assert "    weight-only: bool = False" in lines[at + 1:at + 12]
    assert "    bits: int = 8" in lines[at + 1:at + 12]
    for name in PIPELINES:
        assert any(line.startswith(name + " ") for line in lines), name


def test_every_option_of_every_builtin_pass_is_listed() -> None:
    infos = {i.name: i for i in catalog()}
    for name in pass_names():
        info = infos[name]
        assert not info.error and info.summary and "named rewrite pass" not in info.summary
        fields = [o.name for o in options_of(get_pass(name))]
        assert [o.name for o in info.options] == fields


def test_passes_lists_a_loaded_pass(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        assert main(["passes", "--load-pass", str(ROOT / "examples" / "custom_pass.py")]) == 0
        out = capsys.readouterr().out
        assert "decompose-relu6  loaded (custom_pass.py)" in out
        assert "    top: int = 10" in out  # count-ops, the decorated function pass
    finally:
        unregister_pass("decompose-relu6")
        unregister_pass("count-ops")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith(f"irflow {version('irflow')} (xDSL 0.74")


@pytest.mark.slow
def test_plugin_pass_shows_in_irflow_and_runs_in_xdsl_opt(tmp_path: Path) -> None:
    """A pip-installed plugin is a distribution with an `irflow.passes` entry point; one
    on PYTHONPATH (a .dist-info folder beside its module) is found the same way."""
    dist = tmp_path / "irflow_demo_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: irflow-demo-plugin\n"
                                   "Version: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[irflow.passes]\ndecompose-relu6 = irflow_demo_plugin:DecomposeRelu6\n")
    shutil.copy(ROOT / "examples" / "custom_pass.py", tmp_path / "irflow_demo_plugin.py")
    src = tmp_path / "in.mlir"
    src.write_text("func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {\n"
                   "  %y = nn.relu6 %x : tensor<4xf32>\n"
                   "  func.return %y : tensor<4xf32>\n}\n")
    env = {"PYTHONPATH": str(tmp_path), "PATH": str(BIN)}

    def run(*argv: str) -> str:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert "decompose-relu6  plugin (irflow-demo-plugin)" in run(str(BIN / "irflow"), "passes")
    out = run(str(BIN / "xdsl-opt"), str(src), "-p", "decompose-relu6")
    assert "nn.clip" in out and "nn.relu6" not in out
