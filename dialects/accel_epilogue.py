"""A layer's epilogue: point-wise ops applied in its output path (`fuse-epilogue`).

An `accel.layer` on the PE array may carry `epilogue [...]`: the point-wise ops that
followed it in the program (bias or residual add, activation, batchnorm in inference
form, the `quant` casts), applied by the vector unit to each finished output tile
before it is stored, so the intermediate tensors never reach memory. A layer on the
vector unit (layernorm, softmax, batchnorm, a point-wise op or cast) may carry one too:
the unit chains the ops on the tile in its registers (`VECTOR_PRODUCERS`). One
dictionary per op, in order:

    %y = accel.layer "l0.ff1.mm" "nn.matmul"(%x, %w, %b) at 81920 on "pe"
           tiles <b = 1, m = 128, n = 1200 step 400, k = 312> params {}
           epilogue [{kind = "quant.dcast", label = "dcast_5", operands = array<i64: -1>,
                      in = tensor<1x128x1200x!q1>, out = tensor<1x128x1200xf32>},
                     {kind = "nn.add", label = "l0.ff1", operands = array<i64: -1, 0>,
                      in = tensor<1x128x1200xf32>, out = tensor<1x128x1200xf32>},
                     {kind = "nn.gelu", label = "l0.gelu", operands = array<i64: -1>, ...}]
           : (tensor<1x128x312x!q0>, tensor<312x1200x!qw>, tensor<1200xf32>)
             -> tensor<1x128x1200xf32>

`operands` lists the op's operands: -1 is the value flowing down the chain (the layer's
result, then each op's), `i >= 0` the i-th *extra* operand — the layer's `inputs` end
with the extras (here `%b`), after the operands of its own computation (`core_inputs`).
`in`/`out` are the chain value's type before and after the op (the layer's own result
type is the first `in`; the last `out` is the layer's result type); `params` (optional)
the op's properties. Extra operands broadcast to the result (numpy rules; batchnorm's
per-channel vectors on axis 1) and must not grow it.

The last entry may be a *layout* stage, `kind = "nn.transpose"` (`LAYOUT`): the output
path stores each finished tile through the permutation `params.perm`, so the layer's
result is the transposed tensor and no transpose layer follows it. Its `in` is the
chain value's type; `params.shape` (optional) the shape the transpose saw it as (the
`accel.view` that stood before it: the same element count); its `out` that shape
permuted, the layer's result:

    %q = accel.layer "l0.q.mm" "nn.matmul"(%x, %w, %b) at 4096 on "pe" tiles <...>
           params {} epilogue [
             {kind = "quant.dcast", ...}, {kind = "nn.add", ...},
             {kind = "quant.qcast", label = "qcast_0", operands = array<i64: -1>,
              in = tensor<1x128x312xf32>, out = tensor<1x128x312x!q>},
             {kind = "nn.transpose", label = "l0.q.t", operands = array<i64: -1>,
              in = tensor<1x128x312x!q>, out = tensor<1x12x128x26x!q>,
              params = {perm = array<i64: 0, 2, 1, 3>, shape = array<i64: 1, 128, 12, 26>}}]
           : (...) -> tensor<1x12x128x26x!q>

Every entry's `in` (and every other entry's `out`) has the shape of the layer's own
result; a per-axis quantized type cannot go through a layout stage.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    DictionaryAttr,
    IntegerAttr,
    StringAttr,
    TensorType,
    i64,
)
from xdsl.ir import Attribute, TypeAttribute
from xdsl.utils.exceptions import VerifyException

from irflow.dialects import accel, nn

PE_PRODUCERS = frozenset({"nn.conv2d", "nn.matmul", "nn.linear"})
"""PE-array kinds whose output path can carry an epilogue (pipelined with the array)."""
BATCHNORM = "nn.batchnorm"
ROWWISE = frozenset({"nn.softmax", "nn.layernorm"})
"""Row-wise kinds an epilogue can apply when every tile of the layer's result holds the
normalized axes whole (`check_rows`): softmax over its axis, layernorm from its axis on."""
KINDS = frozenset(accel.ELEMENTWISE_VECTOR | accel.QUANT_CASTS | {BATCHNORM} | ROWWISE)
"""Kinds an epilogue can apply: point-wise ones, and the `ROWWISE` ones on whole rows."""
VECTOR_PRODUCERS = KINDS | {"nn.layernorm", "nn.softmax"}
"""Vector-unit kinds whose output path can carry an epilogue: each does one element
operation per output element, so the chain is the same unit's work on the same tile
(docs/simulator.md §2.4)."""
PRODUCERS = PE_PRODUCERS | VECTOR_PRODUCERS
"""Kinds whose output path can carry an epilogue."""
LAYOUT = "nn.transpose"
"""The layout stage's kind: the output path stores through a permutation (module doc)."""
CHAIN = -1
"""In `operands`: the value flowing down the chain."""
FIRST = ROWWISE | {BATCHNORM}
"""Kinds whose chain value must be their first operand (the others are parameters)."""


