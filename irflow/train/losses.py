"""Loss configurations: what `grad` appends to a model's output to get a scalar loss.

    >>> CrossEntropy(label_smoothing=0.1)          # torch F.cross_entropy(..., label_smoothing=0.1)
    >>> MSE()                                      # torch F.mse_loss (mean over all elements)
    >>> Distillation(CrossEntropy(), alpha=0.5, temperature=4.0)
    ...     # (1 − α) · CE(student, labels) + α · T² · KL(softmax(t/T) ‖ softmax(s/T))

Each names the extra inputs the gradient function takes (`labels`, `target`,
`teacher_logits`) and emits its `nn` ops (`nn/losses.py`); the numbers are the ops'
kernels (`backends/reference/grad_kernels.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from xdsl.dialects.builtin import TensorType, i64
from xdsl.ir import SSAValue

from irflow.diagnostics import IrflowError
from irflow.dialects import nn
from irflow.dialects.nn import losses as lo
from irflow.train.vjp import Emitter


class Loss(Protocol):
    def target_types(self, output: SSAValue) -> list[tuple[str, TensorType]]:
        """The extra inputs (name, type) the loss reads besides the model output."""
        ...

    def emit(self, e: Emitter, output: SSAValue, targets: list[SSAValue]) -> SSAValue:
        """Append the loss ops; return the scalar loss."""
        ...


def _logits(output: SSAValue, what: str) -> tuple[int, int]:
    shape = nn.shape_of(output)
    if len(shape) != 2:
        raise IrflowError(f"{what} expects the model to output logits [batch, classes], "
                          f"got {nn.format_shape(shape)}")
    return shape[0], shape[1]


@dataclass(frozen=True)
class CrossEntropy:
    """Softmax cross-entropy against integer labels, mean over the batch."""

    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_smoothing < 1.0:
            raise IrflowError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")

    def target_types(self, output: SSAValue) -> list[tuple[str, TensorType]]:
        batch, _ = _logits(output, "cross-entropy")
        return [("labels", TensorType(i64, [batch]))]

    def emit(self, e: Emitter, output: SSAValue, targets: list[SSAValue]) -> SSAValue:
        return e.make(lo.CrossEntropyOp, [output, targets[0]],
                      {"label_smoothing": nn.f64(self.label_smoothing)})


@dataclass(frozen=True)
class MSE:
    """Mean squared error against a target of the output's shape."""

    def target_types(self, output: SSAValue) -> list[tuple[str, TensorType]]:
        return [("target", output.type)]  # type: ignore[list-item]

    def emit(self, e: Emitter, output: SSAValue, targets: list[SSAValue]) -> SSAValue:
        return e.make(lo.MseOp, [output, targets[0]])


@dataclass(frozen=True)
class Distillation:
    """(1 − alpha) · base + alpha · T² · KL(teacher ‖ student) at temperature T."""

    base: CrossEntropy | MSE = CrossEntropy()
    alpha: float = 0.5
    temperature: float = 4.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise IrflowError(f"distillation alpha must be in [0, 1], got {self.alpha}")
        if not self.temperature > 0:
            raise IrflowError(f"distillation temperature must be > 0, got {self.temperature}")

    def target_types(self, output: SSAValue) -> list[tuple[str, TensorType]]:
        _logits(output, "distillation")
        return [*self.base.target_types(output), ("teacher_logits", output.type)]  # type: ignore[list-item]

    def emit(self, e: Emitter, output: SSAValue, targets: list[SSAValue]) -> SSAValue:
        base = self.base.emit(e, output, targets[:-1])
        kl = e.make(lo.KlDivOp, [output, targets[-1]],
                    {"temperature": nn.f64(self.temperature)})
        weighted_base = e.make(nn.MulOp, [base, e.constant(1.0 - self.alpha, base)])
        weighted_kl = e.make(nn.MulOp, [kl, e.constant(self.alpha, kl)])
        return e.make(nn.AddOp, [weighted_base, weighted_kl])
