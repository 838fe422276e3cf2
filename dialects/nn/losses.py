"""Training losses as `nn` ops (scalar `tensor<f32>` results, mean over the batch) and
their gradients with respect to the prediction, scaled by the upstream `%dloss`:

    %l = nn.cross_entropy %logits, %labels {label_smoothing = 0.1 : f64}
         : (tensor<32x10xf32>, tensor<32xi64>) -> tensor<f32>
    %g = nn.cross_entropy_grad %logits, %labels, %dl {label_smoothing = 0.1 : f64}
         : (tensor<32x10xf32>, tensor<32xi64>, tensor<f32>) -> tensor<32x10xf32>

Semantics are torch's: `cross_entropy` is `F.cross_entropy(logits, labels,
label_smoothing=eps)`; `kl_div` is `F.kl_div(log_softmax(s/T), softmax(t/T),
reduction="batchmean") · T²` (Hinton et al.'s distillation term); `mse` is
`F.mse_loss(pred, target)` (mean over every element).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from xdsl.dialects.builtin import IntegerType, TensorType
from xdsl.ir import Attribute
from xdsl.irdl import irdl_op_definition, operand_def, prop_def, result_def
from xdsl.utils.exceptions import VerifyException

from irflow.dialects.nn.attributes import F64, f64
from irflow.dialects.nn.base import NNOp
from irflow.dialects.nn.shapes import Shape, value_element_type
from irflow.dialects.nn.shapes import format_shape as _fmt


def _check_logits(op: str, logits: Shape, labels: Shape) -> None:
    if len(logits) != 2 or labels != logits[:1]:
        raise VerifyException(
            f"{op} expects logits [batch, classes] and labels [batch], "
            f"got {_fmt(logits)} and {_fmt(labels)}"
        )


def _check_scalar(op: str, shape: Shape) -> None:
    if shape != ():
        raise VerifyException(f"{op} expects a scalar upstream gradient, got {_fmt(shape)}")


class LossOp(NNOp):
    """Base of the loss ops: a scalar result."""


@irdl_op_definition
class CrossEntropyOp(LossOp):
    """Mean softmax cross-entropy of `[B, C]` logits against integer labels `[B]`."""

    name = "nn.cross_entropy"
    input = operand_def(TensorType)
    labels = operand_def(TensorType)
    output = result_def(TensorType)
    label_smoothing = prop_def(F64, default_value=f64(0.0))
    assembly_format = "$input `,` $labels attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        _check_logits(cls.name, shapes[0], shapes[1])
        return [()]

    def verify_(self) -> None:
        super().verify_()
        if not isinstance(value_element_type(self.labels), IntegerType):
            raise VerifyException(f"{self.name} expects integer labels, got {self.labels.type}")
        eps = self.label_smoothing.value.data
        if not 0.0 <= eps < 1.0:
            raise VerifyException(f"{self.name} expects label_smoothing in [0, 1), got {eps}")


@irdl_op_definition
class CrossEntropyGradOp(NNOp):
    """dL/dlogits of `nn.cross_entropy` times `%dloss`: (softmax − smoothed one-hot)/B."""

    name = "nn.cross_entropy_grad"
    input = operand_def(TensorType)
    labels = operand_def(TensorType)
    dloss = operand_def(TensorType)
    output = result_def(TensorType)
    label_smoothing = prop_def(F64, default_value=f64(0.0))
    assembly_format = (
        "$input `,` $labels `,` $dloss attr-dict `:` functional-type(operands, results)"
    )

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        _check_logits(cls.name, shapes[0], shapes[1])
        _check_scalar(cls.name, shapes[2])
        return [shapes[0]]


@irdl_op_definition
class KlDivOp(LossOp):
    """Distillation loss: T² · mean over the batch of KL(softmax(t/T) ‖ softmax(s/T)) for
    student logits `%s` and teacher logits `%t`, both `[B, C]`."""

    name = "nn.kl_div"
    input = operand_def(TensorType)
    target = operand_def(TensorType)
    output = result_def(TensorType)
    temperature = prop_def(F64, default_value=f64(1.0))
    assembly_format = "$input `,` $target attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        if len(shapes[0]) != 2 or shapes[0] != shapes[1]:
            raise VerifyException(
                f"{cls.name} expects student and teacher logits of one shape [batch, classes], "
                f"got {_fmt(shapes[0])} and {_fmt(shapes[1])}"
            )
        t = props.get("temperature")
        if t is not None and not t.value.data > 0:  # type: ignore[attr-defined]
            raise VerifyException(f"{cls.name} expects temperature > 0, got {t.value.data}")  # type: ignore[attr-defined]
        return [()]


@irdl_op_definition
class KlDivGradOp(NNOp):
    """dL/ds of `nn.kl_div` times `%dloss`: T · (softmax(s/T) − softmax(t/T)) / B."""

    name = "nn.kl_div_grad"
    input = operand_def(TensorType)
    target = operand_def(TensorType)
    dloss = operand_def(TensorType)
    output = result_def(TensorType)
    temperature = prop_def(F64, default_value=f64(1.0))
    assembly_format = (
        "$input `,` $target `,` $dloss attr-dict `:` functional-type(operands, results)"
    )

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        KlDivOp.infer_shapes(shapes[:2], props)
        _check_scalar(cls.name, shapes[2])
        return [shapes[0]]


@irdl_op_definition
class MseOp(LossOp):
    """Mean squared error over every element of `%pred` and `%target` (one shape)."""

    name = "nn.mse"
    input = operand_def(TensorType)
    target = operand_def(TensorType)
    output = result_def(TensorType)
    assembly_format = "$input `,` $target attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        if shapes[0] != shapes[1]:
            raise VerifyException(
                f"{cls.name} expects prediction and target of one shape, "
                f"got {_fmt(shapes[0])} and {_fmt(shapes[1])}"
            )
        return [()]


@irdl_op_definition
class MseGradOp(NNOp):
    """dL/dpred of `nn.mse` times `%dloss`: 2 (pred − target) / size."""

    name = "nn.mse_grad"
    input = operand_def(TensorType)
    target = operand_def(TensorType)
    dloss = operand_def(TensorType)
    output = result_def(TensorType)
    assembly_format = (
        "$input `,` $target `,` $dloss attr-dict `:` functional-type(operands, results)"
    )

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        MseOp.infer_shapes(shapes[:2], props)
        _check_scalar(cls.name, shapes[2])
        return [shapes[0]]


LOSS_OPS = [CrossEntropyOp, CrossEntropyGradOp, KlDivOp, KlDivGradOp, MseOp, MseGradOp]
