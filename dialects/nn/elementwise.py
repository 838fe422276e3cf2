"""Elementwise nn ops: activations and other unary maps (`UnaryOp`), broadcasting
binary arithmetic (`BinaryOp`), and the fusable activations (`FUSABLE_ACTIVATIONS`,
the names a producer's `act` property may take)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from xdsl.dialects.builtin import StringAttr, TensorType
from xdsl.ir import Attribute, SSAValue
from xdsl.irdl import (
    VarConstraint,
    base,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    result_def,
)
from xdsl.utils.exceptions import VerifyException

from irflow.dialects.nn.attributes import F64, f64
from irflow.dialects.nn.base import NNOp, TwoOperandOp
from irflow.dialects.nn.shapes import Shape, broadcast_shapes, shape_of, value_element_type


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



class BinaryOp(TwoOperandOp):
    """z = x ∘ y with numpy/ONNX broadcasting."""

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
