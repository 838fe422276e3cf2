"""The iteration-space model of `accel.layer`: what a layer's loops mean.

What one tile step does is fixed by the layer's *iteration space* (`layer_space`):
the loop dimensions of the kind (conv2d: n, g, f, oh, ow, c; matmul: b, m, n, k;
elementwise: d0..d{r-1}; ...) and, for every operand and the result, how each axis
of the tensor (seen through a row-major `view` shape) follows the loops (`Axis`,
`Access`, `Space`). The kinds' families live in `accel_spatial`, `accel_vector` and
`accel_llm`; the ops that carry a space are in `irflow.dialects.accel`, which
re-exports every name here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from xdsl.dialects.builtin import IntegerAttr, i64
from xdsl.ir import Attribute
from xdsl.irdl import IRDLOperation
from xdsl.utils.exceptions import VerifyException

from irflow.dialects import nn

Shape = tuple[int, ...]
Range = tuple[int, int, int]  # start, stop, step of one tensor axis (stop exclusive)

# --------------------------------------------------------------------------------------
# Iteration spaces: what a layer's loops mean


@dataclass(frozen=True)
class Axis:
    """How one axis of an operand view follows the loop nest.

    kind: `dim` (the tile range of loop `dim`), `full` (the whole axis), `zero`
    (index 0: a broadcast axis), `window` (rows `o*stride - pad + [0, dil*(k-1)+1)`
    for output range `o` of loop `dim`; clipped to the tensor, the clipped part is
    padding), `affine` (index `offset + stride*i` for `i` in the range of `dim`), `table`
    (loop index `i` reads rows `table[i] = (start, stop)`; a tile reads from the least
    start to the greatest stop, clipped: resize, transposed-conv and pad-like maps that
    no stride describes; an entry `(size, 0)` reads nothing).
    """

    kind: str
    dim: str = ""
    stride: int = 1
    dilation: int = 1
    kernel: int = 1
    offset: int = 0
    table: tuple[tuple[int, int], ...] = ()


    def range(self, size: int, lo: int, hi: int) -> tuple[Range, tuple[int, int]]:
        """The (start, stop, step) range of this axis (of length `size`) for the loop
        range [lo, hi) of `dim`, and the (before, after) zero padding beyond the edge."""
        k = self.kind
        if k == "dim":
            return (lo, hi, 1), (0, 0)
        if k == "full":
            return (0, size, 1), (0, 0)
        if k == "zero":
            return (0, 1, 1), (0, 0)
        if k == "table":
            rows = self.table[lo:hi]
            a = min(max(min(r[0] for r in rows), 0), size)
            return (a, max(min(max(r[1] for r in rows), size), a), 1), (0, 0)
        if k == "window":
            start = lo * self.stride - self.offset
            stop = (hi - 1) * self.stride - self.offset + self.dilation * (self.kernel - 1) + 1
            a = min(max(start, 0), size)
            b = max(min(stop, size), a)
            # all padding (a window wholly outside the tensor) counts as `before`
            return (a, b, 1), ((a - start, stop - b) if b > a else (stop - start, 0))
        start = self.offset + self.stride * lo  # affine
        last = self.offset + self.stride * (hi - 1)
        return (start, last + (1 if self.stride > 0 else -1), self.stride), (0, 0)

    def span(self, size: int, tile: int) -> int:
        """A `table` axis: the most rows one tile of `tile` loop indices reads (tiles
        start at multiples of `tile`)."""
        n = len(self.table)
        spans = [self.range(size, lo, min(lo + tile, n))[0] for lo in range(0, n, tile)]
        return max(b - a for a, b, _ in spans)


FULL = Axis("full")
ZERO = Axis("zero")


def on(dim: str) -> Axis:
    return Axis("dim", dim)


@dataclass(frozen=True)
class Access:
    """An operand (or the result) seen as a row-major `view` with one `Axis` per axis."""

    view: Shape
    axes: tuple[Axis, ...]

    @property
    def dims(self) -> frozenset[str]:
        """The loops this access depends on (its slice changes when they step)."""
        return frozenset(a.dim for a in self.axes
                         if a.kind in ("dim", "window", "affine", "table"))

    def slice(self, tile: Mapping[str, tuple[int, int]]) -> tuple[list[Range], list[tuple[int, int]]]:
        """The tensor slice one tile step touches, and the zero padding around it.

        Returns per view axis a (start, stop, step) range clipped to the tensor and
        the (before, after) padding a window needs beyond the tensor's edge.
        """
        ranges: list[Range] = []
        pads: list[tuple[int, int]] = []
        for size, ax in zip(self.view, self.axes):
            lo, hi = tile[ax.dim] if ax.dim else (0, 0)
            r, p = ax.range(size, lo, hi)
            ranges.append(r)
            pads.append(p)
        return ranges, pads

    def tile_elems(self, tile_sizes: Mapping[str, int]) -> int:
        """Elements of a full (interior) tile's slice, padding excluded."""
        n = 1
        for size, ax in zip(self.view, self.axes):
            if ax.kind == "dim" or ax.kind == "affine":
                n *= tile_sizes[ax.dim]
            elif ax.kind == "full":
                n *= size
            elif ax.kind == "window":
                n *= min(size, (tile_sizes[ax.dim] - 1) * ax.stride
                         + ax.dilation * (ax.kernel - 1) + 1)
            elif ax.kind == "table":
                n *= ax.span(size, tile_sizes[ax.dim])
        return n


