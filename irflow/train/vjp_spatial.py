"""VJPs of the ops imported from ONNX's einsum and n-D spatial family (`dialects/nn/einsum.py`,
`dialects/nn/spatial.py`), composed from forward `nn` ops; no backward op of their own.

    nn.einsum  d operand i = nn.einsum of dy with the other operands into operand i's
               subscripts. The equation is first made explicit: `...` becomes letters
               (a broadcast size-1 axis gets a letter of its own), the implicit output
               is spelled out. A letter of operand i found neither in the output nor in
               another operand (summed over operand i alone) comes from a ones tensor
               added to the contraction (the gradient is broadcast along it). An operand
               with a repeated letter (a diagonal, `ii->i`) is not differentiated.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Operation, SSAValue

from irflow.dialects import nn
from irflow.dialects.nn.einsum import EinsumOp, einsum_shape
from irflow.dialects.nn.shapes import Shape, broadcast_shapes
from irflow.train.vjp import Emitter, Grads, NotDifferentiable, vjp


def explicit_einsum(equation: str, shapes: Sequence[Shape]) -> tuple[list[str], str]:
    """`equation` with letters for `...` and the output spelled out: (input terms, output
    term), each one letter per axis. A size-1 axis of an operand's `...` that is broadcast
    gets a letter of its own (summed over that one element: the same result)."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if not arrow:
        counts = Counter(c for c in lhs if c.isalpha())
        rhs = ("..." if "..." in lhs else "") + "".join(sorted(c for c, n in counts.items()
                                                               if n == 1))
    fresh = iter(c for c in string.ascii_letters if c not in eq)
    ell_shapes = []
    for term, shape in zip(terms, shapes):
        pre, _, post = term.partition("...")
        ell_shapes.append(tuple(shape[len(pre):len(shape) - len(post)]) if "..." in term else ())
    full: Shape = ()
    for s in ell_shapes:
        full = broadcast_shapes("nn.einsum", full, s)
    ell = "".join(next(fresh) for _ in full)
    out_terms = []
    for term, es in zip(terms, ell_shapes):
        if "..." not in term:
            out_terms.append(term)
            continue
        own = ell[len(ell) - len(es):] if es else ""
        own = "".join(next(fresh) if d == 1 and full[len(full) - len(es) + k] != 1 else c
                      for k, (c, d) in enumerate(zip(own, es)))
        out_terms.append(term.replace("...", own))
    return out_terms, rhs.replace("...", ell)


@vjp(EinsumOp)
def _einsum(e: Emitter, op: Operation, dys: list[SSAValue | None], want: list[bool]) -> Grads:
    dy = dys[0]
    assert dy is not None
    equation = op.properties["equation"].data  # type: ignore[union-attr]
    shapes = [nn.shape_of(x) for x in op.operands]
    terms, out = explicit_einsum(equation, shapes)
    sizes = {c: d for t, s in zip(terms, shapes) for c, d in zip(t, s)}
    grads: Grads = []
    for i, term in enumerate(terms):
        if not want[i]:
            grads.append(None)
            continue
        if len(set(term)) != len(term):
            raise NotDifferentiable(
                f"nn.einsum is not differentiated with respect to operand {i}: its "
                f"subscripts '{term}' repeat a letter (a diagonal); this operand lies on the "
                "path from a trainable weight to the loss", op)
        others = [(t, v) for j, (t, v) in enumerate(zip(terms, op.operands)) if j != i]
        seen = set(out).union(*[set(t) for t, _ in others])
        alone = "".join(c for c in term if c not in seen)
        operands, subs = [dy] + [v for _, v in others], [out] + [t for t, _ in others]
        if alone:
            operands.append(e.constant(np.ones([sizes[c] for c in alone]), dy))
            subs.append(alone)
        grad_eq = ",".join(subs) + "->" + term
        assert einsum_shape(grad_eq, [nn.shape_of(v) for v in operands]) == shapes[i]
        grads.append(e.make(EinsumOp, operands, {"equation": StringAttr(grad_eq)}))
    return grads


__all__ = ["explicit_einsum"]
