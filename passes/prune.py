"""`prune`: magnitude (unstructured), structured channel, and N:M weight pruning.

Three modes, one pass (`prune{mode=...}`); the shared machinery (masks, the
`nn.sparsity` attribute, channel dependency groups) is in `irflow.sparsity`.
docs/pruning.md describes the modes, the IR encoding and the exactness guarantee.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, ModuleOp, TensorType
from xdsl.ir import Block, Operation, SSAValue
from xdsl.passes import ModulePass

from irflow.diagnostics import PassError
from irflow.dialects import nn
from irflow.dialects.nn import defining_constant
from irflow.graph import main_func
from irflow.sparsity import (
    ChannelAnalysis,
    ChannelGroup,
    WeightUse,
    attr_holds,
    channel_groups,
    constant_elements,
    flatten_block,
    is_channel_consumer,
    is_channel_producer,
    is_depthwise,
    layer_names,
    matches_any,
    nm_mask,
    quantized_layers,
    set_sparsity,
    smallest_mask,
    sparsity_of,
    unstructured_attr,
    weight_uses,
)
from irflow.weights import WeightStore, constant_value, dense_attr, weights_of

MODES = ("magnitude", "channel", "nm")
SCOPES = ("global", "layer")
NORMS = ("l1", "l2")
FOLDS = ("exact", "bias")


class PruneWarning(UserWarning):
    """Something `prune` left alone and why (an unmatched pattern, a skipped layer)."""


def _warn(message: str) -> None:
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
        _warn(message)

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


def _split_patterns(exclude: Sequence[str]) -> tuple[str, ...]:
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


def _check_patterns(report: PruneReport, patterns: Sequence[str],
                    names: list[list[str]]) -> None:
    for p in patterns:
        if matches_any([x for ns in names for x in ns], [p]) is None:
            report.unmatched.append(p)
            shown = ", ".join(ns[0] for ns in names[:8]) + (", ..." if len(names) > 8 else "")
            _warn(f"exclude pattern '{p}' matches no layer (layers: {shown or 'none'})")


# --------------------------------------------------------------------------------------
# Writing constants


class _Weights:
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
            _set_type(old.output, ty)
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
            _insert_before(new, op)
            op.operands[index] = new.output
            self.orphans.append(old)
        _refresh_sparsity(new, array)
        return new

    def add_constant(self, hint: str, array: np.ndarray, before: Operation,
                     elem: object, inline: bool = False) -> SSAValue:
        """A new constant before `before`: inline `dense<...>` or a weight-store entry."""
        ty = TensorType(elem, list(array.shape))  # type: ignore[arg-type]
        value = (dense_attr(array, elem) if inline  # type: ignore[arg-type]
                 else nn.WeightAttr(self.store.add(hint, array)))
        const = nn.ConstantOp(value, ty)
        const.location = before.location
        _insert_before(const, before)
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


def _set_type(value: SSAValue, ty: TensorType) -> None:
    # Shapes change in place so that every later op keeps its operands; each user's
    # result type is re-inferred in program order right after (`_reinfer`).
    value._type = ty  # noqa: SLF001 - xDSL has no public in-place retype


def _insert_before(new: Operation, op: Operation) -> None:
    block = op.parent
    assert isinstance(block, Block)
    block.insert_op_before(new, op)


def _refresh_sparsity(const: nn.ConstantOp, array: np.ndarray) -> None:
    attr = sparsity_of(const)
    if attr is None:
        return
    if not attr.is_nm:
        set_sparsity(const, unstructured_attr(array))
        return
    n, m = attr.n_m
    if not attr_holds(array, attr):
        set_sparsity(const, unstructured_attr(array))
        _warn(f"{_key(const)}: slicing broke its {n}:{m} pattern; now marked unstructured "
              "(run mode=channel before mode=nm)")


def _key(const: nn.ConstantOp) -> str:
    return const.value.key if isinstance(const.value, nn.WeightAttr) else "inline constant"


# --------------------------------------------------------------------------------------
# magnitude and N:M


def _note_quantized(fn: func.FuncOp, report: PruneReport) -> None:
    layers = quantized_layers(fn)
    if layers:
        report.skip(f"{len(layers)} layer(s) have quantized weights and are left as they are "
                    "(prune before quantize)")


def _selected_uses(fn: func.FuncOp, exclude: Sequence[str], report: PruneReport,
                   ) -> list[WeightUse]:
    _note_quantized(fn, report)
    uses = weight_uses(fn)
    _check_patterns(report, exclude, [u.names() for u in uses])
    out: list[WeightUse] = []
    seen: set[nn.ConstantOp] = set()
    for u in uses:
        pattern = matches_any(u.names(), exclude)
        if pattern is not None:
            report.skipped.append(f"{u.key}: excluded by pattern '{pattern}'")
            continue
        if u.const in seen:
            continue  # one weight shared by several layers is pruned once
        seen.add(u.const)
        out.append(u)
    return out


def prune_magnitude(module: ModuleOp, sparsity: float = 0.5, scope: str = "global",
                    exclude: Sequence[str] = ()) -> PruneReport:
    """Zero the smallest-magnitude weights of every conv2d / linear / matmul weight.

    `scope="global"`: one threshold over all selected weights, so that `sparsity` of
    all their elements together are zero; `scope="layer"`: each weight gets `sparsity`.
    Every pruned constant gets `#nn.sparsity<unstructured, density = d>`.
    """
    validate_options("magnitude", sparsity, scope, 0.0, "l1", 2, 4)
    fn = main_func(module)
    exclude = _split_patterns(exclude)
    report = PruneReport("magnitude")
    uses = _selected_uses(fn, exclude, report)
    weights = _Weights(module, fn)
    arrays = [weights.value(u.const) for u in uses]
    if scope == "global" and arrays:
        flat = np.concatenate([np.abs(a).reshape(-1) for a in arrays])
        keep_all = smallest_mask(flat, round(sparsity * flat.size))
        bounds = np.cumsum([0] + [a.size for a in arrays])
        masks = [keep_all[lo:hi].reshape(a.shape)
                 for lo, hi, a in zip(bounds[:-1], bounds[1:], arrays)]
    else:
        masks = [smallest_mask(np.abs(a), round(sparsity * a.size)) for a in arrays]
    for u, a, keep in zip(uses, arrays, masks):
        report.params_before += a.size
        report.masks[u.key] = keep
        pruned = np.where(keep, a, np.zeros((), a.dtype))
        report.zeros += int(a.size - np.count_nonzero(pruned))
        if keep.all():
            continue  # nothing below the threshold: the weight stays dense, unmarked
        weights.rewrite(u.const, pruned)
        set_sparsity(u.const, unstructured_attr(pruned))
    report.params_after = report.params_before
    return report


def prune_nm(module: ModuleOp, n: int = 2, m: int = 4, exclude: Sequence[str] = ()
             ) -> PruneReport:
    """Keep the N largest of every run of M weights along the reduction axis.

    The axis is the input channels of a conv2d weight (FCHW: runs of M input channels at
    each output channel and kernel tap), the columns of a linear weight and the rows of
    a matmul's constant rhs. A linear layer reading a flatten of [N, C, H, W] is a conv
    with an H×W kernel: its runs are M channels at one position, H·W columns apart
    (`stride = H·W`), when C is a multiple of M. A weight whose axis is not a multiple
    of M (e.g. the first conv on 3 channels, a depthwise conv) is skipped with a
    warning. Every pruned constant gets `#nn.sparsity<"N:M", axis = A[, stride = S]>`.
    """
    validate_options("nm", 0.0, "global", 0.0, "l1", n, m)
    fn = main_func(module)
    exclude = _split_patterns(exclude)
    report = PruneReport("nm")
    weights = _Weights(module, fn)
    for u in _selected_uses(fn, exclude, report):
        a = weights.value(u.const)
        if a.shape[u.axis] % m:
            report.skip(f"{u.key}: reduction axis {u.axis} of {list(a.shape)} has "
                        f"{a.shape[u.axis]} elements, not a multiple of {m}; left dense")
            continue
        stride = _run_stride(u, m)
        keep = nm_mask(a, n, m, u.axis, stride)
        pruned = np.where(keep, a, np.zeros((), a.dtype))
        weights.rewrite(u.const, pruned)
        set_sparsity(u.const, nn.SparsityAttr.nm(n, m, u.axis, stride))
        report.masks[u.key] = keep
        report.params_before += a.size
        report.zeros += int(a.size - np.count_nonzero(pruned))
    report.params_after = report.params_before
    return report


def _run_stride(u: WeightUse, m: int) -> int:
    """H·W for a linear reading a flatten of [N, C, H, W] with C a multiple of M, else 1."""
    if not isinstance(u.op, nn.LinearOp):
        return 1
    flat = u.op.operands[0].owner
    if not isinstance(flat, Operation) or flatten_block(flat) is None:
        return 1
    x = nn.shape_of(flat.operands[0])
    block = flatten_block(flat) or 1
    return block if block > 1 and x[1] % m == 0 else 1


# --------------------------------------------------------------------------------------
# channel


def prune_channels(module: ModuleOp, ratio: float = 0.25, norm: str = "l1",
                   exclude: Sequence[str] = (), fold: str = "exact") -> PruneReport:
    """Remove `ratio` of the output channels of every prunable channel group.

    A group's channels are ranked by the sum over its producers (conv2d with groups=1,
    rank-2 linear) of each filter's L1/L2 norm, normalized by that producer's mean norm;
    the lowest `floor(ratio * C)` go. Producers lose filters; batchnorm parameters,
    depthwise convs, per-channel constants and concats shrink with them; consumers
    (conv2d input channels, linear columns — per flatten block —, matmul rows) lose the
    matching slices. The removed channels' constant output (bias / batchnorm shift
    through activations, pooling and depthwise convs) is folded into each consumer: into
    its bias when it is spatially uniform, else (`fold="exact"`) as an `nn.add` of the
    exact constant map — zero padding makes a constant channel's contribution differ at
    the borders — or (`fold="bias"`) approximately, by its interior value in the bias.
    """
    validate_options("channel", 0.0, "global", ratio, norm, 2, 4, fold)
    fn = main_func(module)
    exclude = _split_patterns(exclude)
    report = PruneReport("channel")
    weights = _Weights(module, fn)
    analysis = channel_groups(fn)
    _note_quantized(fn, report)

    producers = [p for g in analysis.groups for p in g.producers]
    _check_patterns(report, exclude, [
        layer_names(p, defining_constant(p.operands[1])) for p in producers])
    for g in analysis.groups:
        for p in g.producers:
            pattern = matches_any(layer_names(p, defining_constant(p.operands[1])), exclude)
            if pattern is not None:
                g.blockers.append(f"{_producer_key(p)} is excluded by pattern '{pattern}'")
    for g in analysis.groups:
        if g.producers and g.blockers:
            report.skip(f"kept {g.describe()}: {g.blockers[0]}")

    keep: dict[ChannelGroup, np.ndarray] = {}
    for g in analysis.groups:
        if not g.prunable:
            continue
        k = math.floor(ratio * g.channels)
        if k == 0 or k >= g.channels:
            continue
        score = np.zeros(g.channels)
        for p in g.producers:
            w = weights.value(defining_constant(p.operands[1])).astype(np.float64)  # type: ignore[arg-type]
            rows = np.abs(w.reshape(w.shape[0], -1))
            norms = rows.sum(1) if norm == "l1" else np.sqrt((rows * rows).sum(1))
            score += norms / max(norms.mean(), 1e-30)
        mask = np.ones(g.channels, dtype=bool)
        mask[np.argsort(score, kind="stable")[:k]] = False
        keep[g] = mask
        for p in g.producers:
            report.removed[_producer_key(p)] = [int(i) for i in np.flatnonzero(~mask)]
    _derive_concat_keeps(fn, analysis, keep)
    if not keep:
        return report

    report.params_before = constant_elements(fn)
    maps = _removed_channel_maps(fn, analysis, keep, weights)
    _rewrite_channels(fn, analysis, keep, maps, weights, fold)
    weights.cleanup()
    report.params_after = constant_elements(fn)
    return report


def _producer_key(op: Operation) -> str:
    const = defining_constant(op.operands[1])
    names = layer_names(op, const)
    return names[0] if names else op.name


def _derive_concat_keeps(fn: func.FuncOp, analysis: ChannelAnalysis,
                         keep: dict[ChannelGroup, np.ndarray]) -> None:
    """A concat output group keeps the concatenation of its inputs' keep masks."""
    for op in fn.body.blocks[0].ops:
        ins = analysis.concat_inputs.get(op)
        if ins is None:
            continue
        out = analysis.group_of[op.results[0]]
        if out.blockers:
            continue
        parts = [keep.get(g, np.ones(g.channels, dtype=bool)) for g in ins]
        mask = np.concatenate(parts)
        if not mask.all():
            keep[out] = mask


