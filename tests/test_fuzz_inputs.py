"""The input fuzzer (fuzz/, docs/fuzzing.md): its crashes stay fixed, and a short run of
every surface finds no internal error.

Each file in tests/data/fuzz/ is a (shrunk) case the fuzzer found crashing irflow with an
internal error; it must now end in exit 0, 1 or 2. The smoke test runs a few dozen
Hypothesis-generated cases per surface through the same harness, so CI exercises it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
pytest.importorskip("onnx")

from fuzz.harness import case_from_json, run_case  # noqa: E402
from fuzz.run import fuzz_surface  # noqa: E402
from fuzz.surfaces import SURFACES  # noqa: E402

CASES = sorted((REPO / "tests" / "data" / "fuzz").glob("*.json"))


def test_regression_cases_are_kept() -> None:
    assert len(CASES) >= 10  # the crashes found while fuzzing (docs/fuzzing.md)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_fuzz_regression(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRFLOW_ALLOC_LIMIT", "64M")  # as the fuzzer ran them
    data = json.loads(path.read_text())
    outcome = run_case(case_from_json(data), tmp_path / "case", timeout=60)
    assert outcome.kind in ("ok", "error", "usage"), (data["key"], outcome.detail)


@pytest.mark.parametrize("surface", SURFACES)
def test_fuzz_smoke(surface: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRFLOW_ALLOC_LIMIT", "64M")
    tally = fuzz_surface(surface, seconds=None, cases=40, folder=tmp_path, batch=40,
                         timeout=60, log=lambda s: None, derandomize=True)
    assert tally.cases >= 40
    assert tally.kinds["ok"] + tally.kinds["error"] > 0
    assert not tally.internal, {k: o.detail for k, (_, o) in tally.internal.items()}
