"""irflow's reference executor vs onnxruntime on exported zoo models (issue 3, item 6).

    .venv/bin/python bench/bench_onnx.py [--runs 7] [--threads 1] [MODEL ...]

For each model (default: resnet18 and mobilenetv2 from `irflow.zoo`, seeded weights,
batch 1 at 224×224): export it with `irflow.exporters.onnx.export_onnx`, import the ONNX
file back with `import_onnx` (so irflow runs exactly the graph onnxruntime runs), and time
`irflow.backends.reference` on that module against onnxruntime on the exported model, at
onnxruntime's default optimization level (it fuses batchnorm and activations itself) and
with optimizations off. Prints the median of `--runs` interleaved runs after one warm-up,
the ratio irflow / onnxruntime, and the largest output difference. Both engines use
`--threads` threads (OpenBLAS via OPENBLAS_NUM_THREADS, set before numpy loads; onnxruntime's
intra-op pool). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _threads_from_argv() -> int:
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--threads", type=int, default=1)
    return ap.parse_known_args()[0].threads


# BLAS reads its thread count when numpy loads: set it first so both engines match.
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(_threads_from_argv()))

import numpy as np  # noqa: E402

DEFAULT_MODELS = ("resnet18", "mobilenetv2")


def bench_model(name: str, runs: int, threads: int) -> None:
    import onnxruntime as ort

    from irflow import zoo
    from irflow.backends.reference import compile_function
    from irflow.exporters.onnx import export_onnx
    from irflow.frontends.onnx import import_onnx
    from irflow.graph import input_names, main_func

    source = zoo.load(name, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.onnx"
        export_onnx(source, path)
        module = import_onnx(path)
        model_bytes = path.read_bytes()

    f = main_func(module)
    rng = np.random.default_rng(0)
    feeds = {
        n: rng.standard_normal([int(d) for d in a.type.get_shape()]).astype(np.float32)
        for n, a in zip(input_names(f), f.body.blocks[0].args)
    }
    program = compile_function(module)

    def session(level: ort.GraphOptimizationLevel) -> ort.InferenceSession:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = level
        return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])

    ort_opt = session(ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    ort_noopt = session(ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    engines = {
        "irflow": lambda: list(program.run(feeds).values()),
        "ort": lambda: ort_opt.run(None, feeds),
        "ort-noopt": lambda: ort_noopt.run(None, feeds),
    }
    outputs = {k: fn() for k, fn in engines.items()}  # warm-up
    times: dict[str, list[float]] = {k: [] for k in engines}
    for _ in range(runs):  # interleaved: every engine sees the same machine load
        for k, fn in engines.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    diff = max(float(np.abs(a - b).max()) for a, b in zip(outputs["irflow"], outputs["ort"]))
    ops = sum(1 for _ in f.body.ops)
    print(f"{name:<14} {ops:>5} {1e3 * med['irflow']:>9.1f} {1e3 * med['ort']:>9.1f} "
          f"{1e3 * med['ort-noopt']:>11.1f} {med['irflow'] / med['ort']:>8.2f}x "
          f"{med['irflow'] / med['ort-noopt']:>10.2f}x {diff:>10.2e}")


def main() -> None:
    from extras import require

    require("bench_onnx.py", "onnx", "onnxruntime")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=list(DEFAULT_MODELS))
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    print(f"median of {args.runs} runs, {args.threads} thread(s); ms")
    print(f"{'model':<14} {'ops':>5} {'irflow':>9} {'ort':>9} {'ort-noopt':>11} "
          f"{'ratio':>9} {'ratio-noopt':>11} {'max |diff|':>10}")
    for name in args.models:
        bench_model(name, args.runs, args.threads)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