@dataclass(frozen=True)
class Space:
    """The iteration space of one layer: loops, operand and result accesses, work."""

    kind: str
    unit: str
    dims: tuple[str, ...]  # canonical (default) loop order, outermost first
    extents: dict[str, int]
    operands: tuple[Access, ...]
    result: Access
    reduction: frozenset[str] = frozenset()  # loops the result does not depend on (summed)
    macs_per_point: int = 0  # PE-array MACs per point of the loop nest
    ops_per_point: int = 0  # vector-unit element operations per point of the loop nest

    def tile_macs(self, sizes: Mapping[str, int]) -> int:
        return self.macs_per_point * math.prod(sizes[d] for d in self.dims)

    def tile_ops(self, sizes: Mapping[str, int]) -> int:
        return self.ops_per_point * math.prod(sizes[d] for d in self.dims)


def _loops(shape: Shape, skip: Sequence[int] = ()) -> dict[str, int]:
    return {f"d{i}": s for i, s in enumerate(shape) if i not in skip}


def _broadcast_access(shape: Shape, out: Shape, full: Sequence[int] = ()) -> Access:
    """An operand broadcast (right-aligned, numpy rules) to the loop space `out`."""
    view = (1,) * (len(out) - len(shape)) + tuple(shape)
    axes = []
    for i, (s, o) in enumerate(zip(view, out)):
        if i in full:
            axes.append(FULL if s != 1 else ZERO)
        else:
            axes.append(on(f"d{i}") if s == o and o != 1 else ZERO if s == 1 else on(f"d{i}"))
    return Access(view, tuple(axes))


def _identity(shape: Shape, full: Sequence[int] = ()) -> Access:
    return Access(tuple(shape), tuple(FULL if i in full else on(f"d{i}")
                                      for i in range(len(shape))))


ELEMENTWISE_VECTOR = {
    "nn.relu", "nn.relu6", "nn.clip", "nn.sigmoid", "nn.tanh", "nn.gelu", "nn.silu",
    "nn.hardsigmoid", "nn.hardswish", "nn.erf", "nn.sqrt", "nn.exp", "nn.neg",
    "nn.add", "nn.sub", "nn.mul", "nn.div", "nn.pow",
}
"""nn ops computed point-wise on the vector unit (output element i reads input element i)."""

QUANT_CASTS = {"quant.qcast", "quant.dcast", "irq.requantize", "quant.scast"}
"""The `quant` casts: point-wise on the vector unit. A per-axis cast's quantized axis
is whole in every tile (its scales are indexed by position: params `axis`)."""

BLOCK_LINEAR = "irq.block_linear"
"""A linear layer on a group-wise quantized weight (`dialects/quant_block.py`), on the PE array."""
QUANT_LAYERS = QUANT_CASTS | {BLOCK_LINEAR}
"""The quant ops that become `accel.layer`s."""

COPY_KINDS = {"nn.transpose", "nn.slice", "nn.concat", "nn.gather"}
"""nn ops that only move data: run by the DMA engine as copies."""

VIEW_KINDS = {"nn.reshape", "nn.flatten"}
"""nn ops that are always address views of a dense row-major buffer (no data moves)."""


def is_view(op: IRDLOperation) -> bool:
    """True for an nn op whose result is its operand's bytes seen with another shape:
    reshape/flatten, and a transpose that keeps the order of the non-unit axes (it only
    moves size-1 axes, so the row-major layout is unchanged)."""
    if op.name in VIEW_KINDS:
        return True
    if op.name == "nn.transpose":
        shape = nn.shape_of(op.operands[0])
        moved = [p for p in nn.prop_ints(op, "perm", ()) if shape[p] != 1]
        return moved == sorted(moved)
    return False


