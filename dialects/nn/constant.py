"""`nn.constant`: a tensor held in the weight store (`#nn.weight<"name">`) or inline
(`dense<...>`), and `defining_constant` to find it from a value."""

from __future__ import annotations

from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, TensorType
from xdsl.ir import Attribute, SSAValue
from xdsl.irdl import IRDLOperation, irdl_op_definition, prop_def, result_def, traits_def
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import ConstantLike, Pure
from xdsl.utils.exceptions import VerifyException

from irflow.dialects.nn.attributes import WeightAttr
from irflow.dialects.nn.shapes import format_shape as _fmt
from irflow.dialects.nn.shapes import shape_of


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
