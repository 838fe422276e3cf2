"""Table-driven broadcasting binaries beyond arithmetic: comparisons with a boolean
result (`nn.equal`, `nn.less`, ...), logical and bitwise ops, `nn.min` / `nn.max`,
`nn.mod`, `nn.bit_shift`, `nn.prelu`, and the ternary select `nn.where`.

    %m = nn.less %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
    %z = nn.max %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
    %r = nn.mod %x, %y {fmod = 1 : i64} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    %s = nn.where %m, %x, %y : (tensor<2x3xi1>, tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>

Every class is generated from a row of `COMPARISONS` / `BINARIES`; `LOGIC_OPS` maps the
short name to the class. Kernels: `backends/reference/logic_kernels.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from xdsl.dialects.builtin import I64, IntegerAttr, IntegerType, StringAttr, TensorType
from xdsl.ir import Attribute
from xdsl.irdl import irdl_op_definition, operand_def, prop_def, result_def
from xdsl.utils.exceptions import VerifyException

from irflow.dialects.nn.attributes import i64_attr
from irflow.dialects.nn.base import NNOp
from irflow.dialects.nn.elementwise import BinaryOp
from irflow.dialects.nn.shapes import Shape, broadcast_shapes, value_element_type

# short name -> ONNX operator; the result is i1.
COMPARISONS: dict[str, str] = {
    "equal": "Equal", "less": "Less", "less_or_equal": "LessOrEqual",
    "greater": "Greater", "greater_or_equal": "GreaterOrEqual",
}
# short name -> ONNX operator; the result has the operands' type.
BINARIES: dict[str, str] = {
    "and": "And", "or": "Or", "xor": "Xor",
    "bitwise_and": "BitwiseAnd", "bitwise_or": "BitwiseOr", "bitwise_xor": "BitwiseXor",
    "min": "Min", "max": "Max", "mod": "Mod", "bit_shift": "BitShift", "prelu": "PRelu",
}
# properties of some binaries
_PROPS: dict[str, dict[str, object]] = {
    "mod": {"fmod": prop_def(IntegerAttr[I64], default_value=i64_attr(0))},
    "bit_shift": {"direction": prop_def(StringAttr)},
}

LOGIC_OPS: dict[str, type[NNOp]] = {}


def _is_bool(attr: Attribute) -> bool:
    return isinstance(attr, IntegerType) and attr.width.data == 1


class CompareOp(BinaryOp):
    """z = x ∘ y with broadcasting; an i1 result."""

    def verify_(self) -> None:
        super().verify_()
        if not _is_bool(value_element_type(self.output)):
            raise VerifyException(f"{self.name} expects an i1 result, got {self.output.type}")


def _define(short: str, base_cls: type[NNOp], onnx: str) -> None:
    name = "".join(p.capitalize() for p in short.split("_")) + "Op"
    doc = (f"`%z = nn.{short} %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3x"
           f"{'i1' if base_cls is CompareOp else 'f32'}>` (ONNX {onnx}, broadcasting).")
    cls = type(name, (base_cls,), {"name": f"nn.{short}", "__doc__": doc,
                                   "__module__": __name__, **_PROPS.get(short, {})})
    LOGIC_OPS[short] = irdl_op_definition(cls)


for _short, _onnx in COMPARISONS.items():
    _define(_short, CompareOp, _onnx)
for _short, _onnx in BINARIES.items():
    _define(_short, BinaryOp, _onnx)


@irdl_op_definition
class WhereOp(NNOp):
    """`%z = nn.where %c, %x, %y : (tensor<2x3xi1>, tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>`
    — x where c else y, three-way broadcasting (ONNX Where)."""

    name = "nn.where"
    condition = operand_def(TensorType)
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    output = result_def(TensorType)
    assembly_format = "$condition `,` $lhs `,` $rhs attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        return [broadcast_shapes("nn.where", broadcast_shapes("nn.where", shapes[0], shapes[1]),
                                 shapes[2])]

    def verify_(self) -> None:
        super().verify_()
        if not _is_bool(value_element_type(self.condition)):
            raise VerifyException(f"nn.where expects an i1 condition, got {self.condition.type}")
        if value_element_type(self.output) != value_element_type(self.lhs):
            raise VerifyException("nn.where expects the result element type of its operands, "
                                  f"got {self.lhs.type} -> {self.output.type}")


LOGIC_OPS["where"] = WhereOp

__all__ = ["LOGIC_OPS", "COMPARISONS", "BINARIES", "CompareOp", "WhereOp"]