def layer_space(kind: str, operand_shapes: Sequence[Shape], result_shape: Shape,
                params: Mapping[str, Attribute]) -> Space:
    """The iteration space of an nn computation `kind` on operands of these shapes.

    Raises `VerifyException` for a kind that has no tiled form.
    """
    shapes = [tuple(s) for s in operand_shapes]
    out = tuple(result_shape)
    from irflow.dialects import accel_spatial  # n-D spatial ops and data movement

    if kind in accel_spatial.KINDS:
        return accel_spatial.spatial_space(kind, shapes, out, params)
    if kind == "nn.conv2d":
        (n, c, h, w), (f, cg, kh, kw) = shapes[0], shapes[1]
        (sh, sw), (pt, pl, _, _), (dh, dw), groups = nn.conv2d_params(params)
        fg = f // groups
        oh, ow = out[2], out[3]
        x = Access((n, groups, cg, h, w), (on("n"), on("g"), on("c"),
                                          Axis("window", "oh", sh, dh, kh, pt),
                                          Axis("window", "ow", sw, dw, kw, pl)))
        wt = Access((groups, fg, cg, kh, kw), (on("g"), on("f"), on("c"), FULL, FULL))
        accesses = [x, wt]
        if len(shapes) > 2:
            accesses.append(Access((groups, fg), (on("g"), on("f"))))
        y = Access((n, groups, fg, oh, ow), (on("n"), on("g"), on("f"), on("oh"), on("ow")))
        ext = {"n": n, "g": groups, "f": fg, "oh": oh, "ow": ow, "c": cg}
        return Space(kind, "pe", tuple(ext), ext, tuple(accesses), y, frozenset({"c"}),
                     macs_per_point=kh * kw)
    if kind in ("nn.matmul", "nn.linear"):
        return _matmul_space(kind, shapes, out)
    if kind in ELEMENTWISE_VECTOR:
        ext = _loops(out)
        ops = tuple(_broadcast_access(s, out) for s in shapes)
        return Space(kind, "vector", tuple(ext), ext, ops, _identity(out), ops_per_point=1)
    if kind in QUANT_CASTS:
        axis = nn.prop_int(params, "axis", -1)
        full = [axis % len(out)] if axis >= 0 and out else []
        ext = _loops(out, full)
        return Space(kind, "vector", tuple(ext), ext, (_identity(shapes[0], full),),
                     _identity(out, full), ops_per_point=math.prod(out[a] for a in full))
    if kind == "nn.batchnorm":
        ext = _loops(out)
        chan = Access((1, out[1]) + (1,) * (len(out) - 2),
                      tuple(on("d1") if i == 1 else ZERO for i in range(len(out))))
        ops = (_identity(out),) + (chan,) * 4
        return Space(kind, "vector", tuple(ext), ext, ops, _identity(out), ops_per_point=1)
    if kind == "nn.layernorm":
        axis = nn.prop_int(params, "axis", -1) % len(out)
        norm = list(range(axis, len(out)))
        ext = _loops(out, norm)
        ops = (_identity(out, norm),) + tuple(
            _broadcast_access(s, out, norm) for s in shapes[1:])
        return Space(kind, "vector", tuple(ext), ext, ops, _identity(out, norm),
                     ops_per_point=math.prod(out[a] for a in norm))
    if kind == "nn.softmax":
        axis = nn.prop_int(params, "axis", -1) % len(out)
        ext = _loops(out, [axis])
        return Space(kind, "vector", tuple(ext), ext, (_identity(out, [axis]),),
                     _identity(out, [axis]), ops_per_point=out[axis])
    if kind == "nn.reduce_mean":
        x = shapes[0]
        axes = sorted(a % len(x) for a in nn.prop_ints(params, "axes", ()))
        keep_shape = tuple(1 if i in axes else d for i, d in enumerate(x))
        ext = _loops(x, axes)
        y = Access(keep_shape, tuple(ZERO if i in axes else on(f"d{i}") for i in range(len(x))))
        return Space(kind, "vector", tuple(ext), ext, (_identity(x, axes),), y,
                     ops_per_point=math.prod(x[a] for a in axes))
    if kind == "nn.global_avg_pool":
        x = shapes[0]
        spatial = list(range(2, len(x)))
        ext = _loops(x, spatial)
        y = Access(out, tuple(ZERO if i in spatial else on(f"d{i}") for i in range(len(x))))
        return Space(kind, "vector", tuple(ext), ext, (_identity(x, spatial),), y,
                     ops_per_point=math.prod(x[a] for a in spatial))
    if kind in ("nn.maxpool", "nn.avgpool"):
        n, c, h, w = shapes[0]
        (kh, kw), (sh, sw), (pt, pl, _, _), _, _ = nn.pool2d_params(params)
        ext = {"n": n, "c": c, "oh": out[2], "ow": out[3]}
        x = Access((n, c, h, w), (on("n"), on("c"), Axis("window", "oh", sh, 1, kh, pt),
                                  Axis("window", "ow", sw, 1, kw, pl)))
        y = Access(out, (on("n"), on("c"), on("oh"), on("ow")))
        return Space(kind, "vector", tuple(ext), ext, (x,), y, ops_per_point=kh * kw)
    if kind == "nn.transpose":
        perm = nn.prop_ints(params, "perm", ())
        ext = _loops(out)
        inv = {p: i for i, p in enumerate(perm)}
        x = Access(shapes[0], tuple(on(f"d{inv[j]}") for j in range(len(perm))))
        return Space(kind, "dma", tuple(ext), ext, (x,), _identity(out))
    if kind == "nn.slice":
        x = shapes[0]
        ext = _loops(out)
        axes = [on(f"d{i}") for i in range(len(x))]
        starts, ends = nn.prop_ints(params, "starts", ()), nn.prop_ints(params, "ends", ())
        steps = nn.prop_ints(params, "steps", (1,) * len(starts))
        for s, e, a, st in zip(starts, ends, nn.prop_ints(params, "axes", ()), steps):
            a %= len(x)
            start = range(*slice(s, e, st).indices(x[a])).start
            axes[a] = Axis("affine", f"d{a}", st, 1, 1, start)
        return Space(kind, "dma", tuple(ext), ext, (Access(x, tuple(axes)),), _identity(out))
    if kind == "nn.concat":
        axis = nn.prop_int(params, "axis", 0) % len(out)
        ext = _loops(out, [axis])
        ops = tuple(_identity(s, [axis]) for s in shapes)
        return Space(kind, "dma", tuple(ext), ext, ops, _identity(out, [axis]))
    if kind == "nn.gather":
        # Data-dependent addresses: one step; the executor reads the rows the indices name.
        ops = tuple(Access(s, tuple(FULL for _ in s)) for s in shapes)
        return Space(kind, "dma", (), {}, ops, Access(out, tuple(FULL for _ in out)))
    from irflow.dialects import accel_llm  # the decoder ops' spaces (imports this module)

    if kind == BLOCK_LINEAR:
        from irflow.dialects.quant_block import iteration_space

        group = shapes[1][1] // shapes[2][1]
        return iteration_space(shapes, out, params, group)  # type: ignore[return-value]

    if kind in accel_llm.KINDS:
        return accel_llm.llm_space(kind, shapes, out, params)
    from irflow.dialects import accel_vector  # math, logic, reductions, scans, topk

    if kind in accel_vector.KINDS:
        return accel_vector.vector_space(kind, shapes, out, params)
    raise VerifyException(f"accel.layer has no tiled form for kind '{kind}'")


