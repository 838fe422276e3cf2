"""Built-in models, written in the irflow DSL (`*.irf` beside this file).

    >>> irflow.zoo.names()
    ['digits_cnn', 'lenet5', 'mobilenetv2', 'resnet18', 'transformer_encoder']
    >>> module = irflow.zoo.load("resnet18", seed=0)   # seeded weights, verified

Each file's first comment line is its one-line description; its header states the
parameter and MAC counts that `tests/test_zoo.py` checks against the literature.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from importlib.resources.abc import Traversable
from typing import Any

from xdsl.dialects.builtin import ModuleOp

from irflow.diagnostics import IrflowError, did_you_mean

DEFAULT_MODEL = "resnet18"
_SUFFIX = ".irf"


def _files() -> dict[str, Traversable]:
    root = importlib.resources.files(__name__)
    return {
        f.name.removesuffix(_SUFFIX): f
        for f in root.iterdir()
        if f.name.endswith(_SUFFIX) and f.is_file()
    }


def names() -> list[str]:
    """The built-in model names, sorted."""
    return sorted(_files())


def source_path(name: str) -> Traversable:
    """The `.irf` source of a built-in model (an `IrflowError` for an unknown name)."""
    files = _files()
    if name not in files:
        hint = did_you_mean(name, files, cutoff=0.5, clause=True)
        raise IrflowError(
            f"unknown zoo model '{name}'{hint} (available: {', '.join(sorted(files))})"
        )
    return files[name]


@functools.cache
def describe(name: str) -> str:
    """One line saying what the model is (its source's first comment line)."""
    for line in source_path(name).read_text().splitlines():
        line = line.strip()
        if line.startswith("#"):
            return line.lstrip("# ").rstrip()
    return name


def source(name: str) -> str:
    return source_path(name).read_text()


def source_at(name: str, input_shapes: dict[str, list[int]]) -> str:
    """A zoo model's DSL text with its inputs declared at `input_shapes`
    (`{"x": [1, 3, 112, 112]}`): the image models end in a global average pool, so a
    smaller image is the same network with fewer MACs per layer (seeded weights are the
    same: they depend on names and weight shapes only)."""
    text = source(name)
    for arg, dims in input_shapes.items():
        shape = ", ".join(str(d) for d in dims)
        text, n = re.subn(
            rf"(model\s+[\w.-]+\s*\((?:[^)]*,)?\s*{re.escape(arg)}\s*:\s*\w+)\[[^\]]*\]",
            rf"\g<1>[{shape}]", text, count=1)
        if n != 1:
            header = next((ln.strip() for ln in text.splitlines()
                           if ln.lstrip().startswith("model ")), name)
            raise IrflowError(f"zoo model '{name}' has no input '{arg}' to resize "
                              f"(its header: {header})")
    return text


def load(name: str, *, seed: int = 0, input_shapes: dict[str, list[int]] | None = None,
         **entry: Any) -> ModuleOp:
    """Compile a built-in model with weights from the seeded initializer, its inputs at
    `input_shapes` when given (see `source_at`). A decoder preset (`decoder.PRESETS`:
    `decoder-15m`, `tinyllama-1b`) takes `entry="prefill"` or `"decode"` and `seq` /
    `cache` (see `irflow.zoo.decoder`) instead; `bert-base` takes `layers=` (1..12) and
    `resnet18` `blocks=` per stage ((3, 4, 6, 3): ResNet-34; `irflow.zoo.variants`)."""
    from irflow.frontends.dsl import compile_source
    from irflow.zoo import decoder, variants

    if name in decoder.PRESETS:
        if input_shapes:
            raise IrflowError(f"zoo model '{name}' is sized by its preset (seq, cache), "
                              "not by --input-shape")
        return decoder.load(name, seed=seed, **entry)
    text = source_at(name, input_shapes) if input_shapes else source(name)
    if name == "bert-base" and "layers" in entry:
        layers = entry.pop("layers")
        text, name = variants.bert_source(text, layers), f"bert-{layers}"
    if name == "resnet18" and "blocks" in entry:
        blocks = tuple(entry.pop("blocks"))
        text = variants.resnet_source(text, blocks)
        name = "resnet34" if blocks == (3, 4, 6, 3) else f"resnet-{'-'.join(map(str, blocks))}"
    if entry:
        raise IrflowError(f"zoo model '{name}' takes no options {sorted(entry)}")
    return compile_source(text, f"{name}{_SUFFIX}", seed=seed)


__all__ = ["DEFAULT_MODEL", "names", "describe", "source_path", "source", "source_at", "load"]
