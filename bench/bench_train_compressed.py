"""Compression-aware training on digits: accuracy won back by training after compression.

    .venv/bin/python bench/bench_train_compressed.py
        [--parts prune,qat,distill] [--seeds 3]

1. prune: digits_cnn trained from its seeded init (Adam 2e-3, label smoothing 0.1, cosine,
   20 epochs), pruned 2:4 (`prune{mode=nm n=2 m=4}`), fine-tuned 10 epochs (Adam 5e-4,
   cosine) with the masks kept; the zeros are checked unchanged. Target: within 0.5 point
   of float.
2. qat: the three trained digits models (tests/data/*.onnx, `default`
   pipeline), post-training quantization (`calibrate,quantize{bits=B granularity=
   per-channel}`, min-max on X_calib) vs QAT (`irflow.train.qat.fake_quantize`, 5 epochs
   Adam 1e-4) then the same pipeline. w4a8 lowers to integers (reference executor);
   w3a8/w2a8 and w4a4 are below what `quantize` lowers, so those rows are the fake-quant
   simulation of PTQ and of QAT (same rounding as `quantize`, see docs/training.md).
   Target: QAT w4a8 >= PTQ w4a8 on all three.
3. distill: a half-width digits_cnn (conv 8, conv 16) trained alone vs distilled from the
   float digits_cnn of part 1 (alpha 0.5, T 4), 10 epochs, same seeds; mean over seeds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from irflow import zoo  # noqa: E402
from irflow.backends.reference import compile_function  # noqa: E402
from irflow.frontends.dsl import compile_source  # noqa: E402
from irflow.frontends.onnx import import_onnx  # noqa: E402
from irflow.passes.calibrate import set_calibration_data  # noqa: E402
from irflow.pipeline import run_pipeline  # noqa: E402
from irflow.train.data import Split  # noqa: E402
from irflow.train.loop import TrainConfig, Trainer, accuracy  # noqa: E402
from irflow.train.optim import OptimizerConfig, ScheduleConfig  # noqa: E402
from irflow.train.qat import fake_quantize  # noqa: E402
from irflow.train.retype import retype  # noqa: E402
from irflow.weights import attach_weights, weights_of  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from datasets import DIGITS  # noqa: E402  (the trained digits models, tests/data)
from datasets import split as digits_split  # noqa: E402  (scikit-learn's digits, split)

HALF_CNN = """
model digits_cnn_half(input: f32[1, 1, 8, 8]) {
  conv1 = conv2d(input, out=8, kernel=3, pad=1)
  conv2 = conv2d(relu(conv1), out=16, kernel=3, pad=1)
  pool = maxpool(relu(conv2), kernel=2)
  fc = linear(flatten(pool), out=10)
  return fc
}
"""


def split(sample: tuple[int, ...]) -> tuple[Split, list[dict[str, np.ndarray]]]:
    s = digits_split()
    sp = Split(s["X_train"].reshape(-1, *sample), s["y_train"],
               s["X_test"].reshape(-1, *sample), s["y_test"])
    xc = s["X_calib"].reshape(-1, *sample)
    return sp, [{"input": xc[i:i + 20]} for i in range(0, len(xc), 20)]


def cfg(epochs: int, lr: float, per_epoch: int, seed: int = 0, smoothing: float = 0.1
        ) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch=32, seed=seed, label_smoothing=smoothing,
                       optimizer=OptimizerConfig("adam", lr=lr),
                       schedule=ScheduleConfig("cosine", total=epochs * per_epoch))


def train_float(sp: Split, seed: int = 0):  # noqa: ANN201
    t = Trainer(zoo.load("digits_cnn", seed=seed), cfg(20, 2e-3, len(sp.x_train) // 32, seed))
    t.fit(sp)
    return t.trained(), t.history[-1].test_acc


def part_prune() -> None:
    sp, _ = split((1, 8, 8))
    dense, acc_float = train_float(sp)
    pruned = attach_weights(dense.clone(), weights_of(dense))
    run_pipeline(pruned, "prune{mode=nm n=2 m=4}")
    acc_pruned = accuracy(pruned, sp.x_test, sp.y_test)
    t = Trainer(pruned, cfg(10, 5e-4, len(sp.x_train) // 32))
    zeros = {n: t.params[n] == 0 for n in t.masks}
    t.fit(sp)
    kept = all((t.params[n][z] == 0).all() for n, z in zeros.items())
    acc_ft = t.history[-1].test_acc
    print("## prune 2:4 + fine-tune (digits_cnn)")
    print(f"{'float (trained here)':34} {100 * acc_float:6.2f} %")
    print(f"{'2:4 pruned, no fine-tuning':34} {100 * acc_pruned:6.2f} %  "
          f"({100 * (acc_pruned - acc_float):+.2f})")
    print(f"{'2:4 pruned + 10 epochs fine-tuning':34} {100 * acc_ft:6.2f} %  "
          f"({100 * (acc_ft - acc_float):+.2f}); masks kept: {kept} "
          f"({', '.join(sorted(zeros))})")
    met = acc_ft >= acc_float - 0.005
    print(f"target within 0.5 point of float: {'met' if met else 'not met'}")


def ptq_accuracy(module, calib, sp: Split, bits: int) -> float:  # noqa: ANN001
    q = retype(attach_weights(module.clone(), weights_of(module)), batch=20)
    set_calibration_data(q, calib)
    run_pipeline(q, f"calibrate,quantize{{bits={bits} granularity=per-channel}}")
    prog = compile_function(q)
    logits = np.concatenate([next(iter(prog.run({"input": sp.x_test[i:i + 20]}).values()))
                             for i in range(0, len(sp.x_test), 20)])
    return float((logits.argmax(1) == sp.y_test).mean())


def part_qat() -> None:
    print("## QAT vs PTQ (per-channel weights, min-max activations on X_calib)")
    print(f"{'model':14} {'config':6} {'float':>7} {'PTQ':>7} {'QAT':>7}  how")
    ok = True
    for name in ("digits_mlp", "digits_cnn", "digits_cnn_bn"):
        sample = (64,) if name == "digits_mlp" else (1, 8, 8)
        sp, calib = split(sample)
        m = import_onnx(DIGITS / f"{name}.onnx", input_shapes={"input": [1, *sample]})
        run_pipeline(m, "default")
        acc_float = accuracy(m, sp.x_test, sp.y_test)
        for wbits, abits in ((4, 8), (3, 8), (2, 8), (4, 4)):
            fq = fake_quantize(m, calib, bits=wbits, act_bits=abits)
            t = Trainer(fq, cfg(5, 1e-4, len(sp.x_train) // 32, smoothing=0.0))
            t.fit(sp)
            if (wbits, abits) == (4, 8):
                ptq = ptq_accuracy(m, calib, sp, 4)
                qat = ptq_accuracy(t.trained(m), calib, sp, 4)
                how = "integer IR (calibrate,quantize), reference executor"
                ok &= qat >= ptq
            else:
                ptq = accuracy(fq, sp.x_test, sp.y_test)
                qat = t.history[-1].test_acc
                how = "fake-quant simulation (quantize lowers w4/w8, a8 only)"
            print(f"{name:14} w{wbits}a{abits:<3} {100 * acc_float:6.2f}% {100 * ptq:6.2f}% "
                  f"{100 * qat:6.2f}%  {how}")
    print(f"target QAT w4a8 >= PTQ w4a8 on all three: {'met' if ok else 'not met'}")


def part_distill(seeds: int) -> None:
    sp, _ = split((1, 8, 8))
    teacher, acc_teacher = train_float(sp)
    per_epoch = len(sp.x_train) // 32
    alone, distilled = [], []
    for seed in range(seeds):
        student = compile_source(HALF_CNN, "digits_cnn_half.irf", seed=seed)
        a = Trainer(student, cfg(10, 2e-3, per_epoch, seed, smoothing=0.0))
        a.fit(sp)
        d = Trainer(student, TrainConfig(**{**cfg(10, 2e-3, per_epoch, seed, 0.0).__dict__,
                                            "distill_alpha": 0.5, "temperature": 4.0}),
                    teacher=teacher)
        d.fit(sp)
        alone.append(a.history[-1].test_acc)
        distilled.append(d.history[-1].test_acc)
    print(f"## distillation: half-width digits_cnn (teacher {100 * acc_teacher:.2f} %), "
          f"10 epochs, seeds 0..{seeds - 1}")
    print(f"{'student alone':18} " + " ".join(f"{100 * a:6.2f}" for a in alone)
          + f"   mean {100 * np.mean(alone):6.2f} %")
    print(f"{'student distilled':18} " + " ".join(f"{100 * a:6.2f}" for a in distilled)
          + f"   mean {100 * np.mean(distilled):6.2f} %")
    print(f"distilled beats alone (mean): {'yes' if np.mean(distilled) > np.mean(alone) else 'no'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="prune,qat,distill")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    start = time.perf_counter()
    for part in args.parts.split(","):
        {"prune": part_prune, "qat": part_qat,
         "distill": lambda: part_distill(args.seeds)}[part]()
        print()
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
