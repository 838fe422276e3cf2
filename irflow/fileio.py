"""Writing output files: the one place irflow creates or replaces a file.

    >>> write_output("out/model.mlir", text)         # atomic: temp file + rename
    >>> write_output("/dev/stdout", text)            # a device: written in place
    >>> check_output("out/model.mlir", "-o")         # before any work: the folder exists?

What `write_output` does depends on what is at the path (links followed):

- a regular file, or nothing: the data goes to a temporary file in the same folder,
  which is renamed over the path, so a failed write leaves the old file (or no file),
  never half of a new one. A new file gets the mode the umask allows (0666 & ~umask),
  as `open()` would give it; a replaced file keeps its mode.
- a symbolic link: the link is followed and its final target replaced that way; the
  link stays a link.
- a character or block device, a FIFO (or any other non-regular file): written in
  place, never replaced or removed (`-o /dev/null` stays the null device).
- a directory: an `IrflowError`.

This module sits at the bottom of irflow's layers (it imports only the standard library
and `irflow.diagnostics`), so the weight store, exporters and the simulator's report
write through it without reaching up into the driver (`irflow.io`).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from irflow.diagnostics import IrflowError

Payload = str | bytes | Callable[[BinaryIO], object]


def resolve_output(path: str | os.PathLike[str]) -> Path:
    """The file a write to `path` lands in: `path` itself, or the final target of a
    symbolic link (however many links deep)."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def is_special(path: str | os.PathLike[str]) -> bool:
    """True when `path` (links followed) exists and is neither a regular file nor a
    directory: a device, a FIFO, a socket. Such a path is written in place and gets no
    side file (`irflow.io.save` writes no `.npz` beside it)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def check_output(path: str | os.PathLike[str], flag: str = "output") -> None:
    """Fail now, before any work, if `path` cannot be written: its folder is missing or
    not a folder, or the path is a folder. `flag` (e.g. `-o`, `--trace`) starts the
    message."""
    if os.path.isdir(path):
        raise IrflowError(f"{flag} {path}: is a directory, expected a file path")
    if os.path.exists(path):  # links followed: a file, a device, /dev/stdout's pipe
        return
    folder = resolve_output(path).parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise IrflowError(f"{flag} {path}: the output folder '{folder}' {what}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise IrflowError(f"{flag} {path}: the output folder '{folder}' is not writable")


def check_output_dir(path: str | os.PathLike[str], flag: str = "--dump-dir") -> None:
    """Fail now if folder `path` can be neither used nor created (its parent is missing)."""
    path = Path(path)
    if path.is_dir():
        return
    if path.exists():
        raise IrflowError(f"{flag} {path}: exists and is not a folder")
    if not path.parent.is_dir():
        raise IrflowError(f"{flag} {path}: its parent folder '{path.parent}' does not exist")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_output(path: str | os.PathLike[str], data: Payload, *,
                 make_parents: bool = False) -> None:
    """Write `data` (text, bytes, or a function writing to the open binary file, so a
    large payload such as an `.npz` streams) to `path` as the module docstring says.
    `make_parents` creates missing parent folders of a new file."""
    try:
        mode = os.stat(path).st_mode  # links followed
    except FileNotFoundError:
        mode = None  # a new file, or a link to one
    if mode is not None and stat.S_ISDIR(mode):
        raise IrflowError(f"{path}: is a directory, expected a file path")
    if mode is not None and not stat.S_ISREG(mode):
        # A device or FIFO: write in place, through `path` itself (its link target may
        # have no name, e.g. /dev/stdout -> /proc/self/fd/1 -> pipe:[123]).
        with open(path, "wb") as f:
            _emit(f, data)
        return
    target = resolve_output(path)
    if make_parents:
        target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, stat.S_IMODE(mode) if mode is not None else 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            _emit(f, data)
        os.replace(tmp, target)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def _emit(f: BinaryIO, data: Payload) -> None:
    if callable(data):
        data(f)
    else:
        f.write(data.encode() if isinstance(data, str) else data)


__all__ = ["write_output", "check_output", "check_output_dir", "is_special",
           "resolve_output"]
