"""ONNX export of the n-D spatial ops (`dialects/nn/spatial.py`): the inverse of
`irflow/frontends/onnx_spatial.py`.

* `nn.conv_transpose` → ConvTranspose (explicit `pads`, `output_padding`; the importer
  resolved `output_shape` and `auto_pad` into them);
* `nn.pool` → MaxPool / AveragePool / LpPool (AveragePool's `dilations` need opset 19,
  LpPool's `dilations` and `ceil_mode` opset 18);
* `nn.resize` → Resize with the `sizes` input when ONNX's own scale (output / input size)
  is the op's scale on every axis, else with the `scales` input when ONNX's output size
  (floor(input · scale)) is the op's size; `roi` only for tf_crop_and_resize;
* `nn.lrn` → LRN, `nn.einsum` → Einsum, `nn.bitcast` → BitCast (opset 26).

Float attributes equal to their default are left out (ONNX stores them as float32).
`irflow.exporters.onnx` calls `export_spatial_op` for the classes in `OPS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from xdsl.ir import Operation

from irflow.dialects import nn
from irflow.dialects.nn.spatial import (
    BitcastOp,
    ConvTransposeOp,
    EinsumOp,
    LRNOp,
    PoolOp,
    ResizeOp,
    prop_floats,
    window_params,
)
from irflow.weights import numpy_dtype

if TYPE_CHECKING:
    from irflow.exporters.onnx import _Exporter

OPS: tuple[type[Operation], ...] = (ConvTransposeOp, PoolOp, ResizeOp, LRNOp, EinsumOp,
                                    BitcastOp)


def _need(ex: _Exporter, opset: int, what: str) -> None:
    if ex.opset < opset:
        raise ex.error(f"{what} needs opset >= {opset}, got {ex.opset}")


def _conv_transpose(ex: _Exporter, op: Operation, ins: list[str], outs: list[str]) -> None:
    kernel = nn.shape_of(op.operands[1])[2:]
    n = len(kernel)
    strides, pads, dil = window_params(op.properties, n)
    ex.node("ConvTranspose", ins, outs, kernel_shape=list(kernel), strides=list(strides),
            pads=list(pads), dilations=list(dil),
            output_padding=list(nn.prop_ints(op, "output_padding", (0,) * n)),
            group=nn.prop_int(op, "groups", 1))


def _pool(ex: _Exporter, op: Operation, ins: list[str], outs: list[str]) -> None:
    kernel = nn.prop_ints(op, "kernel", ())
    strides, pads, dil = window_params(op.properties, len(kernel))
    mode = nn.prop_str(op, "mode", "max")
    attrs: dict[str, Any] = {"kernel_shape": list(kernel), "strides": list(strides),
                             "pads": list(pads)}
    ceil = nn.prop_int(op, "ceil_mode", 0)
    dilated = any(d != 1 for d in dil)
    if mode == "lp":
        if dilated or ceil:
            _need(ex, 18, "LpPool with dilations or ceil_mode")
        if ex.opset >= 18:
            attrs.update(dilations=list(dil), ceil_mode=ceil)
        ex.node("LpPool", ins, outs, p=nn.prop_int(op, "p", 2), **attrs)
    elif mode == "avg":
        if dilated:
            _need(ex, 19, "AveragePool with dilations")
            attrs["dilations"] = list(dil)
        ex.node("AveragePool", ins, outs, ceil_mode=ceil,
                count_include_pad=nn.prop_int(op, "count_include_pad", 0), **attrs)
    else:
        ex.node("MaxPool", ins, outs, ceil_mode=ceil, dilations=list(dil), **attrs)


def _resize(ex: _Exporter, op: Operation, ins: list[str], outs: list[str]) -> None:
    shape_in = nn.shape_of(op.operands[0])
    rank = len(shape_in)
    sizes = nn.prop_ints(op, "sizes", ())
    scales = prop_floats(op.properties, "scales", ())
    f32 = np.asarray(scales, np.float32)
    # ONNX's scale for a `sizes` input is output / input size (float32); for a `scales`
    # input the output size is floor(input · scale).
    by_sizes = all(np.float32(o / i) == s for o, i, s in zip(sizes, shape_in, f32))
    by_scales = all(int(np.floor(np.float64(i) * np.float64(s))) == o
                    for o, i, s in zip(sizes, shape_in, f32))
    policy = None if by_sizes or by_scales else _aspect_ratio_form(sizes, shape_in, scales)
    if not (by_sizes or by_scales) and (policy is None or ex.opset < 18):
        raise ex.error(f"nn.resize to {list(sizes)} with scales {list(scales)} has no ONNX "
                       f"Resize form at opset {ex.opset} (neither its sizes nor its scales "
                       "give the other, nor does keep_aspect_ratio_policy from opset 18)")
    coord = nn.prop_str(op, "coordinate_transformation_mode", "half_pixel")
    attrs: dict[str, Any] = {"mode": nn.prop_str(op, "mode", "nearest"),
                             "coordinate_transformation_mode": coord,
                             "nearest_mode": nn.prop_str(op, "nearest_mode",
                                                         "round_prefer_floor")}
    for key, default in (("cubic_coeff_a", -0.75), ("extrapolation_value", 0.0)):
        value = nn.prop_float(op, key, default)
        if value != default:
            attrs[key] = value
    for key in ("exclude_outside", "antialias"):
        if nn.prop_int(op, key, 0):
            attrs[key] = nn.prop_int(op, key, 0)
    if "antialias" in attrs:
        _need(ex, 18, "Resize with antialias")
    if coord == "half_pixel_symmetric":
        _need(ex, 19, "Resize with half_pixel_symmetric coordinates")
    dtype = numpy_dtype(op.operands[0].type.element_type)  # type: ignore[attr-defined]
    roi = ""
    if coord == "tf_crop_and_resize":
        default = (0.0,) * rank + (1.0,) * rank
        roi_dtype = dtype if np.dtype(dtype).kind == "f" else np.float32
        roi = ex.const(np.asarray(prop_floats(op.properties, "roi", default), roi_dtype),
                       "roi")
    if policy is not None:
        axes, requested = policy
        args = [ins[0], roi, "", ex.const(np.asarray(requested, np.int64), "sizes")]
        attrs.update(axes=axes, keep_aspect_ratio_policy="not_larger")
    elif by_sizes:
        args = [ins[0], roi, "", ex.const(np.asarray(sizes, np.int64), "sizes")]
    else:
        args = [ins[0], roi, ex.const(f32, "scales")]
    ex.node("Resize", args, outs, **attrs)


def _aspect_ratio_form(sizes: tuple[int, ...], shape_in: tuple[int, ...],
                       scales: tuple[float, ...]) -> tuple[list[int], list[int]] | None:
    """(axes, sizes) for Resize's keep_aspect_ratio_policy = not_larger that give one scale
    s on every resized axis and the op's output sizes (what the importer made of such a
    policy): ONNX takes s = min(size / input) over `axes`, output round(s · input). One
    axis whose output / input is s exactly is asked for its output size, the others for
    at least s · input."""
    axes = [i for i, (o, n, f) in enumerate(zip(sizes, shape_in, scales)) if o != n or f != 1]
    if not axes or len({scales[i] for i in axes}) != 1:
        return None
    s = scales[axes[0]]
    exact = [i for i in axes if sizes[i] / shape_in[i] == s]
    if not exact:
        return None
    requested = [sizes[i] if i == exact[0] else int(np.ceil(s * shape_in[i])) for i in axes]
    got = min(r / shape_in[i] for r, i in zip(requested, axes))
    if got != s or any(int(got * shape_in[i] + 0.5) != sizes[i] for i in axes):
        return None
    return axes, requested


def export_spatial_op(ex: _Exporter, op: Operation, ins: list[str], outs: list[str]) -> None:
    if isinstance(op, ConvTransposeOp):
        _conv_transpose(ex, op, ins, outs)
    elif isinstance(op, PoolOp):
        _pool(ex, op, ins, outs)
    elif isinstance(op, ResizeOp):
        _resize(ex, op, ins, outs)
    elif isinstance(op, LRNOp):
        from irflow.exporters.onnx import _float_attrs

        ex.node("LRN", ins, outs, size=nn.prop_int(op, "size", 1),
                **_float_attrs(op, alpha=1e-4, beta=0.75, bias=1.0))
    elif isinstance(op, EinsumOp):
        ex.node("Einsum", ins, outs, equation=nn.prop_str(op, "equation", ""))
    else:
        from onnx import helper

        assert isinstance(op, BitcastOp)
        _need(ex, 26, "nn.bitcast (ONNX BitCast)")
        to = helper.np_dtype_to_tensor_dtype(numpy_dtype(op.results[0].type.element_type))  # type: ignore[attr-defined]
        ex.node("BitCast", ins, outs, to=int(to))


__all__ = ["OPS", "export_spatial_op"]
