"""`nn` IR → ONNX: `export_onnx(module, path=None, opset=17) -> onnx.ModelProto`.

    >>> model = export_onnx(module, "out/model.onnx")      # written atomically
    >>> onnx.checker.check_model(model)

One ONNX node (or a short fixed sequence) per `nn` op, in the function's order:

* `nn.constant #nn.weight<"k">` becomes the initializer `k` (same name), an inline
  `dense<...>` constant a `Constant` node; property operands (Reshape's shape,
  Slice's bounds, Clip's min/max, Split's sizes) are `Constant` nodes, so the
  importer folds them back into properties.
* a fused `act` (`nn.conv2d {act = "relu"}`) exports as a separate activation node.
* ops with no ONNX counterpart at the chosen opset are decomposed: `nn.silu` →
  Sigmoid·Mul; `nn.gelu` → Erf (or Tanh) arithmetic below opset 20; `nn.relu6` →
  Clip(0, 6); `nn.linear` on a rank > 2 input → Transpose·MatMul·Add (rank 2: Gemm).
* node names come from the ops' `NameLoc` locations (the ONNX node names the
  importer read), input/output names from `@main`'s.

`import_onnx(export_onnx(m))` prints the same IR as `m` when `m` came from
`import_onnx` (checked in tests/test_onnx_export.py); fused activations and the
decompositions above come back as separate ops.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, NameLoc, TensorType
from xdsl.ir import Operation, SSAValue

from irflow.diagnostics import IrflowError
from irflow.dialects import nn
from irflow.exporters import onnx_llm, onnx_ops, onnx_spatial
from irflow.fileio import write_output
from irflow.graph import input_names, main_func, output_names
from irflow.weights import constant_value, numpy_dtype, value_dtype, weights_of

MIN_OPSET, MAX_OPSET = 13, 26  # 26: ONNX BitCast, CumProd (onnxruntime 1.31 runs 26)


class ExportError(IrflowError):
    """IR that cannot be written as ONNX (an op or type without an ONNX counterpart)."""


@dataclass
class _Exporter:
    opset: int
    nodes: list[Any] = field(default_factory=list)
    initializers: list[Any] = field(default_factory=list)
    names: dict[SSAValue, str] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    node_names: set[str] = field(default_factory=set)
    dequantized: dict[str, str] = field(default_factory=dict)  # QDQ: tensor -> its float twin
    integers: set[str] = field(default_factory=set)  # int32 accumulators kept as integers
    op: Operation | None = None
    op_name: str = ""

    def fresh(self, hint: str) -> str:
        name, i = hint, 1
        while name in self.used:
            name, i = f"{hint}_{i}", i + 1
        self.used.add(name)
        return name

    def node(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str],
             suffix: str = "", **attrs: Any) -> None:
        from onnx import helper

        base = self.op_name + suffix
        name, i = base, 1
        while name in self.node_names:
            name, i = f"{base}_{i}", i + 1
        self.node_names.add(name)
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs), name=name,
                                           **attrs))

    def const(self, array: np.ndarray, hint: str) -> str:
        """A `Constant` node holding `array`; returns its output name."""
        from onnx import numpy_helper

        out = self.fresh(f"{self.op_name}/{hint}")
        self.node("Constant", [], [out], f"/{hint}", value=numpy_helper.from_array(array))
        return out

    def temp(self, hint: str) -> str:
        return self.fresh(f"{self.op_name}/{hint}")

    def error(self, message: str) -> ExportError:
        return ExportError(message, self.op)


def _float_attrs(op: Operation, **defaults: float) -> dict[str, float]:
    """Float properties that differ from their default (ONNX's default is nn's).

    Leaving defaults out keeps them exact: ONNX stores float attributes as float32.
    """
    values = {n: nn.prop_float(op, n, d) for n, d in defaults.items()}
    return {n: v for n, v in values.items() if v != defaults[n]}


# --------------------------------------------------------------------------------------
# Activations (standalone ops and fused `act` properties share these)


Emit = Callable[[_Exporter, str, str, np.dtype], None]


def _simple(op_type: str) -> Emit:
    def emit(ex: _Exporter, x: str, y: str, dtype: np.dtype) -> None:
        ex.node(op_type, [x], [y])

    return emit


def _relu6(ex: _Exporter, x: str, y: str, dtype: np.dtype) -> None:
    lo, hi = ex.const(np.asarray(0, dtype), "min"), ex.const(np.asarray(6, dtype), "max")
    ex.node("Clip", [x, lo, hi], [y])


def _silu(ex: _Exporter, x: str, y: str, dtype: np.dtype) -> None:
    s = ex.temp("sigmoid")
    ex.node("Sigmoid", [x], [s], "/sigmoid")
    ex.node("Mul", [x, s], [y])


ACTIVATIONS: dict[str, Emit] = {
    "relu": _simple("Relu"), "relu6": _relu6, "sigmoid": _simple("Sigmoid"),
    "tanh": _simple("Tanh"), "silu": _silu, "hardswish": _simple("HardSwish"),
}
assert set(ACTIVATIONS) == set(nn.FUSABLE_ACTIVATIONS)
_UNARY_ONNX: dict[type[Operation], str] = {
    nn.ErfOp: "Erf", nn.SqrtOp: "Sqrt", nn.ExpOp: "Exp", nn.NegOp: "Neg",
}
_BINARY_ONNX: dict[type[Operation], str] = {
    nn.AddOp: "Add", nn.SubOp: "Sub", nn.MulOp: "Mul", nn.DivOp: "Div", nn.PowOp: "Pow",
}


def _gelu(ex: _Exporter, op: nn.GeluOp, x: str, y: str) -> None:
    approx = op.approximate.data
    if ex.opset >= 20:
        ex.node("Gelu", [x], [y], approximate=approx)
        return
    dtype = value_dtype(op.input)

    def c(v: float, hint: str) -> str:
        return ex.const(np.asarray(v, dtype), hint)

    inner = ex.temp("inner")
    if approx == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        x3, t, u = ex.temp("x3"), ex.temp("t"), ex.temp("u")
        ex.node("Pow", [x, c(3.0, "three")], [x3], "/pow")
        ex.node("Mul", [x3, c(0.044715, "k")], [t], "/mul_k")
        ex.node("Add", [x, t], [u], "/add")
        v = ex.temp("v")
        ex.node("Mul", [u, c(float(np.sqrt(2.0 / np.pi)), "s")], [v], "/mul_s")
        ex.node("Tanh", [v], [inner], "/tanh")
    else:  # 0.5 x (1 + erf(x / sqrt 2))
        d = ex.temp("d")
        ex.node("Div", [x, c(float(np.sqrt(2.0)), "sqrt2")], [d], "/div")
        ex.node("Erf", [d], [inner], "/erf")
    p, h = ex.temp("p"), ex.temp("h")
    ex.node("Add", [inner, c(1.0, "one")], [p], "/add1")
    ex.node("Mul", [x, p], [h], "/mul_x")
    ex.node("Mul", [h, c(0.5, "half")], [y], "/mul_half")


# --------------------------------------------------------------------------------------
# One function per op family


def _export_op(ex: _Exporter, op: Operation, ins: list[str], outs: list[str]) -> None:
    """Emit the nodes for `op`; a fused `act` gets its own node after the main one."""
    kind = nn.fused_act(op)
    main_out = outs
    if kind is not None:
        main_out = [ex.temp("pre_act")]
    _export_main(ex, op, ins, main_out)
    if kind is not None:
        if kind not in ACTIVATIONS:
            raise ex.error(f"cannot export fused activation '{kind}'")
        saved, ex.op_name = ex.op_name, ex.op_name + "/act"
        ACTIVATIONS[kind](ex, main_out[0], outs[0], value_dtype(op.results[0]))
        ex.op_name = saved


def _export_main(ex: _Exporter, op: Operation, ins: list[str], outs: list[str]) -> None:
    cls = type(op)
    if cls in nn.ACTIVATION_NAMES:
        ACTIVATIONS[nn.ACTIVATION_NAMES[cls]](ex, ins[0], outs[0], value_dtype(op.operands[0]))
    elif cls in _UNARY_ONNX:
        ex.node(_UNARY_ONNX[cls], ins, outs)
    elif cls in _BINARY_ONNX:
        ex.node(_BINARY_ONNX[cls], ins, outs)
    elif isinstance(op, nn.HardSigmoidOp):
        ex.node("HardSigmoid", ins, outs, **_float_attrs(op, alpha=0.2, beta=0.5))
    elif isinstance(op, nn.ClipOp):
        dtype = value_dtype(op.input)
        bounds = [
            ex.const(np.asarray(attr.value.data, dtype), role) if attr is not None else ""
            for role, attr in (("min", op.min), ("max", op.max))
        ]
        while bounds and not bounds[-1]:
            bounds.pop()
        ex.node("Clip", [ins[0], *bounds], outs)
    elif isinstance(op, nn.GeluOp):
        _gelu(ex, op, ins[0], outs[0])
    elif isinstance(op, nn.Conv2dOp):
        kernel = nn.shape_of(op.weight)[2:]
        conv = nn.conv2d_params(op)
        ex.node("Conv", ins, outs, kernel_shape=list(kernel), strides=conv.strides,
                pads=conv.pads, dilations=conv.dilations, group=conv.groups)
    elif isinstance(op, nn.MatmulOp):
        ex.node("MatMul", ins, outs)
    elif isinstance(op, nn.LinearOp):
        _linear(ex, op, ins, outs)
    elif isinstance(op, nn.BatchNormOp):
        ex.node("BatchNormalization", ins, outs, **_float_attrs(op, epsilon=1e-5))
    elif isinstance(op, nn.LayerNormOp):
        if ex.opset < 17:
            raise ex.error(f"nn.layernorm needs opset >= 17 (LayerNormalization), got "
                           f"{ex.opset}")
        ex.node("LayerNormalization", ins, outs, axis=nn.prop_int(op, "axis", -1),
                **_float_attrs(op, epsilon=1e-5))
    elif isinstance(op, nn.SoftmaxOp):
        ex.node("Softmax", ins, outs, axis=nn.prop_int(op, "axis", -1))
    elif isinstance(op, nn.ReduceMeanOp):
        axes = nn.prop_ints(op, "axes", [])
        keep = nn.prop_int(op, "keepdims", 1)
        if ex.opset >= 18:
            ex.node("ReduceMean", [ins[0], ex.const(np.asarray(axes, np.int64), "axes")],
                    outs, keepdims=keep)
        else:
            ex.node("ReduceMean", ins, outs, axes=axes, keepdims=keep)
    elif isinstance(op, nn.MaxPoolOp | nn.AvgPoolOp):
        pool = nn.pool2d_params(op)
        attrs: dict[str, Any] = {"kernel_shape": pool.kernel, "strides": pool.strides,
                                 "pads": pool.pads, "ceil_mode": int(pool.ceil_mode)}
        if isinstance(op, nn.AvgPoolOp):
            attrs["count_include_pad"] = int(pool.count_include_pad)
            ex.node("AveragePool", ins, outs, **attrs)
        else:
            ex.node("MaxPool", ins, outs, **attrs)
    elif isinstance(op, nn.GlobalAvgPoolOp):
        ex.node("GlobalAveragePool", ins, outs)
    elif isinstance(op, nn.ReshapeOp):
        shape = np.asarray(nn.shape_of(op.output), np.int64)
        ex.node("Reshape", [ins[0], ex.const(shape, "shape")], outs)
    elif isinstance(op, nn.FlattenOp):
        ex.node("Flatten", ins, outs, axis=nn.prop_int(op, "axis", 1))
    elif isinstance(op, nn.TransposeOp):
        ex.node("Transpose", ins, outs, perm=nn.prop_ints(op, "perm", []))
    elif isinstance(op, nn.ConcatOp):
        ex.node("Concat", ins, outs, axis=nn.prop_int(op, "axis", 0))
    elif isinstance(op, nn.SliceOp):
        starts = nn.prop_ints(op, "starts", [])
        bounds = [
            ex.const(np.asarray(nn.prop_ints(op, role, default), np.int64), role)
            for role, default in (("starts", []), ("ends", []), ("axes", []),
                                  ("steps", [1] * len(starts)))
        ]
        ex.node("Slice", [ins[0], *bounds], outs)
    elif isinstance(op, nn.SplitOp):
        sizes = np.asarray(nn.prop_ints(op, "sizes", []), np.int64)
        ex.node("Split", [ins[0], ex.const(sizes, "split")], outs,
                axis=nn.prop_int(op, "axis", 0))
    elif isinstance(op, nn.GatherOp):
        ex.node("Gather", ins, outs, axis=nn.prop_int(op, "axis", 0))
    elif isinstance(op, onnx_llm.OPS):
        onnx_llm.export_llm_op(ex, op, ins, outs)
    elif isinstance(op, onnx_ops.OPS):
        onnx_ops.export_family_op(ex, op, ins, outs)
    elif isinstance(op, onnx_spatial.OPS):
        onnx_spatial.export_spatial_op(ex, op, ins, outs)
    else:
        raise ex.error(f"cannot export '{op.name}' to ONNX (no ONNX counterpart in irflow's "
                       "exporter; supported: the nn dialect, see docs/onnx.md)")


def _linear(ex: _Exporter, op: nn.LinearOp, ins: list[str], outs: list[str]) -> None:
    if len(nn.shape_of(op.input)) == 2:
        ex.node("Gemm", ins, outs, transB=1)
        return
    wt = ex.temp("weight_t")
    ex.node("Transpose", [ins[1]], [wt], "/transpose", perm=[1, 0])
    if len(ins) == 2:
        ex.node("MatMul", [ins[0], wt], outs)
        return
    mm = ex.temp("matmul")
    ex.node("MatMul", [ins[0], wt], [mm], "/matmul")
    ex.node("Add", [mm, ins[2]], outs)


# --------------------------------------------------------------------------------------
# Entry point


def _value_info(name: str, value: SSAValue) -> Any:
    from onnx import helper

    ty = value.type
    if not isinstance(ty, TensorType):
        raise ExportError(f"cannot export value '{name}' of type {ty} (tensors only)")
    elem = helper.np_dtype_to_tensor_dtype(numpy_dtype(ty.element_type))
    return helper.make_tensor_value_info(name, elem, list(nn.shape_of(value)))


def _op_name(op: Operation, index: int) -> str:
    loc = op.location
    if isinstance(loc, NameLoc):
        return loc.desc.data
    return f"{op.name.split('.')[-1]}_{index}"


def export_onnx(module: ModuleOp, path: str | os.PathLike[str] | None = None, *,
                opset: int = 17) -> Any:
    """Write `module`'s `@main` as an ONNX model (returned; also saved when `path` is given).

    Raises `ExportError` naming the op for IR with no ONNX counterpart. Quantized IR
    exports in QDQ form (`irflow.exporters.onnx_qdq`).
    """
    from irflow.exporters.onnx_qdq import export_quantized, is_quantized_op

    try:
        from onnx import helper, numpy_helper
    except ImportError:
        raise IrflowError("exporting ONNX needs the 'onnx' package: pip install 'irflow[onnx]'"
                          ) from None
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"cannot export to opset {opset} (irflow exports opsets "
                          f"{MIN_OPSET}-{MAX_OPSET})")
    f = main_func(module)
    store = weights_of(module)
    block = f.body.blocks[0]
    ex = _Exporter(opset)

    in_names, out_names = input_names(f), output_names(f)
    ex.used.update(in_names, out_names)
    weight_keys = {op.value.key for op in block.ops
                   if isinstance(op, nn.ConstantOp) and isinstance(op.value, nn.WeightAttr)}
    ex.used.update(weight_keys)
    # a weight named like a graph output or input (a returned constant) is renamed
    initializer_names = {k: ex.fresh(f"{k}_weight") if k in in_names or k in out_names else k
                         for k in sorted(weight_keys)}
    for arg, name in zip(block.args, in_names):
        ex.names[arg] = name

    # A returned op result takes the output's name; anything else gets an Identity.
    ret = block.last_op
    assert isinstance(ret, func.ReturnOp)
    identities: list[tuple[str, str]] = []
    for value, name in zip(ret.operands, out_names):
        if isinstance(value.owner, Operation) and value not in ex.names and not (
            isinstance(value.owner, nn.ConstantOp) and isinstance(value.owner.value,
                                                                  nn.WeightAttr)
        ):
            ex.names[value] = name
        else:
            identities.append((name, value))  # type: ignore[arg-type]

    exported_weights: set[str] = set()
    for index, op in enumerate(block.ops):
        if op is ret:
            break
        ex.op, ex.op_name = op, _op_name(op, index)
        if isinstance(op, nn.ConstantOp):
            value = op.output
            if isinstance(op.value, nn.WeightAttr):
                key = initializer_names[op.value.key]
                ex.names[value] = key
                if key not in exported_weights:
                    array = constant_value(op, store)
                    ex.initializers.append(numpy_helper.from_array(np.asarray(array), key))
                    exported_weights.add(key)
            else:
                out = ex.names.get(value) or ex.fresh(f"{ex.op_name}/value")
                ex.names[value] = out
                ex.node("Constant", [], [out], value=numpy_helper.from_array(
                    np.asarray(constant_value(op, store), order="C")))
            continue
        ins = [ex.names[o] for o in op.operands]
        outs = [ex.names.get(r) or ex.fresh(f"{ex.op_name}/output_{i}")
                for i, r in enumerate(op.results)]
        for r, name in zip(op.results, outs):
            ex.names[r] = name
        if is_quantized_op(op):  # QDQ form: irflow/exporters/onnx_qdq.py
            export_quantized(ex, op, ins, outs)
        else:
            _export_op(ex, op, ins, outs)
    ex.op = None
    for name, value in identities:
        ex.op_name = f"{name}/identity"
        ex.node("Identity", [ex.names[value]], [name])  # type: ignore[index]

    graph = helper.make_graph(
        ex.nodes, f.sym_name.data,
        [_value_info(n, a) for n, a in zip(in_names, block.args)],
        [_value_info(n, v) for n, v in zip(out_names, ret.operands)],
        ex.initializers,
    )
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="irflow")
    model.ir_version = helper.find_min_ir_version_for(opsets)
    if path is not None:
        write_output(path, model.SerializeToString())
    return model


__all__ = ["export_onnx", "ExportError", "MIN_OPSET", "MAX_OPSET"]
