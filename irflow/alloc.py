"""The allocation guard: refuse an array too big for this machine before numpy tries.

A model can declare any shape (an ONNX dim of 2^40, a DSL `linear(out=10**9)`). Rather
than let numpy fail deep inside a kernel ("array is too big"), or succeed and swap the
machine to a halt, every place that allocates an array whose size comes from the input
asks first:

    >>> check_alloc((1 << 40,), np.float32, "input 'x'")
    AllocationError: input 'x': [1099511627776] float32 needs 4.0 TiB, more than the
    allocation limit of 11.7 GiB (IRFLOW_ALLOC_LIMIT)

The limit defaults to half of the physical memory; the environment variable
`IRFLOW_ALLOC_LIMIT` overrides it with a byte count, optionally with a binary suffix
(`512M`, `4G`, `1T`). Used for the CLI's random inputs, the DSL's initialized weights,
the reference executor's values and the simulator's memory.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence

import numpy as np
from xdsl.ir import Operation

from irflow.diagnostics import IrflowError, SourceLoc

ENV = "IRFLOW_ALLOC_LIMIT"
_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class AllocationError(IrflowError):
    """An array the input asks for is larger than the allocation limit."""


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):  # not POSIX: assume 8 GiB
        return 8 << 30


def alloc_limit() -> int:
    """The largest single allocation allowed, in bytes (module docstring)."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return physical_memory() // 2
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?", text, re.I)
    if not m:
        raise IrflowError(f"{ENV}={text!r}: expected a byte count such as 536870912, "
                          "512M or 4G")
    return int(float(m.group(1)) * _SUFFIX[m.group(2).upper()])


def format_bytes(n: int) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def check_alloc(shape: Sequence[int], dtype: np.dtype | type | str, what: str,
                where: SourceLoc | Operation | str | None = None) -> int:
    """The bytes an array of `shape` and `dtype` takes; an `AllocationError` naming
    `what` (an input, a weight, an op) when that is over `alloc_limit()`, or when a
    dimension is negative. `where` locates the error (a source position or an op)."""
    dims = [int(d) for d in shape]
    if any(d < 0 for d in dims):
        raise AllocationError(f"{what}: shape {dims} has a negative dimension", where)
    nbytes = math.prod(dims) * np.dtype(dtype).itemsize  # Python ints: no overflow
    return check_bytes(nbytes, what, f"{dims} {np.dtype(dtype)}", where)


def check_bytes(nbytes: int, what: str, described: str = "",
                where: SourceLoc | Operation | str | None = None) -> int:
    """`check_alloc` for a byte count."""
    limit = alloc_limit()
    if nbytes > limit:
        raise AllocationError(
            f"{what}: {described + ' ' if described else ''}needs {format_bytes(nbytes)} "
            f"({nbytes:,} bytes), more than the allocation limit of {format_bytes(limit)} "
            f"(set {ENV} to change it)", where)
    return nbytes


__all__ = ["AllocationError", "alloc_limit", "check_alloc", "check_bytes", "ENV"]
