"""Data movement, no arithmetic: `nn.reshape`, `nn.flatten`, `nn.transpose`,
`nn.concat`, `nn.slice`, `nn.split`, `nn.gather`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from xdsl.dialects.builtin import I64, IntegerAttr, IntegerType, TensorType
from xdsl.ir import Attribute, SSAValue
from xdsl.irdl import (
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    var_operand_def,
    var_result_def,
)
from xdsl.utils.exceptions import VerifyException

from irflow.dialects.nn.attributes import IntArray, i64_attr
from irflow.dialects.nn.base import NNOp
from irflow.dialects.nn.shapes import (
    Shape,
    normalize_axis,
    prop_int,
    prop_ints,
    shape_of,
    value_element_type,
)
from irflow.dialects.nn.shapes import format_shape as _fmt


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
