"""The `nn` dialect: irflow's graph level.

Values are statically shaped `tensor<...>` (NCHW for images, as ONNX). Every op
verifies its operand shapes and infers its result shape with one function,
`infer_shapes`, used both by the builders (`nn.Conv2dOp(x, w, b, strides=(2, 2))`, `nn.AddOp.make([x, y])`)
and by `verify_`, so a bad shape is a verifier error naming the op, the operand
and the shapes.

Weights are `nn.constant` ops whose value is `#nn.weight<"name">`, a reference
into the module's weight store (`irflow.weights`); small constants may be inline
`dense<...>` attributes.

    %w = nn.constant #nn.weight<"conv1.weight"> : tensor<64x3x7x7xf32>
    %y = nn.conv2d %x, %w {strides = array<i64: 2, 2>, pads = array<i64: 3, 3, 3, 3>}
         : (tensor<1x3x224x224xf32>, tensor<64x3x7x7xf32>) -> tensor<1x64x112x112xf32>

Semantics follow ONNX for the op of the same name; `backends/reference` is the
executable definition.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import ClassVar

from xdsl.dialects.builtin import (
    I64,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    Float64Type,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    TensorType,
    i64,
)
from xdsl.ir import Attribute, Dialect, Operation, ParametrizedAttribute, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    ParsePropInAttrDict,
    VarConstraint,
    base,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    param_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.traits import ConstantLike, Pure
from xdsl.utils.exceptions import VerifyException

Shape = tuple[int, ...]

# --------------------------------------------------------------------------------------
# Attributes


@irdl_attr_definition
class WeightAttr(ParametrizedAttribute):
    """A reference to a named array in the module's weight store: `#nn.weight<"fc.weight">`."""

    name = "nn.weight"
    ref: StringAttr = param_def()

    def __init__(self, ref: str | StringAttr):
        super().__init__(StringAttr(ref) if isinstance(ref, str) else ref)

    @property
    def key(self) -> str:
        return self.ref.data

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> tuple[StringAttr]:
        with parser.in_angle_brackets():
            return (StringAttr(parser.parse_str_literal()),)

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_string_literal(self.ref.data)


_NM_PATTERN = re.compile(r"^([1-9][0-9]*):([1-9][0-9]*)$")


@irdl_attr_definition
class SparsityAttr(ParametrizedAttribute):
    """The sparsity pattern of a weight, set by `prune` as the discardable attribute
    `nn.sparsity` on its `nn.constant` (see docs/pruning.md):

        %w = nn.constant #nn.weight<"fc.weight"> {nn.sparsity = #nn.sparsity<"2:4", axis = 1>}
             : tensor<10x64xf32>
        %v = nn.constant #nn.weight<"c.weight"> {nn.sparsity = #nn.sparsity<unstructured, density = 0.25>}
             : tensor<16x8x3x3xf32>

    - `"N:M"`: in every run of M elements along `axis` (the reduction dimension: input
      channels of an FCHW conv weight, columns of a linear weight, rows of a matmul's
      constant rhs) at most N are non-zero; `density` is N/M. A run is M consecutive
      elements, or with `stride = S` M elements S apart: index (g·M + j)·S + r, j < M —
      a linear after a flatten of [C, H, W] groups M channels at one position (S = H·W),
      as a conv groups M input channels at one kernel tap:
      `#nn.sparsity<"2:4", axis = 1, stride = 16>`.
    - `unstructured`: any element may be zero; `density` is the fraction of non-zeros.
    """

    name = "nn.sparsity"
    pattern: StringAttr = param_def()
    axis: IntegerAttr[I64] = param_def()
    density: FloatAttr[Float64Type] = param_def()
    stride: IntegerAttr[I64] = param_def()

    def __init__(self, pattern: str, density: float, axis: int = -1, stride: int = 1):
        super().__init__(StringAttr(pattern), i64_attr(axis), f64(density), i64_attr(stride))

    @classmethod
    def nm(cls, n: int, m: int, axis: int, stride: int = 1) -> SparsityAttr:
        return cls(f"{n}:{m}", n / m, axis, stride)

    @classmethod
    def unstructured(cls, density: float) -> SparsityAttr:
        return cls("unstructured", density)

    @property
    def is_nm(self) -> bool:
        return self.pattern.data != "unstructured"

    @property
    def n_m(self) -> tuple[int, int]:
        """(N, M) of an N:M pattern."""
        n, _, m = self.pattern.data.partition(":")
        return int(n), int(m)

    def verify(self) -> None:
        if self.is_nm:
            match = _NM_PATTERN.match(self.pattern.data)
            if match is None or int(match[1]) >= int(match[2]):
                raise VerifyException(
                    f"#nn.sparsity expects 'unstructured' or \"N:M\" with 0 < N < M, "
                    f"got \"{self.pattern.data}\""
                )
            if self.axis.value.data < 0:
                raise VerifyException("#nn.sparsity expects an N:M pattern to name its axis >= 0")
        if self.stride.value.data < 1:
            raise VerifyException(f"#nn.sparsity expects stride >= 1, got {self.stride.value.data}")
        density = self.density.value.data
        if not 0.0 <= density <= 1.0:
            raise VerifyException(f"#nn.sparsity expects a density in [0, 1], got {density}")

    @classmethod
    def parse_parameters(
        cls, parser: AttrParser
    ) -> tuple[StringAttr, IntegerAttr, FloatAttr, IntegerAttr]:
        with parser.in_angle_brackets():
            if parser.parse_optional_keyword("unstructured") is not None:
                parser.parse_punctuation(",")
                parser.parse_keyword("density")
                parser.parse_punctuation("=")
                density = f64(parser.parse_float())
                return StringAttr("unstructured"), i64_attr(-1), density, i64_attr(1)
            pattern = parser.parse_str_literal()
            parser.parse_punctuation(",")
            parser.parse_keyword("axis")
            parser.parse_punctuation("=")
            axis = parser.parse_integer()
            stride = 1
            if parser.parse_optional_punctuation(",") is not None:
                parser.parse_keyword("stride")
                parser.parse_punctuation("=")
                stride = parser.parse_integer()
            match = _NM_PATTERN.match(pattern)
            density = int(match[1]) / int(match[2]) if match else 0.0
            return StringAttr(pattern), i64_attr(axis), f64(density), i64_attr(stride)

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            if self.is_nm:
                printer.print_string_literal(self.pattern.data)
                printer.print_string(f", axis = {self.axis.value.data}")
                if self.stride.value.data != 1:
                    printer.print_string(f", stride = {self.stride.value.data}")
            else:
                printer.print_string(f"unstructured, density = {self.density.value.data!r}")