def _channel_index(keep: np.ndarray, block: int) -> np.ndarray:
    return np.flatnonzero(np.repeat(keep, block))


def _removed_mask(keep: np.ndarray, block: int, rank: int) -> np.ndarray:
    """1 on the removed channels' elements of axis 1, broadcastable to a value of `rank`."""
    r = np.repeat(~keep, block).astype(np.float32)
    return r.reshape((1, r.size) + (1,) * (rank - 2))


def _removed_channel_maps(fn: func.FuncOp, analysis: ChannelAnalysis,
                          keep: dict[ChannelGroup, np.ndarray], weights: _Weights,
                          ) -> dict[SSAValue, np.ndarray]:
    """The input-independent value of every value in a pruned group (its removed channels).

    With the removed filters masked to zero, a removed channel is a constant: the
    producer's bias through its fused activation, then every per-channel op of the
    group. Evaluated with the reference kernels at the declared shapes (only the
    removed channels of each array are meaningful).
    """
    from irflow.backends.reference.kernels import evaluate_op

    maps: dict[SSAValue, np.ndarray] = {}
    for op in fn.body.blocks[0].ops:
        outs = [r for r in op.results if analysis.group_of.get(r) in keep]
        if not outs:
            continue
        g = analysis.group_of[outs[0]]
        args: list[np.ndarray] = []
        for i, v in enumerate(op.operands):
            const = defining_constant(v)
            if const is not None:
                args.append(weights.value(const))
            elif v in maps and not (i == 0 and op in g.producers):
                args.append(maps[v])
            else:  # a producer's data input (its removed filters are zero) or kept channels
                args.append(np.zeros(nn.shape_of(v), np.float32))
        for r, a in zip(op.results, evaluate_op(op, args)):
            maps[r] = a
    return maps