@dataclass(frozen=True)
class Stage:
    """One epilogue op: its kind, the label of the layer it was, its operands (CHAIN or
    an extra operand's index), the chain value's type before and after, its params."""

    kind: str
    label: str
    operands: tuple[int, ...]
    in_type: Attribute
    out_type: Attribute
    params: Mapping[str, Attribute] = field(default_factory=dict)
    side: int = -1
    """>= 0: the op's result is side output `side` (an `accel.side`), not the chain's."""

    def attr(self) -> DictionaryAttr:
        d: dict[str, Attribute] = {
            "kind": StringAttr(self.kind), "label": StringAttr(self.label),
            "operands": DenseArrayBase.from_list(i64, list(self.operands)),
            "in": self.in_type, "out": self.out_type}
        if self.params:
            d["params"] = DictionaryAttr(dict(self.params))
        if self.side >= 0:
            d["side"] = IntegerAttr(self.side, i64)
        return DictionaryAttr(d)


def make_attr(stages: Sequence[Stage]) -> ArrayAttr:
    return ArrayAttr([s.attr() for s in stages])


def stages(layer: accel.LayerOp) -> list[Stage]:
    """The layer's epilogue ops ([] without one); raises `VerifyException` if malformed."""
    attr = layer.epilogue
    if attr is None:
        return []
    out = []
    for i, entry in enumerate(attr.data):
        d = entry.data if isinstance(entry, DictionaryAttr) else None
        need = ("kind", "label", "operands", "in", "out")
        if d is None or any(k not in d for k in need):
            raise VerifyException(
                f"accel.layer epilogue entry {i} expects a dictionary with keys "
                f"{', '.join(need)} (and optional params), got {entry}")
        kind, label, ops, params = d["kind"], d["label"], d["operands"], d.get("params")
        side = d.get("side")
        if not (isinstance(kind, StringAttr) and isinstance(label, StringAttr)
                and isinstance(ops, DenseArrayBase) and isinstance(d["in"], TypeAttribute)
                and isinstance(d["out"], TypeAttribute)
                and (params is None or isinstance(params, DictionaryAttr))
                and (side is None or isinstance(side, IntegerAttr))):
            raise VerifyException(
                f"accel.layer epilogue entry {i} expects kind and label strings, operands "
                f"array<i64>, in and out types, a params dictionary and an integer side, "
                f"got {entry}")
        out.append(Stage(kind.data, label.data, tuple(int(v) for v in ops.get_values()),
                         d["in"], d["out"], dict(params.data) if params else {},
                         int(side.value.data) if side is not None else -1))
    return out


def extra_count(layer: accel.LayerOp) -> int:
    """How many of the layer's `inputs` (the last ones) are epilogue operands."""
    if layer.epilogue is None:
        return 0
    try:
        idx = [i for s in stages(layer) for i in s.operands if i >= 0]
    except VerifyException:
        return 0  # the verifier reports it
    return max(idx) + 1 if idx else 0


def core_type(layer: accel.LayerOp) -> Attribute:
    """The type of the layer's own result (before its epilogue)."""
    st = stages(layer)
    return st[0].in_type if st else layer.output.type


def layout(layer: accel.LayerOp) -> Stage | None:
    """The layer's layout stage (its epilogue's last entry, `LAYOUT`), if any."""
    try:
        st = stages(layer)
    except VerifyException:
        return None  # the verifier reports it
    return st[-1] if st and st[-1].kind == LAYOUT else None


