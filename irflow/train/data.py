"""Training data: an `.npz` with `X_train`, `y_train`, `X_test`, `y_test`, checked against
the model it is meant for.

Samples are on the first axis. Each sample is reshaped to the model's input shape without
its batch dimension when the element counts agree (the digits split stores 64-pixel rows,
digits_cnn takes 1x8x8 images); labels must be integers in [0, classes). Anything else is
an `IrflowError` naming the array, what was expected and what was found.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from irflow.diagnostics import IrflowError
from irflow.weights import read_npz

KEYS = ("X_train", "y_train", "X_test", "y_test")


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_split(path: str | os.PathLike[str], sample_shape: tuple[int, ...], classes: int
               ) -> Split:
    """Read and check `path` for a model taking samples of `sample_shape` (no batch axis)
    and predicting `classes` classes."""
    arrays = read_npz(path, "training data")
    missing = [k for k in KEYS if k not in arrays]
    if missing:
        raise IrflowError(f"{path}: training data needs arrays {list(KEYS)}; missing "
                          f"{missing} (has {sorted(arrays)})")
    xs = {k: _samples(path, k, arrays[k], sample_shape) for k in ("X_train", "X_test")}
    ys = {k: _labels(path, k, arrays[k], classes) for k in ("y_train", "y_test")}
    for x, y in (("X_train", "y_train"), ("X_test", "y_test")):
        if len(xs[x]) != len(ys[y]):
            raise IrflowError(f"{path}: {x} has {len(xs[x])} samples but {y} has "
                              f"{len(ys[y])} labels")
    return Split(xs["X_train"], ys["y_train"], xs["X_test"], ys["y_test"])


def _samples(path: str | os.PathLike[str], key: str, x: np.ndarray,
             sample_shape: tuple[int, ...]) -> np.ndarray:
    if x.dtype.kind not in "fiu" or x.ndim < 1:
        raise IrflowError(f"{path}: {key} must hold numbers with samples on axis 0, "
                          f"got {x.dtype} of shape {list(x.shape)}")
    per_sample = math.prod(x.shape[1:])
    if per_sample != math.prod(sample_shape):
        raise IrflowError(
            f"{path}: {key} samples have shape {list(x.shape[1:])} ({per_sample} values), "
            f"the model's input takes {list(sample_shape)} ({math.prod(sample_shape)} values)")
    x = x.reshape((len(x), *sample_shape)).astype(np.float32)
    if not np.isfinite(x).all():
        bad = int(np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0][0])
        raise IrflowError(f"{path}: {key} sample {bad} is not finite (NaN or inf)")
    return x


def _labels(path: str | os.PathLike[str], key: str, y: np.ndarray, classes: int
            ) -> np.ndarray:
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise IrflowError(f"{path}: {key} must be integer class labels [N], "
                          f"got {y.dtype} of shape {list(y.shape)}")
    if len(y) and (y.min() < 0 or y.max() >= classes):
        bad = int(np.argwhere((y < 0) | (y >= classes))[0][0])
        raise IrflowError(f"{path}: {key}[{bad}] = {int(y[bad])} is not a class of the "
                          f"model's {classes} outputs (expected 0..{classes - 1})")
    return y.astype(np.int64)
