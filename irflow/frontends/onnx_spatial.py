"""ONNX converters for the n-D spatial ops (`dialects/nn/spatial.py`): ConvTranspose,
Resize (opsets 10-19) and Upsample (7-9), LRN, LpPool/GlobalLpPool, and the MaxPool /
AveragePool forms the 2-D ops do not cover (3-D windows, dilations) as `nn.pool`.

Every size is resolved here: ConvTranspose's `output_shape`/`auto_pad` become explicit
pads; Resize's `scales`/`sizes`/`axes`/`keep_aspect_ratio_policy` become the full output
shape and per-axis scales (they must be known at import time).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import StringAttr
from xdsl.ir import SSAValue

from irflow.dialects import nn
from irflow.dialects.nn.spatial import (
    ConvTransposeOp,
    EinsumOp,
    LRNOp,
    PoolOp,
    ResizeOp,
    f64_array,
)
from irflow.frontends.onnx import (
    _CONVERTERS,
    Converter,
    UnsupportedOperatorError,
    _converter,
    _Importer,
    _Node,
)

Result = list[SSAValue | np.ndarray]


def window_pads(im: _Importer, in_spatial: Sequence[int], kernel: Sequence[int],
                strides: Sequence[int], dilations: Sequence[int]) -> list[int]:
    """ONNX `pads` / `auto_pad` of an n-D window as [begin..., end...]."""
    n = len(in_spatial)
    auto = im.attr("auto_pad", "NOTSET")
    if auto == "NOTSET":
        pads = im.ints("pads", [0] * (2 * n))
        if len(pads) != 2 * n:
            raise im.error(f"expects {2 * n} pads for a {n}-D window, got {pads}")
        return pads
    if auto == "VALID":
        return [0] * (2 * n)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise im.error(f"unknown auto_pad '{auto}'")
    lo, hi = [], []
    for size, k, s, d in zip(in_spatial, kernel, strides, dilations):
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        lo.append(small if auto == "SAME_UPPER" else big)
        hi.append(big if auto == "SAME_UPPER" else small)
    return lo + hi


# --------------------------------------------------------------------------------------
# ConvTranspose


@_converter("ConvTranspose")
def _conv_transpose(im: _Importer, node: _Node) -> Result:
    x, w = im.value(0), im.value(1)
    xs, ws = nn.shape_of(x), nn.shape_of(w)
    n = len(xs) - 2
    kernel = im.ints("kernel_shape", ws[2:])
    strides = im.ints("strides", [1] * n)
    dil = im.ints("dilations", [1] * n)
    outpad = im.ints("output_padding", [0] * n)
    groups = int(im.attr("group", 1))
    auto = im.attr("auto_pad", "NOTSET")
    out_shape = im.ints("output_shape", [])
    if out_shape or auto in ("SAME_UPPER", "SAME_LOWER"):
        target = out_shape[-n:] if out_shape else [xs[2 + i] * strides[i] for i in range(n)]
        total = [strides[i] * (xs[2 + i] - 1) + outpad[i] + (kernel[i] - 1) * dil[i] + 1
                 - target[i] for i in range(n)]
        if auto == "SAME_UPPER":
            pads = [t // 2 for t in total] + [t - t // 2 for t in total]
        else:
            pads = [t - t // 2 for t in total] + [t // 2 for t in total]
        if min(pads) < 0:  # a larger output_shape than the stride covers: output padding
            outpad = [o - min(pads[i], 0) - min(pads[n + i], 0)
                      for i, o in enumerate(outpad)]
            pads = [max(p, 0) for p in pads]
    elif auto == "VALID":
        pads = [0] * (2 * n)
    else:
        pads = im.ints("pads", [0] * (2 * n))
    props = {"groups": nn.i64_attr(groups)}
    for key, value, unit in (("strides", strides, 1), ("pads", pads, 0),
                             ("dilations", dil, 1), ("output_padding", outpad, 0)):
        if any(v != unit for v in value):
            props[key] = nn.int_array(value)
    operands = [x, w, im.value(2) if im.has(2) else None]
    return [im.make(ConvTransposeOp, operands, **props)]


# --------------------------------------------------------------------------------------
# Pooling: n-D windows, dilations, Lp


def _pool_props(im: _Importer, x: SSAValue, mode: str) -> dict[str, object]:
    xs = nn.shape_of(x)
    n = len(xs) - 2
    kernel = im.ints("kernel_shape", [])
    strides = im.ints("strides", [1] * n)
    dil = im.ints("dilations", [1] * n)
    props: dict[str, object] = {
        "mode": StringAttr(mode), "kernel": nn.int_array(kernel),
        "strides": nn.int_array(strides), "dilations": nn.int_array(dil),
        "pads": nn.int_array(window_pads(im, xs[2:], kernel, strides, dil)),
        "ceil_mode": nn.i64_attr(im.attr("ceil_mode", 0)),
        "count_include_pad": nn.i64_attr(im.attr("count_include_pad", 0)),
    }
    if mode == "lp":
        props["p"] = nn.i64_attr(im.attr("p", 2))
    return props


def _nd_pool(convert: Converter, mode: str) -> Converter:
    """MaxPool/AveragePool: the 2-D ops where they fit, `nn.pool` for 3-D windows and
    dilations."""

    def converted(im: _Importer, node: _Node) -> Result:
        x = im.value(0)
        rank = len(nn.shape_of(x))
        if rank in (3, 4) and all(d == 1 for d in im.ints("dilations", [])):
            return convert(im, node)  # type: ignore[return-value]
        if rank < 3:
            raise im.error(f"expects an (N, C, spatial...) input, got {list(nn.shape_of(x))}")
        return [im.make(PoolOp, [x], **_pool_props(im, x, mode))]  # type: ignore[arg-type]

    return converted


_CONVERTERS["MaxPool"] = _nd_pool(_CONVERTERS["MaxPool"], "max")
_CONVERTERS["AveragePool"] = _nd_pool(_CONVERTERS["AveragePool"], "avg")


@_converter("LpPool")
def _lp_pool(im: _Importer, node: _Node) -> Result:
    x = im.value(0)
    return [im.make(PoolOp, [x], **_pool_props(im, x, "lp"))]  # type: ignore[arg-type]


@_converter("GlobalLpPool")
def _global_lp_pool(im: _Importer, node: _Node) -> Result:
    x = im.value(0)
    spatial = nn.shape_of(x)[2:]
    return [im.make(PoolOp, [x], mode=StringAttr("lp"), kernel=nn.int_array(spatial),
                    p=nn.i64_attr(im.attr("p", 2)))]


@_converter("LRN")
def _lrn(im: _Importer, node: _Node) -> Result:
    return [im.make(LRNOp, [im.value(0)], size=nn.i64_attr(im.attr("size")),
                    alpha=im.f64("alpha"), beta=im.f64("beta"), bias=im.f64("bias"))]


# --------------------------------------------------------------------------------------
# Resize and Upsample


def _floats(im: _Importer, i: int, what: str) -> list[float] | None:
    """A float input that may be absent or empty (opset 11+ pass '' or an empty tensor)."""
    if not im.has(i):
        return None
    v = im.const(i, what).reshape(-1)
    return [float(a) for a in v] if v.size else None


def resize(im: _Importer, x: SSAValue, *, scales: list[float] | None,
           sizes: list[int] | None, roi: list[float] | None, axes: list[int] | None,
           mode: str, coord: str, nearest: str, policy: str = "stretch") -> SSAValue:
    """nn.resize of `x` with ONNX Resize's arguments resolved to a static output shape."""
    shape = nn.shape_of(x)
    rank = len(shape)
    axes = [a % rank for a in axes] if axes else list(range(rank))
    if scales is None and sizes is None:
        raise im.error("Resize needs scales or sizes")
    full_roi = None
    if roi is not None and len(roi) == 2 * len(axes):
        full_roi = [0.0] * rank + [1.0] * rank
        for j, a in enumerate(axes):
            full_roi[a], full_roi[rank + a] = roi[j], roi[len(axes) + j]
    if sizes is not None:
        if len(sizes) != len(axes):
            raise im.error(f"Resize sizes {sizes} do not match axes {axes}")
        scale = [sizes[j] / shape[a] for j, a in enumerate(axes)]
        out = list(shape)
        full_scale = [1.0] * rank
        if policy == "stretch":
            for j, a in enumerate(axes):
                out[a], full_scale[a] = sizes[j], scale[j]
        else:
            s = min(scale) if policy == "not_larger" else max(scale)
            for a in axes:
                out[a], full_scale[a] = int(s * shape[a] + 0.5), s
    else:
        assert scales is not None
        if len(scales) != len(axes):
            raise im.error(f"Resize scales {scales} do not match axes {axes}")
        full_scale = [1.0] * rank
        for j, a in enumerate(axes):
            full_scale[a] = scales[j]
        out = [int(full_scale[i] * shape[i]) for i in range(rank)]  # ONNX: floor
    if min(out) < 1:
        raise im.error(f"Resize to {out} has an empty dimension")
    props: dict[str, object] = {
        "sizes": nn.int_array(out), "scales": f64_array(full_scale),
        "mode": StringAttr(mode), "coordinate_transformation_mode": StringAttr(coord),
        "nearest_mode": StringAttr(nearest),
    }
    if coord == "tf_crop_and_resize":
        props["roi"] = f64_array(full_roi or [0.0] * rank + [1.0] * rank)
    for key in ("cubic_coeff_a", "extrapolation_value"):
        if im.attr(key) is not None:
            props[key] = nn.f64(im.attr(key))
    for key in ("exclude_outside", "antialias"):
        if im.attr(key):
            props[key] = nn.i64_attr(im.attr(key))
    return im.make(ResizeOp, [x], **props)  # type: ignore[arg-type]


