"""The weight store: named arrays that `#nn.weight<"name">` constants refer to.

Weights live beside the IR, never in it: in memory a `WeightStore` is attached to
its `ModuleOp` (a side table keyed by the module object), on disk it is an `.npz`
next to the `.mlir` file. Passes that create or rewrite weights reach the store
through `weights_of(module)`.

    >>> store = weights_of(module)
    >>> name = store.add("conv1.weight", np.zeros((16, 3, 3, 3), np.float32))
    >>> nn.ConstantOp(nn.WeightAttr(name), TensorType(f32, [16, 3, 3, 3]))
"""

from __future__ import annotations

import os
import weakref
import zipfile
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import (
    BytesAttr,
    DenseIntOrFPElementsAttr,
    Float16Type,
    Float32Type,
    Float64Type,
    IntegerType,
    ModuleOp,
    TensorType,
)
from xdsl.ir import Attribute, SSAValue

from irflow import lowp
from irflow.diagnostics import IrflowError
from irflow.dialects import nn, quant
from irflow.fileio import write_output


class MissingWeightError(IrflowError, KeyError):
    """A name the weight store does not hold. Also a `KeyError`, so the mapping API
    (`store.get(name)`, `store.pop(name, default)`) works as for a dict."""


class WeightStore(MutableMapping[str, np.ndarray]):
    """A mapping from weight name to array, with unique-name allocation.

    An entry may be *lazy* (`add_lazy`): a function that makes the array on first access
    (a seeded initializer), so a large model is built without holding its float weights —
    a pass that quantizes them one at a time keeps one float tensor alive at a time.
    """

    def __init__(self, arrays: dict[str, np.ndarray] | None = None):
        self._arrays: dict[str, np.ndarray] = dict(arrays or {})
        self._lazy: dict[str, Callable[[], np.ndarray]] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        try:
            return self._arrays[key]
        except KeyError:
            make = self._lazy.pop(key, None)
            if make is None:
                raise MissingWeightError(f"weight '{key}' is not in the weight store") from None
            array = self._arrays[key] = np.asarray(make())
            return array

    def __setitem__(self, key: str, value: np.ndarray) -> None:
        self._lazy.pop(key, None)
        self._arrays[key] = np.asarray(value)

    def __delitem__(self, key: str) -> None:
        if self._lazy.pop(key, None) is None:
            del self._arrays[key]

    def __iter__(self) -> Iterator[str]:
        yield from list(self._arrays)
        yield from list(self._lazy)

    def __len__(self) -> int:
        return len(self._arrays) + len(self._lazy)

    def __contains__(self, key: object) -> bool:
        return key in self._arrays or key in self._lazy

    def unique_name(self, hint: str) -> str:
        if hint not in self:
            return hint
        i = 1
        while f"{hint}.{i}" in self:
            i += 1
        return f"{hint}.{i}"

    def add_lazy(self, hint: str, make: Callable[[], np.ndarray]) -> str:
        """Store a function making the array on first access; returns the name used."""
        name = self.unique_name(hint)
        self._lazy[name] = make
        return name

    def is_lazy(self, key: str) -> bool:
        """True while `key` is a function not yet called (`add_lazy`)."""
        return key in self._lazy

    def transform(self, key: str, fn: Callable[[np.ndarray], np.ndarray]) -> None:
        """Replace the array of `key` by `fn(array)`; a lazy entry stays lazy (`fn` runs
        on first access), so e.g. converting a lazily built model to float16 allocates
        nothing and the float32 array never exists beside the others."""
        make = self._lazy.get(key)
        if make is None:
            self[key] = fn(self[key])
        else:
            self._lazy[key] = lambda: fn(np.asarray(make()))

    def entries(self) -> Iterator[tuple[str, object]]:
        """(name, array or the lazy entry's function) per weight, materializing nothing."""
        yield from list(self._arrays.items())
        yield from list(self._lazy.items())

    def add(self, hint: str, array: np.ndarray) -> str:
        """Store `array` under `hint` (or `hint.N` if taken) and return the name used."""
        name = self.unique_name(hint)
        self._arrays[name] = np.asarray(array)
        return name

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.values())

    def save(self, path: str | os.PathLike[str], *, make_parents: bool = False) -> None:
        """Write an `.npz` (atomically for a regular file: `irflow.fileio.write_output`)."""
        write_output(path, lambda f: np.savez(f, **dict(self.items())), make_parents=make_parents)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> WeightStore:
        return cls(read_npz(path, "weights"))

    def prune_unused(self, module: ModuleOp) -> None:
        """Drop arrays no op in `module` refers to."""
        used = referenced_weights(module)
        for key in [k for k in self if k not in used]:
            del self[key]

    def subset(self, keys: set[str]) -> WeightStore:
        """A store holding only `keys` (arrays shared, not copied)."""
        return WeightStore({k: v for k, v in self.items() if k in keys})


