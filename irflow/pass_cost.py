"""Which pass bought these cycles: simulate after every pass that changed the IR.

`CostAfterEach` is a `PassInstrumentation` (irflow/pipeline.py): before the first pass
and after each pass that modified the module, it simulates the module as it stands —
lowered on a copy for the machine when still nn-level (`irflow.backends.sim.lower`),
with the cost model only (`simulate(numerics=False)`: identical counts, no values) — and
records ops, weight bytes, cycles, DRAM bytes and energy. The table gives each figure
and its change (Δ) from the previous row:

    $ irflow opt resnet18 -p default --cost-after-each --hw micro > /dev/null

    >>> from irflow.pass_cost import CostAfterEach
    >>> cost = CostAfterEach(machine="micro")
    >>> run_pipeline(module, "default", instruments=[cost])
    >>> print(cost.table())
    >>> cost.rows[-1].cycles - cost.rows[0].cycles

A state the simulator cannot run (e.g. a pass left ops the lowering does not know) gets
a row with the reason instead of figures; the pipeline goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from irflow.diagnostics import IrflowError
from irflow.graph import main_func
from irflow.pipeline import PassInstrumentation, PassRecord, PipelineResult

if TYPE_CHECKING:
    from irflow.backends.sim.machine import Machine


@dataclass(frozen=True)
class CostRow:
    """The module after one pass (`pass_name` "(input)" for the module before any)."""

    pass_name: str
    spec: str
    ops: int  # ops in @main (weights included, the return excluded)
    weight_bytes: int  # irflow.analysis.model_bytes on the machine (accel.weight bytes once
    # lowered)
    cycles: int | None = None  # None: could not be simulated (`error` says why)
    dram_bytes: int | None = None  # read + written
    energy_pj: float | None = None
    error: str = ""


def _delta(now: float | None, before: float | None, fmt: str) -> str:
    if now is None or before is None:
        return "-"
    d = now - before
    return "0" if d == 0 else format(d, "+" + fmt)


def _weight_bytes(module: ModuleOp, machine: Machine) -> int:
    """Stored weight bytes: `model_bytes` at the nn level, the placed `accel.weight`
    buffers (as the executor stores them) once lowered."""
    from irflow.analysis import model_bytes
    from irflow.backends.sim import is_lowered
    from irflow.dialects import accel

    if is_lowered(module):
        return sum(accel.stored_nbytes(op) for op in main_func(module).body.blocks[0].ops
                   if isinstance(op, accel.WeightOp))
    try:
        return model_bytes(module, machine)
    except IrflowError:
        return 0


class CostAfterEach(PassInstrumentation):
    """Simulates after every pass that changed the IR; see the module docstring.

    `machine`: a `Machine`, preset name, TOML path or None (the default). `inputs`: arrays
    by input name (default: seeded random, as `irflow run` makes them; with the cost
    model only, their values matter only for gathers). `out`: where the table is written
    when the pipeline ends (None: not written; `table()` returns it)."""

    def __init__(self, machine: Machine | str | None = None,
                 inputs: Mapping[str, np.ndarray] | None = None, *, seed: int = 0,
                 out: TextIO | None = None):
        from irflow.backends.sim.machine import Machine, load_machine

        self.machine = machine if isinstance(machine, Machine) else load_machine(machine)
        self.inputs = inputs
        self.seed = seed
        self.out = out
        self.rows: list[CostRow] = []

    # -- hooks ---------------------------------------------------------------------------

    def before_pipeline(self, module: ModuleOp) -> None:
        self.rows = [self.measure(module, "(input)", "")]

    def after_pass(self, record: PassRecord, module: ModuleOp) -> None:
        if record.modified:
            self.rows.append(self.measure(module, record.name, record.spec))

    def after_pipeline(self, result: PipelineResult) -> None:
        if self.out is not None:
            self.out.write(self.table() + "\n")

    # -- measuring -----------------------------------------------------------------------

    def measure(self, module: ModuleOp, name: str, spec: str) -> CostRow:
        from irflow.backends.sim import simulate
        from irflow.cli import load_inputs

        ops = sum(1 for op in main_func(module).body.blocks[0].ops
                  if not isinstance(op, func.ReturnOp))
        weights = _weight_bytes(module, self.machine)
        try:
            inputs = self.inputs if self.inputs is not None else load_inputs(module, None,
                                                                              self.seed)
            total = simulate(module, inputs, machine=self.machine, numerics=False,
                             progress=False).report.total
        except IrflowError as e:
            return CostRow(name, spec, ops, weights, error=e.message)
        return CostRow(name, spec, ops, weights, total.cycles,
                       total.dram_bytes_read + total.dram_bytes_written, total.energy.total_pj)

    # -- output --------------------------------------------------------------------------

    def table(self) -> str:
        """pass, ops, Δops, weight bytes, Δ, cycles, Δcycles, DRAM bytes, Δ, energy, Δ."""
        head = ["pass", "ops", "Δops", "weights B", "Δ", "cycles", "Δcycles", "DRAM B", "Δ",
                "energy µJ", "Δ"]
        cells = [head]
        prev: CostRow | None = None
        for r in self.rows:
            def num(x: float | None, fmt: str = ",") -> str:
                return "-" if x is None else format(x, fmt)

            def uj(x: float | None) -> float | None:
                return None if x is None else x / 1e6

            p = prev
            cells.append([
                r.pass_name, str(r.ops), _delta(r.ops, p and p.ops, "d") if p else "",
                f"{r.weight_bytes:,}",
                _delta(r.weight_bytes, p and p.weight_bytes, ",") if p else "",
                num(r.cycles), _delta(r.cycles, p and p.cycles, ",") if p else "",
                num(r.dram_bytes), _delta(r.dram_bytes, p and p.dram_bytes, ",") if p else "",
                num(uj(r.energy_pj), ".2f"),
                _delta(uj(r.energy_pj), uj(p and p.energy_pj), ".2f") if p else "",
            ])
            if r.cycles is not None:
                prev = r
            elif prev is not None:  # keep deltas against the last row that simulated
                prev = CostRow(r.pass_name, r.spec, r.ops, r.weight_bytes, prev.cycles,
                               prev.dram_bytes, prev.energy_pj)
        widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
        lines = ["  ".join(c[0].ljust(widths[0]) if i == 0 else c[i].rjust(widths[i])
                           for i in range(len(head))).rstrip() for c in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        errors = [f"  {r.pass_name}: not simulated: {r.error}" for r in self.rows if r.error]
        title = (f"cost after each pass that changed the IR (machine '{self.machine.name}', "
                 "cost model only)")
        return "\n".join([title, *lines, *errors])

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine.name, "rows": [asdict(r) for r in self.rows]}


__all__ = ["CostAfterEach", "CostRow"]
