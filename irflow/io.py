"""Loading and saving models: `.mlir` (+ `.npz` weights), `.irf` (DSL), `.onnx`.

    >>> module = irflow.load("resnet.mlir")       # picks the frontend by extension
    >>> irflow.save(module, "out/resnet.mlir")     # writes out/resnet.mlir + out/resnet.npz

Writes go through `irflow.fileio.write_output`: atomic for regular files (a failed save
leaves no half-written file), in place for devices and FIFOs. The MLIR text format
itself is `irflow.mlir_text`, verification `irflow.verify`; they are re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from xdsl.dialects.builtin import ModuleOp

from irflow.diagnostics import IrflowError, describe
from irflow.fileio import is_special, write_output
from irflow.mlir_text import parse_mlir, print_module
from irflow.verify import verify_module
from irflow.weights import (
    WeightStore,
    attach_weights,
    referenced_weights,
    weights_of,
    weights_path,
)


def save(module: ModuleOp, path: str | os.PathLike[str], *, generic: bool = False,
         debuginfo: bool = True, weights: str | os.PathLike[str] | None = None) -> None:
    """Write `module` as `.mlir` text, and the weights it uses as an `.npz`: at `weights`
    if given, else beside the text (`out/model.mlir` -> `out/model.npz`). Missing
    parent folders are created.

    `path` may be a device or FIFO (`/dev/stdout`): the text is written into it in place
    (`irflow.fileio`). No `.npz` is put beside such a path, so a module with weights
    then needs `weights=` (`--weights-out` on the command line); without it, nothing is
    written and an `IrflowError` says so.
    """
    path = Path(path)
    text = print_module(module, generic=generic, debuginfo=debuginfo)
    store = weights_of(module).subset(referenced_weights(module))
    wpath = Path(weights) if weights is not None else weights_path(path)
    if len(store) and weights is None:
        check_weights_destination(path, len(store))
    if len(store) and wpath.resolve() == path.resolve():
        raise IrflowError(f"{path}: the weights would overwrite the IR; name the IR file "
                          f"'.mlir' or give the weights another path")
    if len(store):
        store.save(wpath, make_parents=True)
    write_output(path, text, make_parents=True)


def check_weights_destination(path: str | os.PathLike[str], count: int) -> None:
    """The `.npz` beside `path` is refused when `path` is a device or FIFO."""
    if is_special(path):
        raise IrflowError(
            f"{path} is not a regular file, so the {count} weight arrays cannot go in a "
            f"'.npz' beside it; give the weights a path of their own (--weights-out "
            f"FILE.npz, or save(..., weights=...)) or write the IR to a regular file")


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


__all__ = ["load", "save", "parse_mlir", "print_module", "verify_module", "describe",
           "check_weights_destination", "write_output"]


def _install_notebook_display() -> None:
    from irflow.notebook import install

    install()


_install_notebook_display()  # Jupyter shows a module's IR, coloured (irflow/notebook.py)
