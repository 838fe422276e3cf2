"""MLIR text in and out: `parse_mlir` (verified, errors at file:line:col) and
`print_module` (custom or generic form)."""

from __future__ import annotations

import io

from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import ParseError as XdslParseError
from xdsl.utils.exceptions import VerifyException

from irflow.context import make_context
from irflow.diagnostics import ParseError
from irflow.verify import verify_module


def parse_mlir(text: str, filename: str = "<stdin>", *, allow_unregistered: bool = False,
               verify: bool = True) -> ModuleOp:
    """Parse MLIR text into a verified module; errors carry file:line:col."""
    try:
        # the constructor lexes the first token already, so it may raise too
        parser = Parser(make_context(allow_unregistered=allow_unregistered), text, filename)
        module = parser.parse_module()
    except XdslParseError as e:
        loc = e.span.get_location()
        raise ParseError(e.msg, f"{filename}:{loc.line}:{loc.col}") from None
    except VerifyException as e:
        # Attribute verifiers (e.g. #nn.sparsity) run while parsing; point just past it.
        loc = parser._current_token.span.get_location()
        raise ParseError(str(e), f"{filename}:{loc.line}:{loc.col}") from None
    except RecursionError:  # e.g. tensor<tensor<tensor<...>>> a thousand deep
        loc = parser._current_token.span.get_location()
        raise ParseError("nested too deeply to parse", f"{filename}:{loc.line}:{loc.col}"
                         ) from None
    if verify:
        verify_module(module)
    return module


def print_module(module: ModuleOp, *, generic: bool = False, debuginfo: bool = False) -> str:
    out = io.StringIO()
    Printer(stream=out, print_generic_format=generic, print_debuginfo=debuginfo).print_op(module)
    out.write("\n")
    return out.getvalue()


__all__ = ["parse_mlir", "print_module"]
