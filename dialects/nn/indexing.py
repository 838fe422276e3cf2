"""Data movement by pattern or by index: `nn.expand`, `nn.tile`, `nn.pad`, `nn.trilu`,
`nn.depth_to_space`, `nn.space_to_depth`, `nn.gather_elements`, `nn.gather_nd`,
`nn.scatter_elements`, `nn.scatter_nd`, `nn.one_hot`.

    %y = nn.expand %x {shape = array<i64: 2, 3>} : (tensor<1x3xf32>) -> tensor<2x3xf32>
    %y = nn.pad %x {pads = array<i64: 0, 1, 0, 1>, mode = "reflect"} : (tensor<2x3xf32>) -> tensor<2x5xf32>
    %y = nn.gather_elements %x, %i {axis = 1 : i64} : (tensor<2x3xf32>, tensor<2x2xi64>) -> tensor<2x2xf32>

Shapes are static: every size comes from a property (ONNX takes several of them as
inputs; the importer folds those, they must be known at import time). Kernels:
`backends/reference/indexing_kernels.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from xdsl.dialects.builtin import I64, IntegerAttr, IntegerType, StringAttr, TensorType
from xdsl.ir import Attribute
from xdsl.irdl import (
    irdl_op_definition,
    operand_def,
    prop_def,
    result_def,
)
from xdsl.utils.exceptions import VerifyException

from irflow.dialects.nn.attributes import F64, IntArray, f64, i64_prop
from irflow.dialects.nn.base import NNOp
from irflow.dialects.nn.shapes import (
    Shape,
    broadcast_shapes,
    normalize_axis,
    prop_int,
    prop_ints,
    prop_str,
    value_element_type,
)
from irflow.dialects.nn.shapes import format_shape as _fmt


class _Unary(NNOp):
    input = operand_def(TensorType)
    output = result_def(TensorType)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"


class _Indexed(NNOp):
    """data, indices (, updates) -> output."""

    def verify_(self) -> None:
        super().verify_()
        if not isinstance(value_element_type(self.operands[1]), IntegerType):
            raise VerifyException(f"{self.name} expects integer indices, got "
                                  f"{self.operands[1].type}")


@irdl_op_definition
class ExpandOp(_Unary):
    """`%y = nn.expand %x {shape = array<i64: 2, 3>} : (tensor<1x3xf32>) -> tensor<2x3xf32>` —
    broadcast to `shape` (ONNX Expand: the result is the broadcast of both shapes)."""

    name = "nn.expand"
    shape = prop_def(IntArray)

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        return [broadcast_shapes("nn.expand", shapes[0], prop_ints(props, "shape", ()))]


@irdl_op_definition
class TileOp(_Unary):
    """`%y = nn.tile %x {repeats = array<i64: 1, 2>} : (tensor<2x3xf32>) -> tensor<2x6xf32>` (ONNX Tile)."""

    name = "nn.tile"
    repeats = prop_def(IntArray)

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        reps = prop_ints(props, "repeats", ())
        if len(reps) != len(shapes[0]) or min(reps, default=0) < 0:
            raise VerifyException(f"nn.tile expects {len(shapes[0])} repeats >= 0, got "
                                  f"{list(reps)}")
        return [tuple(d * r for d, r in zip(shapes[0], reps))]


PAD_MODES = ("constant", "reflect", "edge", "wrap")


@irdl_op_definition
class PadOp(_Unary):
    """`%y = nn.pad %x {pads = array<i64: 0, 1, 0, 1>} : (tensor<2x3xf32>) -> tensor<2x5xf32>` —
    `pads` = [x1_begin, x2_begin, ..., x1_end, x2_end, ...] (negative crops), `mode` one of
    constant (with `value`), reflect, edge, wrap (ONNX Pad)."""

    name = "nn.pad"
    pads = prop_def(IntArray)
    mode = prop_def(StringAttr, default_value=StringAttr("constant"))
    value = prop_def(F64, default_value=f64(0.0))

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        x = shapes[0]
        pads = prop_ints(props, "pads", ())
        mode = prop_str(props, "mode", "constant")
        if mode not in PAD_MODES:
            raise VerifyException(f"nn.pad expects mode in {list(PAD_MODES)}, got '{mode}'")
        if len(pads) != 2 * len(x):
            raise VerifyException(f"nn.pad expects {2 * len(x)} pads for {_fmt(x)}, got "
                                  f"{list(pads)}")
        out = tuple(d + pads[i] + pads[i + len(x)] for i, d in enumerate(x))
        if min(out, default=0) < 0:
            raise VerifyException(f"nn.pad pads {list(pads)} crop {_fmt(x)} below zero")
        return [out]


@irdl_op_definition
class TriluOp(_Unary):
    """`%y = nn.trilu %x {upper = 1 : i64, k = 0 : i64} : (tensor<3x3xf32>) -> tensor<3x3xf32>` —
    keep the upper (or lower) triangle from diagonal `k` of the last two axes (ONNX Trilu)."""

    name = "nn.trilu"
    upper = i64_prop(1)
    k = i64_prop(0)

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        if len(shapes[0]) < 2:
            raise VerifyException(f"nn.trilu expects rank >= 2, got {_fmt(shapes[0])}")
        return [shapes[0]]


@irdl_op_definition
class DepthToSpaceOp(_Unary):
    """`%y = nn.depth_to_space %x {blocksize = 2 : i64, mode = "DCR"} : (tensor<1x8x2x2xf32>) -> tensor<1x2x4x4xf32>`
    (ONNX DepthToSpace, modes DCR and CRD)."""

    name = "nn.depth_to_space"
    blocksize = prop_def(IntegerAttr[I64])
    mode = prop_def(StringAttr, default_value=StringAttr("DCR"))

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        b = prop_int(props, "blocksize", 1)
        if len(shapes[0]) != 4 or shapes[0][1] % (b * b):
            raise VerifyException(f"nn.depth_to_space expects NCHW with C divisible by "
                                  f"{b * b}, got {_fmt(shapes[0])}")
        if prop_str(props, "mode", "DCR") not in ("DCR", "CRD"):
            raise VerifyException("nn.depth_to_space expects mode DCR or CRD")
        n, c, h, w = shapes[0]
        return [(n, c // (b * b), h * b, w * b)]


@irdl_op_definition
class SpaceToDepthOp(_Unary):
    """`%y = nn.space_to_depth %x {blocksize = 2 : i64} : (tensor<1x2x4x4xf32>) -> tensor<1x8x2x2xf32>`
    (ONNX SpaceToDepth, modes DCR and CRD)."""

    name = "nn.space_to_depth"
    blocksize = prop_def(IntegerAttr[I64])
    mode = prop_def(StringAttr, default_value=StringAttr("DCR"))

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        b = prop_int(props, "blocksize", 1)
        if len(shapes[0]) != 4 or shapes[0][2] % b or shapes[0][3] % b:
            raise VerifyException(f"nn.space_to_depth expects NCHW with H, W divisible by {b}, "
                                  f"got {_fmt(shapes[0])}")
        n, c, h, w = shapes[0]
        return [(n, c * b * b, h // b, w // b)]


@irdl_op_definition
class GatherElementsOp(_Indexed):
    """`%y = nn.gather_elements %x, %i {axis = 1 : i64} : (tensor<2x3xf32>, tensor<2x2xi64>) -> tensor<2x2xf32>`
    (ONNX GatherElements)."""

    name = "nn.gather_elements"
    data = operand_def(TensorType)
    indices = operand_def(TensorType)
    output = result_def(TensorType)
    axis = i64_prop(0)
    assembly_format = "$data `,` $indices attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        d, i = shapes
        normalize_axis(cls.name, prop_int(props, "axis", 0), len(d))
        if len(d) != len(i):
            raise VerifyException(f"nn.gather_elements expects indices of rank {len(d)}, got "
                                  f"{_fmt(i)}")
        return [i]


@irdl_op_definition
class GatherNDOp(_Indexed):
    """`%y = nn.gather_nd %x, %i {batch_dims = 0 : i64} : (tensor<2x2xf32>, tensor<2x2xi64>) -> tensor<2xf32>`
    (ONNX GatherND)."""

    name = "nn.gather_nd"
    data = operand_def(TensorType)
    indices = operand_def(TensorType)
    output = result_def(TensorType)
    batch_dims = i64_prop(0)
    assembly_format = "$data `,` $indices attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        d, i = shapes
        b = prop_int(props, "batch_dims", 0)
        last = i[-1] if i else 0
        if not i or b + last > len(d):
            raise VerifyException(f"nn.gather_nd cannot index {_fmt(d)} with {_fmt(i)}")
        return [i[:-1] + d[b + last:]]


class _Scatter(_Indexed):
    data = operand_def(TensorType)
    indices = operand_def(TensorType)
    updates = operand_def(TensorType)
    output = result_def(TensorType)
    reduction = prop_def(StringAttr, default_value=StringAttr("none"))
    assembly_format = ("$data `,` $indices `,` $updates attr-dict `:` "
                       "functional-type(operands, results)")

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        if prop_str(props, "reduction", "none") not in ("none", "add", "mul", "max", "min"):
            raise VerifyException(f"{cls.name} expects reduction none, add, mul, max or min")
        return [shapes[0]]


@irdl_op_definition
class ScatterElementsOp(_Scatter):
    """`%y = nn.scatter_elements %x, %i, %u {axis = 1 : i64} : (...) -> tensor<2x3xf32>`
    (ONNX ScatterElements, with `reduction`)."""

    name = "nn.scatter_elements"
    axis = i64_prop(0)


@irdl_op_definition
class ScatterNDOp(_Scatter):
    """`%y = nn.scatter_nd %x, %i, %u : (...) -> tensor<4x4xf32>` (ONNX ScatterND, with `reduction`)."""

    name = "nn.scatter_nd"


@irdl_op_definition
class OneHotOp(_Indexed):
    """`%y = nn.one_hot %i, %v {depth = 10 : i64, axis = -1 : i64} : (tensor<3xi64>, tensor<2xf32>) -> tensor<3x10xf32>`
    — `values` = [off, on] (ONNX OneHot; negative indices count from depth)."""

    name = "nn.one_hot"
    indices = operand_def(TensorType)
    values = operand_def(TensorType)
    output = result_def(TensorType)
    depth = prop_def(IntegerAttr[I64])
    axis = i64_prop(-1)
    assembly_format = "$indices `,` $values attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        i = shapes[0]
        axis = normalize_axis("nn.one_hot", prop_int(props, "axis", -1), len(i) + 1)
        depth = prop_int(props, "depth", 1)
        return [i[:axis] + (depth,) + i[axis:]]

    def verify_(self) -> None:
        NNOp.verify_(self)


INDEXING_OPS: dict[str, type[NNOp]] = {
    op.name.removeprefix("nn."): op for op in (
        ExpandOp, TileOp, PadOp, TriluOp, DepthToSpaceOp, SpaceToDepthOp, GatherElementsOp,
        GatherNDOp, ScatterElementsOp, ScatterNDOp, OneHotOp)
}

__all__ = ["INDEXING_OPS", "PAD_MODES", "ExpandOp", "TileOp", "PadOp", "TriluOp",
           "DepthToSpaceOp", "SpaceToDepthOp", "GatherElementsOp", "GatherNDOp",
           "ScatterElementsOp", "ScatterNDOp", "OneHotOp"]
