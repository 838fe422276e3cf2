"""Normalizations and reductions over axes: `nn.batchnorm`, `nn.layernorm`,
`nn.softmax`, `nn.reduce_mean`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from xdsl.dialects.builtin import I64, IntegerAttr, TensorType
from xdsl.ir import Attribute
from xdsl.irdl import (
    VarConstraint,
    base,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    prop_def,
    result_def,
)
from xdsl.utils.exceptions import VerifyException

from irflow.dialects.nn.attributes import F64, IntArray, f64, i64_attr
from irflow.dialects.nn.base import NNOp
from irflow.dialects.nn.shapes import Shape, broadcast_shapes, normalize_axis, prop_int, prop_ints
from irflow.dialects.nn.shapes import format_shape as _fmt


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