def layout_shape(stage: Stage) -> tuple[int, ...]:
    """The shape a layout stage permutes: `params.shape`, else its input's; raises
    `VerifyException` if it does not hold the input's elements."""
    ty = stage.in_type
    assert isinstance(ty, TensorType)
    attr = stage.params.get("shape")
    if attr is None:
        return tuple(ty.get_shape())
    shape = tuple(int(v) for v in attr.get_values()) if isinstance(attr, DenseArrayBase) else ()
    if not shape or min(shape) < 0 or math.prod(shape) != math.prod(ty.get_shape()):
        raise VerifyException(f"accel.layer epilogue layout '{stage.label}' expects params "
                              f"shape with the {math.prod(ty.get_shape())} elements of its "
                              f"input {ty}, got {attr}")
    return shape


def perm_of(stage: Stage) -> tuple[int, ...]:
    """A layout stage's permutation (`params.perm`); raises `VerifyException` if it is
    not a permutation of the axes of its `layout_shape`."""
    attr = stage.params.get("perm")
    rank = len(layout_shape(stage))
    perm = tuple(int(v) for v in attr.get_values()) if isinstance(attr, DenseArrayBase) else ()
    if sorted(perm) != list(range(rank)):
        raise VerifyException(f"accel.layer epilogue layout '{stage.label}' expects params "
                              f"perm, a permutation of {rank} axes, got "
                              f"{list(perm) if perm else attr}")
    return perm


def side_stages(layer: accel.LayerOp) -> list[Stage]:
    """The epilogue's side outputs (`Stage.side`), by index ([] when malformed)."""
    try:
        st = [s for s in stages(layer) if s.side >= 0]
    except VerifyException:
        return []
    return sorted(st, key=lambda s: s.side)


def compute_stages(layer: accel.LayerOp) -> list[Stage]:
    """The epilogue's element operations (its stages without the layout)."""
    st = stages(layer)
    return st[:-1] if st and st[-1].kind == LAYOUT else st


def core_shape(layer: accel.LayerOp) -> tuple[int, ...]:
    """The shape of the layer's own result, which every compute stage keeps."""
    ty = core_type(layer)
    return tuple(ty.get_shape()) if isinstance(ty, TensorType) else ()


@functools.cache
def arity(kind: str) -> int:
    """How many operands the epilogue op `kind` takes: its nn op's (a quant cast: one)."""
    op = next((o for o in nn.NN.operations if o.name == kind), None)
    return len(op.get_irdl_definition().operands) if op is not None else 1


def per_axis(ty: Attribute) -> bool:
    return getattr(getattr(ty, "element_type", None), "quantized_axis", None) is not None


def check_per_axis(kind: str, label: str, in_type: Attribute, out_type: Attribute,
                   result: accel.Access, shape: Sequence[int]) -> None:
    """A per-axis quantized type in an epilogue: only a `quant.qcast`'s result or a
    `quant.dcast`/`irq.requantize` input, on a result axis the tile view keeps whole
    or tiles (its scales are cut to each tile)."""
    for role, ty in (("input", in_type), ("result", out_type)):
        if not per_axis(ty):
            continue
        ok = (kind == "quant.qcast" and role == "result") or (
            kind in ("quant.dcast", "irq.requantize") and role == "input")
        if not ok:
            raise VerifyException(f"accel.layer epilogue op '{label}' ({kind}) expects a "
                                  f"per-tensor quantized {role}, got {ty}")
        axis = ty.element_type.quantized_axis % len(shape)  # type: ignore[attr-defined]
        extra_access(result, shape, tuple(shape[d] if d == axis else 1
                                          for d in range(len(shape))))


def check_rows(kind: str, label: str, params: Mapping[str, Attribute], result: accel.Access,
               shape: Sequence[int], nest: accel.NestAttr) -> None:
    """A `ROWWISE` epilogue op needs the axes it normalizes whole in every tile of the
    layer's result (`nest`: its loop nest); raises `VerifyException` otherwise."""
    if kind not in ROWWISE:
        return
    rank = len(shape)
    axis = nn.prop_int(params, "axis", -1) % max(rank, 1)
    axes = range(axis, rank) if kind == "nn.layernorm" else (axis,)
    rows = tuple(shape[d] if d in axes else 1 for d in range(rank))
    tail = tuple(shape[axis:])
    if tuple(result.view[len(result.view) - len(tail):]) != tail:
        raise VerifyException(f"accel.layer epilogue op '{label}' ({kind}) expects the "
                              f"axes it normalizes, {list(tail)}, to end the layer's tile "
                              f"view, got view {list(result.view)}")
    extent, tile = nest.extent, nest.tile
    acc = extra_access(result, shape, rows)
    cut = [a.dim for a in acc.axes if a.dim and tile.get(a.dim, 0) < extent.get(a.dim, 0)]
    if cut:
        raise VerifyException(f"accel.layer epilogue op '{label}' ({kind}) expects the axes "
                              f"it normalizes whole in every tile, but loop '{cut[0]}' "
                              f"steps by {tile[cut[0]]} of {extent[cut[0]]}")


