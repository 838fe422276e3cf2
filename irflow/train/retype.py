"""`retype`: a copy of a model at another batch size (or input shape) and float precision.

Training runs a batch of B samples through a model written for batch 1, and the gradient
checks run in float64; both need the same graph with other static types. `retype` clones
`@main`, gives the inputs their new shapes, re-infers every op's result shape in program
order (each nn op's own `infer_shapes`) and casts float types and weights:

    >>> m8 = retype(zoo.load("digits_cnn"), batch=8)            # tensor<8x1x8x8xf32> in
    >>> m64 = retype(m8, dtype=np.float64)                      # same graph in f64

`nn.reshape` keeps its target shape except the leading dimensions it shared with its
input, which follow the input's new ones (the transformer's `[1, 128, 256] ->
[1, 128, 4, 64]` becomes `[8, 16, 4, 64]` for an input of 8x16x256); a reshape that no
longer fits is an error naming it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    Float32Type,
    Float64Type,
    ModuleOp,
    TensorType,
    f32,
    f64,
)
from xdsl.ir import Attribute, Operation, SSAValue

from irflow.diagnostics import IrflowError
from irflow.dialects import nn
from irflow.dialects.nn import Shape
from irflow.graph import input_names, main_func
from irflow.weights import WeightStore, attach_weights, constant_value, dense_attr, weights_of

_FLOATS = (Float32Type, Float64Type)


def _elem(ty: Attribute, dtype: Attribute | None) -> Attribute:
    return dtype if dtype is not None and isinstance(ty, _FLOATS) else ty


def _set(value: SSAValue, shape: Sequence[int], dtype: Attribute | None) -> None:
    ty = value.type
    assert isinstance(ty, TensorType)
    value._type = TensorType(_elem(ty.element_type, dtype), list(shape))  # noqa: SLF001


def retype(module: ModuleOp, *, batch: int | None = None,
           input_shapes: Mapping[str, Sequence[int]] | None = None,
           dtype: type[np.floating] | None = None) -> ModuleOp:
    """A new module: `module`'s `@main` with inputs reshaped (`batch` sets every input's
    first dimension; `input_shapes` whole shapes by name) and floats in `dtype` (np.float32
    or np.float64). The weight store is copied (cast when `dtype` changes it)."""
    elem = {None: None, np.float32: f32, np.float64: f64}[dtype]
    new = module.clone()
    fn = main_func(new)
    block = fn.body.blocks[0]
    names = input_names(fn)
    original = {v: nn.shape_of(v) for op in block.ops for v in op.operands}
    store = weights_of(module)
    cast = WeightStore({k: (v.astype(dtype) if dtype is not None and v.dtype.kind == "f"
                            else v) for k, v in store.items()})
    for name, arg in zip(names, block.args):
        shape = list(nn.shape_of(arg))
        if input_shapes and name in input_shapes:
            shape = list(input_shapes[name])
        elif batch is not None and shape:
            shape[0] = batch
        _set(arg, shape, elem)
    for op in block.ops:
        if isinstance(op, func.ReturnOp):
            break
        try:
            _reinfer(op, elem, original)
        except IrflowError:
            raise
        except Exception as e:
            raise IrflowError(f"cannot retype {op.name}: {e}", op) from None
    fn.update_function_type()
    attach_weights(new, cast)
    return new


def _reinfer(op: Operation, elem: Attribute | None, original: Mapping[SSAValue, Shape]
             ) -> None:
    if isinstance(op, nn.ConstantOp):
        ty = op.output.type
        assert isinstance(ty, TensorType)
        if isinstance(op.value, DenseIntOrFPElementsAttr) and elem is not None and isinstance(
                ty.element_type, _FLOATS):
            value = constant_value(op, WeightStore())
            op.properties["value"] = dense_attr(np.array(value), elem)
        _set(op.output, nn.shape_of(ty), elem)
        return
    if isinstance(op, nn.ReshapeOp):
        x, out = nn.shape_of(op.input), list(nn.shape_of(op.output))
        old = original[op.input]
        k = 0  # the leading dimensions the reshape kept follow the input's new ones
        while k < min(len(old), len(out), len(x)) and old[k] == out[k]:
            k += 1
        out[:k] = x[:k]
        if math.prod(out) != math.prod(x):
            raise IrflowError(f"nn.reshape to {nn.format_shape(out)} does not fit the "
                              f"retyped input {nn.format_shape(x)}", op)
        _set(op.output, out, elem)
        return
    from irflow.dialects.nn.gradients import ShapedGradOp

    if isinstance(op, ShapedGradOp) or not isinstance(op, nn.NNOp):
        raise IrflowError(f"retype handles forward nn ops only, got {op.name}", op)
    shapes = type(op).infer_shapes([nn.shape_of(v) for v in op.operands], op.properties)
    for r, s in zip(op.results, shapes):
        _set(r, s, elem)
