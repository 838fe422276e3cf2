"""Sparsity helpers shared by `prune`, the passes that must keep its result, and lowering.

- The `nn.sparsity` discardable attribute on a weight `nn.constant`
  (`#nn.sparsity<"2:4", axis = 1>`, `#nn.sparsity<unstructured, density = 0.25>`):
  `sparsity_of`, `set_sparsity`, `copy_sparsity`. A pass that rewrites a weight without
  moving its zeros (per-output-channel scaling in `fold-batchnorm`, quantization with a
  zero point of 0) should `copy_sparsity(old_const, new_const)`.
- Storage: `storage_bits(shape, elem_bits, attr)` — the size of a weight in the compressed
  format its attribute allows (N:M values + indices, or bitmap + non-zeros).
- Masks: `smallest_mask` (the k smallest magnitudes), `nm_mask` / `is_nm_sparse` (N:M
  along the reduction axis).
- Prunable weights: `weight_uses(func)` lists the (layer op, weight constant, reduction
  axis) triples of conv2d / linear / matmul.
- Channel dependency groups for structured pruning: `channel_groups(func)` (networkx
  connected components over the values whose axis 1 carries the same channels).

    >>> mask = nm_mask(w, 2, 4, axis=1)          # keep the 2 largest of every 4 input channels
    >>> is_nm_sparse(w * mask, 2, 4, axis=1)
    True
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import NameLoc
from xdsl.ir import Operation, SSAValue

from irflow.diagnostics import describe, location_string
from irflow.dialects import nn
from irflow.dialects.nn import defining_constant

SPARSITY_ATTR = "nn.sparsity"


# --------------------------------------------------------------------------------------
# The attribute


def sparsity_of(op: Operation) -> nn.SparsityAttr | None:
    """The `nn.sparsity` attribute of a (weight constant) op, if any."""
    attr = op.attributes.get(SPARSITY_ATTR)
    return attr if isinstance(attr, nn.SparsityAttr) else None


def set_sparsity(op: Operation, attr: nn.SparsityAttr | None) -> None:
    if attr is None:
        op.attributes.pop(SPARSITY_ATTR, None)
    else:
        op.attributes[SPARSITY_ATTR] = attr


def copy_sparsity(src: Operation, dst: Operation) -> None:
    """Carry `src`'s sparsity attribute over to `dst` (a rewritten copy of the weight)."""
    attr = sparsity_of(src)
    if attr is not None:
        dst.attributes[SPARSITY_ATTR] = attr


def unstructured_attr(array: np.ndarray) -> nn.SparsityAttr:
    """`#nn.sparsity<unstructured, density = d>` with d the measured non-zero fraction."""
    return nn.SparsityAttr.unstructured(float(np.count_nonzero(array)) / max(array.size, 1))


