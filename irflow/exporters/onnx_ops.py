"""ONNX export of the table-driven nn families (math, logic, reductions, indexing): the
inverse of `irflow/frontends/onnx_ops.py`, table by table.

Properties that ONNX takes as inputs (Reduce axes from opset 18 — ReduceSum from 13 —,
CumSum's axis, TopK's k, Expand's shape, Tile's repeats, Pad's pads and value, Trilu's k,
OneHot's depth) become `Constant` nodes; float attributes equal to their default are left
out (ONNX stores them as float32). `irflow.exporters.onnx` calls `export_family_op` for
the classes in `OPS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from xdsl.ir import Operation

from irflow.dialects import nn
from irflow.dialects.nn import indexing as ix
from irflow.dialects.nn.logic import BINARIES, COMPARISONS, LOGIC_OPS
from irflow.dialects.nn.math import MATH_OPS, PARAM_ACTIVATIONS, UNARY_MATH
from irflow.dialects.nn.reductions import (
    ARG_REDUCTIONS,
    AXIS_MAPS,
    REDUCTION_OPS,
    REDUCTIONS,
    SCANS,
)
from irflow.weights import numpy_dtype, value_dtype

if TYPE_CHECKING:
    from irflow.exporters.onnx import _Exporter

OPS: tuple[type[Operation], ...] = (*MATH_OPS.values(), *LOGIC_OPS.values(),
                                    *REDUCTION_OPS.values(), *nn.INDEXING_OPS.values())

# op name -> ONNX operator, for the ops that map one to one with their properties as
# (integer or string) attributes of the same name.
_SAME_NAME: dict[str, str] = {
    **{f"nn.{s}": onnx for s, (onnx, _) in UNARY_MATH.items()},
    **{f"nn.{s}": onnx for s, onnx in COMPARISONS.items()},
    **{f"nn.{s}": onnx for s, onnx in BINARIES.items()},
    **{f"nn.{s}": onnx for s, onnx in ARG_REDUCTIONS.items()},
    **{f"nn.{s}": onnx for s, onnx in AXIS_MAPS.items()},
    "nn.is_nan": "IsNaN", "nn.is_inf": "IsInf", "nn.where": "Where",
    "nn.depth_to_space": "DepthToSpace", "nn.space_to_depth": "SpaceToDepth",
    "nn.gather_elements": "GatherElements", "nn.gather_nd": "GatherND",
    "nn.scatter_elements": "ScatterElements", "nn.scatter_nd": "ScatterND",
}
# The first opset where an operator (or the form irflow writes) exists.
_MIN_OPSET: dict[str, int] = {"CumProd": 26, "BitwiseNot": 18, "BitwiseAnd": 18,
                              "BitwiseOr": 18, "BitwiseXor": 18, "Mish": 18}


def _attrs(op: Operation) -> dict[str, Any]:
    """The op's integer and string properties as ONNX attributes (defaults left out)."""
    out: dict[str, Any] = {}
    for name, attr in op.properties.items():
        value = getattr(attr, "data", None)
        if isinstance(value, str):
            out[name] = value
        elif hasattr(attr, "value") and isinstance(getattr(attr.value, "data", None), int):
            out[name] = int(attr.value.data)
    if out.get("reduction") == "none":
        del out["reduction"]
    return out


def _node(ex: _Exporter, op_type: str, ins: list[str], outs: list[str], **attrs: Any) -> None:
    need = _MIN_OPSET.get(op_type, 0)
    if ex.opset < need:
        raise ex.error(f"{op_type} needs opset >= {need}, got {ex.opset}")
    ex.node(op_type, ins, outs, **attrs)


def _int64(ex: _Exporter, values: Any, hint: str) -> str:
    return ex.const(np.asarray(values, np.int64), hint)


