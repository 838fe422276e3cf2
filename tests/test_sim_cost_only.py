"""The simulator's cost-only mode (`numerics=False`) on a program with an embedding: the
gather's lines follow the token ids, which are a graph input, so the run stays cost-only
(no value computed) and its counts are the numerics run's."""

from __future__ import annotations

import numpy as np

from irflow import zoo
from irflow.backends import sim


def test_a_decoder_prefill_runs_cost_only_with_the_same_counts():
    module = zoo.load("decoder-15m", entry="prefill", seq=16)
    ids = {"input_ids": np.random.default_rng(0).integers(0, 16384, (1, 16))}
    full = sim.simulate(module, ids)
    cost = sim.simulate(module, ids, numerics=False)
    assert cost.outputs == {} and full.outputs  # no tile kernel ran
    assert cost.report.total == full.report.total
    for a, b in zip(cost.traces, full.traces):
        np.testing.assert_array_equal(a.line, b.line)
