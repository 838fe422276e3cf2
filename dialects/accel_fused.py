"""A fused layer group: layers run depth-first, their intermediates on chip (`fuse-layers`).

`accel.fused` holds, in its region, a chain of `accel.layer` ops where each layer's
result has one use, by the next layer, as its first operand. The simulator runs the
group band by band: the last layer's output is produced `band` rows at a time (rows:
the tensor's axis -2, `oh` of a conv, `m` of a matmul or linear, the row loop of a
row-wise vector layer), and each band pulls just the rows of the earlier layers it
needs (a conv window's halo: `overlap = "cache"` keeps the rows already computed in
a line buffer, `"recompute"` computes them again). The intermediates live in on-chip
ring buffers of `rows` rows each (docs/simulator.md §2.5); only the group's own
inputs, weights and the last layer's result cross DRAM.

    %y = accel.fused "features.2" band "oh" = 4 overlap "cache" (%x, %w1, %b1, %w2, %b2)
         : (tensor<1x16x56x56xf32>, ...) -> tensor<1x24x56x56xf32> {
    ^bb0(%a: tensor<1x16x56x56xf32>, %p: ..., %q: ..., %r: ..., %s: ...):
      %e = accel.layer "expand" "nn.conv2d"(%a, %p, %q) at 0 on "pe" tiles <...> params {...}
             : (...) -> tensor<1x96x56x56xf32>
      %d = accel.layer "project" "nn.conv2d"(%e, %r, %s) at 17564032 on "pe" tiles <...>
             params {...} : (...) -> tensor<1x24x56x56xf32>
      accel.yield %d : tensor<1x24x56x56xf32>
    }

Inside a group, an intermediate layer's `at` is the offset of its ring buffer in the
group's on-chip scratch (the last layer's is its DRAM address, as usual). The
verifier checks the chain (one use each, by the next layer's first operand), the
kinds (conv2d chains; matmul, linear and row-wise vector layers), that every layer
tiles its row loop, and the band.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.dialects.builtin import I64, IntegerAttr, StringAttr, TensorType, i64
from xdsl.ir import Block, Region, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.traits import HasParent, IsTerminator, Pure
from xdsl.utils.exceptions import VerifyException

from irflow.dialects import accel

CONV = "nn.conv2d"
ROW_KINDS = frozenset({"nn.matmul", "nn.linear"})
"""PE kinds whose rows are the tensor's axis -2 (loop `m`)."""
ROW_VECTOR = frozenset({"nn.softmax", "nn.layernorm"}) | accel.ELEMENTWISE_VECTOR
"""Vector kinds that can sit in a row chain: row-wise (their normalized axis is the last)
or point-wise (any broadcast operand is read whole)."""
OVERLAPS = ("cache", "recompute")


def row_loop(layer: accel.LayerOp) -> str | None:
    """The loop of `layer` that walks its result's rows (axis -2), or None when the
    layer cannot be banded by rows (docstring: the kinds; a vector layer normalizing
    over its rows)."""
    kind = layer.kind.data
    shape = rows_shape(layer)
    if len(shape) < 2:
        return None
    if kind == CONV:
        return "oh" if len(shape) == 4 else None
    if kind in ROW_KINDS:
        return "m"
    if kind in ROW_VECTOR:
        if kind in ("nn.softmax", "nn.layernorm"):
            axis = layer.params.data.get("axis")
            a = axis.value.data if isinstance(axis, IntegerAttr) else -1
            if a % len(shape) != len(shape) - 1:
                return None
        name = f"d{len(shape) - 2}"
        return name if name in layer.tiles.order else None
    return None


def accel_shape(v: SSAValue) -> tuple[int, ...]:
    ty = v.type
    assert isinstance(ty, TensorType)
    return tuple(ty.get_shape())


def rows_shape(layer: accel.LayerOp) -> tuple[int, ...]:
    """The shape whose axis −2 is `layer`'s rows: its own result before an epilogue's
    layout (a matmul storing through a head-merge transpose still computes rows `m`)."""
    from irflow.dialects import accel_epilogue as ep

    return ep.core_shape(layer) if layer.epilogue is not None else accel_shape(layer.output)


