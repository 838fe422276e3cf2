"""Loading and saving models: `.mlir` (+ `.npz` weights), `.irf` (DSL), `.onnx`.

    >>> module = irflow.load("resnet.mlir")       # picks the frontend by extension
    >>> irflow.save(module, "out/resnet.mlir")     # writes out/resnet.mlir + out/resnet.npz

Writes are atomic: a failed save leaves no half-written file.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import ParseError as XdslParseError
from xdsl.utils.exceptions import VerifyException

from irflow.context import make_context
from irflow.diagnostics import IrflowError, ParseError, VerifyError, describe
from irflow.weights import (
    WeightStore,
    attach_weights,
    referenced_weights,
    weights_of,
    weights_path,
)


def parse_mlir(text: str, filename: str = "<stdin>", *, allow_unregistered: bool = False,
               verify: bool = True) -> ModuleOp:
    """Parse MLIR text into a verified module; errors carry file:line:col."""
    parser = Parser(make_context(allow_unregistered=allow_unregistered), text, filename)
    try:
        module = parser.parse_module()
    except XdslParseError as e:
        loc = e.span.get_location()
        raise ParseError(e.msg, f"{filename}:{loc.line}:{loc.col}") from None
    except VerifyException as e:
        # Attribute verifiers (e.g. #nn.sparsity) run while parsing; point just past it.
        loc = parser._current_token.span.get_location()
        raise ParseError(str(e), f"{filename}:{loc.line}:{loc.col}") from None
    if verify:
        verify_module(module)
    return module


def verify_module(module: ModuleOp, context: str = "") -> None:
    """Verify every op; the first failure becomes a `VerifyError` naming that op.

    `context` prefixes the message (the pass manager says which pass broke the IR).
    """
    for op in module.walk():
        try:
            op.verify(verify_nested_ops=False)
        except (VerifyException, ValueError) as e:
            msg = str(e.args[0]) if e.args else str(e)
            msg = msg.removeprefix("Operation does not verify: ")
            raise VerifyError(f"{context}{msg}", op) from None


def print_module(module: ModuleOp, *, generic: bool = False, debuginfo: bool = False) -> str:
    out = io.StringIO()
    Printer(stream=out, print_generic_format=generic, print_debuginfo=debuginfo).print_op(module)
    out.write("\n")
    return out.getvalue()


def atomic_write(path: str | os.PathLike[str],
                 data: str | bytes | Callable[[BinaryIO], object]) -> None:
    """Write `data` to `path` through a temporary file renamed into place.

    `data` is text, bytes, or a function that writes to the open binary file (so a large
    payload such as an `.npz` is streamed, not built in memory first).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save(module: ModuleOp, path: str | os.PathLike[str], *, generic: bool = False,
         debuginfo: bool = True) -> None:
    """Write `module` as `.mlir` text with the weights it uses as `.npz` beside it."""
    path = Path(path)
    text = print_module(module, generic=generic, debuginfo=debuginfo)
    store = weights_of(module).subset(referenced_weights(module))
    if len(store):
        store.save(weights_path(path))
    atomic_write(path, text)


# Frontends by file extension; each returns a verified module with its weights attached.
Frontend = Callable[..., ModuleOp]


def _load_mlir(path: Path) -> ModuleOp:
    module = parse_mlir(_read_text(path), str(path))
    wpath = weights_path(path)
    return attach_weights(module, WeightStore.load(wpath) if wpath.exists() else WeightStore())


def _load_dsl(path: Path, **options: object) -> ModuleOp:
    from irflow.frontends.dsl import compile_file

    return compile_file(path, **options)  # type: ignore[arg-type]


def _load_onnx(path: Path, **options: object) -> ModuleOp:
    from irflow.frontends.onnx import import_onnx

    return import_onnx(path, **options)  # type: ignore[arg-type]


FRONTENDS: dict[str, Frontend] = {".mlir": _load_mlir, ".irf": _load_dsl, ".onnx": _load_onnx}
# The `load` options each format takes (an .mlir model declares its shapes and reads the
# .npz beside it; a DSL model declares its shapes; an ONNX model carries its weights).
FRONTEND_OPTIONS: dict[str, frozenset[str]] = {
    ".mlir": frozenset(), ".irf": frozenset({"weights"}), ".onnx": frozenset({"input_shapes"}),
}


def load(path: str | os.PathLike[str], *, input_shapes: Mapping[str, Sequence[int]] | None = None,
         weights: str | os.PathLike[str] | None = None) -> ModuleOp:
    """Load a model file, choosing the frontend by its extension.

    `input_shapes` fixes dynamic dimensions (ONNX); `weights` is an `.npz` for a DSL
    model whose layers take pretrained arrays.
    """
    path = Path(path)
    frontend = FRONTENDS.get(path.suffix)
    if frontend is None:
        raise IrflowError(
            f"{path}: unknown model format '{path.suffix}' "
            f"(expected one of {', '.join(sorted(FRONTENDS))})"
        )
    if not path.exists():
        raise IrflowError(f"{path}: no such file")
    options: dict[str, object] = {}
    if input_shapes:
        options["input_shapes"] = input_shapes
    if weights is not None:
        options["weights"] = weights
    for name in options:
        if name not in FRONTEND_OPTIONS.get(path.suffix, frozenset()):
            takes = sorted(s for s, names in FRONTEND_OPTIONS.items() if name in names)
            raise IrflowError(f"{path}: {_OPTION_WORDS[name]} applies to "
                              f"{' and '.join(takes)} models only, not to {path.suffix}")
    return frontend(path, **options)


_OPTION_WORDS = {"input_shapes": "an input shape (--input-shape)",
                 "weights": "a weights file (--weights)"}


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise IrflowError(f"{path}: cannot read: {e}") from None


__all__ = ["load", "save", "parse_mlir", "print_module", "verify_module", "atomic_write",
           "describe"]


def _install_notebook_display() -> None:
    from irflow.notebook import install

    install()


_install_notebook_display()  # Jupyter shows a module's IR, coloured (irflow/notebook.py)
