"""`convert-float`: run a float32 model in float16 — every f32 tensor (function
arguments and results, op results, weights, inline constants, the expressed type of
quantized tensors) becomes f16, and the weight store's arrays are rounded to float16.

    func.func @main(%x: tensor<1x64xf32>) -> tensor<1x10xf32> {
      %w = nn.constant #nn.weight<"fc.weight"> : tensor<10x64xf32>
      %y = nn.linear %x, %w : (tensor<1x64xf32>, tensor<10x64xf32>) -> tensor<1x10xf32>
becomes, with `convert-float{to=f16}`,
    func.func @main(%x: tensor<1x64xf16>) -> tensor<1x10xf16> {
      %w = nn.constant #nn.weight<"fc.weight"> : tensor<10x64xf16>
      %y = nn.linear %x, %w : (tensor<1x64xf16>, tensor<10x64xf16>) -> tensor<1x10xf16>

Integer tensors (token ids, quantized storage) are left alone. The kernels keep their
float32 accumulation (docs/executor.md), so only storage and the rounding of every
result change. Run it before `quantize-groups` (the scales then come out in f16).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    Float32Type,
    FunctionType,
    ModuleOp,
    TensorType,
    f16,
)
from xdsl.ir import Attribute
from xdsl.passes import ModulePass

from irflow.diagnostics import PassError
from irflow.dialects import nn
from irflow.dialects.quant import UniformQuantizedType
from irflow.weights import dense_attr, weights_of


def _convert(ty: Attribute) -> Attribute:
    if not isinstance(ty, TensorType):
        return ty
    el = ty.element_type
    if isinstance(el, Float32Type):
        return TensorType(f16, ty.get_shape())
    if isinstance(el, UniformQuantizedType) and isinstance(el.expressed, Float32Type):
        params = list(el.parameters)
        params[3] = f16
        return TensorType(UniformQuantizedType(*params), ty.get_shape())
    return ty


def _to_f16(array: np.ndarray) -> np.ndarray:
    return np.asarray(array, np.float16)


@dataclass(frozen=True)
class ConvertFloatPass(ModulePass):
    """f32 tensors -> f16 (module docstring)."""

    name = "convert-float"

    to: str = "f16"

    def apply(self, ctx: Context, module: ModuleOp) -> None:
        if self.to != "f16":
            raise PassError(f"convert-float: to must be f16, got '{self.to}'")
        store = weights_of(module)
        converted: set[str] = set()
        for fn in module.ops:
            if not isinstance(fn, func.FuncOp):
                continue
            block = fn.body.blocks[0]
            for arg in block.args:
                arg._type = _convert(arg.type)  # noqa: SLF001 - as prune: no public retype
            for op in fn.body.walk():
                if isinstance(op, nn.ConstantOp):
                    self._constant(op, store, converted)
                for res in op.results:
                    res._type = _convert(res.type)  # noqa: SLF001
            ins = [a.type for a in block.args]
            outs = [_convert(t) for t in fn.function_type.outputs.data]
            fn.function_type = FunctionType.from_lists(ins, outs)

    @staticmethod
    def _constant(op: nn.ConstantOp, store: object, converted: set[str]) -> None:
        ty = op.output.type
        if not isinstance(ty, TensorType) or not isinstance(ty.element_type, Float32Type):
            return
        if isinstance(op.value, nn.WeightAttr):
            key = op.value.key
            if key not in converted:
                store.transform(key, _to_f16)  # type: ignore[attr-defined]  # lazy stays lazy
                converted.add(key)
        elif isinstance(op.value, DenseIntOrFPElementsAttr):
            values = np.asarray(op.value.get_values(), np.float16).reshape(ty.get_shape())
            op.properties["value"] = dense_attr(values, f16)
