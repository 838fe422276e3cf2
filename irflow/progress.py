"""Progress bars for long runs (calibration, simulation, training, search), one helper for all.

A bar (tqdm, on stderr) shows only when stdout is a terminal and nobody asked for quiet
(`irflow --quiet`; from Python `with quiet():` or `set_quiet(True)`), so piped or
captured output and CI logs stay clean:

    >>> from irflow.progress import Progress, track
    >>> for batch in track(batches, "calibrate", unit="batch"):
    ...     run(batch)
    >>> with Progress(len(layers), "simulate", unit="layer") as bar:
    ...     for layer in layers:
    ...         run(layer)
    ...         bar.advance()

`enabled=True/False` overrides the terminal test (tests use it); `enabled=None` decides.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")

_quiet = False


def set_quiet(quiet: bool = True) -> None:
    """Turn every progress bar off (`irflow --quiet`) or back on (where a terminal is)."""
    global _quiet
    _quiet = quiet


@contextlib.contextmanager
def quiet(on: bool = True) -> Iterator[None]:
    """Bars off inside the block when `on` (the CLI's `--quiet` around a command)."""
    global _quiet
    before = _quiet
    _quiet = before or on
    try:
        yield
    finally:
        _quiet = before


def enabled(requested: bool | None = None) -> bool:
    """Whether a bar shows: `requested` if given, else stdout is a terminal and not quiet."""
    if requested is not None:
        return requested
    if _quiet:
        return False
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdout
        return False


class Progress:
    """A bar of `total` steps named `desc`; `advance()` per step. A no-op when disabled."""

    def __init__(self, total: int | None, desc: str, *, unit: str = "it",
                 enabled: bool | None = None, leave: bool = False):
        self.shown = globals()["enabled"](enabled)
        self.count = 0
        self._bar = (tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=leave,
                          dynamic_ncols=True) if self.shown else None)

    def advance(self, n: int = 1) -> None:
        self.count += n
        if self._bar is not None:
            self._bar.update(n)

    def note(self, **values: str) -> None:
        """Show `key=value` figures after the bar (e.g. the running loss)."""
        if self._bar is not None:
            self._bar.set_postfix(values)

    def grow(self, n: int) -> None:
        """Add `n` steps to the total (work that is discovered as it runs, e.g. a search)."""
        if self._bar is not None:
            self._bar.total = (self._bar.total or 0) + n
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def track(iterable: Iterable[T], desc: str, *, total: int | None = None, unit: str = "it",
          enabled: bool | None = None) -> Iterator[T]:
    """Iterate `iterable` with a bar (see `Progress`)."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with Progress(total, desc, unit=unit, enabled=enabled) as bar:
        for item in iterable:
            yield item
            bar.advance()


__all__ = ["Progress", "track", "enabled", "set_quiet", "quiet"]