# --------------------------------------------------------------------------------------
# Helpers shared by the shape functions


def shape_of(value: SSAValue | Attribute) -> Shape:
    """The static shape of a tensor-typed value or type (a `?` dimension is an error)."""
    ty = value.type if isinstance(value, SSAValue) else value
    if not isinstance(ty, TensorType):
        raise VerifyException(f"expected a ranked tensor, got {ty}")
    shape = tuple(int(d) for d in ty.get_shape())
    if any(d < 0 for d in shape):
        raise VerifyException(f"expected a statically shaped tensor, got {ty}")
    return shape


Props = Mapping[str, Attribute]


def _props(op: Operation | Props) -> Props:
    return op.properties if isinstance(op, Operation) else op


def prop_ints(op: Operation | Props, name: str, default: Sequence[int]) -> tuple[int, ...]:
    """An int-array property of an op (or a property dict); `default`, the op's declared
    default, when absent. The readers below are what kernels and exporters call."""
    attr = _props(op).get(name)
    if attr is None:
        return tuple(default)
    assert isinstance(attr, DenseArrayBase)
    return tuple(int(v) for v in attr.get_values())


def prop_int(op: Operation | Props, name: str, default: int) -> int:
    attr = _props(op).get(name)
    return default if attr is None else int(attr.value.data)  # type: ignore[attr-defined]


def prop_float(op: Operation | Props, name: str, default: float) -> float:
    attr = _props(op).get(name)
    return default if attr is None else float(attr.value.data)  # type: ignore[attr-defined]


def prop_str(op: Operation | Props, name: str, default: str) -> str:
    attr = _props(op).get(name)
    return default if attr is None else attr.data  # type: ignore[attr-defined]


def format_shape(shape: Sequence[int]) -> str:
    """`1x3x224x224` (MLIR's dimension list), `scalar` for rank 0 — the one spelling of a
    shape in irflow's messages."""
    return "x".join(str(d) for d in shape) if len(shape) else "scalar"


_fmt = format_shape  # the short spelling used by the verifiers below


def broadcast_shapes(op: str, a: Shape, b: Shape) -> Shape:
    """Numpy/ONNX multidirectional broadcasting of two shapes."""
    out: list[int] = []
    for i in range(max(len(a), len(b))):
        da = a[len(a) - 1 - i] if i < len(a) else 1
        db = b[len(b) - 1 - i] if i < len(b) else 1
        if da != db and 1 not in (da, db):
            raise VerifyException(
                f"{op} expects broadcast-compatible operands, got {_fmt(a)} and {_fmt(b)}"
            )
        out.append(max(da, db))
    return tuple(reversed(out))