def _correction(op: Operation, x_removed: np.ndarray, weights: _Weights) -> np.ndarray:
    """What the removed input channels add to `op`'s output (pre-activation, no bias)."""
    from irflow.backends.reference.kernels import evaluate_op

    w = weights.value(defining_constant(op.operands[1]))  # type: ignore[arg-type]
    props = {k: v for k, v in op.properties.items() if k != "act"}
    bare = type(op).create(operands=list(op.operands[:2]),
                           result_types=[op.results[0].type], properties=props)
    try:  # the same op without bias and activation, evaluated by the reference kernels
        return evaluate_op(bare, [x_removed, w])[0]
    finally:
        bare.erase()


def _uniform(k: np.ndarray) -> bool:
    """Is the correction the same at every position of every sample (a bias)?"""
    ref = k[:1].reshape(1, k.shape[1], -1)[..., :1]
    flat = k.reshape(k.shape[0], k.shape[1], -1)
    tol = 1e-6 * max(float(np.abs(k).max()), 1e-30)
    return bool(np.abs(flat - ref).max() <= tol)


def _rewrite_channels(fn: func.FuncOp, analysis: ChannelAnalysis,
                      keep: dict[ChannelGroup, np.ndarray],
                      maps: dict[SSAValue, np.ndarray], weights: _Weights, fold: str) -> None:
    group_of = analysis.group_of

    def pruned(v: SSAValue) -> tuple[ChannelGroup, np.ndarray] | None:
        g = group_of.get(v)
        return (g, keep[g]) if g is not None and g in keep else None

    # decided before any shape changes (a half-rewritten depthwise conv no longer looks like one)
    depthwise = {op for op in fn.body.blocks[0].ops if is_depthwise(op)}
    pending_bias: list[tuple[Operation, np.ndarray]] = []   # op, correction [1, F, ...]
    for op in list(fn.body.blocks[0].ops):
        if isinstance(op, nn.ConstantOp | func.ReturnOp):
            continue
        changed = False
        src = pruned(op.operands[0]) if op.operands else None
        dst = pruned(op.results[0]) if op.results else None
        # 1. a consumer loses the removed input channels; their constant goes to a correction
        if src is not None and is_channel_consumer(op, 0):
            g, mask = src
            x = op.operands[0]
            block = g.block[x]
            x_removed = maps[x] * _removed_mask(mask, block, len(nn.shape_of(x)))
            corr = _correction(op, x_removed.astype(np.float32), weights)
            w_const = defining_constant(op.operands[1])
            assert w_const is not None
            w = weights.value(w_const)
            cols = _channel_index(mask, block)
            w = w[cols] if isinstance(op, nn.MatmulOp) else w[:, cols]
            if dst is not None and is_channel_producer(op):
                w = w[keep[dst[0]]]
                corr = corr[:, keep[dst[0]]]
            weights.replace_operand(op, 1, np.ascontiguousarray(w))
            if np.any(corr):
                pending_bias.append((op, corr.astype(np.float32)))
            changed = True
        # 2. a producer loses its removed filters (rows of W and b)
        elif dst is not None and is_channel_producer(op) and op in dst[0].producers:
            rows = keep[dst[0]]
            w = weights.value(defining_constant(op.operands[1]))  # type: ignore[arg-type]
            weights.replace_operand(op, 1, np.ascontiguousarray(w[rows]))
            changed = True
        if dst is not None and is_channel_producer(op) and op in dst[0].producers and \
                len(op.operands) > 2:
            b = weights.value(defining_constant(op.operands[2]))  # type: ignore[arg-type]
            weights.replace_operand(op, 2, np.ascontiguousarray(b[keep[dst[0]]]))
        # 3. per-channel ops of a pruned group: slice their per-channel parameters
        if src is not None and not is_channel_consumer(op, 0):
            g, mask = src
            if op in depthwise:
                for i in (1, 2)[: len(op.operands) - 1]:
                    a = weights.value(defining_constant(op.operands[i]))  # type: ignore[arg-type]
                    weights.replace_operand(op, i, np.ascontiguousarray(a[mask]))
                op.properties["groups"] = nn.i64_attr(int(mask.sum()))
            elif isinstance(op, nn.BatchNormOp):
                for i in range(1, 5):
                    a = weights.value(defining_constant(op.operands[i]))  # type: ignore[arg-type]
                    weights.replace_operand(op, i, np.ascontiguousarray(a[mask]))
            changed = True
        if isinstance(op, nn.BinaryOp) and dst is not None:
            _slice_binary_constants(op, dst, weights)
            changed = True
        if isinstance(op, nn.ConcatOp) and any(pruned(v) for v in op.operands):
            changed = True
        if changed:
            _reinfer(op)

    for op, corr in pending_bias:
        _apply_correction(op, corr, weights, fold)


