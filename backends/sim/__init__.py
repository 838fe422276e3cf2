"""The streaming-accelerator simulator (docs/simulator.md): numerics, exact cache, cycles, energy.

    >>> from irflow.backends.sim import simulate
    >>> result = simulate(module, {"x": x}, machine="default")
    >>> result.outputs["logits"]          # equal to the reference executor's (float rounding)
    >>> print(result.report.table())

Three pieces (STYLE §9): the trace producer (`executor.py`) runs the `accel` program
tile by tile and records each step's cache-line accesses; the memory model
(`cache.py`, exact set-associative LRU, one cache shared by all layers in program
order) services them; the cost model (`cost.py`) turns trace + cache outcome into
cycles and energy; `report.py` renders the result. A module still at the nn level is
compiled first with `tile,plan-memory,lower-to-accel` for the machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from irflow.backends.sim.cache import CacheOutcome, LRUCache
from irflow.backends.sim.cost import flush_stats, layer_stats
from irflow.backends.sim.executor import Execution, execute
from irflow.backends.sim.machine import Machine, load_machine
from irflow.backends.sim.prefetch import overlap_weight_prefetch
from irflow.backends.sim.report import SimReport
from irflow.backends.sim.trace import LayerTrace
from irflow.context import make_context
from irflow.dialects import accel
from irflow.graph import main_func
from irflow.verify import verify_module
from irflow.weights import attach_weights, weights_of


@dataclass
class SimResult:
    """Outputs by name, the report, and the per-layer traces behind it."""

    outputs: dict[str, np.ndarray]
    report: SimReport
    traces: list[LayerTrace] = field(default_factory=list)
    module: ModuleOp | None = None  # the lowered program that ran
    outcomes: list[CacheOutcome] = field(default_factory=list)  # per trace, the cache's answer

    def _repr_html_(self) -> str:
        """A Jupyter cell shows the report (irflow/notebook.py)."""
        return self.report._repr_html_()


def is_lowered(module: ModuleOp) -> bool:
    """True when every op of the module is accel-level (plus func/builtin)."""
    return not any(op.name.startswith(("nn.", "quant.", "irq."))
                   for op in module.walk())


def lower(module: ModuleOp, machine: Machine, epilogue: bool = True,
          fuse_layers: bool | Mapping[str, object] = False) -> ModuleOp:
    """A lowered copy of an nn-level module (the original is left as it was):
    `tile` (its default, the mapping search for `machine`; unless the module is tiled
    already), `plan-memory`, `lower-to-accel`, and
    `fuse-epilogue` unless `epilogue=False` (docs/simulator.md §2.4), then `fuse-layers`
    if `fuse_layers` (True, or the pass's options as a dict; docs/simulator.md §2.5)."""
    from irflow.passes.fuse_epilogue import FuseEpiloguePass
    from irflow.passes.lower_to_accel import LowerToAccelPass
    from irflow.passes.plan_memory import PlanMemoryPass
    from irflow.passes.tile import NEST_ATTR, TilePass

    lowered = attach_weights(module.clone(), weights_of(module))
    cache, line = machine.cache.size_bytes, machine.cache.line_bytes
    # the simulated machine's sparse-weight storage, for tiling and placement alike
    sparse = {"structured": ",".join(machine.sparsity.structured) or "none",
              "unstructured_format": machine.sparsity.unstructured_format}
    passes: tuple[ModulePass, ...] = (PlanMemoryPass(align=line, **sparse),
                                      LowerToAccelPass(cache_bytes=cache, line_bytes=line))
    if epilogue:
        passes = (*passes, FuseEpiloguePass(align=line))
    if not any(NEST_ATTR in op.attributes for op in lowered.walk()):
        # not tiled yet: `tile`'s default (the mapping search) for this machine; a module
        # a pipeline already tiled (`-p "default,tile{...}"`) keeps its tiles (ops it
        # left untiled get the halving rule when lowered)
        TilePass(cache_bytes=cache, line_bytes=line, **sparse).tile_module(lowered, machine)
    ctx = make_context()
    for p in passes:  # applied directly and verified once below (no per-pass verification)
        p.apply(ctx, lowered)
    if fuse_layers:
        from irflow.passes.fuse_layers import FuseLayersPass

        opts = dict(fuse_layers) if isinstance(fuse_layers, Mapping) else {}
        FuseLayersPass(**opts).fuse(lowered, machine)  # type: ignore[arg-type]
    verify_module(lowered, "lower-to-accel: ")
    return lowered


def simulate(module: ModuleOp, inputs: Mapping[str, np.ndarray], *,
             machine: Machine | str | None = None, model: str = "", numerics: bool = True,
             misses: bool = False, progress: bool | None = None,
             epilogue: bool = True,
             fuse_layers: bool | Mapping[str, object] = False) -> SimResult:
    """Run `module` on the simulated machine (a `Machine`, preset name, TOML path or None
    for the default); lowers it first if it is still nn-level.

    `numerics=False`: the cost model only (no values computed, `outputs` empty; the
    report's counts are identical, `execute`). `misses=True` adds the 3C miss
    attribution to the report (`misses.py`; a second, fully associative cache pass).
    `progress`: a bar per layer (`irflow.progress`; None: when stdout is a terminal).
    `epilogue=False`: lower without `fuse-epilogue` (each point-wise layer on its own).
    `fuse_layers=True` (or a dict of `fuse-layers` options): fuse layer chains depth-first
    (docs/simulator.md §2.5; off by default)."""
    from irflow.progress import Progress

    if not isinstance(machine, Machine):
        machine = load_machine(machine)
    if not is_lowered(module):
        module = lower(module, machine, epilogue, fuse_layers)
    psum_bits = {f.name: getattr(machine.pe_array.psum_bits, f.name)
                 for f in fields(machine.pe_array.psum_bits)}
    n_layers = sum(1 for op in main_func(module).body.blocks[0].ops
                   if isinstance(op, accel.LayerOp))
    with Progress(n_layers, "simulate", unit="layer", enabled=progress) as bar:
        run: Execution = execute(module, inputs, line_bytes=machine.cache.line_bytes,
                                 psum_bits=psum_bits, numerics=numerics,
                                 progress=bar.advance)
    cache = LRUCache(machine.cache.geometry)
    stats, outcomes = [], []
    i = 0
    while i < len(run.traces):
        trace = run.traces[i]
        if trace.group:  # a fused group's bands, one cache call (rings: a scratchpad)
            from irflow.backends.sim.fused_group import service

            j = i
            while j < len(run.traces) and run.traces[j].group == trace.group:
                j += 1
            for t, outcome in zip(run.traces[i:j], service(cache, run.traces[i:j])):
                outcomes.append(outcome)
                stats.append(layer_stats(t, outcome, machine))
            i = j
            continue
        outcome = cache.access(trace.line, trace.write)
        outcomes.append(outcome)
        stats.append(layer_stats(trace, outcome, machine))
        i += 1
    stats = overlap_weight_prefetch(stats, machine)
    if any(t.group for t in run.traces):  # a fused group's bands: one row per layer
        from irflow.backends.sim.fused_group import merge_groups

        stats = merge_groups(stats, run.traces, machine)
    dirty = cache.flush()
    if dirty:
        stats.append(flush_stats(dirty, machine))
    attribution = None
    if misses:
        from irflow.backends.sim.misses import attribute_misses

        attribution = attribute_misses(run.traces, outcomes, machine)
    report = SimReport.build(machine, stats, model=model, misses=attribution)
    return SimResult(run.outputs, report, run.traces, module, outcomes)


__all__ = ["SimResult", "simulate", "lower", "is_lowered", "execute"]
