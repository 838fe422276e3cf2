"""irflow's one exception family and how errors are shown to users.

Every error a user can cause is an `IrflowError`; the CLI prints it as one line
(`file:line:col: error: message`, or the op at fault) and exits non-zero, with a
traceback only under `--debug`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from xdsl.dialects.builtin import FileLineColLoc, NameLoc
from xdsl.ir import Attribute, Operation


@dataclass
class SourceLoc:
    """A position in a source file (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class IrflowError(Exception):
    """Base of every user-facing error. `where` is a source location or an op."""

    def __init__(self, message: str, where: SourceLoc | Operation | str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        where = describe(self.where)
        return f"{where}: error: {self.message}" if where else f"error: {self.message}"


class ParseError(IrflowError):
    """Malformed input text (DSL, MLIR, ONNX file)."""


class VerifyError(IrflowError):
    """IR that breaks an op's or a pass's invariants."""


class PassError(IrflowError):
    """A pass failed or left invalid IR."""


class LoweringError(IrflowError):
    """An op cannot be lowered to the target level."""


class ExecutionError(IrflowError):
    """An executor (reference or simulator) failed while running an op."""


class SimulationError(ExecutionError):
    """The accelerator simulator failed."""


def location_string(loc: Attribute) -> str | None:
    """`file:line:col` (or a name) for an MLIR location attribute, None if unknown."""
    if isinstance(loc, FileLineColLoc):
        return f"{loc.filename.data}:{loc.line.data}:{loc.column.data}"
    if isinstance(loc, NameLoc):
        inner = location_string(loc.location)
        return f"{loc.desc.data} ({inner})" if inner else loc.desc.data
    return None


def describe(where: SourceLoc | Operation | str | None) -> str:
    if where is None:
        return ""
    if isinstance(where, Operation):
        return location_string(where.location) or f"'{where.name}'"
    return str(where)


def did_you_mean(word: str, choices: Iterable[str], *, cutoff: float = 0.6,
                 clause: bool = False) -> str:
    """A hint to append to an error message: `" (did you mean 'x'?)"`, or with
    `clause=True` `"; did you mean 'x'?"`; `""` when no choice is close to `word`.

    The one spelling-suggestion helper of irflow (passes, options, machine fields,
    DSL names, zoo models).
    """
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    if not close:
        return ""
    return f"; did you mean '{close[0]}'?" if clause else f" (did you mean '{close[0]}'?)"
