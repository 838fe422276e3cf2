"""The MLIR context with every dialect irflow understands loaded."""

from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects.arith import Arith
from xdsl.dialects.builtin import Builtin
from xdsl.dialects.func import Func

from irflow.dialects.accel import ACCEL
from irflow.dialects.nn import NN
from irflow.dialects.quant import IRQ, QUANT


def make_context(*, allow_unregistered: bool = False) -> Context:
    """A fresh context with builtin, func, arith and irflow's dialects loaded."""
    ctx = Context(allow_unregistered=allow_unregistered)
    for dialect in (Builtin, Func, Arith, NN, ACCEL, QUANT, IRQ):
        ctx.load_dialect(dialect)
    return ctx