def normalize_axis(op: str, axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise VerifyException(f"{op} expects axis in [{-rank}, {rank}), got {axis}")
    return axis % rank if rank else 0


def window_out(size: int, kernel: int, stride: int, pad_lo: int, pad_hi: int,
               dilation: int = 1, ceil_mode: bool = False) -> int:
    """Output length of a sliding window (ONNX Conv/MaxPool/AveragePool formula)."""
    span = dilation * (kernel - 1) + 1
    num = size + pad_lo + pad_hi - span
    out = (-(-num // stride) if ceil_mode else num // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad_lo:
        out -= 1  # the last window must start inside the input or the leading padding
    return out


def int_array(values: Sequence[int]) -> DenseArrayBase:
    return DenseArrayBase.from_list(i64, [int(v) for v in values])


def f64(value: float) -> FloatAttr:
    return FloatAttr(float(value), Float64Type())


def i64_attr(value: int) -> IntegerAttr:
    return IntegerAttr(int(value), i64)


# --------------------------------------------------------------------------------------
# Base class


IntArray = DenseArrayBase.constr(i64)
F64 = FloatAttr[Float64Type]


class NNOp(IRDLOperation):
    """Base of every shape-inferring nn op.

    Subclasses implement `infer_shapes(operand_shapes, props)`; the result element
    type defaults to the first operand's (quantized ops pass `element_type`).
    """

    irdl_options = (ParsePropInAttrDict(),)
    traits = traits_def(Pure())

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        raise NotImplementedError

    @classmethod
    def make(
        cls,
        operands: Sequence[SSAValue | None],
        props: Mapping[str, Attribute | None] | None = None,
        *,
        element_type: Attribute | None = None,
        attributes: Mapping[str, Attribute] | None = None,
    ) -> NNOp:
        """Build the op, inferring its result types from the operands."""
        present = [o for o in operands if o is not None]
        clean = {k: v for k, v in (props or {}).items() if v is not None}
        shapes = cls.infer_shapes([shape_of(o) for o in present], clean)
        elem = element_type or value_element_type(present[0])
        return cls.create(
            operands=present,
            result_types=[TensorType(elem, s) for s in shapes],
            properties=clean,
            attributes=dict(attributes or {}),
        )

    def verify_(self) -> None:
        shapes = [shape_of(o) for o in self.operands]
        expected = type(self).infer_shapes(shapes, self.properties)
        got = [shape_of(r) for r in self.results]
        if list(expected) != got:
            raise VerifyException(
                f"{self.name} expects result shape "
                f"{', '.join(_fmt(s) for s in expected)}, got {', '.join(_fmt(s) for s in got)}"
            )
        _verify_act(self)


def value_element_type(value: SSAValue) -> Attribute:
    """The element type of a tensor-typed value."""
    assert isinstance(value.type, TensorType)
    return value.type.element_type


_element_type = value_element_type  # the old private name (passes/quantize.py still uses it)


# --------------------------------------------------------------------------------------
# Constants


@irdl_op_definition
class ConstantOp(IRDLOperation):
    """A tensor constant, stored in the weight store or inline.

        %w = nn.constant #nn.weight<"fc.weight"> : tensor<10x64xf32>
    """

    name = "nn.constant"
    value = prop_def(WeightAttr | DenseIntOrFPElementsAttr)
    output = result_def(TensorType)
    traits = traits_def(Pure(), ConstantLike())

    def __init__(self, value: WeightAttr | DenseIntOrFPElementsAttr, type: TensorType):
        super().__init__(properties={"value": value}, result_types=[type])

    # Custom format: an inline `dense<...> : tensor<...>` already carries its type, so it is
    # printed once (as arith.constant does); a weight reference is followed by `: type`:
    #   nn.constant dense<[1.0, 2.0]> : tensor<2xf32> {nn.sparsity = ...}
    #   nn.constant #nn.weight<"w"> {nn.sparsity = ...} : tensor<2xf32>
    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_attribute(self.value)
        printer.print_op_attributes(self.attributes)
        if isinstance(self.value, WeightAttr):
            printer.print_string(" : ")
            printer.print_attribute(self.output.type)

    @classmethod
    def parse(cls, parser: Parser) -> ConstantOp:
        value = parser.parse_attribute()
        attrs = parser.parse_optional_attr_dict()
        if isinstance(value, DenseIntOrFPElementsAttr):
            assert isinstance(value.type, TensorType)
            result_type: Attribute = value.type
        elif isinstance(value, WeightAttr):
            parser.parse_punctuation(":")
            result_type = parser.parse_type()
        else:
            parser.raise_error(
                f"nn.constant expects #nn.weight<\"name\"> or dense<...>, got {value}"
            )
        op = cls(value, result_type)  # type: ignore[arg-type]
        op.attributes.update(attrs)
        return op

    def verify_(self) -> None:
        if isinstance(self.value, DenseIntOrFPElementsAttr):
            if shape_of(self.value.type) != shape_of(self.output):
                raise VerifyException(
                    f"nn.constant expects inline data of shape {_fmt(shape_of(self.output))}, "
                    f"got {_fmt(shape_of(self.value.type))}"
                )


def defining_constant(value: SSAValue | None) -> ConstantOp | None:
    """The `nn.constant` that defines `value`; None for a block argument or another op."""
    owner = value.owner if value is not None else None
    return owner if isinstance(owner, ConstantOp) else None


# --------------------------------------------------------------------------------------
# Elementwise


class UnaryOp(NNOp):
    """y = f(x), same type."""

    T: ClassVar = VarConstraint("T", base(TensorType))
    input = operand_def(T)
    output = result_def(T)
    assembly_format = "$input attr-dict `:` type($input)"

    def __init__(self, input: SSAValue, **props: Attribute):
        shape = shape_of(input)
        super().__init__(
            operands=[input], result_types=[TensorType(value_element_type(input), shape)],
            properties=props,
        )

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        return [shapes[0]]


@irdl_op_definition
class ReluOp(UnaryOp):
    """`%y = nn.relu %x : tensor<4xf32>` — max(x, 0)."""

    name = "nn.relu"


@irdl_op_definition
class Relu6Op(UnaryOp):
    """`%y = nn.relu6 %x : tensor<4xf32>` — min(max(x, 0), 6)."""

    name = "nn.relu6"


@irdl_op_definition
class ClipOp(UnaryOp):
    """`%y = nn.clip %x {min = -1.0 : f64, max = 1.0 : f64} : tensor<4xf32>`; a missing bound is open."""

    name = "nn.clip"
    min = opt_prop_def(F64)
    max = opt_prop_def(F64)


@irdl_op_definition
class SigmoidOp(UnaryOp):
    """`%y = nn.sigmoid %x : tensor<4xf32>` — 1 / (1 + exp(-x))."""

    name = "nn.sigmoid"


@irdl_op_definition
class TanhOp(UnaryOp):
    """`%y = nn.tanh %x : tensor<4xf32>`."""

    name = "nn.tanh"


@irdl_op_definition
class GeluOp(UnaryOp):
    """`%y = nn.gelu %x {approximate = "tanh"} : tensor<4xf32>`; default exact (erf)."""

    name = "nn.gelu"
    approximate = prop_def(StringAttr, default_value=StringAttr("none"))

    def verify_(self) -> None:
        if self.approximate.data not in ("none", "tanh"):
            raise VerifyException(
                f"nn.gelu expects approximate in ['none', 'tanh'], got '{self.approximate.data}'"
            )


@irdl_op_definition
class SiluOp(UnaryOp):
    """`%y = nn.silu %x : tensor<4xf32>` — x * sigmoid(x)."""

    name = "nn.silu"


@irdl_op_definition
class HardSigmoidOp(UnaryOp):
    """`%y = nn.hardsigmoid %x : tensor<4xf32>` — max(0, min(1, alpha*x + beta)) (ONNX defaults)."""

    name = "nn.hardsigmoid"
    alpha = prop_def(F64, default_value=f64(0.2))
    beta = prop_def(F64, default_value=f64(0.5))


@irdl_op_definition
class HardSwishOp(UnaryOp):
    """`%y = nn.hardswish %x : tensor<4xf32>` — x * max(0, min(1, x/6 + 1/2))."""

    name = "nn.hardswish"


@irdl_op_definition
class ErfOp(UnaryOp):
    """`%y = nn.erf %x : tensor<4xf32>`."""

    name = "nn.erf"


@irdl_op_definition
class SqrtOp(UnaryOp):
    """`%y = nn.sqrt %x : tensor<4xf32>`."""

    name = "nn.sqrt"


@irdl_op_definition
class ExpOp(UnaryOp):
    """`%y = nn.exp %x : tensor<4xf32>`."""

    name = "nn.exp"


@irdl_op_definition
class NegOp(UnaryOp):
    """`%y = nn.neg %x : tensor<4xf32>`."""

    name = "nn.neg"


# Activations that take no parameters and may be fused into a producer's `act` property.
FUSABLE_ACTIVATIONS: dict[str, type[UnaryOp]] = {
    "relu": ReluOp,
    "relu6": Relu6Op,
    "sigmoid": SigmoidOp,
    "tanh": TanhOp,
    "silu": SiluOp,
    "hardswish": HardSwishOp,
}
# The inverse: the `act` name of an activation op class that has one.
ACTIVATION_NAMES: dict[type[UnaryOp], str] = {cls: n for n, cls in FUSABLE_ACTIVATIONS.items()}


def _verify_act(op: IRDLOperation) -> None:
    act = op.properties.get("act")
    if act is not None and act.data not in FUSABLE_ACTIVATIONS:  # type: ignore[attr-defined]
        raise VerifyException(
            f"{op.name} expects act in {sorted(FUSABLE_ACTIVATIONS)}, got '{act.data}'"  # type: ignore[attr-defined]
        )


class BinaryOp(NNOp):
    """z = x ∘ y with numpy/ONNX broadcasting."""

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    output = result_def(TensorType)
    act = opt_prop_def(StringAttr)
    assembly_format = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        return [broadcast_shapes(cls.name, shapes[0], shapes[1])]


@irdl_op_definition
class AddOp(BinaryOp):
    """`%z = nn.add %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>`."""

    name = "nn.add"


@irdl_op_definition
class SubOp(BinaryOp):
    """`%z = nn.sub %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>`."""

    name = "nn.sub"


@irdl_op_definition
class MulOp(BinaryOp):
    """`%z = nn.mul %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>`."""

    name = "nn.mul"


@irdl_op_definition
class DivOp(BinaryOp):
    """`%z = nn.div %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>`."""

    name = "nn.div"


@irdl_op_definition
class PowOp(BinaryOp):
    """`%z = nn.pow %x, %y : (tensor<2x3xf32>, tensor<1xf32>) -> tensor<2x3xf32>`."""

    name = "nn.pow"


# --------------------------------------------------------------------------------------
# Contractions


@irdl_op_definition
class Conv2dOp(NNOp):
    """2-D convolution, NCHW input, FCHW weight (F = output channels, C = in / groups).

        %y = nn.conv2d %x, %w, %b {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>}
             : (tensor<1x3x8x8xf32>, tensor<16x3x3x3xf32>, tensor<16xf32>) -> tensor<1x16x4x4xf32>

    `pads` is [top, left, bottom, right] (ONNX order); `act` names a fused activation.
    """

    name = "nn.conv2d"
    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    output = result_def(TensorType)
    strides = prop_def(IntArray, default_value=int_array([1, 1]))
    pads = prop_def(IntArray, default_value=int_array([0, 0, 0, 0]))
    dilations = prop_def(IntArray, default_value=int_array([1, 1]))
    groups = prop_def(IntegerAttr[I64], default_value=i64_attr(1))
    act = opt_prop_def(StringAttr)
    assembly_format = (
        "$input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)"
    )

    def __init__(
        self, input: SSAValue, weight: SSAValue, bias: SSAValue | None = None, *,
        strides: Sequence[int] = (1, 1), pads: Sequence[int] = (0, 0, 0, 0),
        dilations: Sequence[int] = (1, 1), groups: int = 1, act: str | None = None,
    ):
        props: dict[str, Attribute] = {}
        if tuple(strides) != (1, 1):
            props["strides"] = int_array(strides)
        if tuple(pads) != (0, 0, 0, 0):
            props["pads"] = int_array(pads)
        if tuple(dilations) != (1, 1):
            props["dilations"] = int_array(dilations)
        if groups != 1:
            props["groups"] = i64_attr(groups)
        if act is not None:
            props["act"] = StringAttr(act)
        operands = [input, weight] + ([bias] if bias is not None else [])
        shapes = self.infer_shapes([shape_of(o) for o in operands], props)
        super().__init__(
            operands=[input, weight, bias if bias is not None else []],
            result_types=[TensorType(value_element_type(input), shapes[0])],
            properties=props,
        )

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        x, w = shapes[0], shapes[1]
        if len(x) != 4 or len(w) != 4:
            raise VerifyException(
                f"nn.conv2d expects a rank-4 input (NCHW) and weight (FCHW), "
                f"got input {_fmt(x)} and weight {_fmt(w)}"
            )
        strides = prop_ints(props, "strides", (1, 1))
        pads = prop_ints(props, "pads", (0, 0, 0, 0))
        dil = prop_ints(props, "dilations", (1, 1))
        groups = prop_int(props, "groups", 1)
        if len(strides) != 2 or len(pads) != 4 or len(dil) != 2:
            raise VerifyException(
                "nn.conv2d expects 2 strides, 4 pads and 2 dilations, "
                f"got {len(strides)}, {len(pads)} and {len(dil)}"
            )
        if min(strides + dil) < 1 or min(pads) < 0 or groups < 1:
            raise VerifyException(
                "nn.conv2d expects strides, dilations, groups >= 1 and pads >= 0, "
                f"got strides {list(strides)}, dilations {list(dil)}, pads {list(pads)}, "
                f"groups {groups}"
            )
        n, c, h, wd = x
        f, cg, kh, kw = w
        if c % groups or f % groups or cg * groups != c:
            raise VerifyException(
                f"nn.conv2d expects weight input channels × groups = input channels, "
                f"got weight {_fmt(w)} (C/groups = {cg}), groups {groups}, input {_fmt(x)}"
            )
        if len(shapes) > 2 and shapes[2] != (f,):
            raise VerifyException(
                f"nn.conv2d expects bias of shape {f}, got {_fmt(shapes[2])}"
            )
        oh = window_out(h, kh, strides[0], pads[0], pads[2], dil[0])
        ow = window_out(wd, kw, strides[1], pads[1], pads[3], dil[1])
        if oh < 1 or ow < 1:
            raise VerifyException(
                f"nn.conv2d expects the kernel {kh}x{kw} to fit the padded input {_fmt(x)}, "
                f"got an empty output {oh}x{ow}"
            )
        return [(n, f, oh, ow)]


@irdl_op_definition
class MatmulOp(NNOp):
    """Matrix product with ONNX MatMul semantics (batched, broadcasting batch dims).

        %c = nn.matmul %a, %b : (tensor<4x8x16xf32>, tensor<16x32xf32>) -> tensor<4x8x32xf32>
    """

    name = "nn.matmul"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    output = result_def(TensorType)
    act = opt_prop_def(StringAttr)
    assembly_format = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        a, b = shapes
        if not a or not b:
            raise VerifyException("nn.matmul expects operands of rank >= 1")
        a2 = (1,) + a if len(a) == 1 else a
        b2 = b + (1,) if len(b) == 1 else b
        if a2[-1] != b2[-2]:
            raise VerifyException(
                f"nn.matmul expects lhs columns = rhs rows, got {_fmt(a)} and {_fmt(b)}"
            )
        batch = broadcast_shapes("nn.matmul", a2[:-2], b2[:-2])
        out = batch + (a2[-2], b2[-1])
        if len(a) == 1:
            out = out[:-2] + out[-1:]
        if len(b) == 1:
            out = out[:-1]
        return [out]


@irdl_op_definition
class LinearOp(NNOp):
    """y = x · Wᵀ + b over the last axis (torch `Linear`, ONNX `Gemm` with transB=1).

        %y = nn.linear %x, %w, %b : (tensor<1x64xf32>, tensor<10x64xf32>, tensor<10xf32>) -> tensor<1x10xf32>
    """

    name = "nn.linear"
    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    output = result_def(TensorType)
    act = opt_prop_def(StringAttr)
    assembly_format = (
        "$input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)"
    )

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        x, w = shapes[0], shapes[1]
        if not x or len(w) != 2 or x[-1] != w[1]:
            raise VerifyException(
                f"nn.linear expects weight [out, {x[-1] if x else '?'}], "
                f"got input {_fmt(x)} and weight {_fmt(w)}"
            )
        if len(shapes) > 2 and shapes[2] != (w[0],):
            raise VerifyException(
                f"nn.linear expects bias of shape {w[0]}, got {_fmt(shapes[2])}"
            )
        return [x[:-1] + (w[0],)]


# --------------------------------------------------------------------------------------
# Normalization


@irdl_op_definition
class BatchNormOp(NNOp):
    """Inference batch normalization over axis 1 (ONNX BatchNormalization).

        %y = nn.batchnorm %x, %scale, %bias, %mean, %var {epsilon = 1.0e-05 : f64} : (...) -> tensor<1x16x8x8xf32>
    """

    name = "nn.batchnorm"
    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    bias = operand_def(TensorType)
    mean = operand_def(TensorType)
    var = operand_def(TensorType)
    output = result_def(TensorType)
    epsilon = prop_def(F64, default_value=f64(1e-5))
    assembly_format = (
        "$input `,` $scale `,` $bias `,` $mean `,` $var attr-dict `:` "
        "functional-type(operands, results)"
    )

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        x = shapes[0]
        if len(x) < 2:
            raise VerifyException(f"nn.batchnorm expects rank >= 2, got {_fmt(x)}")
        for role, s in zip(("scale", "bias", "mean", "var"), shapes[1:]):
            if s != (x[1],):
                raise VerifyException(
                    f"nn.batchnorm expects {role} of shape {x[1]} (channels), got {_fmt(s)}"
                )
        return [x]


@irdl_op_definition
class LayerNormOp(NNOp):
    """Layer normalization over the axes from `axis` to the end (ONNX LayerNormalization).

        %y = nn.layernorm %x, %g, %b {axis = -1 : i64} : (tensor<128x256xf32>, tensor<256xf32>, tensor<256xf32>) -> tensor<128x256xf32>
    """

    name = "nn.layernorm"
    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    output = result_def(TensorType)
    axis = prop_def(IntegerAttr[I64], default_value=i64_attr(-1))
    epsilon = prop_def(F64, default_value=f64(1e-5))
    assembly_format = (
        "$input `,` $scale (`,` $bias^)? attr-dict `:` functional-type(operands, results)"
    )

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        x = shapes[0]
        axis = normalize_axis("nn.layernorm", prop_int(props, "axis", -1), len(x))
        norm = x[axis:]
        for role, s in zip(("scale", "bias"), shapes[1:]):
            if broadcast_shapes("nn.layernorm", s, norm) != norm:
                raise VerifyException(
                    f"nn.layernorm expects {role} broadcastable to {_fmt(norm)}, got {_fmt(s)}"
                )
        return [x]


@irdl_op_definition
class SoftmaxOp(NNOp):
    """`%y = nn.softmax %x {axis = -1 : i64} : tensor<4x10xf32>` (ONNX opset 13 semantics)."""

    name = "nn.softmax"
    T: ClassVar = VarConstraint("T", base(TensorType))
    input = operand_def(T)
    output = result_def(T)
    axis = prop_def(IntegerAttr[I64], default_value=i64_attr(-1))
    assembly_format = "$input attr-dict `:` type($input)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        normalize_axis("nn.softmax", prop_int(props, "axis", -1), len(shapes[0]))
        return [shapes[0]]


@irdl_op_definition
class ReduceMeanOp(NNOp):
    """`%y = nn.reduce_mean %x {axes = array<i64: -1>} : (tensor<4x10xf32>) -> tensor<4x1xf32>`."""

    name = "nn.reduce_mean"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    axes = prop_def(IntArray)
    keepdims = prop_def(IntegerAttr[I64], default_value=i64_attr(1))
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        x = shapes[0]
        axes = {normalize_axis("nn.reduce_mean", a, len(x)) for a in prop_ints(props, "axes", ())}
        keep = prop_int(props, "keepdims", 1)
        return [tuple(1 if i in axes else d for i, d in enumerate(x) if keep or i not in axes)]


# --------------------------------------------------------------------------------------
# Pooling


class Pool2dOp(NNOp):
    """Shared shape of max/avg pooling: NCHW input, `kernel`, `strides`, `pads`, `ceil_mode`."""

    input = operand_def(TensorType)
    output = result_def(TensorType)
    kernel = prop_def(IntArray)
    strides = prop_def(IntArray, default_value=int_array([1, 1]))
    pads = prop_def(IntArray, default_value=int_array([0, 0, 0, 0]))
    ceil_mode = prop_def(IntegerAttr[I64], default_value=i64_attr(0))
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        x = shapes[0]
        if len(x) != 4:
            raise VerifyException(f"{cls.name} expects a rank-4 input (NCHW), got {_fmt(x)}")
        k = prop_ints(props, "kernel", ())
        s = prop_ints(props, "strides", (1, 1))
        p = prop_ints(props, "pads", (0, 0, 0, 0))
        if len(k) != 2 or len(s) != 2 or len(p) != 4:
            raise VerifyException(
                f"{cls.name} expects 2 kernel sizes, 2 strides and 4 pads, "
                f"got {len(k)}, {len(s)} and {len(p)}"
            )
        if min(k + s) < 1 or min(p) < 0 or max(p[0], p[2]) >= k[0] or max(p[1], p[3]) >= k[1]:
            raise VerifyException(
                f"{cls.name} expects kernel, strides >= 1 and 0 <= pads < kernel, "
                f"got kernel {list(k)}, strides {list(s)}, pads {list(p)}"
            )
        ceil = bool(prop_int(props, "ceil_mode", 0))
        oh = window_out(x[2], k[0], s[0], p[0], p[2], 1, ceil)
        ow = window_out(x[3], k[1], s[1], p[1], p[3], 1, ceil)
        if oh < 1 or ow < 1:
            raise VerifyException(
                f"{cls.name} expects the window {k[0]}x{k[1]} to fit the input {_fmt(x)}"
            )
        return [(x[0], x[1], oh, ow)]


@irdl_op_definition
class MaxPoolOp(Pool2dOp):
    """`%y = nn.maxpool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>} : (tensor<1x4x8x8xf32>) -> tensor<1x4x4x4xf32>`."""

    name = "nn.maxpool"


@irdl_op_definition
class AvgPoolOp(Pool2dOp):
    """Average pooling; padded cells count in the divisor iff `count_include_pad` = 1 (ONNX).

        %y = nn.avgpool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>} : (tensor<1x4x8x8xf32>) -> tensor<1x4x4x4xf32>
    """

    name = "nn.avgpool"
    count_include_pad = prop_def(IntegerAttr[I64], default_value=i64_attr(0))


@irdl_op_definition
class GlobalAvgPoolOp(NNOp):
    """`%y = nn.global_avg_pool %x : (tensor<1x512x7x7xf32>) -> tensor<1x512x1x1xf32>`."""

    name = "nn.global_avg_pool"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        x = shapes[0]
        if len(x) < 3:
            raise VerifyException(f"nn.global_avg_pool expects rank >= 3, got {_fmt(x)}")
        return [x[:2] + (1,) * (len(x) - 2)]


# --------------------------------------------------------------------------------------
# Data movement


@irdl_op_definition
class ReshapeOp(NNOp):
    """Reshape to the static result type (row-major order kept).

        %y = nn.reshape %x : (tensor<1x512x1x1xf32>) -> tensor<1x512xf32>
    """

    name = "nn.reshape"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    def __init__(self, input: SSAValue, shape: Sequence[int]):
        shape = tuple(int(d) for d in shape)
        if math.prod(shape) != math.prod(shape_of(input)):
            raise VerifyException(
                f"nn.reshape expects the same number of elements, got {_fmt(shape_of(input))} "
                f"to {_fmt(shape)}"
            )
        super().__init__(operands=[input], result_types=[TensorType(value_element_type(input), shape)])

    def verify_(self) -> None:
        a, b = shape_of(self.input), shape_of(self.output)
        if math.prod(a) != math.prod(b):
            raise VerifyException(
                f"nn.reshape expects the same number of elements, got {_fmt(a)} to {_fmt(b)}"
            )


@irdl_op_definition
class FlattenOp(NNOp):
    """Flatten to 2-D at `axis` (ONNX Flatten).

        %y = nn.flatten %x {axis = 1 : i64} : (tensor<1x32x3x3xf32>) -> tensor<1x288xf32>
    """

    name = "nn.flatten"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    axis = prop_def(IntegerAttr[I64], default_value=i64_attr(1))
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        x = shapes[0]
        axis = prop_int(props, "axis", 1)
        if not -len(x) <= axis <= len(x):
            raise VerifyException(f"nn.flatten expects axis in [{-len(x)}, {len(x)}], got {axis}")
        if axis < 0:
            axis += len(x)
        return [(math.prod(x[:axis]), math.prod(x[axis:]))]


@irdl_op_definition
class TransposeOp(NNOp):
    """`%y = nn.transpose %x {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>`."""

    name = "nn.transpose"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    perm = prop_def(IntArray)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        x = shapes[0]
        perm = prop_ints(props, "perm", ())
        if sorted(perm) != list(range(len(x))):
            raise VerifyException(
                f"nn.transpose expects perm to be a permutation of 0..{len(x) - 1}, "
                f"got {list(perm)}"
            )
        return [tuple(x[p] for p in perm)]


@irdl_op_definition
class ConcatOp(NNOp):
    """`%y = nn.concat %a, %b {axis = 1 : i64} : (tensor<1x2xf32>, tensor<1x3xf32>) -> tensor<1x5xf32>`."""

    name = "nn.concat"
    inputs = var_operand_def(TensorType)
    output = result_def(TensorType)
    axis = prop_def(IntegerAttr[I64])
    assembly_format = "$inputs attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        if not shapes:
            raise VerifyException("nn.concat expects at least one input")
        first = shapes[0]
        axis = normalize_axis("nn.concat", prop_int(props, "axis", 0), len(first))
        for i, s in enumerate(shapes[1:], 1):
            if len(s) != len(first) or s[:axis] + s[axis + 1:] != first[:axis] + first[axis + 1:]:
                raise VerifyException(
                    f"nn.concat expects inputs equal except on axis {axis}, "
                    f"got input 0 {_fmt(first)} and input {i} {_fmt(s)}"
                )
        total = sum(s[axis] for s in shapes)
        return [first[:axis] + (total,) + first[axis + 1:]]


@irdl_op_definition
class SliceOp(NNOp):
    """Static strided slice (ONNX Slice with constant starts/ends/axes/steps).

        %y = nn.slice %x {starts = array<i64: 0>, ends = array<i64: 2>, axes = array<i64: 1>} : (tensor<1x4xf32>) -> tensor<1x2xf32>
    """

    name = "nn.slice"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    starts = prop_def(IntArray)
    ends = prop_def(IntArray)
    axes = prop_def(IntArray)
    steps = opt_prop_def(IntArray)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        x = list(shapes[0])
        starts, ends = prop_ints(props, "starts", ()), prop_ints(props, "ends", ())
        axes = prop_ints(props, "axes", ())
        steps = prop_ints(props, "steps", (1,) * len(axes))
        if not len(starts) == len(ends) == len(axes) == len(steps):
            raise VerifyException(
                "nn.slice expects starts, ends, axes and steps of equal length, got "
                f"{len(starts)}, {len(ends)}, {len(axes)} and {len(steps)}"
            )
        for s, e, a, st in zip(starts, ends, axes, steps):
            a = normalize_axis("nn.slice", a, len(x))
            if st == 0:
                raise VerifyException("nn.slice expects non-zero steps, got 0")
            x[a] = len(range(*slice(s, e, st).indices(x[a])))
        return [tuple(x)]


@irdl_op_definition
class SplitOp(NNOp):
    """Split along `axis` into pieces of the given `sizes` (ONNX Split).

        %a, %b = nn.split %x {axis = 1 : i64, sizes = array<i64: 2, 2>} : (tensor<1x4xf32>) -> (tensor<1x2xf32>, tensor<1x2xf32>)
    """

    name = "nn.split"
    input = operand_def(TensorType)
    outputs = var_result_def(TensorType)
    axis = prop_def(IntegerAttr[I64])
    sizes = prop_def(IntArray)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        x = shapes[0]
        axis = normalize_axis("nn.split", prop_int(props, "axis", 0), len(x))
        sizes = prop_ints(props, "sizes", ())
        if sum(sizes) != x[axis] or min(sizes, default=0) < 1:
            raise VerifyException(
                f"nn.split expects positive sizes summing to {x[axis]}, got {list(sizes)}"
            )
        return [x[:axis] + (s,) + x[axis + 1:] for s in sizes]


@irdl_op_definition
class GatherOp(NNOp):
    """Gather slices of `data` along `axis` at integer `indices` (ONNX Gather; embeddings).

        %y = nn.gather %table, %ids {axis = 0 : i64} : (tensor<1000x64xf32>, tensor<1x8xi64>) -> tensor<1x8x64xf32>
    """

    name = "nn.gather"
    data = operand_def(TensorType)
    indices = operand_def(TensorType)
    output = result_def(TensorType)
    axis = prop_def(IntegerAttr[I64], default_value=i64_attr(0))
    assembly_format = "$data `,` $indices attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        d, i = shapes
        axis = normalize_axis("nn.gather", prop_int(props, "axis", 0), len(d))
        return [d[:axis] + i + d[axis + 1:]]

    def verify_(self) -> None:
        super().verify_()
        if not isinstance(value_element_type(self.indices), IntegerType):
            raise VerifyException(f"nn.gather expects integer indices, got {self.indices.type}")


NN = Dialect(
    "nn",
    [
        ConstantOp,
        ReluOp, Relu6Op, ClipOp, SigmoidOp, TanhOp, GeluOp, SiluOp, HardSigmoidOp, HardSwishOp,
        ErfOp, SqrtOp, ExpOp, NegOp,
        AddOp, SubOp, MulOp, DivOp, PowOp,
        Conv2dOp, MatmulOp, LinearOp,
        BatchNormOp, LayerNormOp, SoftmaxOp, ReduceMeanOp,
        MaxPoolOp, AvgPoolOp, GlobalAvgPoolOp,
        ReshapeOp, FlattenOp, TransposeOp, ConcatOp, SliceOp, SplitOp, GatherOp,
    ],
    [WeightAttr, SparsityAttr],
)
