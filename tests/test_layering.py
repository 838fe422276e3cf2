"""Import layering: nothing below the driver imports `irflow.io` (load/save, which pulls
in every frontend). Only the command lines and the package's lazy `irflow.load`/`save` may;
the weight store, exporters, frontends, passes and backends write through `irflow.fileio`
and verify through `irflow.verify`. Every import counts, including ones inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE_DIRS = ("irflow", "dialects", "passes", "backends")
# The drivers: the command lines, the package's lazy `irflow.load`/`save`, and the search
# recipe (which loads the model file a search space names).
MAY_IMPORT_IO = {"irflow/cli.py", "irflow/__init__.py", "irflow/io.py", "irflow/train/cli.py",
                 "irflow/search/cli.py", "irflow/search/recipe.py"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _modules() -> list[Path]:
    return sorted(p for d in PACKAGE_DIRS for p in (REPO / d).rglob("*.py"))


def test_nothing_below_the_driver_imports_irflow_io() -> None:
    offenders = [str(p.relative_to(REPO)) for p in _modules()
                 if str(p.relative_to(REPO)) not in MAY_IMPORT_IO and "irflow.io" in _imports(p)]
    assert len(_modules()) > 40  # the scan sees the package
    assert offenders == []


def test_base_modules_import_no_irflow_module_above_them() -> None:
    # fileio and verify are the bottom layer: they may use diagnostics only
    for name in ("fileio.py", "verify.py"):
        irflow_imports = {m for m in _imports(REPO / "irflow" / name) if m.startswith("irflow")}
        assert irflow_imports <= {"irflow.diagnostics", "irflow.diagnostics.IrflowError",
                                  "irflow.diagnostics.VerifyError"}, name