def aligned_shape(kind: str, operand: Sequence[int], result: Sequence[int]) -> tuple[int, ...]:
    """An extra operand's shape aligned to the result's rank: numpy broadcasting (right
    aligned), or for batchnorm's per-channel vectors the channel axis 1."""
    operand, result = tuple(operand), tuple(result)
    if kind == BATCHNORM:
        if len(operand) != 1 or len(result) < 2 or operand[0] != result[1]:
            raise VerifyException(f"accel.layer epilogue batchnorm expects per-channel "
                                  f"vectors of {result[1] if len(result) > 1 else '?'} values, "
                                  f"got shape {list(operand)}")
        return (1, operand[0]) + (1,) * (len(result) - 2)
    if len(operand) > len(result) or any(
            o not in (1, r) for o, r in zip(reversed(operand), reversed(result))):
        raise VerifyException(f"accel.layer epilogue expects operands that broadcast to the "
                              f"result {list(result)} without growing it, got {list(operand)}")
    return (1,) * (len(result) - len(operand)) + operand


def _groups(shape: Sequence[int], view: Sequence[int]) -> list[tuple[list[int], list[int]]]:
    """Pair runs of `shape` axes with runs of `view` axes of equal product (a reshape)."""
    out: list[tuple[list[int], list[int]]] = []
    i = j = 0
    while i < len(shape) or j < len(view):
        si: list[int] = []
        vj: list[int] = []
        ps = pv = 1
        if i < len(shape):
            si.append(i)
            ps *= shape[i]
            i += 1
        if j < len(view):
            vj.append(j)
            pv *= view[j]
            j += 1
        while ps != pv and (i < len(shape) or j < len(view)):
            if (ps < pv and i < len(shape)) or j >= len(view):
                si.append(i)
                ps *= shape[i]
                i += 1
            else:
                vj.append(j)
                pv *= view[j]
                j += 1
        out.append((si, vj))
    return out


def extra_access(result: accel.Access, result_shape: Sequence[int],
                 aligned: Sequence[int]) -> accel.Access:
    """An extra operand (its shape `aligned` to the result's rank) seen through the
    result's view: whole where it has the result's extent, broadcast (index 0) where it
    has 1; raises `VerifyException` when a view axis mixes both (a partial broadcast
    across axes the view merges)."""
    sizes: list[int] = []
    axes: list[accel.Axis] = []
    for si, vj in _groups(result_shape, result.view):
        if all(aligned[k] == 1 for k in si):
            sizes += [1] * len(vj)
            axes += [accel.ZERO] * len(vj)
        elif all(aligned[k] == result_shape[k] for k in si):
            sizes += [result.view[j] for j in vj]
            axes += [result.axes[j] for j in vj]
        else:
            raise VerifyException(
                f"accel.layer epilogue operand of shape {list(aligned)} broadcasts across "
                f"axes the layer's tiles merge (result {list(result_shape)}, view "
                f"{list(result.view)})")
    return accel.Access(tuple(sizes), tuple(axes))