def referenced_weights(module: ModuleOp) -> set[str]:
    """Names of the weights that ops of `module` refer to (`#nn.weight<...>` properties)."""
    return {
        attr.key
        for op in module.walk()
        for attr in (*op.properties.values(), *op.attributes.values())
        if isinstance(attr, nn.WeightAttr)
    }


def read_npz(path: str | os.PathLike[str], what: str,
             error: type[IrflowError] = IrflowError) -> dict[str, np.ndarray]:
    """All arrays of an `.npz` (weights, inputs, calibration data), loaded eagerly; an
    unreadable file is an `error` saying which file and what it was meant to hold."""
    if os.path.isfile(path) and not zipfile.is_zipfile(path):
        raise error(f"{path}: cannot read {what}: not an .npz archive (not a zip file)")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except ValueError as e:
        if "pickle" in str(e):
            raise error(f"{path}: cannot read {what}: a member is not a plain .npy array "
                        "(damaged, or pickled Python objects, which irflow does not "
                        "load)") from None
        raise error(f"{path}: cannot read {what}: {e}") from None
    except OSError as e:
        raise error(f"{path}: cannot read {what}: {e}") from None
    except Exception as e:  # a damaged archive: zipfile, zlib and numpy's format errors
        raise error(f"{path}: cannot read {what}: damaged .npz ({type(e).__name__}: "
                    f"{e})") from None


_STORES: weakref.WeakKeyDictionary[ModuleOp, WeightStore] = weakref.WeakKeyDictionary()


def weights_of(module: ModuleOp) -> WeightStore:
    """The weight store attached to `module` (an empty one is attached if none is)."""
    store = _STORES.get(module)
    if store is None:
        store = _STORES[module] = WeightStore()
    return store


def attach_weights(module: ModuleOp, store: WeightStore) -> ModuleOp:
    _STORES[module] = store
    return module


def weights_path(mlir_path: str | os.PathLike[str]) -> Path:
    """Where the weights of `model.mlir` live: `model.npz` beside it."""
    return Path(mlir_path).with_suffix(".npz")


# --------------------------------------------------------------------------------------
# Element types <-> numpy


def numpy_dtype(element_type: Attribute) -> np.dtype:
    """The numpy dtype holding values of an MLIR element type (i4 is held in int8).

    A quantized `!quant.uniform` type is held as its storage integers (i8/i4 → int8,
    u8 → uint8, i32 → int32).
    """
    if isinstance(element_type, quant.UniformQuantizedType):
        element_type = element_type.storage
    low = lowp.numpy_dtype_of(element_type)  # bf16, f8*, f4 (ml_dtypes)
    if low is not None:
        return low
    if isinstance(element_type, Float32Type):
        return np.dtype(np.float32)
    if isinstance(element_type, Float64Type):
        return np.dtype(np.float64)
    if isinstance(element_type, Float16Type):
        return np.dtype(np.float16)
    if isinstance(element_type, IntegerType):
        width = element_type.width.data
        signed = not element_type.signedness.data.name == "UNSIGNED"
        if width == 1:
            return np.dtype(np.bool_)
        for bits in (8, 16, 32, 64):
            if width <= bits:
                return np.dtype(f"{'i' if signed else 'u'}{bits // 8}")
    raise IrflowError(f"no numpy dtype for element type {element_type}")


def value_dtype(value: SSAValue) -> np.dtype:
    """The numpy dtype holding the elements of a tensor-typed value."""
    return numpy_dtype(nn.value_element_type(value))


def constant_value(op: nn.ConstantOp, store: WeightStore) -> np.ndarray:
    """The array an `nn.constant` stands for, checked against its result type."""
    ty = op.output.type
    assert isinstance(ty, TensorType)
    shape = tuple(ty.get_shape())
    if isinstance(op.value, nn.WeightAttr):
        array = store[op.value.key]
        if tuple(array.shape) != shape:
            raise IrflowError(
                f"weight '{op.value.key}' has shape {list(array.shape)}, "
                f"but {op.name} declares {list(shape)}"
            )
        return array
    dtype = numpy_dtype(ty.element_type)
    data = np.frombuffer(op.value.data.data, dtype=dtype)
    return data.reshape(shape) if data.size == int(np.prod(shape)) else np.broadcast_to(
        data, shape
    )


def dense_attr(array: np.ndarray, element_type: Attribute) -> DenseIntOrFPElementsAttr:
    """An inline `dense<...>` attribute for a small constant."""
    array = np.asarray(array, dtype=numpy_dtype(element_type), order="C")  # 0-d stays 0-d
    return DenseIntOrFPElementsAttr(
        TensorType(element_type, list(array.shape)), BytesAttr(array.tobytes())
    )