def _space_to_depth_crd(ex: _Exporter, op: Operation, ins: list[str], outs: list[str]
                        ) -> None:
    """SpaceToDepth in CRD order as Reshape, Transpose, Reshape (before opset 28)."""
    n, c, h, w = nn.shape_of(op.operands[0])
    b = nn.prop_int(op, "blocksize", 1)
    split, moved = ex.temp("blocks"), ex.temp("moved")
    ex.node("Reshape", [ins[0], _int64(ex, [n, c, h // b, b, w // b, b], "blocks_shape")],
            [split], "/reshape_in")
    ex.node("Transpose", [split], [moved], "/transpose", perm=[0, 1, 3, 5, 2, 4])
    ex.node("Reshape", [moved, _int64(ex, nn.shape_of(op.results[0]), "shape")], outs)


def export_family_op(ex: _Exporter, op: Operation, ins: list[str], outs: list[str]) -> None:
    name = op.name
    short = name.removeprefix("nn.")
    if short in PARAM_ACTIVATIONS:
        onnx, defaults, _ = PARAM_ACTIVATIONS[short]
        floats = {k: nn.prop_float(op, k, d) for k, d in defaults.items()}
        _node(ex, onnx, ins, outs, **{k: v for k, v in floats.items() if v != defaults[k]})
    elif short == "cast":
        from onnx import helper

        to = helper.np_dtype_to_tensor_dtype(numpy_dtype(op.results[0].type.element_type))  # type: ignore[attr-defined]
        saturate = nn.prop_int(op, "saturate", 1)  # float8 targets only (opset 19+)
        _node(ex, "Cast", ins, outs, to=int(to), **({} if saturate == 1 else
                                                    {"saturate": saturate}))
    elif short in REDUCTIONS:
        onnx = REDUCTIONS[short][0]
        axes = nn.prop_ints(op, "axes", ())
        keep = nn.prop_int(op, "keepdims", 1)
        if ex.opset >= (13 if onnx == "ReduceSum" else 18):
            _node(ex, onnx, [ins[0], _int64(ex, axes, "axes")], outs, keepdims=keep)
        else:
            _node(ex, onnx, ins, outs, axes=list(axes), keepdims=keep)
    elif short in SCANS:
        attrs = _attrs(op)
        axis = attrs.pop("axis", -1)
        _node(ex, SCANS[short], [ins[0], _int64(ex, axis, "axis")], outs, **attrs)
    elif short == "topk":
        attrs = _attrs(op)
        k = attrs.pop("k")
        _node(ex, "TopK", [ins[0], _int64(ex, [k], "k")], outs, **attrs)
    elif isinstance(op, ix.ExpandOp):
        _node(ex, "Expand", [ins[0], _int64(ex, nn.prop_ints(op, "shape", ()), "shape")], outs)
    elif isinstance(op, ix.TileOp):
        _node(ex, "Tile", [ins[0], _int64(ex, nn.prop_ints(op, "repeats", ()), "repeats")],
              outs)
    elif isinstance(op, ix.PadOp):
        mode = nn.prop_str(op, "mode", "constant")
        args = [ins[0], _int64(ex, nn.prop_ints(op, "pads", ()), "pads")]
        if mode == "constant":
            value = np.asarray(nn.prop_float(op, "value", 0.0)).astype(value_dtype(op.operands[0]))
            args.append(ex.const(value, "value"))
        _node(ex, "Pad", args, outs, mode=mode)
    elif isinstance(op, ix.TriluOp):
        _node(ex, "Trilu", [ins[0], _int64(ex, nn.prop_int(op, "k", 0), "k")], outs,
              upper=nn.prop_int(op, "upper", 1))
    elif isinstance(op, ix.OneHotOp):
        _node(ex, "OneHot", [ins[0], _int64(ex, nn.prop_int(op, "depth", 1), "depth"), ins[1]],
              outs, axis=nn.prop_int(op, "axis", -1))
    elif name in _SAME_NAME:
        attrs = _attrs(op)
        if isinstance(op, ix.SpaceToDepthOp) and attrs.get("mode") == "DCR":
            del attrs["mode"]  # SpaceToDepth's mode attribute is newer than the op
        elif isinstance(op, ix.SpaceToDepthOp) and ex.opset < 28:
            _space_to_depth_crd(ex, op, ins, outs)  # `mode` CRD is opset 28's
            return
        _node(ex, _SAME_NAME[name], ins, outs, **attrs)
    else:  # pragma: no cover - OPS and the branches above list the same classes
        raise ex.error(f"cannot export '{name}' to ONNX")


__all__ = ["OPS", "export_family_op"]