def family(kind: str) -> str:
    """Layers of one group share a family: "conv" (NCHW rows) or "rows" (matrices)."""
    return "conv" if kind == CONV else "rows"


@dataclass(frozen=True)
class Window:
    """How a layer's output rows map to the rows of its first operand:
    rows `o·stride − pad + [0, span)`, clipped to `[0, size)`."""

    stride: int
    pad: int
    span: int
    size: int

    def need(self, lo: int, hi: int) -> tuple[int, int]:
        """Input rows [a, b) output rows [lo, hi) read."""
        a = lo * self.stride - self.pad
        b = (hi - 1) * self.stride - self.pad + self.span
        return max(a, 0), min(b, self.size)


def window(layer: accel.LayerOp) -> Window:
    """The row window of `layer` over its first operand (a conv's kernel rows; identity
    for row layers)."""
    size = accel_shape(layer.inputs[0])[-2]
    if layer.kind.data != CONV:
        return Window(1, 0, 1, size)
    p = layer.params.data
    strides = _ints(p.get("strides"), [1, 1])
    dil = _ints(p.get("dilations"), [1, 1])
    pads = _ints(p.get("pads"), [0, 0, 0, 0])
    kh = accel_shape(layer.inputs[1])[2]
    return Window(strides[0], pads[0], dil[0] * (kh - 1) + 1, size)


def _ints(attr: object, default: list[int]) -> list[int]:
    get = getattr(attr, "get_values", None)
    return [int(v) for v in get()] if get is not None else default


def band_rows(layers: Sequence[accel.LayerOp], lo: int, hi: int,
              windows: Sequence[Window] | None = None) -> list[tuple[int, int]]:
    """Per layer, the result rows [a, b) a band of the last layer's rows [lo, hi) needs
    (the last layer's own first): each earlier layer's through the next one's window.
    `windows`: `window(layer)` of every layer but the first, when the caller already
    has them (a loop over bands reads the attributes once)."""
    if windows is None:
        windows = [window(nxt) for nxt in layers[1:]]
    out = [(lo, hi)]
    for win in reversed(windows):
        out.append(win.need(*out[-1]))
    return out[::-1]


