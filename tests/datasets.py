"""Real models and images for the tests: the digits set, standing alone in the repository.

The images come from scikit-learn's bundled `load_digits` (1,797 8×8 images shipped inside
the wheel; no download), scaled to [0, 1] (pixel / 16, float32) and split as the models were
trained: `train_test_split(arange(1797), test_size=360, random_state=0)`. The three trained
models and their onnxruntime reference logits live in `tests/data/` (see its README.md).

    >>> ref = reference("digits_cnn")      # input [360,1,8,8], logits [360,10], labels [360]
    >>> split()["X_calib"].shape           # the first 100 training images (calibration)
    (100, 64)
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

DIGITS: Path = Path(__file__).resolve().parent / "data"
"""The folder of the trained models (`digits_*.onnx`) and their reference logits."""

MODELS = ("digits_mlp", "digits_cnn", "digits_cnn_bn")
INPUT_SHAPE: dict[str, tuple[int, ...]] = {
    "digits_mlp": (64,), "digits_cnn": (1, 8, 8), "digits_cnn_bn": (1, 8, 8)}
"""Each model's input shape without the batch dimension."""

N_TEST, N_CALIB = 360, 100


@functools.cache
def split() -> dict[str, np.ndarray]:
    """The train/test split the models were trained on, rebuilt from scikit-learn's data:
    `X_train` [1437,64], `y_train`, `X_test` [360,64], `y_test`, `X_calib` [100,64] (the first
    100 training images), `y_calib`, `idx_train`, `idx_test`."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16).astype(np.float32)
    y = digits.target.astype(np.int64)
    idx_train, idx_test = train_test_split(np.arange(len(x)), test_size=N_TEST, random_state=0)
    return {"X_train": x[idx_train], "y_train": y[idx_train],
            "X_test": x[idx_test], "y_test": y[idx_test],
            "X_calib": x[idx_train[:N_CALIB]], "y_calib": y[idx_train[:N_CALIB]],
            "idx_train": idx_train, "idx_test": idx_test}


@functools.cache
def reference(name: str) -> dict[str, np.ndarray]:
    """`input` (the 360 test images in the model's input shape), `logits` (onnxruntime fp32,
    stored in `tests/data/<name>.ref.npz`) and `labels` of model `name`."""
    data = split()
    with np.load(DIGITS / f"{name}.ref.npz") as stored:
        logits, labels, idx = stored["logits"], stored["labels"], stored["idx_test"]
    if not (np.array_equal(idx, data["idx_test"]) and np.array_equal(labels, data["y_test"])):
        raise AssertionError(f"{name}.ref.npz was made on another test split than "
                             "scikit-learn's load_digits + train_test_split gives here")
    return {"input": data["X_test"].reshape(N_TEST, *INPUT_SHAPE[name]),
            "logits": logits, "labels": labels}


def calibration_images(name: str) -> np.ndarray:
    """The 100 calibration images in model `name`'s input shape."""
    return split()["X_calib"].reshape(N_CALIB, *INPUT_SHAPE[name])
