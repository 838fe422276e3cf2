"""Building and inspecting the function that holds a model.

A model is a `builtin.module` with one `func.func @main`. Inputs are named by the
block arguments' name hints (or an `nn.name` argument attribute when the name is not
a valid SSA identifier, e.g. ONNX's `input.1`); outputs by an `nn.name` result
attribute, defaulting to `output0`, `output1`, ...

`GraphBuilder` is what frontends (DSL, ONNX, zoo) use:

    >>> g = GraphBuilder()
    >>> x = g.input("x", [1, 64])
    >>> w = g.weight("fc.weight", np.zeros((10, 64), np.float32))
    >>> y = g.add(nn.LinearOp.make([x, w])).results[0]
    >>> module = g.finish([y], ["logits"])
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    ModuleOp,
    StringAttr,
    TensorType,
    f32,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from irflow.diagnostics import IrflowError
from irflow.dialects import nn
from irflow.weights import WeightStore, attach_weights, dense_attr, numpy_dtype

_SSA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$.-]*$")
SSA_NAME = _SSA_NAME  # what a block argument's name hint may be
NAME_ATTR = "nn.name"


def main_func(module: ModuleOp, name: str = "main") -> func.FuncOp:
    """The model's entry function (`@main`, or the only function)."""
    funcs = [op for op in module.ops if isinstance(op, func.FuncOp)]
    for f in funcs:
        if f.sym_name.data == name:
            return f
    if len(funcs) == 1:
        return funcs[0]
    raise IrflowError(
        f"module has no function @{name} (functions: "
        f"{', '.join('@' + f.sym_name.data for f in funcs) or 'none'})"
    )


def _attr_name(attrs: Sequence[DictionaryAttr] | None, i: int) -> str | None:
    if attrs is None or i >= len(attrs):
        return None
    value = attrs[i].data.get(NAME_ATTR)
    return value.data if isinstance(value, StringAttr) else None


def input_names(f: func.FuncOp) -> list[str]:
    attrs = f.arg_attrs.data if f.arg_attrs is not None else None
    names = []
    for i, arg in enumerate(f.body.blocks[0].args):
        names.append(_attr_name(attrs, i) or arg.name_hint or f"input{i}")
    return names


def output_names(f: func.FuncOp) -> list[str]:
    attrs = f.res_attrs.data if f.res_attrs is not None else None
    n = len(f.function_type.outputs.data)
    return [_attr_name(attrs, i) or f"output{i}" for i in range(n)]


class GraphBuilder:
    """Appends ops to a fresh `@main` and collects its weights."""

    def __init__(self, store: WeightStore | None = None):
        self.block = Block()
        self.store = store if store is not None else WeightStore()
        self._input_names: list[str] = []

    def input(self, name: str, shape: Sequence[int], element_type: Attribute = f32) -> SSAValue:
        arg = self.block.insert_arg(TensorType(element_type, list(shape)), len(self.block.args))
        if _SSA_NAME.match(name):  # else the name goes in an `nn.name` argument attribute
            arg.name_hint = name
        self._input_names.append(name)
        return arg

    def add(self, op: Operation, loc: Attribute | None = None) -> Operation:
        """Append `op` (with source location `loc`, if given) and return it."""
        if loc is not None:
            op.location = loc  # type: ignore[assignment]
        self.block.add_op(op)
        return op

    def weight(self, hint: str, array: np.ndarray, loc: Attribute | None = None,
               element_type: Attribute = f32) -> SSAValue:
        """A `nn.constant #nn.weight<...>` for `array` (stored under a unique name)."""
        array = np.asarray(array, dtype=numpy_dtype(element_type), order="C")  # 0-d stays 0-d
        name = self.store.add(hint, array)
        ty = TensorType(element_type, list(array.shape))
        return self.add(nn.ConstantOp(nn.WeightAttr(name), ty), loc).results[0]

    def inline(self, array: np.ndarray, element_type: Attribute = f32,
               loc: Attribute | None = None) -> SSAValue:
        """A small constant printed inline as `dense<...>`."""
        attr = dense_attr(array, element_type)
        return self.add(nn.ConstantOp(attr, attr.type), loc).results[0]  # type: ignore[arg-type]

    def finish(self, outputs: Sequence[SSAValue], names: Sequence[str] | None = None,
               func_name: str = "main") -> ModuleOp:
        self.block.add_op(func.ReturnOp(*outputs))
        arg_types = [a.type for a in self.block.args]
        fn = func.FuncOp(func_name, (arg_types, [o.type for o in outputs]), Region(self.block))
        if any(a.name_hint != n for a, n in zip(self.block.args, self._input_names)):
            fn.arg_attrs = _name_attrs(self._input_names)
        if names is not None:
            fn.res_attrs = _name_attrs(names)
        module = ModuleOp([fn])
        return attach_weights(module, self.store)


def _name_attrs(names: Sequence[str]) -> ArrayAttr[DictionaryAttr]:
    return ArrayAttr([DictionaryAttr({NAME_ATTR: StringAttr(n)}) for n in names])
