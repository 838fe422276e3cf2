"""The pass catalogue: every registered pass with where it comes from, its options and
its one-line summary (`irflow passes`), and the named pipelines.

    $ irflow passes
    canonicalize     xDSL      Folds and local simplifications ...
    ...
    quantize         built-in  Quantize conv/linear/matmul ... to integers.
        bits: int = 8
        granularity: str = 'per-channel'
    ...

Sources are the registry's three (irflow.registry): built-in passes (irflow's own and
xDSL's cleanups), passes registered in this process (`--load-pass FILE.py:Class`) and
plugins (entry-point group `irflow.passes`). A plugin that fails to import is listed
with the reason instead of stopping the listing.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass

from xdsl.passes import ModulePass
from xdsl.utils.hints import type_repr

from irflow.diagnostics import IrflowError
from irflow.pipelines import PIPELINES
from irflow.registry import ENTRY_POINT_GROUP, get_pass, pass_names, pass_origin


@dataclass(frozen=True)
class PassOption:
    """One option of a pass: its pipeline-text name (`weight-only`), type and default."""

    name: str
    type: str
    default: str  # repr of the default, or "required"


@dataclass(frozen=True)
class PassInfo:
    name: str
    origin: str  # "built-in", "xDSL", "loaded (file.py)", "plugin (dist)"
    summary: str
    options: tuple[PassOption, ...]
    error: str = ""  # why a plugin could not be loaded


def options_of(cls: type[ModulePass]) -> tuple[PassOption, ...]:
    """The dataclass fields of a pass, as pipeline options (underscores become dashes)."""
    out = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(f.default_factory())
        else:
            default = "required"
        hints = inspect.get_annotations(cls, eval_str=True) if isinstance(f.type, str) else {}
        typ = hints.get(f.name, f.type)
        out.append(PassOption(f.name.replace("_", "-"),
                              (typ if isinstance(typ, str) else type_repr(typ)).replace("|", " | "),
                              default))
    return tuple(out)


# xDSL's cleanups carry no docstring of their own (they inherit ModulePass's).
XDSL_SUMMARIES = {
    "cse": "Common-subexpression elimination: identical pure ops on the same operands "
           "become one.",
    "dce": "Dead-code elimination: remove side-effect-free ops whose results are unused.",
}
SUMMARY_WIDTH = 110


def summary_of(name: str, cls: type[ModulePass]) -> str:
    """The first sentence of the pass's own docstring, on one line (at most ~110 chars)."""
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    if not doc:
        return XDSL_SUMMARIES.get(name, "(no docstring)")
    text = " ".join(doc.split("\n\n")[0].split())
    sentence = text.split(". ")[0].rstrip(".") + "."
    if len(sentence) > SUMMARY_WIDTH:
        sentence = sentence[:SUMMARY_WIDTH - 1].rsplit(" ", 1)[0] + " …"
    return sentence


def pass_info(name: str) -> PassInfo:
    """What is known about pass `name` (a plugin that fails to load gets `error`)."""
    try:
        cls = get_pass(name)
    except IrflowError as e:
        return PassInfo(name, pass_origin(name), "", (), error=str(e))
    return PassInfo(name, pass_origin(name), summary_of(name, cls), options_of(cls))


def catalog() -> list[PassInfo]:
    """Every registered pass, sorted by name."""
    return [pass_info(name) for name in pass_names()]


def format_catalog(infos: list[PassInfo]) -> str:
    """The text `irflow passes` prints: one line per pass, its options indented below,
    then the named pipelines with their expansion."""
    width = max((len(i.name) for i in infos), default=0)
    owidth = max((len(i.origin) for i in infos), default=0)
    lines = []
    for info in infos:
        text = info.summary if not info.error else f"cannot be loaded: {info.error}"
        lines.append(f"{info.name:<{width}}  {info.origin:<{owidth}}  {text}".rstrip())
        for opt in info.options:
            lines.append(f"    {opt.name}: {opt.type} = {opt.default}")
    lines.append("")
    lines.append("named pipelines (usable wherever a pass is; they expand in place):")
    pw = max(len(n) for n in PIPELINES)
    lines.extend(f"{name:<{pw}}  {','.join(steps)}" for name, steps in PIPELINES.items())
    lines.append("")
    lines.append(f"plugins: entry-point group '{ENTRY_POINT_GROUP}' or --load-pass "
                 "FILE.py:Class; options go in braces: name{opt=value other=value}")
    return "\n".join(lines)


__all__ = ["PassOption", "PassInfo", "options_of", "summary_of", "pass_info", "catalog",
           "format_catalog"]
