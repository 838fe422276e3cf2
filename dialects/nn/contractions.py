"""Contractions, where the MACs are: `nn.conv2d`, `nn.matmul`, `nn.linear`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from xdsl.dialects.builtin import I64, IntegerAttr, StringAttr, TensorType
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.irdl import (
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    result_def,
)
from xdsl.utils.exceptions import VerifyException

from irflow.dialects.nn.attributes import IntArray, i64_attr, int_array
from irflow.dialects.nn.base import NNOp, TwoOperandOp
from irflow.dialects.nn.shapes import (
    Props,
    Shape,
    broadcast_shapes,
    prop_int,
    prop_ints,
    shape_of,
    value_element_type,
    window_out,
)
from irflow.dialects.nn.shapes import format_shape as _fmt


class ConvParams(NamedTuple):
    strides: tuple[int, ...]
    pads: tuple[int, ...]  # [top, left, bottom, right]
    dilations: tuple[int, ...]
    groups: int


def conv2d_params(op: Operation | Props) -> ConvParams:
    """The window properties of an `nn.conv2d` (or of its property dict, e.g. an
    `accel.layer`'s `params`), defaults filled in: what kernels and exporters read."""
    return ConvParams(
        prop_ints(op, "strides", (1, 1)),
        prop_ints(op, "pads", (0, 0, 0, 0)),
        prop_ints(op, "dilations", (1, 1)),
        prop_int(op, "groups", 1),
    )


class ConvWindow:
    """The window properties every 2-D convolution op carries (`nn.conv2d` and its
    gradients): a mixin of IRDL property definitions, read with `conv2d_params`."""

    strides = prop_def(IntArray, default_value=int_array([1, 1]))
    pads = prop_def(IntArray, default_value=int_array([0, 0, 0, 0]))
    dilations = prop_def(IntArray, default_value=int_array([1, 1]))
    groups = prop_def(IntegerAttr[I64], default_value=i64_attr(1))


@irdl_op_definition
class Conv2dOp(NNOp, ConvWindow):
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
        strides, pads, dil, groups = conv2d_params(props)
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
class MatmulOp(TwoOperandOp):
    """Matrix product with ONNX MatMul semantics (batched, broadcasting batch dims).

        %c = nn.matmul %a, %b : (tensor<4x8x16xf32>, tensor<16x32xf32>) -> tensor<4x8x32xf32>
    """

    name = "nn.matmul"

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
