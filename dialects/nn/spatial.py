"""N-D spatial ops beyond `nn.conv2d` and the 2-D pools: `nn.conv_transpose`, `nn.pool`
(max / average / Lp over 1-, 2- or 3-D windows, with dilations), `nn.resize` and `nn.lrn`.

    %y = nn.conv_transpose %x, %w {strides = array<i64: 2, 2>} : (tensor<1x4x8x8xf32>, tensor<4x2x2x2xf32>) -> tensor<1x2x16x16xf32>
    %y = nn.pool %x {mode = "max", kernel = array<i64: 2, 2, 2>} : (tensor<1x3x8x8x8xf32>) -> tensor<1x3x7x7x7xf32>
    %y = nn.resize %x {sizes = array<i64: 1, 3, 16, 16>, scales = array<f64: 1.0, 1.0, 2.0, 2.0>} : (tensor<1x3x8x8xf32>) -> tensor<1x3x16x16xf32>
    %y = nn.lrn %x {size = 3 : i64} : (tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>

ONNX semantics (ConvTranspose, MaxPool/AveragePool/LpPool, Resize, LRN); window `pads` are
ONNX's [begin_0, begin_1, ..., end_0, end_1, ...]. Resize keeps every size static: the
importer resolves ONNX's `scales`/`sizes`/`axes`/`keep_aspect_ratio_policy` into the full
output shape `sizes` and the per-axis `scales` the coordinate transformation uses.
Kernels: `backends/reference/spatial_kernels.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from xdsl.dialects.builtin import I64, DenseArrayBase, IntegerAttr, StringAttr, TensorType, f64
from xdsl.ir import Attribute
from xdsl.irdl import (
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    result_def,
)
from xdsl.utils.exceptions import VerifyException

from irflow.dialects.nn.attributes import F64, IntArray, i64_prop
from irflow.dialects.nn.attributes import f64 as f64_attr
from irflow.dialects.nn.base import NNOp
from irflow.dialects.nn.shapes import Shape, prop_int, prop_ints, prop_str, window_out
from irflow.dialects.nn.shapes import format_shape as _fmt

F64Array = DenseArrayBase.constr(f64)


def f64_array(values: Sequence[float]) -> DenseArrayBase:
    return DenseArrayBase.from_list(f64, [float(v) for v in values])


def prop_floats(props: Mapping[str, Attribute], name: str,
                default: Sequence[float]) -> tuple[float, ...]:
    attr = props.get(name)
    if attr is None:
        return tuple(default)
    assert isinstance(attr, DenseArrayBase)
    return tuple(float(v) for v in attr.get_values())



def window_params(props: Mapping[str, Attribute], n: int
                  ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(strides, pads, dilations) of an n-D window op, defaults filled in."""
    return (prop_ints(props, "strides", (1,) * n), prop_ints(props, "pads", (0,) * (2 * n)),
            prop_ints(props, "dilations", (1,) * n))


def _check_window(name: str, n: int, strides: Sequence[int], pads: Sequence[int],
                  dil: Sequence[int], extra: Sequence[int] = ()) -> None:
    if len(strides) != n or len(pads) != 2 * n or len(dil) != n or any(
            len(e) != n for e in extra):  # type: ignore[arg-type]
        raise VerifyException(f"{name} expects {n} strides and dilations and {2 * n} pads "
                              f"for a {n}-D window, got {list(strides)}, {list(dil)} and "
                              f"{list(pads)}")
    if min(strides, default=1) < 1 or min(dil, default=1) < 1 or min(pads, default=0) < 0:
        raise VerifyException(f"{name} expects strides, dilations >= 1 and pads >= 0, got "
                              f"{list(strides)}, {list(dil)} and {list(pads)}")


