"""Iteration spaces of the vector-unit families beyond the core activations: the table-driven
math and logic maps, the reductions and scans, `nn.topk` and `quant.scast`;
`accel.layer_space` delegates these kinds here.

- **point-wise** (`POINTWISE`: every row of `nn.MATH_OPS` — `nn.abs`, `nn.log`, the trig and
  hyperbolic functions, `nn.elu`, `nn.mish`, ..., `nn.cast`, `nn.is_nan`, `nn.is_inf` —,
  `nn.bitcast`, and every row of `nn.LOGIC_OPS` — comparisons, `nn.and`/`or`/`xor`, the
  bitwise ops, `nn.min`/`max`, `nn.mod`, `nn.bit_shift`, `nn.prelu`, `nn.where`): loops
  d0 … d(r−1) over the result, every operand broadcast (its size-1 axes stay at index 0),
  one vector operation per result element;
- **reductions over `axes`** (`nn.reduce_sum`, `_max`, `_min`, `_prod`, `_l1`, `_l2`,
  `_log_sum`, `_log_sum_exp`, `_sum_square`): like `nn.reduce_mean`, the reduced axes whole
  in every tile, loops over the others; one operation per input element;
- **along one axis** (`nn.arg_max`/`arg_min`, `nn.log_softmax`, `nn.hardmax`, `nn.cumsum`,
  `nn.cumprod`): like `nn.softmax`, that axis whole in every tile; one operation per input
  element;
- **`nn.topk`**: the axis whole in the input tile and its k results whole in the result
  tile; n·⌈log2 n⌉ compare-exchanges per row of n (n ≥ 2; 1 for n = 1). The op has two
  results, so it lowers to two layers (`<label>.values`, `<label>.indices`, params
  `result = 0 / 1`), each running the selection for its own result;
- **`quant.scast`** is in `accel.QUANT_CASTS` (a reinterpretation: cost class `copy`).

The cost class each kind charges per operation (the machine's `cycles_per_element` table)
is `COST_CLASS` (docs/simulator.md §2.2).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from xdsl.ir import Attribute

from irflow.dialects import accel, nn
from irflow.dialects.nn.logic import LOGIC_OPS
from irflow.dialects.nn.math import MATH_OPS
from irflow.dialects.nn.reductions import ARG_REDUCTIONS, AXIS_MAPS, REDUCTIONS, SCANS

Shape = tuple[int, ...]

POINTWISE = frozenset({f"nn.{s}" for s in (*MATH_OPS, *LOGIC_OPS)} | {"nn.bitcast"})
"""Kinds computed point-wise with broadcasting (result element i reads operand element i)."""
REDUCE_KINDS = frozenset(f"nn.{s}" for s in REDUCTIONS)
"""Reductions over the `axes` property (whole in every tile)."""
ARG_KINDS = frozenset(f"nn.{s}" for s in ARG_REDUCTIONS)
"""The index of the extreme along `axis` (i64 result, the axis kept or dropped)."""
ALONG_AXIS = ARG_KINDS | {f"nn.{s}" for s in (*AXIS_MAPS, *SCANS)}
"""Kinds computed along the `axis` property (whole in every tile)."""
TOPK = "nn.topk"
KINDS = POINTWISE | REDUCE_KINDS | ALONG_AXIS | {TOPK}

RESULT_PARAM = "result"
"""The params key naming which result of a multi-result op (`nn.topk`) a layer stores."""
PER_RESULT = frozenset({TOPK})
"""Multi-result kinds: one layer per result (`lower-to-accel`)."""

_SELECT = ("abs", "sign", "floor", "ceil", "round", "leaky_relu", "thresholded_relu", "shrink",
           "prelu", "min", "max", "where", "equal", "less", "less_or_equal", "greater",
           "greater_or_equal", "and", "or", "xor", "not", "bitwise_and", "bitwise_or",
           "bitwise_xor", "bitwise_not", "bit_shift", "is_nan", "is_inf", "cast", "bitcast")
_DIVIDE = ("reciprocal", "softsign", "mod")
_TRANSCENDENTAL = ("log", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh",
                   "acosh", "atanh", "elu", "selu", "celu", "softplus")
COST_CLASS: dict[str, str] = {
    **{f"nn.{s}": "relu" for s in _SELECT},  # a compare, select, bit operation or conversion
    **{f"nn.{s}": "mul" for s in _DIVIDE},  # a divide (or multiply by a reciprocal)
    **{f"nn.{s}": "sigmoid" for s in _TRANSCENDENTAL},  # one exp/log/trig evaluation
    "nn.mish": "gelu",  # two: tanh(softplus(x))
    **dict.fromkeys(("nn.reduce_sum", "nn.reduce_prod", "nn.reduce_l1", "nn.reduce_l2",
                     "nn.reduce_log_sum", "nn.reduce_sum_square"), "avgpool"),  # accumulate
    **dict.fromkeys(("nn.reduce_max", "nn.reduce_min", "nn.arg_max", "nn.arg_min",
                     "nn.hardmax", TOPK), "maxpool"),  # compare and keep
    "nn.reduce_log_sum_exp": "softmax", "nn.log_softmax": "softmax",  # max, exp, sum, log
    "nn.cumsum": "add", "nn.cumprod": "mul",
    "quant.scast": "copy",
}
"""Kind -> the machine's vector cost class (`VectorCycles` field) it is charged per operation."""


def topk_ops(n: int) -> int:
    """Compare-exchanges to select the top k of a row of n: n·⌈log2 n⌉ (a sort), 1 if n < 2."""
    return n * max(1, math.ceil(math.log2(n))) if n >= 2 else 1


def vector_space(kind: str, shapes: Sequence[Shape], out: Shape,
                 params: Mapping[str, Attribute]) -> accel.Space:
    """The iteration space of one of `KINDS` (module docstring)."""
    on, zero = accel.on, accel.ZERO
    if kind in POINTWISE:
        ext = accel._loops(out)
        ops = tuple(accel._broadcast_access(s, out) for s in shapes)
        return accel.Space(kind, "vector", tuple(ext), ext, ops, accel._identity(out),
                           ops_per_point=1)
    x = shapes[0]
    rank = len(x)
    if kind in REDUCE_KINDS:
        axes = sorted({a % rank for a in nn.prop_ints(params, "axes", ())})
    else:
        default = 0 if kind in ARG_KINDS else -1  # the ops' own property defaults
        axes = [nn.prop_int(params, "axis", default) % rank] if rank else []
    ext = accel._loops(x, axes)
    per_row = math.prod(x[a] for a in axes)
    if kind in REDUCE_KINDS or kind in ARG_KINDS:
        keep = tuple(1 if i in axes else d for i, d in enumerate(x))
        y = accel.Access(keep, tuple(zero if i in axes else on(f"d{i}") for i in range(rank)))
        return accel.Space(kind, "vector", tuple(ext), ext, (accel._identity(x, axes),), y,
                           ops_per_point=per_row)
    ops = topk_ops(per_row) if kind == TOPK else per_row
    return accel.Space(kind, "vector", tuple(ext), ext, (accel._identity(x, axes),),
                       accel._identity(out, axes), ops_per_point=ops)


__all__ = ["KINDS", "POINTWISE", "REDUCE_KINDS", "ARG_KINDS", "ALONG_AXIS", "TOPK", "PER_RESULT",
           "RESULT_PARAM", "COST_CLASS", "topk_ops", "vector_space"]
