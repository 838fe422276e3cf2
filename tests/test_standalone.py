"""The repository stands alone: no file names an absolute path of some machine or data in a
folder beside the checkout, and the digits data the tests need is inside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
from datasets import DIGITS, MODELS, reference, split

ROOT = Path(__file__).resolve().parents[1]
# Absolute paths of a machine (home and scratch folders) and data beside the checkout. The
# names are spelled in pieces so that this file does not match its own pattern.
_MACHINE_DIRS = ("work", "root", "home", "Users", "mnt", "scratch", "tmp")
_SIBLING = "sha" + "red"
FORBIDDEN = re.compile(r"(?<![\w.])(/(?:" + "|".join(_MACHINE_DIRS) + r")/"
                       r"|[A-Z]:\\\\Users|\.\./" + _SIBLING + r"\b|" + _SIBLING + r"/data\b)")
SKIP_DIRS = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}


def repository_files() -> list[Path]:
    """The tracked files (git), or every file of a copy that is not a checkout."""
    proc = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if proc.returncode == 0 and proc.stdout:
        return [ROOT / p for p in proc.stdout.decode().split("\0") if p]
    return [p for p in ROOT.rglob("*") if p.is_file()
            and not SKIP_DIRS & set(p.relative_to(ROOT).parts)
            and not p.relative_to(ROOT).parts[0].endswith(".egg-info")]


def test_no_file_names_an_absolute_path_of_a_machine() -> None:
    hits = []
    for path in repository_files():
        if not path.exists() or path == Path(__file__).resolve():
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        for n, line in enumerate(text.splitlines(), 1):
            if FORBIDDEN.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:120]}")
    assert not hits, "machine-specific paths:\n" + "\n".join(hits)


def test_the_pattern_catches_machine_paths() -> None:
    for bad in (f"see /{_MACHINE_DIRS[0]}/{_SIBLING}/data", f"cd /{_MACHINE_DIRS[1]}/x",
                f"~ is /{_MACHINE_DIRS[2]}/me", f"../{_SIBLING}/data/digits",
                f"open('/{_MACHINE_DIRS[-1]}/x.npz')"):
        assert FORBIDDEN.search(bad), bad
    for fine in ("tests/data/README.md", f"a/{_MACHINE_DIRS[0]}/b",
                 f"http://x.org/{_MACHINE_DIRS[2]}/y", "docs/passes.md"):
        assert not FORBIDDEN.search(fine), fine


def test_digits_data_is_in_the_repository_and_matches_sklearn() -> None:
    data = split()
    assert data["X_train"].shape == (1437, 64) and data["X_test"].shape == (360, 64)
    assert data["X_calib"].dtype == np.float32 and 0 <= data["X_calib"].min() <= 1
    for name in MODELS:
        assert (DIGITS / f"{name}.onnx").is_file()
        assert DIGITS.parent == ROOT / "tests"
        ref = reference(name)  # checks the stored idx_test/labels against sklearn's split
        # the stored fp32 logits classify sklearn's images as the README says (>= 98 %)
        assert float((ref["logits"].argmax(1) == ref["labels"]).mean()) >= 0.98