def _matmul_space(kind: str, shapes: list[Shape], out: Shape) -> Space:
    a, b = shapes[0], shapes[1]
    if kind == "nn.linear":
        m, k = math.prod(a[:-1]), a[-1]
        nout = b[0]
        ext = {"b": 1, "m": m, "n": nout, "k": k}
        ops = [Access((1, m, k), (ZERO, on("m"), on("k"))),
               Access((nout, k), (on("n"), on("k")))]
        if len(shapes) > 2:
            ops.append(Access((nout,), (on("n"),)))
        y = Access((1, m, nout), (ZERO, on("m"), on("n")))
    else:
        a2 = (1,) + a if len(a) == 1 else a
        b2 = b + (1,) if len(b) == 1 else b
        batch = nn.broadcast_shapes("nn.matmul", a2[:-2], b2[:-2])
        nb = math.prod(batch)
        m, k, nout = a2[-2], a2[-1], b2[-1]

        def operand(bshape: Shape, rows: int, cols: int, r: str, c: str) -> Access:
            pb = math.prod(bshape)
            if pb == 1:
                return Access((1, rows, cols), (ZERO, on(r), on(c)))
            if (1,) * (len(batch) - len(bshape)) + tuple(bshape) != batch:
                raise VerifyException(
                    f"accel.layer supports nn.matmul batch broadcasting only of all batch "
                    f"dims at once, got batch {list(bshape)} against {list(batch)}")
            return Access((nb, rows, cols), (on("b"), on(r), on(c)))

        ext = {"b": nb, "m": m, "n": nout, "k": k}
        ops = [operand(a2[:-2], m, k, "m", "k"), operand(b2[:-2], k, nout, "k", "n")]
        y = Access((nb, m, nout), (on("b") if nb > 1 else ZERO, on("m"), on("n")))
    return Space(kind, "pe", tuple(ext), ext, tuple(ops), y, frozenset({"k"}), macs_per_point=1)


def quant_axis_param(*types: Attribute) -> dict[str, Attribute]:
    """`{"axis": a}` when one of the tensor types is per-axis quantized on axis `a`."""
    for ty in types:
        el = getattr(ty, "element_type", None)
        axis = getattr(el, "quantized_axis", None)
        if axis is not None:
            return {"axis": IntegerAttr(int(axis), i64)}
    return {}
