"""The data a point is calibrated and judged on.

- `digits`: scikit-learn's bundled `load_digits` (1,797 8×8 images, no download), pixels
  scaled to [0, 1], split as the trained digits models were
  (`train_test_split(arange(1797), test_size=360, random_state=0)`): calibration on the
  first training images, accuracy on the 360 held-out test images;
- `random`: seeded standard-normal inputs for models without trained weights; they
  have no labels, so accuracy is proxied by the output SQNR against float.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import ModuleOp, TensorType

from irflow.diagnostics import IrflowError
from irflow.graph import input_names, main_func


@dataclass(frozen=True)
class Dataset:
    """Batches in the model's input shape: `calibration`, `evaluation` (and `labels`
    for the evaluation samples, or None)."""

    input: str
    calibration: list[dict[str, np.ndarray]]
    evaluation: list[np.ndarray]
    labels: np.ndarray | None


def _input(module: ModuleOp) -> tuple[str, tuple[int, ...]]:
    fn = main_func(module)
    names = input_names(fn)
    if len(names) != 1:
        raise IrflowError(f"search: models with one input are supported, this one has "
                          f"{len(names)} ({', '.join(names)})")
    ty = fn.body.blocks[0].args[0].type
    assert isinstance(ty, TensorType)
    return names[0], tuple(ty.get_shape())


def _batches(x: np.ndarray, shape: tuple[int, ...]) -> list[np.ndarray]:
    """`x` [N, ...] cut into whole batches of the model's input shape (a remainder that
    does not fill a batch is left out)."""
    b = shape[0]
    per = int(np.prod(shape[1:]))
    if x.shape[1:] and int(np.prod(x.shape[1:])) != per:
        raise IrflowError(f"search: digits images have {int(np.prod(x.shape[1:]))} pixels, the "
                          f"model's input {list(shape)} takes {per} per sample")
    n = (len(x) // b) * b
    return [x[i: i + b].reshape(shape).astype(np.float32) for i in range(0, n, b)]


def digits_split() -> dict[str, np.ndarray]:
    """The digits split (float32 images [N, 64] in [0, 1])."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:  # pragma: no cover - the `search` extra installs it
        raise IrflowError("[data] kind = 'digits' needs scikit-learn (pip install "
                          "'irflow[search]')") from None
    d = load_digits()
    idx_train, idx_test = train_test_split(np.arange(len(d.target)), test_size=360,
                                           random_state=0)
    x = (d.data / 16.0).astype(np.float32)
    return {"X_train": x[idx_train], "y_train": d.target[idx_train],
            "X_test": x[idx_test], "y_test": d.target[idx_test]}


def load_dataset(module: ModuleOp, kind: str, calibration: int, evaluation: int,
                 seed: int = 0) -> Dataset:
    name, shape = _input(module)
    if kind == "digits":
        split = digits_split()
        cal = _batches(split["X_train"][:calibration], shape)
        ev = _batches(split["X_test"][:evaluation], shape)
        labels = split["y_test"][: len(ev) * shape[0]]
    else:
        rng = np.random.default_rng(seed)
        cal = [rng.standard_normal(shape).astype(np.float32)
               for _ in range(max(1, calibration // shape[0]))]
        ev = [rng.standard_normal(shape).astype(np.float32)
              for _ in range(max(1, evaluation // shape[0]))]
        labels = None
    if not cal or not ev:
        raise IrflowError(f"search: [data] calibration = {calibration} and evaluation = "
                          f"{evaluation} must each fill at least one batch of {shape[0]}")
    return Dataset(name, [{name: c} for c in cal], ev, labels)


__all__ = ["Dataset", "load_dataset", "digits_split"]
