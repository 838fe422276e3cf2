"""Training speed: digits_cnn on digits with irflow (numpy, `@train_step` from `grad`) and
with PyTorch CPU, same architecture, optimizer (Adam), batch size and data; seconds per
epoch (the training batches only, no evaluation) side by side.

    .venv/bin/python bench/bench_train.py [--epochs 5]
        [--batch 32] [--threads 1] [--data digits.npz]

PyTorch runs in its own virtual environment, created on first use in `.bench-venvs/torch`
(`pip install torch==2.13.0`); irflow never imports it. Both sides use `--threads` BLAS /
intra-op threads (default 1: the machine is shared). Data: scikit-learn's `load_digits`,
split as tests/datasets.py does, or `--data` (X_train, y_train, ...).
Target (issue 12): irflow <= 2x PyTorch's seconds per epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".bench-venvs" / "torch"
TORCH = "torch==2.13.0"

TORCH_SCRIPT = r"""
import json, sys, time
import numpy as np
import torch
threads, batch, epochs, lr, seed, path = sys.argv[1:7]
torch.set_num_threads(int(threads))
torch.manual_seed(int(seed))
d = np.load(path)
x = torch.tensor(d["X_train"].reshape(-1, 1, 8, 8), dtype=torch.float32)
y = torch.tensor(d["y_train"], dtype=torch.long)
model = torch.nn.Sequential(
    torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(),
    torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(),
    torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(512, 10))
opt = torch.optim.Adam(model.parameters(), lr=float(lr))
b = int(batch)
times = []
for e in range(int(epochs)):
    order = torch.tensor(np.random.default_rng([int(seed), e]).permutation(len(x)))
    start = time.perf_counter()
    for i in range(len(x) // b):
        idx = order[i * b:(i + 1) * b]
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    times.append(time.perf_counter() - start)
xt = torch.tensor(d["X_test"].reshape(-1, 1, 8, 8), dtype=torch.float32)
with torch.no_grad():
    acc = float((model(xt).argmax(1).numpy() == d["y_test"]).mean())
print(json.dumps({"seconds": times, "test_acc": acc}))
"""


def torch_python() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {VENV} with {TORCH} (once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", TORCH, "numpy"],
                       check=True)
    return python


def digits(path: str | None, out: Path) -> Path:
    if path:
        return Path(path)
    import numpy as np

    sys.path.insert(0, str(ROOT / "tests"))
    from datasets import split

    d = split()
    np.savez(out, **{k: d[k] for k in ("X_train", "y_train", "X_test", "y_test")})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data")
    args = ap.parse_args()
    env = {"OPENBLAS_NUM_THREADS": str(args.threads), "OMP_NUM_THREADS": str(args.threads),
           "MKL_NUM_THREADS": str(args.threads)}
    os.environ.update(env)  # before numpy is imported

    import numpy as np

    from irflow import zoo
    from irflow.train.data import load_split
    from irflow.train.loop import TrainConfig, Trainer
    from irflow.train.optim import OptimizerConfig

    with tempfile.TemporaryDirectory() as tmp:
        data_path = digits(args.data, Path(tmp) / "digits.npz")
        config = TrainConfig(epochs=args.epochs, batch=args.batch, seed=args.seed,
                             optimizer=OptimizerConfig("adam", lr=args.lr))
        trainer = Trainer(zoo.load("digits_cnn", seed=args.seed), config)
        history = trainer.fit(load_split(data_path, (1, 8, 8), 10))
        ours = [h.seconds for h in history]
        proc = subprocess.run([str(torch_python()), "-c", TORCH_SCRIPT, str(args.threads),
                               str(args.batch), str(args.epochs), str(args.lr), str(args.seed),
                               str(data_path)], capture_output=True, text=True,
                              env=os.environ | env)
        if proc.returncode:
            print(proc.stderr, file=sys.stderr)
            return 1
        theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    ours_med, theirs_med = float(np.median(ours)), float(np.median(theirs["seconds"]))
    print(f"digits_cnn, batch {args.batch}, Adam lr {args.lr}, {args.epochs} epochs, "
          f"{args.threads} thread(s); seconds per epoch (training batches), median")
    print(f"{'':10} {'s/epoch':>9} {'per epoch':>40} {'test acc':>9}")
    print(f"{'irflow':10} {ours_med:9.3f} {' '.join(f'{s:.3f}' for s in ours):>40} "
          f"{100 * history[-1].test_acc:8.2f}%")
    print(f"{'PyTorch':10} {theirs_med:9.3f} "
          f"{' '.join(f'{s:.3f}' for s in theirs['seconds']):>40} "
          f"{100 * theirs['test_acc']:8.2f}%")
    ratio = ours_med / theirs_med
    print(f"irflow / PyTorch: {ratio:.2f}x (target <= 2x: {'met' if ratio <= 2 else 'not met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
