"""The `accel` dialect: the lowered program for the simulated streaming accelerator.

Every tensor lives in DRAM at an explicit byte address (row-major, dense). A layer
is one `accel.layer` op: the nn-level computation it performs (`kind` + `params`,
the nn op's name and properties), its operands, the address of its result, the
compute unit that runs it, and a *symbolic* loop nest over tiles (`#accel.nest`:
per loop the trip extent and the tile size, outermost loop first). Tiles are never
materialized as ops — the simulator expands the nest at run time (docs/accel.md;
xDSL 0.74 parses text at ~3.5k ops/s, too slow for one op per tile).

    %x = accel.input %arg0 at 4096 : tensor<1x64x56x56xf32>
    %w = accel.weight #nn.weight<"conv.weight"> at 0 : tensor<64x64x3x3xf32>
    %y = accel.layer "conv" "nn.conv2d"(%x, %w) at 806912 on "pe"
           tiles <n = 1, g = 1, f = 64 step 16, oh = 56 step 14, ow = 56, c = 64>
           params {pads = array<i64: 1, 1, 1, 1>}
           : (tensor<1x64x56x56xf32>, tensor<64x64x3x3xf32>) -> tensor<1x64x56x56xf32>
    %v = accel.view %y : (tensor<1x64x56x56xf32>) -> tensor<1x200704xf32>

What one tile step does is fixed by the layer's *iteration space* (`layer_space`):
the loop dimensions of the kind (conv2d: n, g, f, oh, ow, c; matmul: b, m, n, k;
elementwise: d0..d{r-1}; ...) and, for every operand and the result, how each axis
of the tensor (seen through a row-major `view` shape) follows the loops: a loop
index (`dim`), the whole axis (`full`), index 0 (`zero`, broadcasting), a sliding
window (`window`, conv/pool input with stride, dilation, kernel and padding) or an
affine map (`affine`, strided slices). A step loads the operand slices through the
cache into the stream buffers, computes the tile, and stores the result slice; the
tile pass, the lowering, the executor and the cost analysis all read this one
description.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from xdsl.dialects.builtin import (
    I64,
    ArrayAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    FixedBitwidthType,
    IntegerAttr,
    StringAttr,
    TensorType,
    i1,
    i64,
)
from xdsl.ir import Attribute, Dialect, ParametrizedAttribute, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    VarConstraint,
    base,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    param_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from irflow.dialects import nn

Shape = tuple[int, ...]
Range = tuple[int, int, int]  # start, stop, step of one tensor axis (stop exclusive)

UNITS = ("pe", "vector", "dma")


# --------------------------------------------------------------------------------------
# The loop nest attribute


@irdl_attr_definition
class NestAttr(ParametrizedAttribute):
    """A symbolic tile loop nest, outermost loop first: per loop its dimension name,
    trip extent and tile size (a size that does not divide leaves a remainder tile).

        #accel.nest<f = 64 step 16, oh = 56 step 14, ow = 56, c = 64>
    """

    name = "accel.nest"
    dims: ArrayAttr[StringAttr] = param_def()
    extents: DenseArrayBase = param_def()
    tiles: DenseArrayBase = param_def()

    def __init__(self, dims: Sequence[str], extents: Sequence[int], tiles: Sequence[int]):
        super().__init__(
            ArrayAttr([StringAttr(d) for d in dims]),
            DenseArrayBase.from_list(i64, [int(e) for e in extents]),
            DenseArrayBase.from_list(i64, [int(t) for t in tiles]),
        )

    @property
    def order(self) -> tuple[str, ...]:
        return tuple(d.data for d in self.dims.data)

    @property
    def extent(self) -> dict[str, int]:
        return dict(zip(self.order, (int(v) for v in self.extents.get_values())))

    @property
    def tile(self) -> dict[str, int]:
        return dict(zip(self.order, (int(v) for v in self.tiles.get_values())))

    def trips(self) -> dict[str, int]:
        """Tile steps per loop (ceil(extent / tile))."""
        t = self.tile
        return {d: -(-e // t[d]) for d, e in self.extent.items()}

    def n_steps(self) -> int:
        return math.prod(self.trips().values())

    def verify(self) -> None:
        names = self.order
        ext = list(self.extents.get_values())
        tiles = list(self.tiles.get_values())
        if not len(names) == len(ext) == len(tiles):
            raise VerifyException(
                f"accel.nest expects one extent and one tile per loop, got {len(names)} loops, "
                f"{len(ext)} extents and {len(tiles)} tiles"
            )
        if len(set(names)) != len(names):
            raise VerifyException(f"accel.nest expects distinct loop names, got {list(names)}")
        for d, e, t in zip(names, ext, tiles):
            if e < 1 or not 1 <= t <= e:
                raise VerifyException(
                    f"accel.nest expects 1 <= tile <= extent for loop '{d}', "
                    f"got tile {t} and extent {e}"
                )

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> tuple[Attribute, ...]:
        dims: list[str] = []
        ext: list[int] = []
        tiles: list[int] = []

        def loop() -> None:
            dims.append(parser.parse_identifier("loop name"))
            parser.parse_punctuation("=")
            e = parser.parse_integer(allow_boolean=False, allow_negative=False)
            t = e
            if parser.parse_optional_keyword("step"):
                t = parser.parse_integer(allow_boolean=False, allow_negative=False)
            ext.append(e)
            tiles.append(t)

        parser.parse_punctuation("<")
        if parser.parse_optional_punctuation(">") is None:  # `<>` is the one-step nest
            parser.parse_comma_separated_list(parser.Delimiter.NONE, loop)
            parser.parse_punctuation(">")
        return (
            ArrayAttr([StringAttr(d) for d in dims]),
            DenseArrayBase.from_list(i64, ext),
            DenseArrayBase.from_list(i64, tiles),
        )

    def print_parameters(self, printer: Printer) -> None:
        parts = []
        for d, e, t in zip(self.order, self.extents.get_values(), self.tiles.get_values()):
            parts.append(f"{d} = {e}" if t == e else f"{d} = {e} step {t}")
        printer.print_string("<" + ", ".join(parts) + ">")


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


def space_of_op(op: IRDLOperation) -> Space:
    """The iteration space of an nn op or `quant` cast (or of an `accel.layer`)."""
    if isinstance(op, LayerOp):
        kind, operands, result = op.kind.data, op.core_inputs, op.output
        params: Mapping[str, Attribute] = op.params.data
    else:
        kind, operands, result, params = op.name, list(op.operands), op.results[0], op.properties
    if kind in QUANT_CASTS:
        params = {**params, **quant_axis_param(operands[0].type, result.type)}
    return layer_space(kind, [nn.shape_of(o) for o in operands], nn.shape_of(result), params)


def quant_axis_param(*types: Attribute) -> dict[str, Attribute]:
    """`{"axis": a}` when one of the tensor types is per-axis quantized on axis `a`."""
    for ty in types:
        el = getattr(ty, "element_type", None)
        axis = getattr(el, "quantized_axis", None)
        if axis is not None:
            return {"axis": IntegerAttr(int(axis), i64)}
    return {}


# --------------------------------------------------------------------------------------
# Ops


Addr = IntegerAttr[I64]


def addr_attr(value: int) -> IntegerAttr:
    return IntegerAttr(int(value), i64)


@irdl_op_definition
class InputOp(IRDLOperation):
    """A function argument, written by the host into DRAM at `addr` before the run.

        %x = accel.input %arg0 at 4096 : tensor<1x3x32x32xf32>
    """

    name = "accel.input"
    T: ClassVar = VarConstraint("T", base(TensorType))
    source = operand_def(T)
    output = result_def(T)
    addr = prop_def(Addr)
    traits = traits_def(Pure())
    assembly_format = "$source `at` $addr attr-dict `:` type($output)"

    def __init__(self, source: SSAValue, addr: int):
        super().__init__(operands=[source], result_types=[source.type],
                         properties={"addr": addr_attr(addr)})

    def verify_(self) -> None:
        _verify_addr(self, self.addr)


@irdl_op_definition
class WeightOp(IRDLOperation):
    """A constant placed in the weight region of DRAM at `addr`.

        %w = accel.weight #nn.weight<"fc.weight"> at 0 : tensor<10x64xf32>
    """

    name = "accel.weight"
    value = prop_def(nn.WeightAttr | DenseIntOrFPElementsAttr)
    output = result_def(TensorType)
    addr = prop_def(Addr)
    traits = traits_def(Pure())
    assembly_format = "$value `at` $addr attr-dict `:` type($output)"

    def __init__(self, value: Attribute, addr: int, type: TensorType):
        super().__init__(result_types=[type], properties={"value": value, "addr": addr_attr(addr)})

    def verify_(self) -> None:
        _verify_addr(self, self.addr)
        if isinstance(self.value, DenseIntOrFPElementsAttr):
            got, want = nn.shape_of(self.value.type), nn.shape_of(self.output)
            if got != want:
                raise VerifyException(
                    f"accel.weight expects inline data of shape {list(want)}, got {list(got)}")
        bits = self.attributes.get(STORED_BITS_ATTR)
        fmt = self.attributes.get(FORMAT_ATTR)
        if (bits is None) != (fmt is None):
            raise VerifyException(f"accel.weight expects {STORED_BITS_ATTR} and {FORMAT_ATTR} "
                                  f"together (a compressed weight), got only one")
        if bits is not None and not (isinstance(bits, IntegerAttr) and bits.value.data > 0
                                     and isinstance(fmt, StringAttr)):
            raise VerifyException(f"accel.weight expects {STORED_BITS_ATTR} > 0 and a string "
                                  f"{FORMAT_ATTR}, got {bits} and {fmt}")


@irdl_op_definition
class ViewOp(IRDLOperation):
    """The same bytes seen with another shape (a reshape of a dense row-major buffer).

        %v = accel.view %y : (tensor<1x512x1x1xf32>) -> tensor<1x512xf32>
    """

    name = "accel.view"
    source = operand_def(TensorType)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$source attr-dict `:` functional-type($source, $output)"

    def __init__(self, source: SSAValue, type: TensorType):
        super().__init__(operands=[source], result_types=[type])

    def verify_(self) -> None:
        a, b = self.source.type, self.output.type
        assert isinstance(a, TensorType) and isinstance(b, TensorType)
        if a.element_type != b.element_type or math.prod(a.get_shape()) != math.prod(
                b.get_shape()):
            raise VerifyException(
                f"accel.view expects the same element type and element count, got {a} -> {b}")


@irdl_op_definition
class LayerOp(IRDLOperation):
    """One layer run tile by tile: the nn computation `kind` with properties `params`,
    its result placed at `addr`, on compute unit `unit` ("pe", "vector" or "dma"), over
    the loop nest `tiles`.

        %y = accel.layer "fc" "nn.linear"(%x, %w) at 8192 on "pe" tiles <b = 1, m = 1, n = 10, k = 64> params {} : (tensor<1x64xf32>, tensor<10x64xf32>) -> tensor<1x10xf32>
    """

    name = "accel.layer"
    label = prop_def(StringAttr)
    kind = prop_def(StringAttr)
    inputs = var_operand_def(TensorType)
    output = result_def(TensorType)
    addr = prop_def(Addr)
    unit = prop_def(StringAttr)
    tiles = prop_def(NestAttr)
    params = prop_def(DictionaryAttr)
    epilogue = opt_prop_def(ArrayAttr)  # point-wise ops fused into the output path
    # (`fuse-epilogue`, dialects/accel_epilogue.py); their extra operands end `inputs`
    traits = traits_def(Pure())
    assembly_format = (
        "$label $kind `(` $inputs `)` `at` $addr `on` $unit `tiles` $tiles `params` $params "
        "(`epilogue` $epilogue^)? attr-dict `:` functional-type($inputs, $output)"
    )

    def __init__(self, label: str, kind: str, inputs: Sequence[SSAValue], type: TensorType,
                 addr: int, unit: str, tiles: NestAttr, params: Mapping[str, Attribute],
                 notes: Sequence[str] = ()):
        super().__init__(
            operands=[list(inputs)], result_types=[type],
            properties={"label": StringAttr(label), "kind": StringAttr(kind),
                        "addr": addr_attr(addr), "unit": StringAttr(unit), "tiles": tiles,
                        "params": DictionaryAttr(dict(params))},
            attributes={"notes": ArrayAttr([StringAttr(n) for n in notes])} if notes else {},
        )

    @property
    def notes(self) -> list[str]:
        attr = self.attributes.get("notes")
        return [s.data for s in attr.data] if isinstance(attr, ArrayAttr) else []  # type: ignore[union-attr]

    @property
    def core_inputs(self) -> list[SSAValue]:
        """The operands of the layer's own computation (`inputs` without the epilogue's)."""
        from irflow.dialects import accel_epilogue

        return list(self.inputs)[: len(self.inputs) - accel_epilogue.extra_count(self)]

    def verify_(self) -> None:
        _verify_addr(self, self.addr)
        if self.epilogue is not None:
            from irflow.dialects import accel_epilogue

            accel_epilogue.verify(self)
        if self.unit.data not in UNITS:
            raise VerifyException(
                f"accel.layer expects unit in {list(UNITS)}, got '{self.unit.data}'")
        try:
            space = space_of_op(self)
        except VerifyException:
            raise
        except Exception as e:  # a malformed params dict reaches the shape arithmetic
            raise VerifyException(
                f"accel.layer '{self.label.data}' has params that do not fit kind "
                f"'{self.kind.data}': {type(e).__name__}: {e}") from None
        if space.unit != self.unit.data:
            raise VerifyException(
                f"accel.layer expects unit '{space.unit}' for {self.kind.data}, "
                f"got '{self.unit.data}'")
        nest = self.tiles
        if sorted(nest.order) != sorted(space.dims):
            raise VerifyException(
                f"accel.layer expects loops {list(space.dims)} for {self.kind.data}, "
                f"got {list(nest.order)}")
        for d, e in nest.extent.items():
            if e != space.extents[d]:
                raise VerifyException(
                    f"accel.layer expects extent {space.extents[d]} for loop '{d}', got {e}")


def _verify_addr(op: IRDLOperation, addr: IntegerAttr) -> None:
    if addr.value.data < 0:
        raise VerifyException(f"{op.name} expects a byte address >= 0, got {addr.value.data}")


def default_nest(space: Space) -> NestAttr:
    """The untiled nest (one step) in canonical order."""
    return NestAttr(space.dims, [space.extents[d] for d in space.dims],
                    [space.extents[d] for d in space.dims])


def address_of(value: SSAValue) -> int:
    """The DRAM byte address of an accel value (views resolve to their source)."""
    owner = value.owner
    while isinstance(owner, ViewOp):
        owner = owner.source.owner
    if isinstance(owner, InputOp | WeightOp | LayerOp):
        return owner.addr.value.data
    raise VerifyException(f"value {value} is not placed in DRAM (no accel producer)")


def element_bits(element_type: Attribute) -> int:
    """Bits one element takes in DRAM: a `!quant.uniform` type its storage width (int4:
    4, packed two per byte), a boolean (i1) 8, an integer or float type its width (fp32
    otherwise)."""
    storage = getattr(element_type, "storage", None)  # !quant.uniform<...>
    if isinstance(storage, FixedBitwidthType):
        return int(storage.bitwidth)
    if element_type == i1:  # a boolean takes a byte, as numpy and ONNX hold it
        return 8
    if isinstance(element_type, FixedBitwidthType):
        return int(element_type.bitwidth)
    return 32


def nbytes(type: Attribute) -> int:
    """Bytes of a dense tensor type: ceil(elements × element_bits / 8) (int4 packs two
    elements per byte, low nibble first: `intmath.pack_int4`)."""
    assert isinstance(type, TensorType)
    return -(-math.prod(type.get_shape()) * element_bits(type.element_type) // 8)


STORED_BITS_ATTR = "accel.stored_bits"
"""On a weight stored compressed (`plan-memory` decides, per the machine's sparsity
support): the exact bits it occupies in DRAM (`irflow.sparsity.storage_bits`)."""
FORMAT_ATTR = "accel.format"
"""On a weight stored compressed: its format, `"N:M"`, `"bitmap"` or `"csr"`."""


def stored_bits(op: IRDLOperation) -> int:
    """Bits the result of a placed op occupies in DRAM: a compressed weight's
    `accel.stored_bits`, else its dense size (`nbytes` in bits, int4 packed)."""
    attr = op.attributes.get(STORED_BITS_ATTR)
    if isinstance(attr, IntegerAttr):
        return int(attr.value.data)
    ty = op.results[0].type
    assert isinstance(ty, TensorType)
    return math.prod(ty.get_shape()) * element_bits(ty.element_type)


def stored_nbytes(op: IRDLOperation) -> int:
    """Bytes the result of a placed op occupies in DRAM (`stored_bits` rounded up)."""
    return -(-stored_bits(op) // 8)


ACCEL = Dialect("accel", [InputOp, WeightOp, ViewOp, LayerOp], [NestAttr])
