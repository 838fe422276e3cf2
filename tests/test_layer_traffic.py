"""passes/layer_traffic.py on fixed tilings, against the layer simulated alone: lines two
tiles share that miss again when the loop between them does not fit, and a split
reduction's first visits and revisits costed as separate phases (docs/tiling.md, *How
close the estimate is*)."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp

from irflow.backends import sim
from irflow.backends.sim.isolated import simulate_alone
from irflow.backends.sim.machine import load_machine
from irflow.context import make_context
from irflow.dialects import nn
from irflow.graph import GraphBuilder, main_func
from irflow.passes import tile_search as ts
from irflow.passes.tile import TilePass


def conv1x1(c: int, f: int, hw: int) -> ModuleOp:
    g = GraphBuilder()
    x = g.input("x", [1, c, hw, hw])
    w = g.weight("w", np.ones((f, c, 1, 1), np.float32))
    y = g.add(nn.Conv2dOp(x, w)).results[0]
    return g.finish([y])


def estimate_and_alone(module: ModuleOp, sizes: str, order: str
                       ) -> tuple[float, float, int, int]:
    """(estimated cycles, DRAM bytes; simulated alone cycles, DRAM bytes) of the one
    conv of `module` tiled with `sizes` in loop `order`."""
    TilePass(sizes=sizes, order=order).apply(make_context(), module)
    m = load_machine("default")
    ((label, est),) = ts.chosen_estimates(main_func(module), m).items()
    x = np.zeros(main_func(module).body.blocks[0].args[0].type.get_shape(), np.float32)
    (trace,) = [t for t in sim.simulate(module, {"x": x}, numerics=False, progress=False,
                                        epilogue=False).traces if t.name == label]
    alone = simulate_alone(trace, m)
    return (float(est.scores.cycles[0]), float(est.scores.dram_bytes[0]), alone.cycles,
            alone.dram_bytes)


@pytest.mark.parametrize("c, f, hw, sizes, order, within", [
    # MobileNetV2 features.12.conv.2's shape: 392-byte rows at a 784-byte pitch, the two
    # `oh` tiles of a channel share a line, and the body of `oh` (the whole `c` sweep)
    # overfills the cache: those lines miss again (was -7.6 %)
    (576, 96, 14, "f=96,oh=7,ow=14,c=32", "f,oh,ow,c", 0.02),
    # conv 1x1 spilling partial sums (`c` outside the output loops): a reload shares
    # lines with the tile reloaded just before (was +4.4 %); `n`, `g` (one trip) inside
    # `c` change no output tile, so nothing spills on their account
    (256, 256, 14, "c=128,f=32,oh=7,ow=14", "c,f,oh,ow", 0.02),
])
def test_estimate_agrees_on_shared_lines_and_split_reductions(c, f, hw, sizes, order,
                                                              within):
    est_c, est_d, sim_c, sim_d = estimate_and_alone(conv1x1(c, f, hw), sizes, order)
    assert abs(est_d / sim_d - 1) <= within
    assert abs(est_c / sim_c - 1) <= within


def test_split_reduction_cycles_int8():
    """int8 (PE steps 4x shorter than fp32, so memory phases show): the conv 1x1 tiling
    ZigZag's strict band picked before, estimated 2.5 % low in cycles when a class of
    steps had one average phase (docs/tiling.md, *Against ZigZag*); 1.3 % now."""
    from irflow.passes.calibrate import set_calibration_data
    from irflow.pipeline import run_pipeline

    module = conv1x1(256, 256, 14)
    rng = np.random.default_rng(0)
    set_calibration_data(module, [{"x": rng.standard_normal((1, 256, 14, 14)).astype(
        np.float32)} for _ in range(2)])
    run_pipeline(module, "int8")
    est_c, _, sim_c, _ = estimate_and_alone(module, "c=128,f=32,oh=7,ow=14", "n,g,c,oh,ow,f")
    assert abs(est_c / sim_c - 1) <= 0.02
