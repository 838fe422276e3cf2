"""Pooling over NCHW windows: `nn.maxpool`, `nn.avgpool`, `nn.global_avg_pool`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from xdsl.dialects.builtin import I64, IntegerAttr, TensorType
from xdsl.ir import Attribute, Operation
from xdsl.irdl import irdl_op_definition, operand_def, prop_def, result_def
from xdsl.utils.exceptions import VerifyException

from irflow.dialects.nn.attributes import IntArray, i64_attr, int_array
from irflow.dialects.nn.base import NNOp
from irflow.dialects.nn.shapes import Props, Shape, prop_int, prop_ints, window_out
from irflow.dialects.nn.shapes import format_shape as _fmt


class PoolParams(NamedTuple):
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    pads: tuple[int, ...]  # [top, left, bottom, right]
    ceil_mode: bool
    count_include_pad: bool  # nn.avgpool only (False for nn.maxpool)


def pool2d_params(op: Operation | Props) -> PoolParams:
    """The window properties of an `nn.maxpool`/`nn.avgpool` (or of its property dict,
    e.g. an `accel.layer`'s `params`), defaults filled in: what kernels and exporters read."""
    return PoolParams(
        prop_ints(op, "kernel", ()),
        prop_ints(op, "strides", (1, 1)),
        prop_ints(op, "pads", (0, 0, 0, 0)),
        bool(prop_int(op, "ceil_mode", 0)),
        bool(prop_int(op, "count_include_pad", 0)),
    )


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
        k, s, p, ceil, _ = pool2d_params(props)
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
