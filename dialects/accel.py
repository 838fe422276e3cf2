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

# The iteration-space model (dialects/accel_space.py), re-exported: passes and backends
# read it as `accel.Axis`, `accel.layer_space` etc.
from irflow.dialects.accel_space import (
    BLOCK_LINEAR,  # noqa: F401
    COPY_KINDS,  # noqa: F401
    ELEMENTWISE_VECTOR,  # noqa: F401
    FULL,  # noqa: F401
    QUANT_CASTS,
    QUANT_LAYERS,  # noqa: F401
    VIEW_KINDS,  # noqa: F401
    ZERO,  # noqa: F401
    Access,  # noqa: F401
    Axis,  # noqa: F401
    Range,  # noqa: F401
    Shape,  # noqa: F401
    Space,
    _broadcast_access,  # noqa: F401
    _identity,  # noqa: F401
    _loops,  # noqa: F401
    is_view,  # noqa: F401
    layer_space,
    on,  # noqa: F401
    quant_axis_param,
)

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
# The iteration space of an op (the model: dialects/accel_space.py)


def space_of_op(op: IRDLOperation) -> Space:
    """The iteration space of an nn op or `quant` cast (or of an `accel.layer`)."""
    if isinstance(op, LayerOp):
        from irflow.dialects import accel_epilogue

        kind, operands = op.kind.data, op.core_inputs
        result_type = accel_epilogue.core_type(op)  # its own result, before any epilogue
        params: Mapping[str, Attribute] = op.params.data
    else:
        kind, operands, params = op.name, list(op.operands), op.properties
        result_type = op.results[0].type
    if kind in QUANT_CASTS:
        params = {**params, **quant_axis_param(operands[0].type, result_type)}
    assert isinstance(result_type, TensorType)
    return layer_space(kind, [nn.shape_of(o) for o in operands], result_type.get_shape(),
                       params)


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


def view_source(value: SSAValue) -> SSAValue:
    """The value a chain of `accel.view`s reads (`value` itself when it is no view)."""
    while isinstance(value.owner, ViewOp):
        value = value.owner.source
    return value


def address_of(value: SSAValue) -> int:
    """The DRAM byte address of an accel value (views resolve to their source)."""
    owner = view_source(value).owner
    if isinstance(owner, InputOp | WeightOp | LayerOp | SideOp):
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


from irflow.dialects.accel_fused import FusedOp, YieldOp  # noqa: E402  (fused groups)
from irflow.dialects.accel_side import SideOp  # noqa: E402  (an epilogue's side output)

ACCEL = Dialect("accel", [InputOp, WeightOp, ViewOp, LayerOp, SideOp, FusedOp, YieldOp],
                [NestAttr])
