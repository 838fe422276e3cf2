"""The memory-bound decode step: docs/llm.md's worked example of the PE array at batch 1,
by hand, and decoder-15m's decode against its DRAM limit per precision.

Default machine: 16x16 PEs, fp16 0.5 MAC per PE and cycle, weights double-buffered over a
32 B/cycle load path, DRAM 32 B/cycle.
"""

from __future__ import annotations

import numpy as np
import pytest

from irflow import zoo
from irflow.backends import sim
from irflow.backends.sim.decode_bound import decode_bound
from irflow.backends.sim.machine import load_machine
from irflow.backends.sim.mapping import map_space, step_cost
from irflow.dialects import accel
from irflow.graph import input_names, main_func
from irflow.pipeline import run_pipeline

M = load_machine("default")


def gemv_cycles(k: int, n: int, dtype: str, stationary_bytes: float | None = None) -> int:
    ms = map_space(accel.layer_space("nn.matmul", [(1, k), (k, n)], (1, n), {}))
    tiles = np.array([[ms.extents[d] for d in ms.dims]])
    return int(step_cost(ms, tiles, M.mapping("matmul"), M, dtype, 1.0,
                         stationary_bytes).cycles[0])


def test_a_decode_linear_streams_its_weights_at_the_dram_rate():
    # q_proj of decoder-15m at batch 1: 384 x 384 fp16 weights, 24 x 24 = 576 folds of
    # one streamed row (S = ceil(1 / 0.5) = 2). 294,912 B over the 32 B/cycle load path
    # = 9,216 cycles, L = 16 per fold > S: the load sets the pace, the skew once.
    assert gemv_cycles(384, 384, "fp16") == 16 + 576 * 16 + 30 == 9_262
    assert 384 * 384 * 2 / M.dram.bytes_per_cycle == 9_216  # DRAM needs as long
    # w4a16, groups of 32: k = 12 groups x 33 (the scale multiply is one more MAC) =
    # 396 rows -> 25 row folds x 24 = 600; 73,728 B of int4 + 9,216 B of f16 scales =
    # 82,944 B -> 2,592 cycles, 4.32 per fold: ceil(4.32 + 600 x 4.32) + 30
    per_value = (384 * 384 // 2 + 384 * 12 * 2) / (384 * 396)
    ms = map_space(accel.layer_space("nn.matmul", [(1, 396), (396, 384)], (1, 384), {}))
    tiles = np.array([[ms.extents[d] for d in ms.dims]])
    c = step_cost(ms, tiles, M.mapping("matmul"), M, "fp16", 1.0, per_value)
    assert int(c.folds[0]) == 600 and int(c.cycles[0]) == 2_597 + 30 == 2_627
    assert 82_944 / 32 == 2_592  # ... and DRAM 2,592: both at the byte rate


def _decode(precision: str, tiling: str = "") -> tuple[object, object]:
    spec = {"fp16": "convert-float", "w4a16": "convert-float,quantize-groups{bits=4 group=32}"}
    module = zoo.load("decoder-15m", entry="decode", cache=64)
    run_pipeline(module, spec[precision] + tiling)
    fn = main_func(module)
    rng = np.random.default_rng(0)
    feeds = {n: (np.array([[7]]) if n == "input_ids" else
                 rng.standard_normal(a.type.get_shape()).astype(np.float32))
             for n, a in zip(input_names(fn), fn.body.blocks[0].args)}
    return decode_bound(module), sim.simulate(module, feeds).report


@pytest.mark.slow
def test_decode_is_dram_bound_and_int4_takes_correspondingly_fewer_cycles():
    b16, r16 = _decode("fp16")
    b4, r4 = _decode("w4a16")
    t16, t4 = r16.total, r4.total
    assert t16.limited_by == t4.limited_by == "bandwidth"
    assert b16.cycles < t16.cycles <= 1.10 * b16.cycles  # measured x1.022
    assert b4.cycles < t4.cycles <= 1.10 * b4.cycles  # measured x1.080 (fixed costs)
    for t in (t16, t4):  # the prefetch moves time, never bytes: the channel carries all
        assert t.cycles >= (t.dram_bytes_read + t.dram_bytes_written) / M.dram.bytes_per_cycle
    # w4a16's weights: 4 bits + a 16-bit scale per 32 = 4.5 / 16 of fp16's bytes
    assert b4.weight_bytes / b16.weight_bytes == pytest.approx(4.5 / 16, rel=0.01)
    # ... and its cycles follow the bytes (not the MACs, which are the same)
    assert t4.cycles / t16.cycles == pytest.approx(b4.cycles / b16.cycles, rel=0.10)
    # the worked example's layer as the simulator ran it: the halving rule's one tile
    # step (the formula of docs/llm.md; the default search splits it in 4 steps whose
    # PE cycles sum to the same: only the first pays the fold load and the skew)
    q = next(s for s in r4.layers if s.name == "layers.0.self_attn.q_proj")
    assert q.pe_cycles == 2_627
    rule = _decode("w4a16", ",tile{search=none}")[1]
    q = next(s for s in rule.layers if s.name == "layers.0.self_attn.q_proj")
    assert (q.steps, q.pe_cycles) == (1, 2_627)
    linears = [s for s in r4.layers if s.op == "irq.block_linear"]
    assert all(s.limited_by == "bandwidth" for s in linears)