def verify(layer: accel.LayerOp) -> None:
    """The epilogue's own rules (the layer verifier calls this)."""
    st = stages(layer)
    if layer.kind.data not in PRODUCERS:
        raise VerifyException(f"accel.layer epilogue expects a conv2d/matmul/linear layer or "
                              f"a point-wise, layernorm or softmax layer, got "
                              f"'{layer.kind.data}'")
    if not st:
        raise VerifyException("accel.layer epilogue expects at least one op")
    n_extra = extra_count(layer)
    if n_extra > len(layer.inputs) - (2 if layer.kind.data in PE_PRODUCERS else 1):
        raise VerifyException(f"accel.layer epilogue uses {n_extra} extra operands, but the "
                              f"layer has {len(layer.inputs)} inputs")
    used: set[int] = set()
    sides = 0
    shape = core_shape(layer)
    extras = list(layer.inputs)[len(layer.inputs) - n_extra:]
    prev = st[0].in_type
    for s in st[:-1] if st[-1].kind == LAYOUT else st:
        if s.kind not in KINDS:
            raise VerifyException(f"accel.layer epilogue expects point-wise kinds (and a "
                                  f"layout '{LAYOUT}' last), got '{s.kind}'")
        if s.in_type != prev:
            raise VerifyException(f"accel.layer epilogue op '{s.label}' expects input type "
                                  f"{prev}, got {s.in_type}")
        if s.side >= 0:
            _verify_side(s, sides)
            sides += 1
        else:
            prev = s.out_type
        if len(s.operands) != arity(s.kind) or s.operands.count(CHAIN) != 1 or (
                s.kind in FIRST and s.operands[0] != CHAIN):
            raise VerifyException(
                f"accel.layer epilogue op '{s.label}' ({s.kind}) expects {arity(s.kind)} "
                f"operands, one of them the chain value (-1), got {list(s.operands)}")
        for t in (s.in_type, s.out_type):
            if not isinstance(t, TensorType) or tuple(t.get_shape()) != shape:
                raise VerifyException(f"accel.layer epilogue op '{s.label}' expects tensors "
                                      f"of the result's shape {list(shape)}, got {t}")
        for i in s.operands:
            if i == CHAIN:
                continue
            if not 0 <= i < n_extra:
                raise VerifyException(f"accel.layer epilogue op '{s.label}' names extra "
                                      f"operand {i}, the layer has {n_extra}")
            used.add(i)
            aligned_shape(s.kind, nn.shape_of(extras[i]), shape)
            if per_axis(extras[i].type):
                raise VerifyException(f"accel.layer epilogue op '{s.label}' expects per-tensor "
                                      f"quantized operands, got {extras[i].type}")
    if st[-1].kind == LAYOUT:
        prev = _verify_layout(st[-1], prev)
    if prev != layer.output.type:
        raise VerifyException(f"accel.layer epilogue ends with type {prev}, but the layer's "
                              f"result is {layer.output.type}")
    core = accel.space_of_op(layer)
    for s in st[:-1] if st[-1].kind == LAYOUT else st:
        check_per_axis(s.kind, s.label, s.in_type, s.out_type, core.result, shape)
        check_rows(s.kind, s.label, s.params, core.result, shape, layer.tiles)
    for i, v in enumerate(extras):
        kind = next(s.kind for s in st if i in s.operands) if i in used else ""
        if not kind:
            raise VerifyException(f"accel.layer epilogue does not use extra operand {i}")
        extra_access(core.result, shape, aligned_shape(kind, nn.shape_of(v), shape))



def _verify_side(s: Stage, index: int) -> None:
    """A side output entry, the `index`-th in the list: a one-operand point-wise op."""
    if s.side != index:
        raise VerifyException(f"accel.layer epilogue op '{s.label}' expects side output "
                              f"{index} (side outputs are numbered in order), got {s.side}")
    if arity(s.kind) != 1 or s.kind in ROWWISE:
        raise VerifyException(f"accel.layer epilogue side output '{s.label}' expects a "
                              f"one-operand point-wise op, got '{s.kind}'")


def _verify_layout(s: Stage, prev: Attribute) -> Attribute:
    """A layout stage after a chain value of type `prev`; returns its output type."""
    a, b = s.in_type, s.out_type
    if s.operands != (CHAIN,):
        raise VerifyException(f"accel.layer epilogue layout '{s.label}' expects operands "
                              f"[-1], got {list(s.operands)}")
    if a != prev or not isinstance(a, TensorType) or not isinstance(b, TensorType):
        raise VerifyException(f"accel.layer epilogue layout '{s.label}' expects input type "
                              f"{prev}, got {a}")
    if per_axis(a):
        raise VerifyException(f"accel.layer epilogue layout '{s.label}' expects a per-tensor "
                              f"quantized or float input, got {a}")
    perm, shape = perm_of(s), layout_shape(s)
    want = TensorType(a.element_type, [shape[p] for p in perm])
    if b != want:
        raise VerifyException(f"accel.layer epilogue layout '{s.label}' expects the permuted "
                              f"type {want} as its output, got {b}")
    return b
