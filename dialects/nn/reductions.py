"""Table-driven reductions and scans over axes: `nn.reduce_sum`, `nn.reduce_max`, ...
(one row each in `REDUCTIONS`), `nn.arg_max` / `nn.arg_min`, `nn.log_softmax`,
`nn.hardmax`, `nn.cumsum` / `nn.cumprod` and `nn.topk` (two results).

    %s = nn.reduce_sum %x {axes = array<i64: 1>, keepdims = 0 : i64} : (tensor<2x3xf32>) -> tensor<2xf32>
    %i = nn.arg_max %x {axis = 1 : i64} : (tensor<2x3xf32>) -> tensor<2x1xi64>
    %v, %i = nn.topk %x {k = 2 : i64} : (tensor<2x3xf32>) -> (tensor<2x2xf32>, tensor<2x2xi64>)

(`nn.reduce_mean` is in `normalization`, where the models' layer norms use it.) Kernels:
`backends/reference/reduction_kernels.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from xdsl.dialects.builtin import I64, IntegerAttr, TensorType
from xdsl.ir import Attribute
from xdsl.irdl import (
    irdl_op_definition,
    operand_def,
    prop_def,
    result_def,
)
from xdsl.utils.exceptions import VerifyException

from irflow.dialects.nn.attributes import IntArray, i64_prop
from irflow.dialects.nn.base import NNOp
from irflow.dialects.nn.shapes import Shape, normalize_axis, prop_int, prop_ints

# short name -> (ONNX operator, what it computes over the axes)
REDUCTIONS: dict[str, tuple[str, str]] = {
    "reduce_sum": ("ReduceSum", "sum"),
    "reduce_max": ("ReduceMax", "maximum"),
    "reduce_min": ("ReduceMin", "minimum"),
    "reduce_prod": ("ReduceProd", "product"),
    "reduce_l1": ("ReduceL1", "sum of |x|"),
    "reduce_l2": ("ReduceL2", "sqrt of the sum of x²"),
    "reduce_log_sum": ("ReduceLogSum", "log of the sum"),
    "reduce_log_sum_exp": ("ReduceLogSumExp", "log of the sum of exp(x)"),
    "reduce_sum_square": ("ReduceSumSquare", "sum of x²"),
}
# short name -> ONNX operator: a map along one axis (softmax-like), same shape
AXIS_MAPS: dict[str, str] = {"log_softmax": "LogSoftmax", "hardmax": "Hardmax"}
# short name -> ONNX operator: an inclusive/exclusive, forward/reverse scan along one axis
SCANS: dict[str, str] = {"cumsum": "CumSum", "cumprod": "CumProd"}
# short name -> ONNX operator: index of the extreme along one axis (i64 result)
ARG_REDUCTIONS: dict[str, str] = {"arg_max": "ArgMax", "arg_min": "ArgMin"}

REDUCTION_OPS: dict[str, type[NNOp]] = {}



class ReduceOp(NNOp):
    """Reduce `axes`, keeping them as size 1 when `keepdims`; empty `axes` reduces nothing
    (ONNX's noop_with_empty_axes=1: the importer spells "all axes" out)."""

    input = operand_def(TensorType)
    output = result_def(TensorType)
    axes = prop_def(IntArray)
    keepdims = i64_prop(1)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        x = shapes[0]
        axes = {normalize_axis(cls.name, a, len(x)) for a in prop_ints(props, "axes", ())}
        keep = prop_int(props, "keepdims", 1)
        return [tuple(1 if i in axes else d for i, d in enumerate(x) if keep or i not in axes)]


class ArgReduceOp(NNOp):
    """The index (i64) of the extreme along `axis`; ties: first, or last with
    `select_last_index`."""

    input = operand_def(TensorType)
    output = result_def(TensorType)
    axis = i64_prop(0)
    keepdims = i64_prop(1)
    select_last_index = i64_prop(0)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        x = shapes[0]
        axis = normalize_axis(cls.name, prop_int(props, "axis", 0), len(x))
        keep = prop_int(props, "keepdims", 1)
        return [tuple(1 if i == axis else d for i, d in enumerate(x) if keep or i != axis)]


class AxisMapOp(NNOp):
    """Same shape, computed along `axis`."""

    input = operand_def(TensorType)
    output = result_def(TensorType)
    axis = i64_prop(-1)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        normalize_axis(cls.name, prop_int(props, "axis", -1), len(shapes[0]))
        return [shapes[0]]


class ScanOp(AxisMapOp):
    """A running sum or product along `axis`; `exclusive` starts from the identity,
    `reverse` runs from the end."""

    exclusive = i64_prop(0)
    reverse = i64_prop(0)


def _define(short: str, base_cls: type[NNOp], doc: str) -> None:
    name = "".join(p.capitalize() for p in short.split("_")) + "Op"
    cls = type(name, (base_cls,), {"name": f"nn.{short}", "__doc__": doc,
                                   "__module__": __name__})
    REDUCTION_OPS[short] = irdl_op_definition(cls)


for _short, (_onnx, _what) in REDUCTIONS.items():
    _define(_short, ReduceOp, f"`%y = nn.{_short} %x {{axes = array<i64: 1>}} : (tensor<2x3xf32>)"
            f" -> tensor<2x1xf32>` — the {_what} over `axes` (ONNX {_onnx}).")
for _short, _onnx in AXIS_MAPS.items():
    _define(_short, AxisMapOp, f"`%y = nn.{_short} %x {{axis = -1 : i64}} : (tensor<2x3xf32>) -> "
            f"tensor<2x3xf32>` (ONNX {_onnx}, opset 13 semantics).")
for _short, _onnx in SCANS.items():
    _define(_short, ScanOp, f"`%y = nn.{_short} %x {{axis = 0 : i64}} : (tensor<4xf32>) -> "
            f"tensor<4xf32>` (ONNX {_onnx}).")
for _short, _onnx in ARG_REDUCTIONS.items():
    _define(_short, ArgReduceOp, f"`%i = nn.{_short} %x {{axis = 1 : i64}} : (tensor<2x3xf32>) "
            f"-> tensor<2x1xi64>` (ONNX {_onnx}).")


@irdl_op_definition
class TopKOp(NNOp):
    """The `k` largest (or smallest) values along `axis` and their i64 indices (ONNX TopK;
    ties keep the lower index).

        %v, %i = nn.topk %x {k = 2 : i64} : (tensor<2x3xf32>) -> (tensor<2x2xf32>, tensor<2x2xi64>)
    """

    name = "nn.topk"
    input = operand_def(TensorType)
    values = result_def(TensorType)
    indices = result_def(TensorType)
    k = prop_def(IntegerAttr[I64])
    axis = i64_prop(-1)
    largest = i64_prop(1)
    sorted = i64_prop(1)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        x = shapes[0]
        axis = normalize_axis("nn.topk", prop_int(props, "axis", -1), len(x))
        k = prop_int(props, "k", 1)
        if not 0 <= k <= x[axis]:
            raise VerifyException(f"nn.topk expects 0 <= k <= {x[axis]}, got {k}")
        out = x[:axis] + (k,) + x[axis + 1:]
        return [out, out]


REDUCTION_OPS["topk"] = TopKOp

__all__ = ["REDUCTION_OPS", "REDUCTIONS", "AXIS_MAPS", "SCANS", "ARG_REDUCTIONS", "ReduceOp",
           "ArgReduceOp", "AxisMapOp", "ScanOp", "TopKOp"]
