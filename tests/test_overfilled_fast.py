"""The search's fast paths in passes/layer_traffic.py give the numbers of the plain ones:
the set-conflict model (`_overfilled_at`: every tensor's load convolved with the others'
in one batched convolution per tensor; `_overfilled_rows`: rows kept across calls), the line
counts of every loop body in one call (`prefill`), and the search picks the same tilings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from irflow import zoo
from irflow.backends.sim.machine import load_machine
from irflow.context import make_context
from irflow.dialects import accel, nn
from irflow.graph import GraphBuilder, main_func
from irflow.passes import layer_traffic as lt
from irflow.passes import tile as tl
from irflow.passes import tile_search as ts
from irflow.passes.tile import TilePass


def convolve_loop(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The sum of two independent loads, bin by bin (the last bin open-ended)."""
    bins = a.shape[1]
    out = np.zeros_like(a)
    for i in range(bins):
        out[:, i:] += a[:, i:i + 1] * b[:, :bins - i]
        out[:, -1] += a[:, i] * b[:, bins - i:].sum(axis=1)
    return out


def overfilled_pairwise(tensors: list, sets: int, ways: int,
                        steps: list[int] | None = None) -> list[np.ndarray]:
    """`_overfilled_at` one tensor at a time, each convolved with every other's mix."""
    bins = ways + 2
    own, mixed = [], []
    for t, (lines, used, scat) in enumerate(tensors):
        pmf = lt._load_pmf(lines / np.maximum(used, 1), scat, bins,
                           None if steps is None else steps[t])
        own.append(pmf)
        share = np.minimum(used / sets, 1.0)[:, None]
        mix = share * pmf
        mix[:, 0] += 1 - share[:, 0]
        mixed.append(np.where((lines > 0)[:, None], mix, (np.arange(bins) == 0) * 1.0))
    out = []
    for t in range(len(tensors)):
        total = own[t]
        for k in range(len(tensors)):
            if k != t and np.any(tensors[k][0] > 0):
                total = convolve_loop(total, mixed[k])
        out.append(total[:, ways + 1:].sum(axis=1))
    return out


def random_pmf(rng: np.random.Generator, n: int, bins: int) -> np.ndarray:
    p = rng.random((n, bins)) * (rng.random((n, bins)) < 0.5)
    p[:, 0] += 1e-3
    return p / p.sum(1, keepdims=True)


def test_convolve_matches_the_loop() -> None:
    """(`_convolve` is that loop; kept in case it is rewritten.)"""
    rng = np.random.default_rng(0)
    for bins in (2, 5, 10, 18):
        a, b = random_pmf(rng, 50, bins), random_pmf(rng, 50, bins)
        np.testing.assert_allclose(lt._convolve(a, b), convolve_loop(a, b),
                                   rtol=1e-12, atol=1e-15)


def test_overfilled_at_matches_pairwise() -> None:
    rng = np.random.default_rng(1)
    n, sets, ways = 200, 64, 8
    tensors = []
    for t in range(4):
        lines = np.floor(rng.random(n) * 900) * (rng.random(n) < (0.5 if t == 3 else 0.95))
        used = np.minimum(np.maximum(np.ceil(rng.random(n) * sets), 1), np.maximum(lines, 1))
        tensors.append((lines, used, rng.random(n) < 0.4))
    tensors.append((np.zeros(n), np.ones(n), np.zeros(n, bool)))  # an absent psum
    for got, want in zip(lt._overfilled_at(tensors, sets, ways),
                         overfilled_pairwise(tensors, sets, ways)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_rows_kept_across_calls_score_as_fresh_ones() -> None:
    """A row `_overfilled_rows` looked up gives what scoring it among other rows gives."""
    rng = np.random.default_rng(2)
    n, sets, ways = 40, 64, 8
    rows = np.column_stack([c for _ in range(3) for c in (
        np.floor(rng.random(n) * 900), np.ceil(rng.random(n) * sets), rng.random(n) < 0.4)])
    lt._ROWS.clear()
    fresh = lt._overfilled_rows(rows, 3, sets, ways)
    again = lt._overfilled_rows(rows[::-1], 3, sets, ways)[::-1]  # all looked up
    np.testing.assert_allclose(again, fresh, rtol=1e-12, atol=1e-15)
    lt._ROWS.clear()
    half = lt._overfilled_rows(rows[: n // 2], 3, sets, ways)  # other diffusion steps
    np.testing.assert_allclose(lt._overfilled_rows(rows, 3, sets, ways), fresh, rtol=1e-12,
                               atol=1e-15)
    assert half.shape == (n // 2, 3)


@pytest.mark.parametrize("stride", [1, 2])
def test_prefilled_line_counts_score_as_per_body_ones(monkeypatch: pytest.MonkeyPatch,
                                                      stride: int) -> None:
    """`layer_traffic.prefill` (every body's lines in one call) changes no estimate."""
    g = GraphBuilder()
    x = g.input("x", [1, 24, 28, 28])
    w = g.weight("w", np.ones((40, 24, 3, 3), np.float32))
    y = g.add(nn.Conv2dOp(x, w, strides=(stride, stride), pads=(1, 1, 1, 1))).results[0]
    module = g.finish([y])
    op = next(o for o in main_func(module).body.walk() if isinstance(o, nn.Conv2dOp))
    space = accel.space_of_op(op)
    itemsizes = [tl.elem_bytes(v.type) for v in (*op.operands, op.results[0])]
    m = load_machine("default")
    rows = ts.candidates(space, itemsizes, m.cache.size_bytes, {})
    orders = ts.loop_orders(space)[:5]
    fast = ts.estimate(space, itemsizes, m, "fp32", rows, orders)
    monkeypatch.setattr(lt, "prefill", lambda *a, **k: None)
    plain = ts.estimate(space, itemsizes, m, "fp32", rows, orders)
    for f in ("cycles", "dram_bytes", "energy_pj"):
        np.testing.assert_array_equal(getattr(fast, f), getattr(plain, f))


def picks(model: str) -> str:
    module = zoo.load(model, seed=0)
    ts._MEMOS.clear()
    lt._ROWS.clear()  # rows scored across calls (`_overfilled_rows`)
    TilePass(search="balanced").apply(make_context(), module)
    out = {label: [list(op.attributes[tl.NEST_ATTR].order),
                   dict(op.attributes[tl.NEST_ATTR].tile)]
           for op, label in tl.layer_labels(main_func(module)).items()
           if tl.NEST_ATTR in op.attributes}
    return json.dumps(out, sort_keys=True, default=str)


@pytest.mark.slow
def test_same_picks_as_the_pairwise_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """MobileNetV2 (fp32, every layer searched): the fast set-conflict model and the
    pairwise loop pick identical tile sizes and loop orders."""
    fast = picks("mobilenetv2")
    monkeypatch.setattr(lt, "_overfilled_at", overfilled_pairwise)
    assert picks("mobilenetv2") == fast
