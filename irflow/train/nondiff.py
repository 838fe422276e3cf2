"""Which `nn` ops `grad` does not differentiate, and why: the explicit complement of the
VJP rules (`tests/test_grad_coverage.py` fails when an `nn` op is in neither).

Two kinds:

- `INTEGER_VALUED`: ops whose results are integer or boolean (comparisons, logic, bitwise
  ops, arg_max/arg_min, is_nan/is_inf). Gradients flow through float values only, as in
  torch: an integer or boolean value (these ops' results, `nn.topk`'s indices, a cast to an
  integer type) carries none, so it cuts the path from a weight to the loss instead of
  being an error (`carries_gradient`).
- `NO_GRADIENT`: float-valued ops without a VJP. On the path from a trainable weight to
  the loss they are `grad`'s `NotDifferentiable` error naming the op and the reason.
  floor, ceil, round, sign and hardmax are a judgement call: their derivative is zero
  almost everywhere and torch returns that zero; irflow refuses instead, because a zero
  gradient silently stops everything upstream from learning (for rounding in
  quantization-aware training, `nn.fake_quant` has the straight-through estimator).
  The backward ops themselves (`nn.conv2d_input_grad`, ..., the loss gradients) are not
  differentiated: no second-order gradients.
"""

from __future__ import annotations

from xdsl.dialects.builtin import IndexType, IntegerType
from xdsl.ir import SSAValue

from irflow.dialects import nn
from irflow.dialects.nn.fake_quant import FakeQuantGradOp
from irflow.dialects.nn.gradients import GRADIENT_OPS
from irflow.dialects.nn.logic import BINARIES, COMPARISONS
from irflow.dialects.nn.losses import CrossEntropyGradOp, KlDivGradOp, MseGradOp
from irflow.dialects.nn.reductions import ARG_REDUCTIONS

_INTEGER_BINARIES = ("and", "or", "xor", "bitwise_and", "bitwise_or", "bitwise_xor",
                     "bit_shift")

INTEGER_VALUED: frozenset[str] = frozenset(
    [f"nn.{s}" for s in COMPARISONS] + [f"nn.{s}" for s in _INTEGER_BINARIES if s in BINARIES]
    + [f"nn.{s}" for s in ARG_REDUCTIONS] + ["nn.not", "nn.bitwise_not", "nn.is_nan",
                                              "nn.is_inf"])
"""Ops whose results are integer or boolean: no gradient flows through them."""

_PIECEWISE = ("piecewise constant (zero derivative almost everywhere; torch returns that "
              "zero, irflow refuses: for rounding in quantization-aware training use "
              "nn.fake_quant's straight-through estimator)")
_SECOND_ORDER = "a backward op (no second-order gradients)"
_BITS = "reinterprets the bits of its operand (no derivative)"

NO_GRADIENT: dict[str, str] = {
    "nn.floor": _PIECEWISE, "nn.ceil": _PIECEWISE, "nn.round": _PIECEWISE,
    "nn.sign": _PIECEWISE, "nn.hardmax": _PIECEWISE, "nn.bitcast": _BITS,
    **{cls.name: _SECOND_ORDER for cls in (*GRADIENT_OPS, CrossEntropyGradOp, KlDivGradOp,
                                          MseGradOp, FakeQuantGradOp)},
}
"""Float-valued nn ops without a VJP: op name -> why (the error message says it)."""


def carries_gradient(value: SSAValue) -> bool:
    """False for integer and boolean tensors: they carry no gradient."""
    return not isinstance(nn.value_element_type(value), IntegerType | IndexType)


__all__ = ["INTEGER_VALUED", "NO_GRADIENT", "carries_gradient"]
