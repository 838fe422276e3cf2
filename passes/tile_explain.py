"""`--explain-tiling LAYER` of `irflow run`/`sim`/`opt`: which layer the tile pass explains.

The flag does not know where in the compilation the `tile` pass runs (a `-p` pipeline,
or the simulator's lowering); it sets the layer here for the duration of the command,
and every `tile` pass without an `explain` option of its own prints that layer's top
candidates (`tile_search.explain`) and marks it found. After the command, `check()`
turns a name no tile pass saw into a one-line error naming the closest labels.

    >>> with explaining("layer1.0.conv1") as request:
    ...     run_the_command()
    ...     request.check()
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from irflow.diagnostics import IrflowError


@dataclass
class Request:
    """One `--explain-tiling` request: the layer, and what the tile passes saw."""

    layer: str
    found: bool = False
    ran: bool = False  # a tile pass ran at all
    labels: set[str] = field(default_factory=set)

    def seen(self, labels: Iterable[str]) -> None:
        self.ran = True
        self.labels.update(labels)
        self.found = self.found or self.layer in self.labels

    def check(self) -> None:
        if self.found:
            return
        if not self.ran:
            raise IrflowError(f"--explain-tiling {self.layer}: no tile pass ran (add 'tile' "
                              "to the -p pipeline)")
        close = difflib.get_close_matches(self.layer, sorted(self.labels), n=5, cutoff=0.5)
        hint = (", ".join(close) if close else ", ".join(sorted(self.labels)[:5]) + ", ...")
        raise IrflowError(f"--explain-tiling: no layer '{self.layer}'; close names: {hint}")


_REQUEST: ContextVar[Request | None] = ContextVar("irflow_explain_tiling", default=None)


def current() -> Request | None:
    """The active request (None: no `--explain-tiling`)."""
    return _REQUEST.get()


@contextmanager
def explaining(layer: str | None) -> Iterator[Request | None]:
    """Set the layer `tile` passes explain while the block runs (None/"": no request)."""
    if not layer:
        yield None
        return
    token = _REQUEST.set(Request(layer))
    try:
        yield _REQUEST.get()
    finally:
        _REQUEST.reset(token)


__all__ = ["Request", "current", "explaining"]