def _slice_binary_constants(op: Operation, dst: tuple[ChannelGroup, np.ndarray],
                            weights: _Weights) -> None:
    g, mask = dst
    out = op.results[0]
    rank = len(nn.shape_of(out))
    full = nn.shape_of(out)[1]
    idx = _channel_index(mask, g.block[out])
    for i, v in enumerate(op.operands):
        const = defining_constant(v)
        if const is None:
            continue
        shape = nn.shape_of(v)
        axis = 1 - (rank - len(shape))
        if axis < 0 or shape[axis] != full:
            continue  # broadcast over the channels: unchanged
        a = weights.value(const)
        weights.replace_operand(op, i, np.ascontiguousarray(np.take(a, idx, axis=axis)))


def _reinfer(op: Operation) -> None:
    """Re-derive `op`'s result types from its (resized) operands."""
    if isinstance(op, nn.ReshapeOp):
        x = nn.shape_of(op.input)
        shapes = [(x[0], math.prod(x[1:]))]
    else:
        shapes = type(op).infer_shapes([nn.shape_of(v) for v in op.operands], op.properties)  # type: ignore[attr-defined]
    for r, s in zip(op.results, shapes):
        _set_type(r, TensorType(nn.value_element_type(r), list(s)))


def _apply_correction(op: Operation, corr: np.ndarray, weights: _Weights, fold: str) -> None:
    """Fold the removed channels' constant contribution into `op`'s output."""
    has_bias_slot = isinstance(op, nn.Conv2dOp | nn.LinearOp)
    hint = _producer_key(op).removesuffix(".weight")
    w_const = defining_constant(op.operands[1])
    inline = w_const is not None and isinstance(w_const.value, DenseIntOrFPElementsAttr)
    if has_bias_slot and (_uniform(corr) or fold == "bias"):
        # uniform: any position; fold=bias: the interior value (away from the padding)
        spatial = corr.shape[2:]
        centre = (0, slice(None)) + tuple(d // 2 for d in spatial)
        per_channel = corr[centre]
        if len(op.operands) > 2:
            const = defining_constant(op.operands[2])
            assert const is not None
            b = weights.value(const)
            weights.replace_operand(op, 2, (b + per_channel).astype(b.dtype))
            return
        bias = weights.add_constant(f"{hint}.bias", per_channel.astype(np.float32), op,
                                    nn.value_element_type(op.results[0]), inline)
        new = type(op).create(operands=[*op.operands, bias],
                              result_types=[r.type for r in op.results],
                              properties=dict(op.properties), attributes=dict(op.attributes))
        new.location = op.location
        _insert_before(new, op)
        op.results[0].replace_all_uses_with(new.results[0])
        op.detach()
        op.erase()
        return
    # Not a bias (zero padding makes the border differ, or no bias operand): add the
    # exact constant map after the op, moving a fused activation behind the add.
    out = op.results[0]
    uniform = _uniform(corr)
    array = corr[:1].reshape(corr.shape[1]) if uniform and corr.ndim == 2 else corr[:1]
    c = weights.add_constant(f"{hint}.removed_channels", array.astype(np.float32),
                             op, nn.value_element_type(out), inline and array.size <= 100)
    act = op.properties.pop("act", None)
    props = {"act": act} if act is not None else {}
    add = nn.AddOp.make([out, c], props)
    add.location = op.location
    block = op.parent
    assert isinstance(block, Block)
    block.insert_op_after(add, op)
    out.replace_uses_with_if(add.results[0], lambda use: use.operation is not add)


@dataclass(frozen=True)
class PrunePass(ModulePass):
    """Prune weights: `mode=magnitude` (unstructured), `mode=channel` (structured, removes
    channels), `mode=nm` (N:M along the reduction axis).

        prune{mode=magnitude sparsity=0.5 scope=global exclude="fc*"}
        prune{mode=channel ratio=0.25 norm=l1 fold=exact}
        prune{mode=nm n=2 m=4}

    magnitude / nm keep every shape and mark each pruned weight constant:

        // before
        %w = nn.constant #nn.weight<"fc1.weight"> : tensor<256x64xf32>
        // after prune{mode=nm}
        %w = nn.constant #nn.weight<"fc1.weight">
             {nn.sparsity = #nn.sparsity<"2:4", axis = 1>} : tensor<256x64xf32>

    channel removes filters and shrinks everything tied to them (dependency groups
    across residual adds, concats, depthwise convs, flatten -> linear):

        // before (ratio=0.25)
        %y = nn.conv2d %x, %w1, %b1 : (tensor<1x3x8x8xf32>, tensor<16x3x3x3xf32>,
             tensor<16xf32>) -> tensor<1x16x6x6xf32>
        %z = nn.conv2d %y, %w2, %b2 : (tensor<1x16x6x6xf32>, tensor<8x16x3x3xf32>,
             tensor<8xf32>) -> tensor<1x8x4x4xf32>
        // after
        %y = nn.conv2d %x, %w1, %b1 : (tensor<1x3x8x8xf32>, tensor<12x3x3x3xf32>,
             tensor<12xf32>) -> tensor<1x12x6x6xf32>
        %z = nn.conv2d %y, %w2, %b2 : (tensor<1x12x6x6xf32>, tensor<8x12x3x3xf32>,
             tensor<8xf32>) -> tensor<1x8x4x4xf32>

    Exact: the result equals the dense model with the pruned weights (magnitude, nm) or
    the removed filters (channel) set to zero, up to float rounding; a removed
    channel's constant output is folded into its consumers. Does not: fine-tune, prune
    biases or normalization parameters on their own, prune quantized (integer) weights,
    or prune a channel group tied to a graph input/output or a channel-mixing op (those
    are skipped with a `PruneWarning` saying why). Creates only `nn` ops.
    """

    name = "prune"

    mode: str = "magnitude"
    sparsity: float = 0.5
    scope: str = "global"
    exclude: tuple[str, ...] = ()
    ratio: float = 0.25
    norm: str = "l1"
    fold: str = "exact"
    n: int = 2
    m: int = 4

    def __post_init__(self) -> None:
        validate_options(self.mode, float(self.sparsity), self.scope, float(self.ratio),
                         self.norm, self.n, self.m, self.fold)

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        logging.getLogger("irflow.prune").info(run_prune(op, self).summary())


def run_prune(module: ModuleOp, options: PrunePass) -> PruneReport:
    """Run the pass's mode on `module` and return its report."""
    if options.mode == "magnitude":
        return prune_magnitude(module, options.sparsity, options.scope, options.exclude)
    if options.mode == "nm":
        return prune_nm(module, options.n, options.m, options.exclude)
    return prune_channels(module, options.ratio, options.norm, options.exclude, options.fold)


__all__ = ["PrunePass", "PruneReport", "PruneWarning", "prune_magnitude", "prune_nm",
           "prune_channels", "run_prune", "validate_options"]
