"""What every `prune` mode shares: options, the report, and the weight editor.

`WeightEditor` rewrites weight constants in place or as new store entries, never
changing a constant another op still reads; `PruneReport` is what a prune call did.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, ModuleOp, TensorType
from xdsl.ir import Block, Operation, SSAValue

from irflow.diagnostics import PassError
from irflow.dialects import nn
from irflow.dialects.nn import defining_constant
from irflow.sparsity import (
    attr_holds,
    matches_any,
    quantized_layers,
    set_sparsity,
    sparsity_of,
    unstructured_attr,
)
from irflow.weights import WeightStore, constant_value, dense_attr, weights_of

MODES = ("magnitude", "channel", "nm")
SCOPES = ("global", "layer")
NORMS = ("l1", "l2")
FOLDS = ("exact", "bias")


class PruneWarning(UserWarning):
    """Something `prune` left alone and why (an unmatched pattern, a skipped layer)."""


def warn(message: str) -> None:
    warnings.warn(f"prune: {message}", PruneWarning, stacklevel=3)


@dataclass
class PruneReport:
    """What a prune call did.

    - `masks`: weight name -> keep mask (magnitude, nm), in the weight's shape;
    - `removed`: producer weight name -> removed output channels (channel mode), indices
      into the original filters;
    - `skipped`: one explained line per layer or channel group left dense;
    - `unmatched`: `exclude` patterns that matched no layer.
    """

    mode: str
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    removed: dict[str, list[int]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    params_before: int = 0
    params_after: int = 0
    zeros: int = 0

    def skip(self, message: str) -> None:
        self.skipped.append(message)
        warn(message)

    def summary(self) -> str:
        """One line: what was pruned (logged at INFO by the pass, logger `irflow.prune`)."""
        if self.mode == "channel":
            channels = sum(len(v) for v in self.removed.values())
            return (f"prune channel: removed {channels} filters from {len(self.removed)} layers; "
                    f"constants {self.params_before} -> {self.params_after} values; "
                    f"{len(self.skipped)} skipped")
        share = self.zeros / self.params_before if self.params_before else 0.0
        return (f"prune {self.mode}: {len(self.masks)} weights, {self.zeros} of "
                f"{self.params_before} values zero ({100 * share:.1f} %); "
                f"{len(self.skipped)} skipped")


# --------------------------------------------------------------------------------------
# Options


def split_patterns(exclude: Sequence[str]) -> tuple[str, ...]:
    return tuple(p.strip() for item in exclude for p in item.split(",") if p.strip())


def validate_options(mode: str, sparsity: float, scope: str, ratio: float, norm: str,
                     n: int, m: int, fold: str = "exact") -> None:
    """Raise `PassError` for an option outside its range (called when the pass is built)."""
    if mode not in MODES:
        raise PassError(f"prune expects mode in {list(MODES)}, got '{mode}'")
    if not 0.0 <= sparsity < 1.0:
        raise PassError(f"prune expects sparsity in [0, 1), got {sparsity}")
    if scope not in SCOPES:
        raise PassError(f"prune expects scope in {list(SCOPES)}, got '{scope}'")
    if not 0.0 <= ratio < 1.0:
        raise PassError(f"prune expects ratio in [0, 1), got {ratio}")
    if norm not in NORMS:
        raise PassError(f"prune expects norm in {list(NORMS)}, got '{norm}'")
    if fold not in FOLDS:
        raise PassError(f"prune expects fold in {list(FOLDS)}, got '{fold}'")
    if m < 2 or not 1 <= n < m:
        raise PassError(f"prune expects 1 <= N < M (N:M sparsity), got N={n}, M={m}")


def check_patterns(report: PruneReport, patterns: Sequence[str],
                    names: list[list[str]]) -> None:
    for p in patterns:
        if matches_any([x for ns in names for x in ns], [p]) is None:
            report.unmatched.append(p)
            shown = ", ".join(ns[0] for ns in names[:8]) + (", ..." if len(names) > 8 else "")
            warn(f"exclude pattern '{p}' matches no layer (layers: {shown or 'none'})")


# --------------------------------------------------------------------------------------
# Writing constants


class WeightEditor:
    """Reads and rewrites weight constants, sharing nothing another op still uses."""

    def __init__(self, module: ModuleOp, fn: func.FuncOp):
        self.store: WeightStore = weights_of(module)
        self.refs: dict[str, int] = {}
        for op in fn.walk():
            if isinstance(op, nn.ConstantOp) and isinstance(op.value, nn.WeightAttr):
                self.refs[op.value.key] = self.refs.get(op.value.key, 0) + 1
        self.orphans: list[nn.ConstantOp] = []

    def value(self, const: nn.ConstantOp) -> np.ndarray:
        return constant_value(const, self.store)

    def rewrite(self, const: nn.ConstantOp, array: np.ndarray) -> None:
        """Give every user of `const` the new value (a store entry other constants also
        name is left to them: `const` gets a new entry)."""
        if isinstance(const.value, nn.WeightAttr):
            key = const.value.key
            if self.refs.get(key, 0) <= 1:
                self.store[key] = array
                return
            const.properties["value"] = nn.WeightAttr(self.store.add(key, array))
        else:
            const.properties["value"] = dense_attr(array, nn.value_element_type(const.output))

    def replace_operand(self, op: Operation, index: int, array: np.ndarray) -> nn.ConstantOp:
        """Operand `index` of `op` becomes a constant holding `array` (maybe a new shape)."""
        old = defining_constant(op.operands[index])
        assert old is not None
        ty = TensorType(nn.value_element_type(old.output), list(array.shape))
        sole_user = old.output.has_one_use() and (
            not isinstance(old.value, nn.WeightAttr) or self.refs.get(old.value.key, 0) <= 1)
        if sole_user:
            self.rewrite(old, array)
            set_type(old.output, ty)
            new = old
        else:
            if isinstance(old.value, nn.WeightAttr):
                value: nn.WeightAttr | DenseIntOrFPElementsAttr = nn.WeightAttr(
                    self.store.add(old.value.key, array))
            else:
                value = dense_attr(array, nn.value_element_type(old.output))
            new = nn.ConstantOp(value, ty)
            new.location = old.location
            new.attributes.update(old.attributes)
            insert_before(new, op)
            op.operands[index] = new.output
            self.orphans.append(old)
        refresh_sparsity(new, array)
        return new

    def add_constant(self, hint: str, array: np.ndarray, before: Operation,
                     elem: object, inline: bool = False) -> SSAValue:
        """A new constant before `before`: inline `dense<...>` or a weight-store entry."""
        ty = TensorType(elem, list(array.shape))  # type: ignore[arg-type]
        value = (dense_attr(array, elem) if inline  # type: ignore[arg-type]
                 else nn.WeightAttr(self.store.add(hint, array)))
        const = nn.ConstantOp(value, ty)
        const.location = before.location
        insert_before(const, before)
        return const.output

    def cleanup(self) -> None:
        for const in self.orphans:
            if const.parent is not None and not const.output.uses:
                const.detach()
                const.erase()
                if isinstance(const.value, nn.WeightAttr):
                    key = const.value.key
                    self.refs[key] -= 1
                    if self.refs[key] == 0 and key in self.store:
                        del self.store[key]


def set_type(value: SSAValue, ty: TensorType) -> None:
    # Shapes change in place so that every later op keeps its operands; each user's
    # result type is re-inferred in program order right after (`_reinfer`).
    value._type = ty  # noqa: SLF001 - xDSL has no public in-place retype


def insert_before(new: Operation, op: Operation) -> None:
    block = op.parent
    assert isinstance(block, Block)
    block.insert_op_before(new, op)


def refresh_sparsity(const: nn.ConstantOp, array: np.ndarray) -> None:
    attr = sparsity_of(const)
    if attr is None:
        return
    if not attr.is_nm:
        set_sparsity(const, unstructured_attr(array))
        return
    n, m = attr.n_m
    if not attr_holds(array, attr):
        set_sparsity(const, unstructured_attr(array))
        warn(f"{constant_key(const)}: slicing broke its {n}:{m} pattern; now marked unstructured "
              "(run mode=channel before mode=nm)")


def constant_key(const: nn.ConstantOp) -> str:
    return const.value.key if isinstance(const.value, nn.WeightAttr) else "inline constant"



def note_quantized(fn: func.FuncOp, report: PruneReport) -> None:
    layers = quantized_layers(fn)
    if layers:
        report.skip(f"{len(layers)} layer(s) have quantized weights and are left as they are "
                    "(prune before quantize)")