@_converter("Resize")
def _resize(im: _Importer, node: _Node) -> Result:
    x = im.value(0)
    mode = im.attr("mode", "nearest")
    if im.opset < 11:  # Resize-10: (X, scales), asymmetric coordinates
        return [resize(im, x, scales=_floats(im, 1, "Resize scales"), sizes=None, roi=None,
                       axes=None, mode=mode, coord="asymmetric", nearest="floor"
                       if mode == "nearest" else "round_prefer_floor")]
    sizes = None
    if im.has(3):
        s = im.const(3, "Resize sizes").reshape(-1)
        sizes = [int(v) for v in s] if s.size else None
    scales = _floats(im, 2, "Resize scales") if sizes is None else None
    roi = _floats(im, 1, "Resize roi")
    return [resize(im, x, scales=scales, sizes=sizes, roi=roi, axes=im.attr("axes"),
                   mode=mode,
                   coord=im.attr("coordinate_transformation_mode", "half_pixel"),
                   nearest=im.attr("nearest_mode", "round_prefer_floor"),
                   policy=im.attr("keep_aspect_ratio_policy", "stretch"))]


@_converter("Upsample")
def _upsample(im: _Importer, node: _Node) -> Result:
    """Upsample (opsets 7-9): Resize with asymmetric coordinates; nearest rounds down."""
    scales = (_floats(im, 1, "Upsample scales") if im.has(1)
              else [float(s) for s in im.attr("scales", [])])
    mode = im.attr("mode", "nearest")
    if mode not in ("nearest", "linear", "bilinear"):
        raise UnsupportedOperatorError(f"Upsample mode '{mode}' is not supported", im.where())
    return [resize(im, im.value(0), scales=scales, sizes=None, roi=None, axes=None,
                   mode="linear" if mode == "bilinear" else mode, coord="asymmetric",
                   nearest="floor")]


__all__ = ["resize", "window_pads"]


@_converter("Einsum")
def _einsum(im: _Importer, node: _Node) -> Result:
    operands = [im.value(i) for i in range(len(node.inputs)) if im.has(i)]
    return [im.make(EinsumOp, operands, equation=StringAttr(str(im.attr("equation"))))]
