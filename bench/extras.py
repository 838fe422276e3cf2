"""What a benchmark needs beyond `pip install -e .`, checked before it starts.

A missing module is one line saying which extra installs it and exit 2, not a traceback
halfway through a run.
"""

from __future__ import annotations

import importlib.util
import sys

INSTALL = {
    "onnx": "onnx (pip install -e '.[onnx]')",
    "onnxruntime": "onnxruntime (pip install -e '.[test]')",
    "cachesim": "pycachesim (pip install -e '.[test]')",
    "numba": "numba (pip install -e '.[fast]')",
    "sklearn": "scikit-learn (pip install -e '.[test]')",
}


def missing(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def require(script: str, *modules: str) -> None:
    """Exit 2 with one line naming what to install when a module is absent."""
    absent = missing(*modules)
    if absent:
        print(f"{script}: needs {', '.join(INSTALL.get(m, m) for m in absent)}; "
              "everything at once: .venv/bin/pip install -e '.[test]'", file=sys.stderr)
        raise SystemExit(2)
