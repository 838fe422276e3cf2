"""A model's inputs for `irflow run`/`sim`: seeded random arrays, or an `.npz` checked
against the model's input names, shapes and dtypes before anything runs.

    >>> arrays = random_inputs(module, seed=0)         # standard normal, per input type
    >>> arrays = read_inputs(module, "inputs.npz")    # keyed by input name

An input of another float width (float64 for float32) is converted with a warning; any
other dtype (an int8 array for a float input, a bool, a string) is an error naming the
file and the input, as are a missing or unexpected name and a wrong shape.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from xdsl.dialects.builtin import ModuleOp, TensorType

from irflow.alloc import check_alloc
from irflow.diagnostics import IrflowError
from irflow.graph import input_names, main_func
from irflow.weights import numpy_dtype, read_npz


def input_specs(module: ModuleOp) -> list[tuple[str, tuple[int, ...], np.dtype]]:
    """(name, shape, dtype) of each input of `@main`."""
    fn = main_func(module)
    specs = []
    for name, arg in zip(input_names(fn), fn.body.blocks[0].args):
        ty = arg.type
        if not isinstance(ty, TensorType):
            raise IrflowError(f"input '{name}' is a {ty}, expected a tensor", fn)
        specs.append((name, tuple(int(d) for d in ty.get_shape()), numpy_dtype(ty.element_type)))
    return specs


def random_inputs(module: ModuleOp, seed: int) -> dict[str, np.ndarray]:
    """Seeded standard-normal arrays (zeros for integer inputs), after the allocation guard."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, shape, dtype in input_specs(module):
        check_alloc(shape, np.float64, f"random input '{name}'")  # drawn in float64
        arrays[name] = (rng.standard_normal(shape).astype(np.float32) if dtype.kind == "f"
                        else np.zeros(shape, dtype))
    return arrays


def read_inputs(module: ModuleOp, path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The arrays of `path` keyed by input name, checked and converted (module docstring)."""
    specs = input_specs(module)
    names = [n for n, _, _ in specs]
    arrays = read_npz(path, "inputs")
    missing = [n for n in names if n not in arrays]
    extra = [k for k in arrays if k not in names]
    if missing or extra:
        raise IrflowError(
            f"{path}: inputs must be keyed by the model's input names {names}; "
            + (f"missing {missing}" if missing else "")
            + ("; " if missing and extra else "")
            + (f"unexpected {extra}" if extra else "")
        )
    out = {}
    for name, shape, dtype in specs:
        array = arrays[name]
        if tuple(array.shape) != shape:
            raise IrflowError(f"{path}: input '{name}' has shape {list(array.shape)}, the model "
                              f"expects {list(shape)}")
        if array.dtype != dtype:
            if array.dtype.kind == dtype.kind == "f":
                warnings.warn(f"{path}: input '{name}' is {array.dtype}, converted to the "
                              f"model's {dtype}", stacklevel=2)
                with np.errstate(over="ignore"):
                    array = array.astype(dtype)
            else:
                raise IrflowError(
                    f"{path}: input '{name}' is {array.dtype}, the model expects {dtype} "
                    f"(convert it, e.g. array.astype(np.{dtype.name}))")
        out[name] = array
    return out


__all__ = ["input_specs", "random_inputs", "read_inputs"]
