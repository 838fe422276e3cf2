"""The wheel contains every package folder: setuptools silently drops a sub-package
missing from the explicit `packages` list (it still works in editable mode), so
this test compares the folders on disk with pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _packages_on_disk(package_dir: dict[str, str]) -> set[str]:
    found = set()
    for package, folder in package_dir.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            parts = [] if rel == Path(".") else list(rel.parts)
            found.add(".".join([package, *parts]))
    return found


def test_every_package_folder_is_listed() -> None:
    tool = _pyproject()["tool"]["setuptools"]
    listed = set(tool["packages"])
    on_disk = _packages_on_disk({k: v for k, v in tool["package-dir"].items()
                                 if k.count(".") <= 1})
    assert on_disk - listed == set(), f"add to [tool.setuptools] packages: {on_disk - listed}"
    assert listed - on_disk == set(), f"listed but missing on disk: {listed - on_disk}"


def test_every_listed_package_has_a_package_dir() -> None:
    tool = _pyproject()["tool"]["setuptools"]
    for package in tool["packages"]:
        folder = tool["package-dir"].get(package)
        if folder is None:  # inherits from its parent's mapping
            parent, _, leaf = package.rpartition(".")
            folder = str(Path(tool["package-dir"][parent]) / leaf)
        assert (ROOT / folder / "__init__.py").exists(), package


def test_no_bare_imports_of_mapped_folders() -> None:
    """`import passes.x` would create duplicate classes next to `irflow.passes.x`."""
    offenders = []
    for path in ROOT.glob("**/*.py"):
        if ".venv" in path.parts or "build" in path.parts:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.strip()
            for bare in ("passes", "dialects", "backends"):
                if stripped.startswith((f"import {bare}", f"from {bare} ", f"from {bare}.")):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {stripped}")
    assert not offenders, "\n".join(offenders)