@irdl_op_definition
class ConvTransposeOp(NNOp):
    """Transposed convolution (ONNX ConvTranspose), 1-, 2- or 3-D: input (N, C, *in),
    weight (C, F/groups, *kernel), optional bias (F).

        %y = nn.conv_transpose %x, %w {strides = array<i64: 2, 2>} : (tensor<1x4x8x8xf32>, tensor<4x2x2x2xf32>) -> tensor<1x2x16x16xf32>

    out = (in − 1)·stride + (kernel − 1)·dilation + 1 − pad_begin − pad_end + output_padding.
    """

    name = "nn.conv_transpose"
    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    output = result_def(TensorType)
    strides = opt_prop_def(IntArray)
    pads = opt_prop_def(IntArray)
    dilations = opt_prop_def(IntArray)
    output_padding = opt_prop_def(IntArray)
    groups = i64_prop(1)
    assembly_format = (
        "$input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)"
    )

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        x, w = shapes[0], shapes[1]
        n = len(x) - 2
        if n < 1 or len(w) != len(x):
            raise VerifyException(f"nn.conv_transpose expects input (N, C, spatial...) and "
                                  f"weight (C, F/groups, kernel...) of one rank >= 3, got "
                                  f"{_fmt(x)} and {_fmt(w)}")
        strides, pads, dil = window_params(props, n)
        outpad = prop_ints(props, "output_padding", (0,) * n)
        _check_window(cls.name, n, strides, pads, dil, [outpad])
        groups = prop_int(props, "groups", 1)
        if groups < 1 or x[1] != w[0] or x[1] % groups:
            raise VerifyException(f"nn.conv_transpose expects weight channels = input "
                                  f"channels, divisible by groups {groups}, got {_fmt(x)} "
                                  f"and {_fmt(w)}")
        f = w[1] * groups
        if len(shapes) > 2 and shapes[2] != (f,):
            raise VerifyException(f"nn.conv_transpose expects bias of shape {f}, got "
                                  f"{_fmt(shapes[2])}")
        out = tuple((x[2 + i] - 1) * strides[i] + (w[2 + i] - 1) * dil[i] + 1 - pads[i]
                    - pads[n + i] + outpad[i] for i in range(n))
        return [(x[0], f, *out)]


POOL_MODES = ("max", "avg", "lp")


@irdl_op_definition
class PoolOp(NNOp):
    """Max, average or Lp pooling over an n-D window (ONNX MaxPool/AveragePool/LpPool),
    with dilations; padding is never part of a max, counts in an average only with
    `count_include_pad`, and adds zeros to an Lp sum.

        %y = nn.pool %x {mode = "max", kernel = array<i64: 2, 2, 2>} : (tensor<1x3x8x8x8xf32>) -> tensor<1x3x7x7x7xf32>
    """

    name = "nn.pool"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    mode = prop_def(StringAttr)
    kernel = prop_def(IntArray)
    strides = opt_prop_def(IntArray)
    pads = opt_prop_def(IntArray)
    dilations = opt_prop_def(IntArray)
    ceil_mode = i64_prop(0)
    count_include_pad = i64_prop(0)
    p = i64_prop(2)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        x = shapes[0]
        k = prop_ints(props, "kernel", ())
        n = len(x) - 2
        if prop_str(props, "mode", "max") not in POOL_MODES:
            raise VerifyException(f"nn.pool expects mode in {list(POOL_MODES)}")
        if n < 1 or len(k) != n or min(k) < 1:
            raise VerifyException(f"nn.pool expects a kernel of {max(n, 0)} sizes >= 1 for "
                                  f"{_fmt(x)}, got {list(k)}")
        strides, pads, dil = window_params(props, n)
        _check_window(cls.name, n, strides, pads, dil)
        ceil = bool(prop_int(props, "ceil_mode", 0))
        out = tuple(window_out(x[2 + i], k[i], strides[i], pads[i], pads[n + i], dil[i], ceil)
                    for i in range(n))
        if min(out) < 1:
            raise VerifyException(f"nn.pool expects the window {list(k)} to fit {_fmt(x)}")
        return [(x[0], x[1], *out)]


RESIZE_MODES = ("nearest", "linear", "cubic")
COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",
                    "align_corners", "asymmetric", "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


