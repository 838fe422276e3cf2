"""Every command in the README and docs runs: a doc that does not run fails CI.

The convention: every ```sh block of README.md and docs/*.md is executed, one command per
line (a trailing backslash continues it), with the repository root as the working directory
— here a fresh copy of the repository per document, so outputs (`-o`, `--dump-dir`,
`--trace`) land in a temporary folder and each document stands on its own. `irflow`,
`xdsl-opt` and `python3` are this virtual environment's. Long benchmark commands live in
tables or ```text blocks, which are not executed.

Not executed, by rule (checked below, so nothing else is skipped silently): lines that
create a virtual environment or install packages (`python3 -m venv`, `pip install`) — the
README's two install commands; `.ci/run` runs those for real. `irflow show ... -o X.svg`
needs Graphviz's `dot` (`.ci/run` installs it) and is skipped only where `dot` is absent.
Also checked: every repository path a document cites exists.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
INSTALL = re.compile(r"(^|&&\s*)(python3? -m venv|\S*pip3? install)\b")
SH_BLOCK = re.compile(r"^```sh[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
TIMEOUT_S = 600


def commands(markdown: str) -> list[tuple[int, str]]:
    """(line number, command) of every command in the ```sh blocks of `markdown`."""
    out = []
    for block in SH_BLOCK.finditer(markdown):
        first = markdown[:block.start(1)].count("\n") + 1
        pending, start = "", 0
        for i, line in enumerate(block.group(1).splitlines()):
            if not pending:
                start = first + i
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            text = (pending + line).strip()
            pending = ""
            if text and not text.startswith("#"):
                out.append((start, text))
    return out


def is_install(command: str) -> bool:
    return INSTALL.search(command) is not None


def copy_repository(dest: Path) -> Path:
    """The repository's files (tracked and untracked, not ignored) copied to `dest`."""
    proc = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                          cwd=ROOT, capture_output=True, check=False)
    if proc.returncode == 0 and proc.stdout:
        files = [ROOT / p for p in proc.stdout.decode().split("\0") if p]
    else:  # a copy without .git
        skip = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}
        files = [p for p in ROOT.rglob("*") if p.is_file()
                 and not skip & set(p.relative_to(ROOT).parts)]
    for src in files:
        if src.is_file():
            target = dest / src.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest


def test_extraction_joins_continuations_and_drops_comments() -> None:
    md = ("text\n```sh\n# comment\nirflow zoo   # trailing\n\nirflow run a \\\n    --b c\n```\n"
          "```text\nnot run\n```\n```python\nnot run\n```\n")
    assert commands(md) == [(4, "irflow zoo   # trailing"), (6, "irflow run a      --b c")]


def test_only_the_readme_install_lines_are_skipped() -> None:
    skipped = [(doc.name, cmd) for doc in DOCS for _, cmd in commands(doc.read_text())
               if is_install(cmd)]
    assert [name for name, _ in skipped] == ["README.md", "README.md"], skipped
    assert all("python3 -m venv .venv" in cmd for _, cmd in skipped)


def test_every_document_has_commands_or_none_to_run() -> None:
    # the pages with ```sh blocks: a block that stops matching (e.g. ```shell) is caught here
    with_sh = {doc.name for doc in DOCS if commands(doc.read_text())}
    assert {"README.md", "passes.md", "quantization.md", "pruning.md", "accel.md"} <= with_sh


CITED_PATH = re.compile(r"`([\w.][\w./-]*)`|\]\(([^)\s#]+)")
# Cited before its file is merged: README links docs/training.md, which h12 adds (b840a52).
PENDING = {"docs/training.md"}
TOP_LEVEL = {"irflow", "dialects", "passes", "backends", "tests", "bench", "examples", "docs",
             ".ci"}


def test_cited_repository_paths_exist() -> None:
    missing = []
    for doc in DOCS:
        for m in CITED_PATH.finditer(doc.read_text()):
            cited = m.group(1) or m.group(2)
            path = (doc.parent / cited) if m.group(2) else ROOT / cited
            path = path.resolve()
            rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else None
            if rel is None or not rel.parts or rel.parts[0] not in TOP_LEVEL:
                continue  # not a repository path (an op name, an output such as dumps/...)
            if any(part.startswith(".venv") for part in rel.parts) or str(rel) in PENDING:
                continue  # a folder a script creates; a file another branch is adding
            if not path.exists():
                missing.append(f"{doc.name}: {cited}")
    assert not missing, "cited files not in the repository: " + ", ".join(missing)


@pytest.mark.slow
@pytest.mark.parametrize("doc", [d for d in DOCS if commands(d.read_text())],
                         ids=lambda d: d.name)
def test_document_commands_run(doc: Path, tmp_path: Path) -> None:
    work = copy_repository(tmp_path / "repo")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)
    ran = 0
    for line, cmd in commands(doc.read_text()):
        if is_install(cmd):
            continue
        if ".svg" in cmd and shutil.which("dot") is None:
            continue  # Graphviz is optional; .ci/run installs it
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=work, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        assert proc.returncode == 0, (
            f"{doc.relative_to(ROOT)}:{line}: `{cmd}` exited {proc.returncode}:\n"
            f"{proc.stderr[-2000:]}")
        ran += 1
    assert ran > 0


def test_passes_doc_names_every_op_class() -> None:
    """docs/passes.md's table names each op class a pattern can match, with its op name."""
    from irflow.dialects.accel import ACCEL
    from irflow.dialects.nn import NN
    from irflow.dialects.quant import IRQ, QUANT

    text = (ROOT / "docs" / "passes.md").read_text()
    missing = [f"{op.__name__} ({op.name})"
               for d in (NN, QUANT, IRQ, ACCEL) for op in d.operations
               if f"`{op.__name__}` ({op.name})" not in text]
    assert not missing, f"docs/passes.md does not name {missing}"
