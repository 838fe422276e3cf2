"""Static cost figures of a model: MACs, parameters, weight bytes.

The conventions are the ones papers and torchvision's model cards use, so the zoo's
figures can be checked against the literature:

* **MACs** count multiply-accumulates of the contractions only (conv2d, linear,
  matmul); elementwise ops, normalization, pooling and softmax count 0. A bias add
  is not a MAC. Conv: N·F·OH·OW · (C/groups)·KH·KW; linear: rows · out · in;
  matmul: batch · M · K · N.
* **Parameters** are the elements of the weight-store arrays that nn ops take as
  operands, except batchnorm's running mean and variance, which are buffers (as
  `sum(p.numel() for p in model.parameters())` counts in PyTorch).
* **Model bytes** is the packed storage of every weight-store array the module
  references, buffers included, at its element type's bit width (an i4 weight is
  half a byte); a weight whose constant carries `nn.sparsity` counts as the simulated
  machine stores it (`plan-memory`'s `weight_storage`: an N:M pattern the PE array
  decodes as values plus indices, other sparse weights in the machine's
  `unstructured_format`, and dense whenever that is not smaller).

    >>> total_macs(irflow.zoo.load("resnet18"))
    1814073344
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from xdsl.dialects.builtin import IntegerType, ModuleOp, TensorType
from xdsl.ir import Attribute, Operation

from irflow.dialects import nn

if TYPE_CHECKING:
    from irflow.backends.sim.machine import Machine


def _numel(value_type: Attribute) -> int:
    assert isinstance(value_type, TensorType)
    return math.prod(value_type.get_shape())


def _conv_macs(op: Operation) -> int:
    out, weight = op.results[0].type, op.operands[1].type
    assert isinstance(weight, TensorType)
    return _numel(out) * math.prod(weight.get_shape()[1:])  # per output: C/groups·KH·KW


def _linear_macs(op: Operation) -> int:
    weight = op.operands[1].type
    assert isinstance(weight, TensorType)
    return _numel(op.results[0].type) * weight.get_shape()[1]


def _matmul_macs(op: Operation) -> int:
    lhs = op.operands[0].type
    assert isinstance(lhs, TensorType)
    return _numel(op.results[0].type) * lhs.get_shape()[-1]


def _attention_macs(op: Operation) -> int:
    """QKᵀ and PV over every key (the causal mask's zeros included, as the PE array
    computes them)."""
    t, dv = nn.shape_of(op.operands[1])[2], nn.shape_of(op.operands[2])[3]
    return _numel(op.operands[0].type) // nn.shape_of(op.operands[0])[3] * t * (
        nn.shape_of(op.operands[0])[3] + dv)


# MACs of each contraction op; every other op counts 0.
MAC_FUNCTIONS: dict[type[Operation], Callable[[Operation], int]] = {
    nn.Conv2dOp: _conv_macs,
    nn.LinearOp: _linear_macs,
    nn.MatmulOp: _matmul_macs,
    nn.AttentionOp: _attention_macs,
}

# (op class, operand index) pairs that are buffers, not learned parameters.
BUFFER_OPERANDS: frozenset[tuple[type[Operation], int]] = frozenset(
    {(nn.BatchNormOp, 3), (nn.BatchNormOp, 4), (nn.RotaryOp, 1), (nn.RotaryOp, 2)}
)


def op_macs(op: Operation) -> int:
    """Multiply-accumulates of one op (0 for anything but conv2d, linear, matmul, attention)."""
    fn = MAC_FUNCTIONS.get(type(op))
    return fn(op) if fn is not None else 0


def total_macs(module: ModuleOp) -> int:
    return sum(op_macs(op) for op in module.walk())


def _weight_constants(module: ModuleOp) -> list[nn.ConstantOp]:
    return [op for op in module.walk()
            if isinstance(op, nn.ConstantOp) and isinstance(op.value, nn.WeightAttr)]


def _is_parameter(const: nn.ConstantOp) -> bool:
    """Used by some nn op, and not only as a buffer operand."""
    uses = list(const.output.uses)
    if not uses:
        return False
    return any(
        (type(u.operation), u.index) not in BUFFER_OPERANDS
        for u in uses
        if u.operation.name.startswith("nn.")
    )


def param_count(module: ModuleOp) -> int:
    """Learned parameters: elements of the weight arrays nn ops use (BN buffers excluded)."""
    seen: dict[str, int] = {}
    for const in _weight_constants(module):
        key = const.value.key  # type: ignore[union-attr]
        if key not in seen and _is_parameter(const):
            seen[key] = _numel(const.output.type)
    return sum(seen.values())


def _bits(element_type: Attribute) -> int:
    """Storage bits of one element; a quantized type counts its storage integer."""
    storage = getattr(element_type, "storage", None)  # !quant.uniform<i4:f32, ...>
    if isinstance(storage, Attribute):
        return _bits(storage)
    if isinstance(element_type, IntegerType):
        return element_type.width.data
    width = getattr(element_type, "bitwidth", None)  # f16, bf16, f32, f64
    if isinstance(width, int):
        return width
    raise ValueError(f"no storage bit width for element type {element_type}")


def model_bytes(module: ModuleOp, machine: Machine | str | None = "default") -> int:
    """Packed bytes of every weight-store array the module references (buffers included);
    sparse weights as `machine` (a `Machine`, preset name or TOML path) stores them."""
    from irflow.passes.plan_memory import SparseSupport, weight_storage

    if isinstance(machine, str) or machine is None:
        support = SparseSupport.of(machine or "default")
    else:  # a Machine
        support = SparseSupport(frozenset(machine.sparsity.structured),
                                machine.sparsity.unstructured_format)
    seen: dict[str, int] = {}
    for const in _weight_constants(module):
        key = const.value.key  # type: ignore[union-attr]
        if key in seen:
            continue
        ty = const.output.type
        assert isinstance(ty, TensorType)
        stored = weight_storage(const, support)
        bits = stored[1] if stored is not None else _numel(ty) * _bits(ty.element_type)
        seen[key] = -(-bits // 8)
    return sum(seen.values())


__all__ = ["op_macs", "total_macs", "param_count", "model_bytes", "MAC_FUNCTIONS"]
