"""`NNOp`, the base of every shape-inferring nn op: one `infer_shapes` serves the
builder (`Op.make`) and the verifier."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from xdsl.dialects.builtin import StringAttr, TensorType
from xdsl.ir import Attribute, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    ParsePropInAttrDict,
    operand_def,
    opt_prop_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from irflow.dialects.nn.shapes import Shape, fused_act, shape_of, value_element_type
from irflow.dialects.nn.shapes import format_shape as _fmt


class NNOp(IRDLOperation):
    """Base of every shape-inferring nn op.

    Subclasses implement `infer_shapes(operand_shapes, props)`; the result element
    type defaults to the first operand's (quantized ops pass `element_type`).
    """

    irdl_options = (ParsePropInAttrDict(),)
    traits = traits_def(Pure())

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        raise NotImplementedError

    @classmethod
    def make(
        cls,
        operands: Sequence[SSAValue | None],
        props: Mapping[str, Attribute | None] | None = None,
        *,
        element_type: Attribute | None = None,
        attributes: Mapping[str, Attribute] | None = None,
    ) -> NNOp:
        """Build the op, inferring its result types from the operands."""
        present = [o for o in operands if o is not None]
        clean = {k: v for k, v in (props or {}).items() if v is not None}
        shapes = cls.infer_shapes([shape_of(o) for o in present], clean)
        elem = element_type or value_element_type(present[0])
        return cls.create(
            operands=present,
            result_types=[TensorType(elem, s) for s in shapes],
            properties=clean,
            attributes=dict(attributes or {}),
        )

    def verify_(self) -> None:
        shapes = [shape_of(o) for o in self.operands]
        for kind, values in (("operand", self.operands), ("result", self.results)):
            for i, v in enumerate(values):
                if any(d <= 0 for d in shape_of(v)):
                    raise VerifyException(
                        f"{self.name} expects tensors with at least one element, got {kind} "
                        f"#{i} of shape {_fmt(shape_of(v))}")
        expected = type(self).infer_shapes(shapes, self.properties)
        got = [shape_of(r) for r in self.results]
        if list(expected) != got:
            raise VerifyException(
                f"{self.name} expects result shape "
                f"{', '.join(_fmt(s) for s in expected)}, got {', '.join(_fmt(s) for s in got)}"
            )
        _verify_act(self)


def _verify_act(op: IRDLOperation) -> None:
    # Imported here: the activation ops are NNOps themselves (elementwise imports this module).
    from irflow.dialects.nn.elementwise import FUSABLE_ACTIVATIONS

    act = fused_act(op)
    if act is not None and act not in FUSABLE_ACTIVATIONS:
        raise VerifyException(
            f"{op.name} expects act in {sorted(FUSABLE_ACTIVATIONS)}, got '{act}'"
        )


class TwoOperandOp(NNOp):
    """Shared shape of `lhs, rhs -> output` ops with an optional fused `act` (the elementwise
    binaries and matmul); each subclass supplies its own `infer_shapes`."""

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    output = result_def(TensorType)
    act = opt_prop_def(StringAttr)
    assembly_format = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)"
