"""VJPs of the table-driven elementwise math family (`dialects/nn/math.py`): one rule for
every differentiable row (`DIFFERENTIABLE_MATH`), emitting `nn.activation_grad` with the
row's name as `fn` and the forward op's float properties made explicit (defaults
included); the per-function derivatives are the table in
`backends/reference/math_grad_kernels.py`.

    %y = nn.leaky_relu %x {alpha = 0.1 : f64} : tensor<4xf64>
    // VJP:
    %dx = nn.activation_grad %x, %dy {alpha = 0.1 : f64, fn = "leaky_relu"} : (...) -> tensor<4xf64>

The other rows (floor, ceil, round, sign: zero derivative almost everywhere; not,
bitwise_not, is_nan, is_inf, cast) have no rule: on the path from a trainable weight to
the loss they are `grad`'s `NotDifferentiable` error.
"""

from __future__ import annotations

from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Attribute, Operation, SSAValue

from irflow.dialects import nn
from irflow.dialects.nn import gradients as g
from irflow.dialects.nn.math import DIFFERENTIABLE_MATH, MATH_OPS, PARAM_ACTIVATIONS
from irflow.train.vjp import Emitter, Grads, vjp


@vjp(*(MATH_OPS[s] for s in DIFFERENTIABLE_MATH))
def _math(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    short = op.name.removeprefix("nn.")
    props: dict[str, Attribute | None] = {"fn": StringAttr(short)}
    defaults = PARAM_ACTIVATIONS[short][1] if short in PARAM_ACTIVATIONS else {}
    props.update({k: nn.f64(nn.prop_float(op, k, d)) for k, d in defaults.items()})
    return [e.make(g.ActivationGradOp, [op.operands[0], dys[0]], props)]  # type: ignore[list-item]
