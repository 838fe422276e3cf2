"""Post-training quantization accuracy on real data: the three digits models.

    .venv/bin/python bench/bench_quant_accuracy.py [--models a,b] [--methods m,n]

Data: tests/data (see its README; needs the `test` extra for scikit-learn's digits
images). Each model is imported from its ONNX
file (batch 20, which divides the 100 calibration and 360 test images), put through
the `default` pipeline (batchnorm folded, activations fused), calibrated once on
`X_calib` (the histograms are kept, so every method reads the same observations),
quantized in each configuration and run on the 360 test images by the reference
executor (integer kernels). Columns: test accuracy, top-1 agreement with float, and
the SQNR of the logits against irflow's float logits, 10·log10(Σ f² / Σ (f − q)²).

Configurations (pipeline text of the quantize step):
  int8 per-tensor   quantize{bits=8 granularity=per-tensor}
  int8 per-channel  quantize{bits=8 granularity=per-channel}
  w4a8              quantize{bits=4 granularity=per-channel}
  w4a8 mse-clip     quantize{bits=4 granularity=per-channel weight-clip=mse}
  w4a8 fl8          quantize{bits=4 granularity=per-channel first-last-bits=8}
  int8 weight-only  quantize{bits=8 weight-only=true}                (no activation ranges)

Targets (issue 5): int8 agreement ≥ 99.7 % and SQNR ≥ 40 dB per model; w4a8 accuracy
within 1 point of float. The last lines say which rows meet them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from irflow.backends.reference import compile_function
from irflow.frontends.onnx import import_onnx
from irflow.passes.calibrate import METHODS, calibrate
from irflow.pipeline import run_pipeline
from irflow.weights import attach_weights, weights_of

BATCH = 20
MODELS = ("digits_mlp", "digits_cnn", "digits_cnn_bn")
CONFIGS: tuple[tuple[str, str, bool], ...] = (
    # (label, quantize pipeline text, uses activation ranges)
    ("int8 per-tensor", "quantize{bits=8 granularity=per-tensor}", True),
    ("int8 per-channel", "quantize{bits=8 granularity=per-channel}", True),
    ("w4a8", "quantize{bits=4 granularity=per-channel}", True),
    ("w4a8 mse-clip", "quantize{bits=4 granularity=per-channel weight-clip=mse}", True),
    ("w4a8 fl8", "quantize{bits=4 granularity=per-channel first-last-bits=8}", True),
    ("int8 weight-only", "quantize{bits=8 weight-only=true}", False),
)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from datasets import DIGITS, reference  # noqa: E402
from datasets import split as digits_split  # noqa: E402


def run_batches(module, x: np.ndarray) -> np.ndarray:
    prog = compile_function(module)
    return np.concatenate([prog.run({"input": x[i: i + BATCH]})["logits"]
                           for i in range(0, len(x), BATCH)])


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    noise = float(((ref.astype(np.float64) - got) ** 2).sum())
    signal = float((ref.astype(np.float64) ** 2).sum())
    return float("inf") if noise == 0 else float(10 * np.log10(signal / noise))


def bench_model(path: Path, split: dict[str, np.ndarray], methods: list[str]) -> list[dict]:
    ref = reference(path.stem)
    x_test, labels = ref["input"], ref["labels"]
    shape = (BATCH,) + x_test.shape[1:]
    module = import_onnx(path, input_shapes={"input": list(shape)})
    run_pipeline(module, "default")
    logits = run_batches(module, x_test)
    rows = [dict(config="float", method="-", acc=float((logits.argmax(1) == labels).mean()),
                 agree=1.0, sqnr=float("inf"),
                 ort_err=float(np.abs(logits - ref["logits"]).max()))]
    x_calib = split["X_calib"].reshape((-1,) + x_test.shape[1:])
    cal = calibrate(module, [{"input": x_calib[i: i + BATCH]}
                             for i in range(0, len(x_calib), BATCH)], apply=False)
    for label, spec, needs_ranges in CONFIGS:
        for method in (methods if needs_ranges else ["-"]):
            if needs_ranges:
                cal.apply(module, method)
            q = attach_weights(module.clone(), weights_of(module))
            run_pipeline(q, spec)
            out = run_batches(q, x_test)
            rows.append(dict(config=label, method=method,
                             acc=float((out.argmax(1) == labels).mean()),
                             agree=float((out.argmax(1) == logits.argmax(1)).mean()),
                             sqnr=sqnr_db(logits, out)))
    return rows


def main() -> int:
    from extras import require

    require("bench_quant_accuracy.py", "onnx", "sklearn")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args()
    methods = args.methods.split(",")
    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    print("data: tests/data + scikit-learn load_digits "
          "(calibrated on X_calib = 100 images, evaluated on 360 test images)")
    split = digits_split()
    verdicts: list[str] = []
    for name in args.models.split(","):
        t0 = time.perf_counter()
        rows = bench_model(DIGITS / f"{name}.onnx", split, methods)
        print(f"\n{name}  (float logits vs onnxruntime: max |Δ| = {rows[0]['ort_err']:.1e})")
        print(f"  {'config':<18} {'method':<11} {'acc %':>7} {'agree %':>8} {'SQNR dB':>8}")
        for r in rows:
            print(f"  {r['config']:<18} {r['method']:<11} {100 * r['acc']:7.2f} "
                  f"{100 * r['agree']:8.2f} {r['sqnr']:8.2f}")
        print(f"  ({time.perf_counter() - t0:.1f} s)")
        float_acc = rows[0]["acc"]
        for r in rows[1:]:
            if r["config"].startswith("int8") and r["config"] != "int8 weight-only":
                ok = r["agree"] >= 0.997 and r["sqnr"] >= 40.0
                verdicts.append(f"{name} {r['config']} {r['method']}: agreement "
                                f"{100 * r['agree']:.2f} %, SQNR {r['sqnr']:.1f} dB -> "
                                f"{'meets' if ok else 'MISSES'} int8 target")
            if r["config"] == "w4a8":
                ok = r["acc"] >= float_acc - 0.01
                verdicts.append(f"{name} w4a8 {r['method']}: {100 * r['acc']:.2f} % vs float "
                                f"{100 * float_acc:.2f} % -> {'meets' if ok else 'MISSES'} "
                                "w4a8 target")
    print("\ntargets: int8 agreement >= 99.7 % and SQNR >= 40 dB; w4a8 within 1 point of float")
    for v in verdicts:
        print("  " + v)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
