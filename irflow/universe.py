"""irflow's plugin for stock xDSL tools (the `xdsl.universe` entry point in pyproject).

With irflow installed, `xdsl-opt` parses irflow's dialects and runs irflow's passes:

    xdsl-opt model.mlir -p fold-batchnorm,fuse-activation,cse

xDSL's own passes (canonicalize, cse, dce) are not re-exported: a name registered by
two universes is an error in `xdsl-opt`. Everything is imported lazily, so this module
is cheap to load every time an xDSL tool starts. Weights are not loaded by `xdsl-opt`:
use inline `dense<...>` constants there (irflow's passes keep inline constants inline).
"""

from __future__ import annotations

import functools

from xdsl.ir import Dialect
from xdsl.universe import Universe

from irflow.registry import PASSES, XDSL_PASSES, get_pass


def _nn() -> Dialect:
    from irflow.dialects.nn import NN

    return NN


def _quant() -> Dialect:
    from irflow.dialects.quant import QUANT

    return QUANT


def _irq() -> Dialect:
    from irflow.dialects.quant import IRQ

    return IRQ


def _accel() -> Dialect:
    from irflow.dialects.accel import ACCEL

    return ACCEL


UNIVERSE = Universe(
    all_dialects={"nn": _nn, "quant": _quant, "irq": _irq, "accel": _accel},
    all_passes={
        name: functools.partial(get_pass, name) for name in PASSES if name not in XDSL_PASSES
    },
)
