"""Where the shared data lives, for the tests that use real models and images.

`../shared/data/digits` beside the checkout (how CI lays it out), `$IRFLOW_DIGITS`, or the
developers' `/work/shared/data/digits`. The data is required, not optional: a test that
needs it fails with this message rather than skipping silently.
"""

from __future__ import annotations

import os
from pathlib import Path

_CANDIDATES = [
    Path(os.environ["IRFLOW_DIGITS"]) if os.environ.get("IRFLOW_DIGITS") else None,
    Path(__file__).resolve().parents[2] / "shared" / "data" / "digits",
    Path("/work/shared/data/digits"),
]


def _find() -> Path:
    for candidate in _CANDIDATES:
        if candidate is not None and (candidate / "digits_mlp.onnx").exists():
            return candidate
    looked = ", ".join(str(c) for c in _CANDIDATES if c is not None)
    raise FileNotFoundError(f"digits data not found (looked in {looked}; set IRFLOW_DIGITS)")


DIGITS: Path = _find()
