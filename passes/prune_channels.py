"""`prune{mode=channel}`: structured channel pruning across channel dependency groups.

Removes the lowest-scored output channels of each prunable group and shrinks every op
tied to them; the removed channels' constant output is folded into the consumers
(docs/pruning.md). The groups come from `irflow.sparsity.channel_groups`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, ModuleOp, TensorType
from xdsl.ir import Block, Operation, SSAValue

from irflow.dialects import nn
from irflow.dialects.nn import defining_constant
from irflow.graph import main_func
from irflow.passes.prune_common import (
    PruneReport,
    WeightEditor,
    check_patterns,
    insert_before,
    note_quantized,
    set_type,
    split_patterns,
    validate_options,
)
from irflow.sparsity import (
    ChannelAnalysis,
    ChannelGroup,
    channel_groups,
    constant_elements,
    is_channel_consumer,
    is_channel_producer,
    is_depthwise,
    layer_names,
    matches_any,
)

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
    exclude = split_patterns(exclude)
    report = PruneReport("channel")
    weights = WeightEditor(module, fn)
    analysis = channel_groups(fn)
    note_quantized(fn, report)

    producers = [p for g in analysis.groups for p in g.producers]
    check_patterns(report, exclude, [
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
                          keep: dict[ChannelGroup, np.ndarray], weights: WeightEditor,
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


def _correction(op: Operation, x_removed: np.ndarray, weights: WeightEditor) -> np.ndarray:
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
                      maps: dict[SSAValue, np.ndarray], weights: WeightEditor, fold: str) -> None:
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
                            weights: WeightEditor) -> None:
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
        set_type(r, TensorType(nn.value_element_type(r), list(s)))


def _apply_correction(op: Operation, corr: np.ndarray, weights: WeightEditor, fold: str) -> None:
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
        insert_before(new, op)
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
