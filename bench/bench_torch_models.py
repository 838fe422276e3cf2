"""The PyTorch-exported models of tests/data (bench/export_torch_models.py) on irflow: per file,
its opset and size, the reference executor's error against torch's stored output and
against onnxruntime, and whether `lower-to-accel` + the simulator run it (and match).

    .venv/bin/python bench/bench_torch_models.py

Errors: max |irflow − torch|, and max |irflow − onnxruntime| / max(|onnxruntime|, 1e-6)
(the relative error tests/test_torch_models.py bounds by 1e-4, with atol 1e-6). The
simulator column is the max |simulated − reference|, or the op `lower-to-accel` stops at.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def main() -> int:
    import onnx
    import onnxruntime as ort

    from irflow.backends.reference import run
    from irflow.backends.sim import simulate
    from irflow.diagnostics import IrflowError
    from irflow.frontends.onnx import import_onnx

    print(f"{'model':32} {'opset':>5} {'nodes':>5} {'KB':>5} {'vs torch':>9} "
          f"{'vs ORT rel':>10}  simulator")
    worst_torch = worst_ort = 0.0
    for path in sorted(DATA.glob("torch_*.onnx")):
        ref = np.load(path.with_suffix(".ref.npz"))
        feeds = {k: ref[k] for k in ref.files if k != "output"}
        proto = onnx.load(str(path))
        module = import_onnx(path)
        (y,) = run(module, feeds).values()
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(proto.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
        (theirs,) = sess.run(None, feeds)
        e_torch = float(np.abs(y - ref["output"]).max())
        e_ort = float((np.abs(y - theirs) / np.maximum(np.abs(theirs), 1e-6)).max())
        worst_torch, worst_ort = max(worst_torch, e_torch), max(worst_ort, e_ort)
        try:
            (z,) = simulate(module, feeds, machine="default").outputs.values()
            sim = f"runs, max abs diff {float(np.abs(z - y).max()):.1e}"
        except IrflowError as e:
            kind = re.search(r"kind '([^']+)'|lower '([^']+)'", str(e))
            sim = f"stops at {next(g for g in kind.groups() if g)}" if kind else str(e)[:60]
        print(f"{path.stem:32} {proto.opset_import[0].version:>5} {len(proto.graph.node):>5} "
              f"{path.stat().st_size / 1024:>5.0f} {e_torch:>9.1e} {e_ort:>10.1e}  {sim}")
    print(f"worst: {worst_torch:.1e} vs torch (abs), {worst_ort:.1e} vs onnxruntime (rel)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
