"""irflow's plugin for stock xDSL tools (the `xdsl.universe` entry point in pyproject).

With irflow installed, `xdsl-opt` parses irflow's dialects and runs irflow's passes:

    xdsl-opt model.mlir -p fold-batchnorm,fuse-activation,cse

Passes: irflow's built-in passes and the installed plugin passes (entry-point group
`irflow.passes`, see irflow.registry), so a plugin installed with pip shows up in
`xdsl-opt` as it does in `irflow opt`. xDSL's own passes (canonicalize, cse, dce) are not
re-exported, and neither is a plugin named like one of xDSL's passes: a name registered by
two universes is an error in `xdsl-opt`. Passes loaded with `irflow opt --load-pass` exist
only in that irflow process; `xdsl-opt` has no such flag (make them a plugin: docs/passes.md).
Everything else is imported lazily, so this module is cheap to load every time an xDSL tool
starts. Weights are not loaded by `xdsl-opt`:
use inline `dense<...>` constants there (irflow's passes keep inline constants inline).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from xdsl.ir import Dialect
from xdsl.passes import ModulePass
from xdsl.universe import Universe

from irflow.registry import PASSES, XDSL_PASSES, get_pass, plugin_passes


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


def _xdsl_pass_names() -> frozenset[str]:
    """The names xDSL's own universe registers (a plugin must not take one)."""
    from xdsl.transforms import get_all_passes

    return frozenset(get_all_passes())


def _passes() -> dict[str, Callable[[], type[ModulePass]]]:
    taken = XDSL_PASSES | _xdsl_pass_names()
    return {name: functools.partial(get_pass, name)
            for name in (*PASSES, *plugin_passes()) if name not in taken}


UNIVERSE = Universe(
    all_dialects={"nn": _nn, "quant": _quant, "irq": _irq, "accel": _accel},
    all_passes=_passes(),
)
