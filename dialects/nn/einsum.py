"""`nn.einsum`: a contraction written as an Einstein-summation equation (ONNX Einsum).

    %y = nn.einsum %a, %b {equation = "bij,bjk->bik"} : (tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> tensor<2x3x5xf32>

The equation uses letters and `...` (broadcast leading axes); without `->` the output is
`...` then the letters that occur once, sorted (numpy's and ONNX's implicit mode).
Kernel: `backends/reference/spatial_kernels.py` (numpy's einsum).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from xdsl.dialects.builtin import StringAttr, TensorType
from xdsl.ir import Attribute
from xdsl.irdl import irdl_op_definition, prop_def, result_def, var_operand_def
from xdsl.utils.exceptions import VerifyException

from irflow.dialects.nn.base import NNOp
from irflow.dialects.nn.shapes import Shape, broadcast_shapes, prop_str
from irflow.dialects.nn.shapes import format_shape as _fmt


def einsum_shape(equation: str, shapes: Sequence[Shape]) -> Shape:
    """The result shape of `equation` on operands of `shapes` (VerifyException if they
    do not fit it)."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    sizes: dict[str, int] = {}
    ellipsis: Shape = ()
    for term, shape in zip(terms, shapes):
        pre, dots, post = term.partition("...")
        n_ell = len(shape) - len(pre) - len(post)
        if len(terms) != len(shapes) or not (pre + post).isalpha() and (pre + post) or (
                n_ell < 0 or (not dots and n_ell)):
            raise VerifyException(f"nn.einsum expects an equation with one term per operand "
                                  f"matching its rank, got '{equation}' for "
                                  f"{', '.join(_fmt(s) for s in shapes)}")
        if dots:
            ellipsis = broadcast_shapes("nn.einsum", ellipsis, shape[len(pre):len(pre) + n_ell])
        for c, d in zip(pre + post, shape[:len(pre)] + shape[len(pre) + n_ell:]):
            if sizes.get(c, d) != d:
                raise VerifyException(f"nn.einsum expects one size per letter, got '{c}' = "
                                      f"{sizes[c]} and {d}")
            sizes[c] = d
    if not arrow:
        counts = Counter(c for c in lhs if c.isalpha())
        rhs = ("..." if "..." in lhs else "") + "".join(sorted(c for c, n in counts.items()
                                                               if n == 1))
    pre, dots, post = rhs.partition("...")
    if any(c not in sizes for c in pre + post):
        raise VerifyException(f"nn.einsum expects output letters that occur in an input, "
                              f"got '{equation}'")
    return tuple(sizes[c] for c in pre) + (ellipsis if dots else ()) + tuple(
        sizes[c] for c in post)


@irdl_op_definition
class EinsumOp(NNOp):
    """Einstein summation over its operands (ONNX Einsum).

        %y = nn.einsum %a, %b {equation = "bij,bjk->bik"} : (tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> tensor<2x3x5xf32>
    """

    name = "nn.einsum"
    inputs = var_operand_def(TensorType)
    output = result_def(TensorType)
    equation = prop_def(StringAttr)
    assembly_format = "$inputs attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        return [einsum_shape(prop_str(props, "equation", ""), shapes)]


__all__ = ["EinsumOp", "einsum_shape"]
