"""Run numpy's OpenBLAS on one thread for a while (`single_threaded_blas`).

Moved here from the simulator so that the reference executor's users (calibration)
share it: on a loaded 2-core machine, OpenBLAS's thread hand-off makes small and
medium GEMMs several times slower than one thread (calibrating BERT-base: 47 s with
two threads under load, 5 s with one).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run numpy's OpenBLAS on one thread inside the block.

    Tile matmuls are small and many; measured on the 2-core machine under load,
    OpenBLAS's thread hand-off made the transformer's tiles 3-12x slower than one
    thread (threadpoolctl does the same through the same entry points).
    """
    fns = _openblas_thread_fns()
    if fns is None:
        yield
        return
    get, set_ = fns
    before = get()
    set_(1)
    try:
        yield
    finally:
        set_(before)


@functools.cache
def openblas_libraries() -> tuple[ctypes.CDLL, ...]:
    """The OpenBLAS libraries this process loaded (numpy's, scipy's), named in
    /proc/self/maps; empty where that cannot be read or opened."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        return ()
    libs = []
    for path in sorted(paths):
        try:
            libs.append(ctypes.CDLL(path))
        except OSError:
            continue
    return tuple(libs)


@functools.cache
def _openblas_thread_fns() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    for lib in openblas_libraries():
        for prefix, suffix in (("scipy_openblas", "64_"), ("openblas", "64_"), ("openblas", "")):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                return get, set_
    return None
