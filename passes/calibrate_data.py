"""Where `calibrate`'s batches come from: an `.npz` of samples, seeded random inputs,
or batches attached to a module beforehand (`set_calibration_data`, what
`irflow run/opt --calib` does).
"""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import ModuleOp, TensorType

from irflow.diagnostics import PassError
from irflow.graph import input_names, main_func
from irflow.weights import numpy_dtype, read_npz


def calibration_from_npz(module: ModuleOp, path: str | Path, batch_size: int | None = None
                         ) -> list[dict[str, np.ndarray]]:
    """Split an `.npz` of calibration samples into batches `@main` accepts.

    Arrays are keyed by input name with the samples on the first axis; each sample must
    have the input's shape without its batch dimension. Batches take the IR's batch
    size (the first dimension of the inputs; `batch_size` must equal it if given);
    trailing samples that do not fill a batch are dropped. A missing, extra or
    mis-shaped array is a `PassError` naming the input.
    """
    f = main_func(module)
    names = input_names(f)
    shapes = [tuple(a.type.get_shape()) for a in f.body.blocks[0].args]  # type: ignore[attr-defined]
    arrays = read_npz(path, "calibration data", PassError)
    extra = [k for k in arrays if k not in names]
    if extra:
        raise PassError(f"{path}: array '{extra[0]}' is not an input of @main "
                        f"(inputs: {', '.join(names)})")
    counts = set()
    for name, shape in zip(names, shapes):
        if name not in arrays:
            raise PassError(f"{path}: no array for input '{name}' (expected shape "
                            f"[N, {', '.join(map(str, shape[1:]))}], samples first)")
        a = arrays[name]
        if a.ndim != len(shape) or tuple(a.shape[1:]) != shape[1:]:
            raise PassError(
                f"{path}: input '{name}' expects samples of shape {list(shape[1:])} "
                f"(array [N, {', '.join(map(str, shape[1:]))}]), got {list(a.shape)}"
            )
        counts.add(a.shape[0])
    if len(counts) > 1:
        raise PassError(f"{path}: inputs have different sample counts {sorted(counts)}")
    n = counts.pop() if counts else 0
    b = shapes[0][0] if shapes and shapes[0] else 1
    if batch_size is not None and batch_size != b:
        raise PassError(f"{path}: batch size {batch_size} does not match the model's batch "
                        f"dimension {b} (re-import with that batch size)")
    if n < b:
        raise PassError(f"{path}: {n} samples cannot fill one batch of {b}")
    return [{k: arrays[k][i: i + b] for k in names} for i in range(0, n - b + 1, b)]


def random_batches(module: ModuleOp, samples: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """`samples` batches of seeded standard-normal inputs (exercises a pipeline, no more)."""
    f = main_func(module)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(samples):
        batch = {}
        for name, arg in zip(input_names(f), f.body.blocks[0].args):
            ty = arg.type
            assert isinstance(ty, TensorType)
            dtype = numpy_dtype(ty.element_type)
            shape = tuple(ty.get_shape())
            batch[name] = (rng.standard_normal(shape).astype(dtype) if dtype.kind == "f"
                           else np.zeros(shape, dtype))
        out.append(batch)
    return out


_ATTACHED: weakref.WeakKeyDictionary[ModuleOp, list[dict[str, np.ndarray]]] = (
    weakref.WeakKeyDictionary()
)


def set_calibration_data(module: ModuleOp, batches: list[dict[str, np.ndarray]]) -> None:
    """Attach calibration batches to a module; the `calibrate` pass uses them (CLI --calib)."""
    _ATTACHED[module] = batches


def attached_calibration_data(module: ModuleOp) -> list[dict[str, np.ndarray]] | None:
    """The batches `set_calibration_data` attached to `module`, or None."""
    return _ATTACHED.get(module)