def storage_bits(shape: Sequence[int], elem_bits: int, attr: nn.SparsityAttr | None,
                 unstructured_format: str = "bitmap") -> int:
    """Bits a weight of `shape` takes in the compressed format its sparsity allows.

    - dense (no attribute): size · elem_bits;
    - `"N:M"`: per run of M along the axis, N values plus N position indices of
      ceil(log2 M) bits (2:4: 2 values + 2 × 2 bits per 4 weights);
    - unstructured, `unstructured_format="bitmap"`: a bitmap (1 bit per element) plus
      the non-zero values (nnz = round(density · size) of them);
      `"csr"` (rows = shape[0], cols = the rest): nnz values + nnz column indices of
      ceil(log2 cols) bits + (rows + 1) 32-bit row pointers; `"dense"`: dense.

    For lowering and the simulator: bytes = ceil(bits / 8), per tensor.
    """
    size = math.prod(shape)
    if attr is None:
        return size * elem_bits
    if attr.is_nm:
        n, m = attr.n_m
        runs = size // m
        return runs * n * (elem_bits + max(1, math.ceil(math.log2(m))))
    nnz = round(attr.density.value.data * size)
    if unstructured_format == "dense":
        return size * elem_bits
    if unstructured_format == "csr":
        rows = shape[0] if len(shape) else 1
        cols = max(1, size // max(rows, 1))
        return nnz * (elem_bits + max(1, math.ceil(math.log2(cols)))) + (rows + 1) * 32
    return size + nnz * elem_bits


# --------------------------------------------------------------------------------------
# Masks


def smallest_mask(magnitudes: np.ndarray, k: int) -> np.ndarray:
    """Boolean keep-mask that drops exactly the `k` smallest entries (ties broken by position)."""
    flat = magnitudes.reshape(-1)
    k = int(min(max(k, 0), flat.size))
    if k == 0:
        return np.ones(magnitudes.shape, dtype=bool)
    threshold = np.partition(flat, k - 1)[k - 1]
    drop = flat < threshold
    ties = np.flatnonzero(flat == threshold)[: k - int(drop.sum())]  # lowest positions first
    drop[ties] = True
    return ~drop.reshape(magnitudes.shape)


def _runs(w: np.ndarray, m: int, axis: int, stride: int) -> np.ndarray:
    """A view of `w` with the runs of `m` last: axis index (g·m + j)·stride + r -> [..., j]."""
    moved = np.moveaxis(w, axis, -1)
    length = moved.shape[-1]
    view = moved.reshape(moved.shape[:-1] + (length // (m * stride), m, stride))
    return np.swapaxes(view, -1, -2)  # (..., groups, stride, m)


def _check_runs(shape: Sequence[int], m: int, axis: int, stride: int) -> None:
    if shape[axis] % (m * stride):
        raise ValueError(f"axis {axis} of shape {list(shape)} is not a multiple of "
                         f"{m} × stride {stride}")


def nm_mask(w: np.ndarray, n: int, m: int, axis: int, stride: int = 1) -> np.ndarray:
    """Keep-mask with the `n` largest |w| of every run of `m` along `axis`.

    A run is `m` consecutive elements, or `m` elements `stride` apart (see
    `nn.SparsityAttr`). `w.shape[axis]` must be a multiple of `m · stride`. Ties keep the
    lower index.
    """
    _check_runs(w.shape, m, axis, stride)
    runs = np.abs(_runs(w, m, axis, stride))
    # stable sort of -|w|: the n first positions are the n largest, lower index on ties
    order = np.argsort(-runs, axis=-1, kind="stable")
    keep = np.zeros(runs.shape, dtype=bool)
    np.put_along_axis(keep, order[..., :n], True, axis=-1)
    moved_shape = np.moveaxis(w, axis, -1).shape
    keep = np.swapaxes(keep, -1, -2).reshape(moved_shape)
    return np.moveaxis(keep, -1, axis)


def is_nm_sparse(w: np.ndarray, n: int, m: int, axis: int, stride: int = 1) -> bool:
    """True if every run of `m` along `axis` (elements `stride` apart) has <= `n` non-zeros."""
    if w.ndim == 0 or w.shape[axis] % (m * stride):
        return False
    return bool((np.count_nonzero(_runs(w, m, axis, stride), axis=-1) <= n).all())


def attr_holds(w: np.ndarray, attr: nn.SparsityAttr) -> bool:
    """Does `w` satisfy its N:M attribute? (Always true for `unstructured`.)"""
    if not attr.is_nm:
        return True
    n, m = attr.n_m
    return is_nm_sparse(w, n, m, attr.axis.value.data, attr.stride.value.data)


# --------------------------------------------------------------------------------------
# Prunable weights


@dataclass(frozen=True)
class WeightUse:
    """A layer's weight operand that a constant defines."""

    op: Operation            # nn.conv2d / nn.linear / nn.matmul
    index: int               # operand index of the weight
    const: nn.ConstantOp
    axis: int                # the reduction axis (input channels / columns / rhs rows)

    @property
    def key(self) -> str:
        v = self.const.value
        return v.key if isinstance(v, nn.WeightAttr) else f"<inline {self.op.name}>"

    def names(self) -> list[str]:
        """Names `exclude` patterns match (see `layer_names`)."""
        names = layer_names(self.op, self.const)
        return names if names else [self.key]


def layer_names(op: Operation, const: nn.ConstantOp | None) -> list[str]:
    """Names `exclude` patterns match: the weight's store key, then the locations of the
    layer and its weight (`model.irf:3:5`; an ONNX node name alone and with its file)."""
    out: list[str] = []
    if const is not None and isinstance(const.value, nn.WeightAttr):
        out.append(const.value.key)
    for o in (op, const):
        if o is None:
            continue
        if isinstance(o.location, NameLoc):
            out.append(o.location.desc.data)
        loc = location_string(o.location)
        if loc:
            out.append(loc)
    return list(dict.fromkeys(out))


def matches_any(names: Iterable[str], patterns: Sequence[str]) -> str | None:
    """The first pattern (fnmatch) that matches one of `names`, or None."""
    names = list(names)
    for p in patterns:
        if any(fnmatch.fnmatchcase(n, p) for n in names):
            return p
    return None


def is_float_constant(const: nn.ConstantOp) -> bool:
    from xdsl.dialects.builtin import Float16Type, Float32Type, Float64Type, TensorType

    ty = const.output.type
    return isinstance(ty, TensorType) and isinstance(
        ty.element_type, Float16Type | Float32Type | Float64Type)


def weight_uses(fn: func.FuncOp) -> list[WeightUse]:
    """The float constant weights of conv2d, linear and matmul (constant rhs), in order."""
    uses: list[WeightUse] = []
    for op in fn.body.walk():
        if isinstance(op, nn.Conv2dOp | nn.LinearOp):
            idx, axis = 1, 1
        elif isinstance(op, nn.MatmulOp) and len(nn.shape_of(op.rhs)) >= 2:
            idx, axis = 1, len(nn.shape_of(op.rhs)) - 2
        else:
            continue
        const = defining_constant(op.operands[idx])
        if const is not None and is_float_constant(const):
            uses.append(WeightUse(op, idx, const, axis))
    return uses


def constant_elements(fn: func.FuncOp) -> int:
    """Elements of all constants `fn` uses (each weight-store entry counted once)."""
    seen: dict[object, int] = {}
    for op in fn.body.walk():
        if isinstance(op, nn.ConstantOp):
            key = op.value.key if isinstance(op.value, nn.WeightAttr) else id(op)
            seen[key] = math.prod(nn.shape_of(op.output))
    return sum(seen.values())


def quantized_layers(fn: func.FuncOp) -> list[Operation]:
    """conv2d / linear / matmul ops whose constant weight is not float (already quantized)."""
    out: list[Operation] = []
    for op in fn.body.walk():
        if isinstance(op, nn.Conv2dOp | nn.LinearOp | nn.MatmulOp):
            const = defining_constant(op.operands[1])
            if const is not None and not is_float_constant(const):
                out.append(op)
    return out


# --------------------------------------------------------------------------------------
# Channel dependency groups


# Ops whose output channel c depends only on input channel c (besides per-channel
# constant parameters): pruning a channel of the input prunes it from the output.
CHANNEL_PRESERVING = (
    nn.UnaryOp, nn.BatchNormOp, nn.MaxPoolOp, nn.AvgPoolOp, nn.GlobalAvgPoolOp,
)


def is_depthwise(op: Operation) -> bool:
    """A conv whose output channel c reads only input channel c (groups = C = F)."""
    if not isinstance(op, nn.Conv2dOp):
        return False
    f, cg = nn.shape_of(op.weight)[:2]
    return cg == 1 and op.groups.value.data == f == nn.shape_of(op.input)[1] and f > 1


def _float_constants(op: Operation, first: int) -> bool:
    """Operands `first`.. (weights, bias, normalization parameters) are float constants."""
    consts = [defining_constant(v) for v in op.operands[first:]]
    return all(c is not None and is_float_constant(c) for c in consts)


def _contraction(op: Operation) -> bool:
    """conv2d (groups = 1), rank-2 linear, or 2-D matmul with float constant weights."""
    if isinstance(op, nn.Conv2dOp):
        return op.groups.value.data == 1 and _float_constants(op, 1)
    if isinstance(op, nn.LinearOp):
        return len(nn.shape_of(op.input)) == 2 and _float_constants(op, 1)
    if isinstance(op, nn.MatmulOp):
        return (len(nn.shape_of(op.lhs)) == 2 and len(nn.shape_of(op.rhs)) == 2
                and _float_constants(op, 1))
    return False


def is_channel_producer(op: Operation) -> bool:
    """conv2d (groups = 1) or rank-2 linear with float constant weight (and bias): its
    output channels are its filters."""
    return isinstance(op, nn.Conv2dOp | nn.LinearOp) and _contraction(op)


def is_channel_consumer(op: Operation, operand: int) -> bool:
    """Reduces over the channels of its data operand with float constant weights."""
    return operand == 0 and _contraction(op)


def _why_opaque(op: Operation) -> str:
    """Why a channel group cannot pass through or be reduced by `op`."""
    if isinstance(op, nn.Conv2dOp) and op.groups.value.data != 1 and not is_depthwise(op):
        return "is a grouped convolution (mixes channels within each group)"
    if isinstance(op, nn.Conv2dOp | nn.LinearOp | nn.MatmulOp | nn.BatchNormOp) and \
            not _float_constants(op, 1):
        return "has computed or quantized parameters (prune before quantize)"
    return "mixes channels"


def _per_channel(op: Operation) -> bool:
    """Output channel c reads only input channel c (and constant per-channel parameters)."""
    if isinstance(op, nn.BatchNormOp):
        return _float_constants(op, 1)
    if is_depthwise(op):
        return _float_constants(op, 1)
    return isinstance(op, CHANNEL_PRESERVING)


def flatten_block(op: Operation) -> int | None:
    """Elements per channel after a flatten-like op ([N, C, ...] -> [N, C·rest]), else None."""
    if not isinstance(op, nn.FlattenOp | nn.ReshapeOp):
        return None
    x, y = nn.shape_of(op.operands[0]), nn.shape_of(op.results[0])
    if len(x) < 2 or len(y) != 2 or x[0] != y[0] or y[1] != math.prod(x[1:]):
        return None
    if isinstance(op, nn.FlattenOp) and op.axis.value.data not in (1, 1 - len(x)):
        return None
    return math.prod(x[2:])


def _concat_axis(op: nn.ConcatOp) -> int:
    return nn.normalize_axis("nn.concat", op.axis.value.data, len(nn.shape_of(op.output)))


def _has_channels(value: SSAValue) -> bool:
    try:
        return len(nn.shape_of(value)) >= 2
    except Exception:
        return False


def _op_desc(op: Operation) -> str:
    where = describe(op)
    return op.name if where == f"'{op.name}'" else f"{op.name} at {where}"


@dataclass(eq=False)
class ChannelGroup:
    """Values whose axis-1 channels must be pruned together.

    Every value in `values` holds `channels` channels on axis 1, channel c occupying
    `block[v]` consecutive elements (1 for NCHW, H·W after a flatten).
    """

    id: int
    values: list[SSAValue]
    block: dict[SSAValue, int]
    channels: int = 0
    producers: list[Operation] = field(default_factory=list)
    consumers: list[Operation] = field(default_factory=list)
    concat: Operation | None = None   # the concat defining this group's channels, if any
    blockers: list[str] = field(default_factory=list)

    @property
    def prunable(self) -> bool:
        return bool(self.producers) and not self.blockers and self.concat is None

    def describe(self) -> str:
        if self.producers:
            names = [_op_desc(p) for p in self.producers]
        else:
            names = [_op_desc(self.concat) if self.concat is not None else "a graph input"]
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        return f"channel group of {', '.join(names[:3])}{more} ({self.channels} channels)"


@dataclass
class ChannelAnalysis:
    groups: list[ChannelGroup]
    group_of: dict[SSAValue, ChannelGroup]
    concat_inputs: dict[Operation, list[ChannelGroup]]


def channel_groups(fn: func.FuncOp) -> ChannelAnalysis:
    """Partition the channel-carrying values of `fn` into dependency groups.

    Two values share a group when an op ties their channels one to one: elementwise
    and per-channel ops, pooling, depthwise convs, residual adds, flatten (with a block
    size). A conv/linear output starts a group (its filters are the channels); a concat
    on axis 1 defines its output group from its inputs' groups at offsets. Anything that
    mixes channels or needs them all (a reshape, transpose, the function's return, a
    graph input) blocks the group, with the reason recorded; blocking a concat's output
    blocks the groups that feed it.
    """
    graph = nx.Graph()
    block: dict[SSAValue, int] = {}
    reasons: dict[SSAValue, list[str]] = {}

    def node(v: SSAValue, b: int = 1) -> None:
        graph.add_node(v)
        block.setdefault(v, b)

    def block_value(v: SSAValue, why: str) -> None:
        if _has_channels(v):
            node(v)
            reasons.setdefault(v, []).append(why)

    def tie(x: SSAValue, y: SSAValue) -> None:
        """y's channels are x's, with the same layout."""
        node(x)
        graph.add_node(y)
        block[y] = block[x]
        graph.add_edge(x, y)

    body = fn.body.blocks[0]
    for arg in body.args:
        block_value(arg, "its channels come from a graph input")
    for op in body.ops:
        if isinstance(op, nn.ConstantOp):
            continue
        if isinstance(op, func.ReturnOp):
            for v in op.operands:
                block_value(v, "it is a graph output")
            continue
        results = [r for r in op.results if _has_channels(r)]
        for r in results:
            node(r)
        if _per_channel(op):
            tie(op.operands[0], op.results[0])
            continue
        if isinstance(op, nn.BinaryOp):
            out = op.results[0]
            oshape = nn.shape_of(out)
            for v in op.operands:
                s = nn.shape_of(v)
                if len(oshape) < 2:
                    break
                if defining_constant(v) is not None:
                    continue  # a per-channel or broadcast constant: sliced with the channels
                aligned = (1,) * (len(oshape) - len(s)) + s
                if aligned[1] == oshape[1] and len(s) == len(oshape):
                    tie(v, out)
                else:
                    block_value(out, f"{_op_desc(op)} broadcasts a computed value across "
                                     "its channels")
            continue
        fb = flatten_block(op)
        if fb is not None:
            x = op.operands[0]
            node(x)
            block[op.results[0]] = block[x] * fb
            graph.add_edge(x, op.results[0])
            continue
        if isinstance(op, nn.ConcatOp) and len(results) == 1 and _concat_axis(op) == 1:
            continue  # composite: resolved per group below
        if isinstance(op, nn.SoftmaxOp):
            rank = len(nn.shape_of(op.input))
            if nn.normalize_axis("nn.softmax", op.axis.value.data, rank) != 1:
                tie(op.operands[0], op.results[0])
                continue
        # producers/consumers: no edge across them
        for i, v in enumerate(op.operands):
            if not _has_channels(v) or defining_constant(v) is not None:
                continue
            node(v)
            if not is_channel_consumer(op, i):
                block_value(v, f"{_op_desc(op)} {_why_opaque(op)}")
        if not is_channel_producer(op):
            for r in results:
                block_value(r, f"its channels come from {_op_desc(op)}")

    groups: list[ChannelGroup] = []
    group_of: dict[SSAValue, ChannelGroup] = {}
    order = {v: i for i, v in enumerate(graph.nodes)}
    for comp in nx.connected_components(graph):
        values = sorted(comp, key=order.__getitem__)
        g = ChannelGroup(len(groups), values, {v: block[v] for v in values})
        groups.append(g)
        for v in values:
            group_of[v] = g

    concat_inputs: dict[Operation, list[ChannelGroup]] = {}
    for g in groups:
        counts = {nn.shape_of(v)[1] // g.block[v] for v in g.values}
        g.channels = max(counts)
        if len(counts) > 1 or any(nn.shape_of(v)[1] % g.block[v] for v in g.values):
            g.blockers.append("its values disagree on the channel count")
        for v in g.values:
            g.blockers.extend(r for r in reasons.get(v, []) if r not in g.blockers)
            owner = v.owner
            if isinstance(owner, Operation) and is_channel_producer(owner):
                g.producers.append(owner)
            elif isinstance(owner, nn.ConcatOp):
                if g.concat is not None:
                    g.blockers.append("it joins two concats")
                g.concat = owner
                ins = [group_of[x] for x in owner.operands]
                concat_inputs[owner] = ins
                if any(x.block[y] != 1 for x, y in zip(ins, owner.operands)):
                    g.blockers.append(f"{_op_desc(owner)} concatenates flattened values")
            for use in v.uses:
                if is_channel_consumer(use.operation, use.index) and \
                        use.operation not in g.consumers:
                    g.consumers.append(use.operation)
        if g.concat is not None and g.producers:
            g.blockers.append(f"its channels come from both {_op_desc(g.concat)} and "
                              f"{_op_desc(g.producers[0])}")

    analysis = ChannelAnalysis(groups, group_of, concat_inputs)
    _propagate_concat_blockers(analysis)
    return analysis


def _propagate_concat_blockers(analysis: ChannelAnalysis) -> None:
    """A blocked concat output keeps its inputs' channels too: block the groups feeding
    it (a fixpoint over nested concats)."""
    changed = True
    while changed:
        changed = False
        for cat, ins in analysis.concat_inputs.items():
            out = analysis.group_of[cat.results[0]]
            if not out.blockers:
                continue
            feeds = f"it feeds {_op_desc(cat)}"
            for g in ins:
                if not any(b.startswith(feeds) for b in g.blockers):
                    g.blockers.append(f"{feeds}, whose output is blocked ({out.blockers[0]})")
                    changed = True
