"""Test accuracy of the digits models after pruning, without fine-tuning, alone and with int8.

    .venv/bin/python bench/bench_prune_accuracy.py [--no-int8] [--models a,b]

Data: tests/data (its README; needs the `test` extra for scikit-learn's digits images):
the three trained ONNX models, evaluated on
the 360 test images; int8 rows are calibrated (min-max) on `X_calib` (100 images).
Each row prunes the weights as trained (the prune pipeline text shown in the row), then
runs `fold-batchnorm` (the `nn.sparsity` attribute survives it); "+int8" appends
`calibrate,quantize{bits=8 granularity=per-channel}`. `--prune-after-fold` prunes the
folded weights instead (worse on digits_cnn_bn: the batchnorm scales skew a global
magnitude threshold).

Columns: the prune spec; weight density (non-zeros / elements of the conv, linear and
matmul weights, measured on the pruned float model); parameters after pruning (all
weights, including biases and the exact border corrections of channel pruning);
test accuracy in float and with int8; the change from the unpruned float model.
Targets (issue 6): global magnitude 50 % within 1 point of float on all three models;
2:4 within 3 points on the two CNNs.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from irflow.backends.reference import run
from irflow.frontends.onnx import import_onnx
from irflow.graph import main_func
from irflow.passes.calibrate import set_calibration_data
from irflow.pipeline import run_pipeline
from irflow.sparsity import constant_elements, weight_uses
from irflow.weights import constant_value, weights_of

MODELS = ("digits_mlp", "digits_cnn", "digits_cnn_bn")
BATCH = 20  # divides the 360 test and 100 calibration images: one static-shape module
PRUNE = (
    ("float", ""),
    ("magnitude 50 %", "prune{mode=magnitude sparsity=0.5 scope=global}"),
    ("magnitude 75 %", "prune{mode=magnitude sparsity=0.75 scope=global}"),
    ("magnitude 90 %", "prune{mode=magnitude sparsity=0.9 scope=global}"),
    ("channel 25 %", "prune{mode=channel ratio=0.25}"),
    ("channel 50 %", "prune{mode=channel ratio=0.5}"),
    ("2:4", "prune{mode=nm n=2 m=4}"),
)
INT8 = "calibrate,quantize{bits=8 granularity=per-channel}"


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from datasets import DIGITS  # noqa: E402
from datasets import split as digits_split  # noqa: E402


def _batches(x: np.ndarray) -> list[dict[str, np.ndarray]]:
    return [{"input": x[i:i + BATCH]} for i in range(0, len(x), BATCH)]


def _accuracy(module, x: np.ndarray, y: np.ndarray) -> float:
    preds = [run(module, b)["logits"].argmax(axis=1) for b in _batches(x)]
    return float((np.concatenate(preds) == y).mean())


def _density(module) -> tuple[float, int]:
    store = weights_of(module)
    arrays = [constant_value(u.const, store) for u in weight_uses(main_func(module))]
    nnz = sum(int(np.count_nonzero(a)) for a in arrays)
    total = sum(a.size for a in arrays)
    params = constant_elements(main_func(module))
    return nnz / max(total, 1), params


def evaluate(path: Path, split: dict[str, np.ndarray], spec: str, int8: bool,
             prune_after_fold: bool = False) -> tuple[float, float | None, float, int]:
    x_shape = (1, 8, 8) if "cnn" in path.stem else (64,)
    x_test = split["X_test"].reshape((-1,) + x_shape)
    x_calib = split["X_calib"].reshape((-1,) + x_shape)
    y = split["y_test"]

    def build():
        m = import_onnx(path, input_shapes={"input": (BATCH,) + x_shape})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the "kept the classifier" notes
            steps = ["fold-batchnorm", spec] if prune_after_fold else [spec, "fold-batchnorm"]
            run_pipeline(m, ",".join(filter(None, steps)))
        return m

    m = build()
    density, params = _density(m)
    acc = _accuracy(m, x_test, y)
    acc8 = None
    if int8:
        q = build()
        set_calibration_data(q, _batches(x_calib))
        run_pipeline(q, INT8)
        acc8 = _accuracy(q, x_test, y)
    return acc, acc8, density, params


def main(argv: list[str] | None = None) -> int:
    from extras import require

    require("bench_prune_accuracy.py", "onnx", "sklearn")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--no-int8", action="store_true", help="skip the +int8 column")
    ap.add_argument("--prune-after-fold", action="store_true",
                    help="run fold-batchnorm before prune instead of after")
    args = ap.parse_args(argv)
    split = digits_split()
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    print("data: tests/data + scikit-learn load_digits "
          "(360 test images; int8 calibrated min-max on X_calib)\n")
    header = (f"{'model':<14} {'prune':<16} {'density':>8} {'params':>8} {'fp32 acc':>9} "
              f"{'Δ fp32':>7} {'int8 acc':>9} {'Δ int8':>7}")
    print(header)
    print("-" * len(header))
    drops: dict[tuple[str, str], float] = {}
    for name in args.models.split(","):
        path = DIGITS / f"{name}.onnx"
        base = None
        for label, spec in PRUNE:
            t = time.perf_counter()
            acc, acc8, density, params = evaluate(path, split, spec, not args.no_int8,
                                                  args.prune_after_fold)
            base = acc if base is None else base
            drops[name, label] = 100 * (base - acc)
            a8 = f"{100 * acc8:8.2f}%" if acc8 is not None else f"{'-':>9}"
            d8 = f"{100 * (acc8 - base):+7.2f}" if acc8 is not None else f"{'-':>7}"
            print(f"{name:<14} {label:<16} {100 * density:7.1f}% {params:>8} "
                  f"{100 * acc:8.2f}% {100 * (acc - base):+7.2f} {a8} {d8}"
                  f"   ({time.perf_counter() - t:.1f}s)")
        print()
    print("targets (fp32, points below float):")
    for label, limit, models in (("magnitude 50 %", 1.0, MODELS),
                                 ("2:4", 3.0, ("digits_cnn", "digits_cnn_bn"))):
        for name in models:
            if (name, label) in drops:
                drop = drops[name, label]
                verdict = "met" if drop <= limit else "MISSED"
                print(f"  {label:<15} {name:<14} {drop:5.2f} <= {limit:.0f}: {verdict}")
    print()
    order = "fold-batchnorm,<prune>" if args.prune_after_fold else "<prune>,fold-batchnorm"
    print(f"pipelines: {order}   and   {order},{INT8}")
    for label, spec in PRUNE[1:]:
        print(f"  {label:<16} {spec}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