def row_bytes(v: SSAValue) -> int:
    """Bytes of one row (one index of axis −2) of a tensor value, all other axes whole."""
    shape = accel_shape(v)
    ty = v.type
    assert isinstance(ty, TensorType)
    return -(-math.prod(shape) // shape[-2] * accel.element_bits(ty.element_type) // 8)


def ring_rows(layers: Sequence[accel.LayerOp], band: int) -> list[int]:
    """Per intermediate (every layer but the last), the rows its ring buffer holds: the
    most rows any band of `band` output rows needs of it."""
    extent = rows_shape(layers[-1])[-2]
    most = [0] * (len(layers) - 1)
    windows = [window(nxt) for nxt in layers[1:]]
    for lo in range(0, extent, band):
        for i, (a, b) in enumerate(band_rows(layers, lo, min(lo + band, extent),
                                             windows)[:-1]):
            most[i] = max(most[i], b - a)
    return most


def footprint(layers: Sequence[accel.LayerOp], band: int) -> int:
    """On-chip bytes of the group's ring buffers at `band` rows (line-aligned to 64 B)."""
    return sum(-(-r * row_bytes(lay.output) // 64) * 64
               for r, lay in zip(ring_rows(layers, band), layers))


@irdl_op_definition
class FusedOp(IRDLOperation):
    """Layers fused depth-first (module docstring): the region's chain of `accel.layer`
    ops runs `band` rows of the last layer's `band_loop` at a time."""

    name = "accel.fused"
    label = prop_def(StringAttr)
    band_loop = prop_def(StringAttr)
    band = prop_def(IntegerAttr[I64])
    overlap = prop_def(StringAttr)
    inputs = var_operand_def(TensorType)
    output = result_def(TensorType)
    body = region_def("single_block")
    traits = traits_def(Pure())
    assembly_format = (
        "$label `band` $band_loop `=` $band `overlap` $overlap `(` $inputs `)` attr-dict "
        "`:` functional-type($inputs, $output) $body"
    )

    def __init__(self, label: str, inputs: Sequence[SSAValue], layers: Sequence[accel.LayerOp],
                 band: int, overlap: str = "cache"):
        """Build a group around `layers` (detached, in order); their operands that are
        not the chain value must be `inputs` (they become the block's arguments)."""
        block = Block(arg_types=[v.type for v in inputs])
        index = {v: i for i, v in enumerate(inputs)}
        for lay in layers:
            for j, v in enumerate(lay.operands):
                if v in index:
                    lay.operands[j] = block.args[index[v]]  # type: ignore[index]
            block.add_op(lay)
        block.add_op(YieldOp(layers[-1].output))
        loop = row_loop(layers[-1]) or ""
        super().__init__(operands=[list(inputs)], result_types=[layers[-1].output.type],
                         properties={"label": StringAttr(label), "band_loop": StringAttr(loop),
                                     "band": IntegerAttr(band, i64),
                                     "overlap": StringAttr(overlap)},
                         regions=[Region(block)])

    @property
    def layers(self) -> list[accel.LayerOp]:
        return [op for op in self.body.block.ops if isinstance(op, accel.LayerOp)]

    def verify_(self) -> None:
        block = self.body.block
        ops = list(block.ops)
        where = f"accel.fused '{self.label.data}'"
        if [a.type for a in block.args] != [v.type for v in self.inputs]:
            raise VerifyException(f"{where} expects block arguments of its input types")
        layers = self.layers
        if len(layers) < 2 or len(layers) != len(ops) - 1:
            raise VerifyException(f"{where} expects two or more accel.layer ops and a "
                                  f"yield, got {[op.name for op in ops]}")
        term = ops[-1]
        if not isinstance(term, YieldOp) or list(term.operands) != [layers[-1].output]:
            raise VerifyException(f"{where} expects to yield its last layer's result")
        if self.output.type != layers[-1].output.type:
            raise VerifyException(f"{where} expects its result type to be the last layer's, "
                                  f"got {self.output.type}")
        fam = family(layers[0].kind.data)
        for i, lay in enumerate(layers):
            name = lay.label.data
            if row_loop(lay) is None or family(lay.kind.data) != fam:
                raise VerifyException(
                    f"{where}: layer '{name}' ({lay.kind.data}) cannot be banded by rows with "
                    f"the group's first layer ({layers[0].kind.data})")
            inner = [v for v in lay.operands if not (isinstance(v.owner, Block)
                                                      and v.owner is block)]
            if i == 0 and inner:
                raise VerifyException(f"{where}: layer '{name}' reads a value that is not a "
                                      f"group input")
            if i > 0 and (inner != [layers[i - 1].output] or lay.operands[0]
                          is not layers[i - 1].output):
                raise VerifyException(f"{where}: layer '{name}' must read the previous "
                                      f"layer's result as its first operand and nothing else "
                                      f"from the group")
        if self.band_loop.data != row_loop(layers[-1]):
            raise VerifyException(f"{where} expects band loop '{row_loop(layers[-1])}' (the "
                                  f"last layer's rows), got '{self.band_loop.data}'")
        extent = layers[-1].tiles.extent[self.band_loop.data]
        if not 1 <= self.band.value.data <= extent:
            raise VerifyException(f"{where} expects 1 <= band <= {extent}, got "
                                  f"{self.band.value.data}")
        if self.overlap.data not in OVERLAPS:
            raise VerifyException(f"{where} expects overlap in {list(OVERLAPS)}, got "
                                  f"'{self.overlap.data}'")


@irdl_op_definition
class YieldOp(IRDLOperation):
    """The result of a fused group: its last layer's.

        accel.yield %d : tensor<1x24x56x56xf32>
    """

    name = "accel.yield"
    value = var_operand_def(TensorType)
    traits = traits_def(IsTerminator(), HasParent(FusedOp))
    assembly_format = "$value attr-dict `:` type($value)"

    def __init__(self, value: SSAValue):
        super().__init__(operands=[[value]])


__all__ = ["FusedOp", "YieldOp", "row_loop", "band_rows", "ring_rows", "footprint", "window"]
