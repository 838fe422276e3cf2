"""Pipelines: MLIR-style pipeline text -> passes, and the pass manager that runs them.

    >>> from irflow.pipeline import run_pipeline
    >>> result = run_pipeline(module, "fold-batchnorm,fuse-activation{only=relu},cse")
    >>> [(p.name, p.modified) for p in result.passes]
    [('fold-batchnorm', True), ('fuse-activation', True), ('cse', False)]

Pipeline text is xDSL's (and MLIR's) syntax: passes separated by commas, options in
braces separated by spaces, list values separated by commas —
`quantize{bits=8 granularity=per-channel},tile{sizes="f=16,oh=14"}`. Named pipelines from
`irflow.pipelines` (`default`, ...) expand in place.

The `PassManager` verifies the module after every pass (a failure names the pass and
the passes that ran before it), records per pass its wall time and whether it changed
the IR, and can print or dump the IR between passes (`--print-ir-after-all`,
`--print-ir-after=NAME`, `--print-ir-after-change`, `--dump-dir`, `--timing` in the CLI).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import sys
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, get_type_hints

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.utils.arg_spec import ArgSpec, _convert_arg_to_type
from xdsl.utils.arg_spec import parse_pipeline as _xdsl_parse_pipeline
from xdsl.utils.exceptions import ArgSpecParseError
from xdsl.utils.hints import type_repr

from irflow.context import make_context
from irflow.diagnostics import IrflowError, PassError, VerifyError, did_you_mean
from irflow.fileio import write_output
from irflow.mlir_text import print_module
from irflow.pipelines import PIPELINES
from irflow.registry import get_pass, has_pass, pass_names
from irflow.verify import verify_module
from irflow.weights import WeightStore, weights_of

# --------------------------------------------------------------------------------------
# Parsing


def parse_pipeline(spec: str) -> tuple[ModulePass, ...]:
    """Instantiate the passes of a pipeline text; named pipelines expand in place.

    Errors are `PassError`s: a syntax error with its column, an unknown pass with a
    "did you mean", a bad option naming the pass, the option and the expected type.
    """
    return tuple(_instantiate(s) for s in _expand(_parse_specs(spec), ()))


def _parse_specs(spec: str) -> list[ArgSpec]:
    spec = spec.strip()
    try:
        return list(_xdsl_parse_pipeline(spec))
    except ArgSpecParseError as e:  # a BaseException in xDSL 0.74: catch it by name
        lines = str(e).splitlines()
        col = next((m.group(1) for line in lines
                    if (m := re.match(r"pass-pipeline:\d+:(\d+)", line))), "?")
        reason = lines[-1].strip() if lines else "syntax error"
        raise PassError(f"bad pipeline '{spec}' at column {col}: {reason}") from None


def _expand(specs: Iterable[ArgSpec], stack: tuple[str, ...]) -> list[ArgSpec]:
    out: list[ArgSpec] = []
    for s in specs:
        if has_pass(s.name) or s.name not in PIPELINES:
            out.append(s)
            continue
        if s.parameters:
            raise PassError(f"named pipeline '{s.name}' takes no options, got "
                            f"{{{', '.join(s.parameters)}}}")
        if s.name in stack:
            raise PassError(f"named pipeline '{s.name}' includes itself "
                            f"({' -> '.join((*stack, s.name))})")
        inner = [spec for step in PIPELINES[s.name] for spec in _parse_specs(step)]
        out.extend(_expand(inner, (*stack, s.name)))
    return out


def _instantiate(spec: ArgSpec) -> ModulePass:
    if not has_pass(spec.name):
        raise PassError(
            f"unknown pass '{spec.name}'{did_you_mean(spec.name, pass_names() + list(PIPELINES))}"
        )
    cls = get_pass(spec.name)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name != "name"}
    hints = get_type_hints(cls)
    spec = _ints_as_floats(spec.normalize_parameter_names(), hints)
    for key, value in spec.parameters.items():
        if key not in fields:
            options = ", ".join(n.replace("_", "-") for n in fields) or "none"
            hint = did_you_mean(key.replace("_", "-"), [n.replace("_", "-") for n in fields])
            raise PassError(f"pass '{spec.name}' has no option '{key.replace('_', '-')}'{hint} "
                            f"(options: {options})")
        try:
            _convert_arg_to_type(value, hints[key])
        except ValueError:
            given = ",".join(str(v) for v in value) if value else "(nothing)"
            raise PassError(
                f"pass '{spec.name}' option '{key.replace('_', '-')}' expects "
                f"{type_repr(hints[key])}, got '{given}'"
            ) from None
    try:
        return cls.from_pass_spec(spec)
    except IrflowError as e:
        raise PassError(f"pass '{spec.name}': {e.message}") from None
    except (ValueError, TypeError) as e:  # a required option missing, or __post_init__ checks
        raise PassError(f"pass '{spec.name}': {e}") from None


def _ints_as_floats(spec: ArgSpec, hints: dict[str, Any]) -> ArgSpec:
    """`sparsity=1` for a float option means 1.0 (xDSL's converter rejects the int), so that
    the pass's own range check, not a type error, answers an out-of-range value."""
    params = dict(spec.parameters)
    for key, value in params.items():
        hint = hints.get(key)
        if hint in (float, float | None) and all(isinstance(v, int) and not isinstance(v, bool)
                                                 for v in value):
            params[key] = tuple(float(v) for v in value)
    return ArgSpec(spec.name, params)


def pipeline_text(passes: Sequence[ModulePass]) -> str:
    """The pipeline text that `parse_pipeline` turns back into `passes`."""
    return ",".join(str(p.spec()) for p in passes)


# --------------------------------------------------------------------------------------
# Running


@dataclass(frozen=True)
class PassRecord:
    """What one pass did: its CLI name and full spec, wall time, whether the IR changed."""

    name: str
    spec: str
    seconds: float
    modified: bool


@dataclass(frozen=True)
class PipelineResult:
    module: ModuleOp
    passes: tuple[PassRecord, ...]
    verify_seconds: float
    total_seconds: float
    dumped: tuple[Path, ...] = ()

    @property
    def modified(self) -> bool:
        return any(p.modified for p in self.passes)

    def timing_report(self) -> str:
        """One line per pass plus verification and total, in the spirit of `-mlir-timing`."""
        total = self.total_seconds or 1e-12
        rule = "===" + "-" * 73 + "==="
        lines = [rule, "Pass execution timing report".center(79).rstrip(), rule,
                 f"  Total Execution Time: {self.total_seconds:.4f} seconds", "",
                 "  ----Wall Time----  ----Name----"]

        def row(seconds: float, name: str) -> str:
            return f"  {seconds:9.4f} ({100 * seconds / total:5.1f}%)  {name}"

        for p in self.passes:
            lines.append(row(p.seconds, p.spec + ("" if p.modified else "  (no change)")))
        lines.append(row(self.verify_seconds, "(verify)"))
        other = self.total_seconds - self.verify_seconds - sum(p.seconds for p in self.passes)
        if other > 0.00005:
            lines.append(row(other, "(printing, dumps, change tracking)"))
        lines.append(row(self.total_seconds, "Total"))
        return "\n".join(lines) + "\n"


class PassInstrumentation:
    """Hooks the `PassManager` calls around the pipeline (MLIR's `PassInstrumentation`);
    override what you need. `irflow.pass_cost.CostAfterEach` simulates after each pass."""

    def before_pipeline(self, module: ModuleOp) -> None:
        """The input module, verified, before the first pass."""

    def after_pass(self, record: PassRecord, module: ModuleOp) -> None:
        """After a pass ran and the module verified; `record.modified` says if it changed."""

    def after_pipeline(self, result: PipelineResult) -> None:
        """After the last pass."""


@dataclass
class PassManager:
    """Runs passes over a module, verifying between them; see the module docstring.

        >>> pm = PassManager(parse_pipeline("default"), print_ir_after={"fuse-activation"})
        >>> result = pm.run(module)
    """

    passes: Sequence[ModulePass]
    verify_each: bool = True
    print_ir_after_all: bool = False
    print_ir_after: frozenset[str] = frozenset()
    print_ir_after_change: bool = False
    dump_dir: Path | None = None  # 00-input.mlir, 01-<pass>.mlir, ... and weights.npz
    timing: bool = False
    generic: bool = False
    debuginfo: bool = False  # print `loc(...)` in IR dumps
    out: TextIO = field(default_factory=lambda: sys.stderr)  # IR dumps and timing go here
    ctx: Context | None = None
    instruments: Sequence[PassInstrumentation] = ()
    ir_diff: bool = False  # IR dumps as a unified diff against the IR before the pass

    @classmethod
    def from_spec(cls, spec: str, **options: Any) -> PassManager:
        return cls(parse_pipeline(spec), **options)

    def __post_init__(self) -> None:
        self.print_ir_after = frozenset(self.print_ir_after)
        unknown = sorted(n for n in self.print_ir_after if not has_pass(n))
        if unknown:
            raise PassError(f"--print-ir-after: unknown pass '{unknown[0]}'"
                            f"{did_you_mean(unknown[0], pass_names())}")
        if self.dump_dir is not None:
            self.dump_dir = Path(self.dump_dir)

    def run(self, module: ModuleOp) -> PipelineResult:
        """Apply every pass in order; raises `PassError` naming the pass that failed."""
        start = time.perf_counter()
        ctx = self.ctx if self.ctx is not None else make_context()
        store = weights_of(module)
        initial_weights = dict(store.items()) if self.dump_dir is not None else {}
        records: list[PassRecord] = []
        verify_seconds = 0.0
        dumped: list[Path] = []
        width = max(2, len(str(len(self.passes))))

        if self.verify_each:
            t = time.perf_counter()
            try:
                verify_module(module, context="input IR (before any pass): ")
            except VerifyError as e:
                raise PassError(e.message, e.where) from None
            verify_seconds += time.perf_counter() - t
        fingerprint = (_IRFingerprint(module), _WeightsFingerprint(store))
        for inst in self.instruments:
            inst.before_pipeline(module)
        before = self._text(module) if self.ir_diff else ""
        if self.dump_dir is not None:
            try:
                self.dump_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise IrflowError(f"--dump-dir {self.dump_dir}: cannot create it: {e}") from None
            dumped.append(self._dump(f"{0:0{width}d}-input.mlir", self._text(module)))
        try:
            for i, p in enumerate(self.passes, 1):
                t = time.perf_counter()
                self._apply(p, ctx, module, records)
                seconds = time.perf_counter() - t
                if self.verify_each:
                    t = time.perf_counter()
                    try:
                        self._verify(p, module, records)
                    except PassError:
                        self._show_failed(p, i, width, module, dumped)
                        raise
                    verify_seconds += time.perf_counter() - t
                new_fingerprint = (_IRFingerprint(module), _WeightsFingerprint(store))
                modified = new_fingerprint != fingerprint
                fingerprint = new_fingerprint
                records.append(PassRecord(p.name, str(p.spec()), seconds, modified))
                for inst in self.instruments:
                    inst.after_pass(records[-1], module)
                show = (self.print_ir_after_all or p.name in self.print_ir_after
                        or (self.print_ir_after_change and modified))
                if not (show or self.dump_dir is not None or self.ir_diff):
                    continue  # printing a large module costs more than most passes
                text = self._text(module)
                if show and self.ir_diff:
                    self.out.write(f"// -----// IR Diff After {p.spec()} //----- //\n"
                                   f"{ir_diff(before, text, p.name)}\n")
                elif show:
                    self.out.write(f"// -----// IR Dump After {p.spec()} //----- //\n{text}\n")
                before = text
                if self.dump_dir is not None:
                    dumped.append(self._dump(f"{i:0{width}d}-{p.name}.mlir", text))
        finally:
            if self.dump_dir is not None:
                # Once for every dump: the union of the input's arrays and the final ones.
                union = WeightStore({**initial_weights, **dict(store.items())})
                if len(union):
                    union.save(self.dump_dir / "weights.npz")
                    dumped.append(self.dump_dir / "weights.npz")
        result = PipelineResult(module, tuple(records), verify_seconds,
                                time.perf_counter() - start, tuple(dumped))
        for inst in self.instruments:
            inst.after_pipeline(result)
        if self.timing:
            self.out.write(result.timing_report())
        return result

    # -- helpers ------------------------------------------------------------------------

    def _text(self, module: ModuleOp) -> str:
        return print_module(module, generic=self.generic, debuginfo=self.debuginfo)

    def _dump(self, filename: str, text: str) -> Path:
        assert self.dump_dir is not None
        path = self.dump_dir / filename
        try:
            write_output(path, text)
        except OSError as e:
            raise IrflowError(f"--dump-dir: cannot write {path}: {e}") from None
        return path

    def _show_failed(self, p: ModulePass, index: int, width: int, module: ModuleOp,
                     dumped: list[Path]) -> None:
        """The invalid IR a pass left, where the user asked to see IR (as MLIR does)."""
        if not (self.print_ir_after_all or self.print_ir_after or self.print_ir_after_change
                or self.dump_dir is not None):
            return
        # The generic form prints even when a custom format's assumptions are broken.
        text = print_module(module, generic=True, debuginfo=self.debuginfo)
        if self.dump_dir is not None:
            dumped.append(self._dump(f"{index:0{width}d}-{p.name}.invalid.mlir", text))
        else:
            self.out.write(f"// -----// IR Dump After {p.spec()} Failed //----- //\n{text}\n")

    @staticmethod
    def _apply(p: ModulePass, ctx: Context, module: ModuleOp,
               before: Sequence[PassRecord]) -> None:
        try:
            p.apply(ctx, module)
        except IrflowError as e:
            raise PassError(f"pass '{p.name}' failed{_after(before)}: {e.message}",
                            e.where) from e
        except Exception as e:
            raise PassError(
                f"pass '{p.name}' failed{_after(before)}: {type(e).__name__}: {e}"
            ) from e

    @staticmethod
    def _verify(p: ModulePass, module: ModuleOp, before: Sequence[PassRecord]) -> None:
        try:
            verify_module(module, context=f"pass '{p.name}' left invalid IR{_after(before)}: ")
        except VerifyError as e:
            raise PassError(e.message, e.where) from None


def ir_diff(before: str, after: str, pass_name: str) -> str:
    """The unified diff of two IR texts (`--ir-diff`); "(no change)" when equal."""
    lines = list(difflib.unified_diff(before.splitlines(keepends=True),
                                      after.splitlines(keepends=True),
                                      f"before {pass_name}", f"after {pass_name}"))
    return "".join(lines).rstrip("\n") if lines else "(no change)"


def _after(records: Sequence[PassRecord]) -> str:
    if not records:
        return " (it ran first)"
    return f" (after {', '.join(r.name for r in records)})"


class _IRFingerprint:
    """What a pass can change, by identity: every op in walk order with its operands,
    result types, properties, attributes and location, and every block's arguments.

    xDSL ops and values compare by identity and attributes are immutable values, so a pass
    that rewrites anything leaves a different fingerprint; holding the objects keeps their
    identities from being reused. Much cheaper than comparing printed IR (which cost about
    half of the `default` pipeline's time on MobileNetV2).
    """

    def __init__(self, module: ModuleOp):
        self.items: list[tuple[object, ...]] = []
        for op in module.walk():
            self.items.append((op, tuple(op.operands), tuple(r.type for r in op.results),
                               tuple(r.name_hint for r in op.results),
                               tuple(op.properties.items()), tuple(op.attributes.items()),
                               op.location))
            for region in op.regions:
                for block in region.blocks:
                    self.items.append((block, tuple(block.args),
                                       tuple(a.type for a in block.args)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _IRFingerprint) and self.items == other.items

    __hash__ = None  # type: ignore[assignment]


class _WeightsFingerprint:
    """Names and array objects of a store; passes replace arrays rather than mutate them,
    so names + identities tell a change. Arrays are held by weak reference (a dead one
    was replaced: a change), so a pass that swaps a weight frees the old array at once,
    and a lazy entry (`WeightStore.add_lazy`) is held as its function, not made."""

    def __init__(self, store: WeightStore):
        self.items = tuple((k, weakref.ref(v) if isinstance(v, np.ndarray) else v)
                           for k, v in store.entries())

    @staticmethod
    def _same(a: object, b: object) -> bool:
        if isinstance(a, weakref.ref) and isinstance(b, weakref.ref):
            return a() is not None and a() is b()
        return a is b

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _WeightsFingerprint) and len(self.items) == len(
            other.items) and all(a[0] == b[0] and self._same(a[1], b[1])
                                 for a, b in zip(self.items, other.items))

    __hash__ = None  # type: ignore[assignment]


def run_pipeline(module: ModuleOp, spec: str, **pm_options: Any) -> PipelineResult:
    """Parse `spec` and run it over `module` (in place) with a `PassManager(**pm_options)`."""
    return PassManager(parse_pipeline(spec), **pm_options).run(module)


__all__ = ["parse_pipeline", "pipeline_text", "PassManager", "PassRecord", "PipelineResult",
           "PassInstrumentation", "run_pipeline", "ir_diff"]
