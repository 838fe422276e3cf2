"""Write real inputs for the digits models of tests/data (needs scikit-learn: the test extra).

    python3 examples/digits_npz.py [OUT_DIR]

writes `digits_in.npz` (20 test images) and `digits_calib.npz` (100 calibration images),
each keyed `input` with shape [N, 1, 8, 8] (the CNNs' input; reshape to [N, 64] for the
MLP), pixels scaled to [0, 1]. The images are scikit-learn's bundled `load_digits` (no
download), split as the models were trained (tests/data/README.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def main(argv: list[str]) -> int:
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        print("digits_npz.py needs scikit-learn: .venv/bin/pip install -e '.[test]'",
              file=sys.stderr)
        return 1
    out = Path(argv[0]) if argv else Path()
    digits = load_digits()
    x = (digits.data / 16).astype(np.float32).reshape(-1, 1, 8, 8)
    idx_train, idx_test = train_test_split(np.arange(len(x)), test_size=360, random_state=0)
    np.savez(out / "digits_in.npz", input=x[idx_test[:20]])
    np.savez(out / "digits_calib.npz", input=x[idx_train[:100]])
    print(f"wrote {out / 'digits_in.npz'} [20,1,8,8] and {out / 'digits_calib.npz'} [100,1,8,8]")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
