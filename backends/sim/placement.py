"""Where the simulator's tensors live: placed tensors (`_Tensor`: a numpy view into
the DRAM byte array at the tensor's address, or values beside DRAM for int4 and
compressed weights), their placement (`_place`), graph inputs written into DRAM
(`_write_input`), and the scratch area spilled partial sums use (`_PsumArea`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Attribute, Operation

from irflow.backends.sim.trace import Role
from irflow.diagnostics import SimulationError
from irflow.dialects import accel
from irflow.weights import numpy_dtype


class _Tensor:
    """A placed tensor: its values, DRAM address, stored bits and role.

    `array` is a view into DRAM for a byte-aligned dense tensor; an int4 or compressed
    tensor keeps its values beside DRAM (weights are never overwritten) while its
    accesses use its stored layout: element i at bit floor(i · num / den) of `addr`
    (`bits = (num, den)`: dense `(element bits, 1)`, compressed `(stored bits, elements)`).
    """

    __slots__ = ("array", "addr", "bits", "role", "weight_op")

    def __init__(self, array: np.ndarray, addr: int, role: Role,
                 weight_op: accel.WeightOp | None = None,
                 bits: tuple[int, int] | None = None):
        self.array = array
        self.addr = addr
        self.bits = bits if bits is not None else (8 * array.itemsize, 1)
        self.role = role
        self.weight_op = weight_op

    @property
    def itemsize(self) -> float:
        return self.bits[0] / self.bits[1] / 8

    @property
    def stored_bytes(self) -> int:
        return -(-self.array.size * self.bits[0] // (self.bits[1] * 8))


@dataclass(frozen=True)
class _PsumArea:
    """Where spilled partial sums live: one scratch area after the program's last tensor
    (a layer's partial sums are dead when it ends, so every layer reuses it)."""

    addr: int
    bits: Mapping[str, int]


_BESIDE = np.zeros(0, np.int8)
"""Placeholder `_place` returns for a weight whose values live beside DRAM (filled next)."""


def _read_only(value: np.ndarray, type_: Attribute) -> np.ndarray:
    assert isinstance(type_, TensorType)
    view = np.asarray(value, numpy_dtype(type_.element_type)).reshape(
        tuple(type_.get_shape())).view()
    view.flags.writeable = False
    return view


def _place(dram: np.ndarray, addr: int, type_: Attribute, role: Role,
           op: Operation | None = None, values_later: bool = False) -> _Tensor:
    assert isinstance(type_, TensorType)
    dtype = numpy_dtype(type_.element_type)
    shape = tuple(type_.get_shape())
    size = math.prod(shape)
    weight_op = op if isinstance(op, accel.WeightOp) else None
    elem_bits = accel.element_bits(type_.element_type)
    if weight_op is not None and accel.STORED_BITS_ATTR in weight_op.attributes:
        bits = (accel.stored_bits(weight_op), max(size, 1))  # compressed
    else:
        bits = (elem_bits, 1)
    if bits == (8 * dtype.itemsize, 1):
        array = dram[addr: addr + size * dtype.itemsize].view(dtype).reshape(shape)
    elif weight_op is not None and values_later:  # the caller sets the values' array
        return _Tensor(_BESIDE, addr, role, weight_op, bits)
    else:  # int4 (held one per byte) or compressed: values beside DRAM
        array = np.zeros(shape, dtype)
    return _Tensor(array, addr, role, weight_op, bits)


def _write_input(dest: np.ndarray, value: np.ndarray, name: str) -> None:
    value = np.asarray(value)
    if value.shape != dest.shape:
        raise SimulationError(
            f"input '{name}' expects shape {list(dest.shape)}, got {list(value.shape)}")
    dest[...] = value.astype(dest.dtype, copy=False)