@irdl_op_definition
class ResizeOp(NNOp):
    """Resize (ONNX Resize / Upsample) to the static shape `sizes`; `scales` are the
    per-axis factors the coordinate transformation divides by (`sizes[i] / in[i]` unless
    the model gave scales); `roi` (2·rank values) only for tf_crop_and_resize.

        %y = nn.resize %x {sizes = array<i64: 1, 3, 16, 16>, scales = array<f64: 1.0, 1.0, 2.0, 2.0>} : (tensor<1x3x8x8xf32>) -> tensor<1x3x16x16xf32>
    """

    name = "nn.resize"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    sizes = prop_def(IntArray)
    scales = prop_def(F64Array)
    roi = opt_prop_def(F64Array)
    mode = prop_def(StringAttr, default_value=StringAttr("nearest"))
    coordinate_transformation_mode = prop_def(StringAttr,
                                              default_value=StringAttr("half_pixel"))
    nearest_mode = prop_def(StringAttr, default_value=StringAttr("round_prefer_floor"))
    cubic_coeff_a = prop_def(F64, default_value=f64_attr(-0.75))
    exclude_outside = i64_prop(0)
    extrapolation_value = prop_def(F64, default_value=f64_attr(0.0))
    antialias = i64_prop(0)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        x = shapes[0]
        sizes = prop_ints(props, "sizes", ())
        scales = prop_floats(props, "scales", ())
        roi = prop_floats(props, "roi", (0.0,) * len(x) + (1.0,) * len(x))
        if len(sizes) != len(x) or len(scales) != len(x) or len(roi) != 2 * len(x):
            raise VerifyException(f"nn.resize expects {len(x)} sizes and scales and "
                                  f"{2 * len(x)} roi values for {_fmt(x)}, got "
                                  f"{len(sizes)}, {len(scales)} and {len(roi)}")
        for prop, allowed in (("mode", RESIZE_MODES),
                              ("coordinate_transformation_mode", COORDINATE_MODES),
                              ("nearest_mode", NEAREST_MODES)):
            value = prop_str(props, prop, allowed[0])
            if value not in allowed:
                raise VerifyException(f"nn.resize expects {prop} in {list(allowed)}, got "
                                      f"'{value}'")
        if min(scales) <= 0:
            raise VerifyException(f"nn.resize expects positive scales, got {list(scales)}")
        return [tuple(sizes)]


@irdl_op_definition
class LRNOp(NNOp):
    """Local response normalization across channels (ONNX LRN):
    y = x / (bias + alpha / size · Σ x²  over the `size` channels around c)^beta.

        %y = nn.lrn %x {size = 3 : i64} : (tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
    """

    name = "nn.lrn"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    size = prop_def(IntegerAttr[I64])
    alpha = prop_def(F64, default_value=f64_attr(1e-4))
    beta = prop_def(F64, default_value=f64_attr(0.75))
    bias = prop_def(F64, default_value=f64_attr(1.0))
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        if len(shapes[0]) < 3 or prop_int(props, "size", 1) < 1:
            raise VerifyException(f"nn.lrn expects rank >= 3 and size >= 1, got "
                                  f"{_fmt(shapes[0])} and size {prop_int(props, 'size', 1)}")
        return [shapes[0]]


from irflow.dialects.nn.bitcast import BitcastOp  # noqa: E402  (imported with this family)
from irflow.dialects.nn.einsum import EinsumOp  # noqa: E402  (the contraction of this family)

SPATIAL_OPS: dict[str, type[NNOp]] = {
    op.name.removeprefix("nn."): op for op in (ConvTransposeOp, PoolOp, ResizeOp, LRNOp,
                                               EinsumOp, BitcastOp)
}

__all__ = ["SPATIAL_OPS", "EinsumOp", "BitcastOp", "ConvTransposeOp", "PoolOp", "ResizeOp", "LRNOp", "f64_array",
           "prop_floats", "window_params", "POOL_MODES", "RESIZE_MODES", "COORDINATE_MODES",
           "NEAREST_MODES"]
