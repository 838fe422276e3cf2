"""The PE array's mapping model on hand-computed cases: every worked example of
docs/simulator.md §2.1 is one of these tests.

Default machine: 16x16 PEs, rate int8 1 / int4 2 / fp32 1/4 MAC per PE and cycle,
a 32 B/cycle stationary load path carrying values at their width (L per fold = the
fold's weight bytes / 32: 8 for 256 int8 weights), skew K = 16 + 16 - 2 = 30,
double-buffered stationary registers: cycles = ceil(L + folds · max(L, S)) + K.
The os drain (and, with `load_bytes_per_cycle = 0`, every load) is 16 words per cycle.
"""

from __future__ import annotations

import numpy as np
import pytest
from nn_helpers import as_props

from irflow.backends.sim.machine import MachineError, load_machine, machine_from_toml
from irflow.backends.sim.mapping import (
    DATAFLOWS,
    MappingError,
    map_space,
    nest_cost,
    parse_mapping,
    step_cost,
    tile_matrix,
)
from irflow.dialects import accel

M = load_machine("default")


def machine(dataflow: str = "ws", stationary_words: int = 2, load_bytes: float = 32.0,
            **mapping: str):
    extra = "".join(f'{k} = "{v}"\n' for k, v in mapping.items())
    return machine_from_toml(
        f'base = "default"\n[pe_array]\ndataflow = "{dataflow}"\n'
        f"stationary_words_per_pe = {stationary_words}\nload_bytes_per_cycle = {load_bytes}\n"
        + (f"[pe_array.mapping]\n{extra}" if extra else ""), "test")


def conv(c, f, h, w, k=3, stride=1, pad=1, groups=1):
    oh = (h + 2 * pad - k) // stride + 1
    ow = (w + 2 * pad - k) // stride + 1
    props = as_props({"strides": (stride, stride), "pads": (pad,) * 4, "groups": groups})
    return map_space(accel.layer_space("nn.conv2d", [(1, c, h, w), (f, c // groups, k, k)],
                                       (1, f, oh, ow), props))


def matmul(m, k, n):
    return map_space(accel.layer_space("nn.matmul", [(m, k), (k, n)], (m, n), {}))


def cost(ms, mach=M, dtype="int8", sparse=1.0, tiles=None):
    """One tile: the whole layer unless `tiles` (loop -> tile extent) says otherwise."""
    t = np.array([[(tiles or {}).get(d, ms.extents[d]) for d in ms.dims]])
    c = step_cost(ms, t, mach.mapping(ms.family), mach, dtype, sparse)
    return {k: int(getattr(c, k)[0]) for k in ("cycles", "folds", "stream_cycles",
                                               "load_cycles", "fill_drain_cycles")}


def test_conv3x3_weight_stationary_fills_the_array():
    # c·r·s = 576 rows (36 folds), f = 64 columns (4 folds), 56 x 14 pixels streamed
    ms = conv(64, 64, 56, 56)
    c = cost(ms, tiles={"oh": 14})
    assert c["folds"] == 36 * 4 and c["stream_cycles"] == 144 * 784
    # 36,864 int8 weights over the 32 B/cycle load path: 8 cycles per fold, hidden
    assert c["cycles"] == 8 + 144 * 784 + 30 == 112_934
    assert c["fill_drain_cycles"] == 30 and c["load_cycles"] == 8
    assert 576 * 64 * 784 / 256 / c["stream_cycles"] == 1.0  # spatially full


def test_resnet_conv1_is_what_scalesim_counts_with_single_word_registers():
    # 7x7/2 on 3 channels: c·r·s = 147 rows -> 10 folds (91.9 % of 160), f = 64 -> 4,
    # 112 x 112 pixels; weights not double-buffered: folds · (L + T + K) = SCALE-Sim's
    # folds · (2·rows + cols + T - 2)
    ms = conv(3, 64, 224, 224, k=7, stride=2, pad=3)
    single = machine(stationary_words=1, load_bytes=0)  # a fold loads rows = 16 cycles
    assert cost(ms, single)["cycles"] == 40 * (16 + 12544 + 30) \
        == 40 * (2 * 16 + 16 + 12544 - 2) == 503_600


def test_depthwise_uses_nine_rows_and_one_column():
    # each group is its own fold: 9 of 256 PEs busy while 112² pixels stream
    ms = conv(32, 32, 112, 112, groups=32)
    c = cost(ms)
    # 288 weights = 9 cycles of load in all; the skew once: the folds run back to back
    assert c["folds"] == 32 and c["cycles"] == 1 + 32 * 12544 + 30 == 401_439
    assert 32 * 9 * 12544 / 256 / c["stream_cycles"] == pytest.approx(9 / 256)


def test_fc_at_batch_one():
    ms = matmul(1, 512, 1000)
    # ws: 32 x 63 folds of one streamed row: the weight load sets the pace, 512,000
    # int8 bytes at 32 B/cycle = 16,000 cycles (L = 16,000 / 2,016 per fold, S = 1)
    assert cost(ms)["cycles"] == 16_008 + 30 == 16_038  # ceil(L + 2,016 L) + K
    # ... with single-word registers every fold's load and skew are exposed
    assert cost(ms, machine(stationary_words=1))["cycles"] == 2016 * (8 + 1 + 30) == 78_624
    # os: rows = m = 1 (1 of 16 rows), cols = n (63 folds), k = 512 streamed
    assert cost(ms, machine("os"))["cycles"] == 16 + 63 * 512 + 30 == 32_302


def test_gemm_short_and_long_temporal_dimension():
    short, long = matmul(8, 768, 768), matmul(4096, 768, 768)
    assert cost(short)["cycles"] == 8 + 48 * 48 * 8 + 30 == 18_470  # 99.8 % of 18,432
    assert cost(long)["cycles"] == 8 + 48 * 48 * 4096 + 30 == 9_437_222  # 99.96 %


def test_a_loop_split_over_rows_and_columns():
    # a narrow GEMM: k = 64, n = 2. ws puts k on 16 rows (4 folds) and uses 2 columns;
    # rows=k:8 cols=n*k puts 8 of k on the rows and the other 8 beside n on the columns
    ms = matmul(100, 64, 2)
    assert cost(ms)["cycles"] == 1 + 4 * 100 + 30  # 128 weights: 4 cycles, 1 per fold
    split = machine(matmul="rows=k:8 cols=n*k stationary=weight")
    assert split.mapping("matmul").text() == "rows=k:8, cols=n·k"
    assert cost(ms, split)["cycles"] == 4 + 1 * 100 + 30


def test_two_four_sparsity_halves_the_reduction_where_the_mapping_puts_it():
    ms = matmul(64, 256, 128)
    # ws: k on the rows, 16 -> 8 row folds
    assert cost(ms)["cycles"] == 8 + 16 * 8 * 64 + 30 == 8_230
    assert cost(ms, sparse=0.5)["cycles"] == 8 + 8 * 8 * 64 + 30 == 4_134
    # os: k is streamed, 256 -> 128 cycles per fold
    assert cost(ms, machine("os"))["cycles"] == 16 + 4 * 8 * 256 + 30 == 8_238
    assert cost(ms, machine("os"), sparse=0.5)["cycles"] == 16 + 32 * 128 + 30 == 4_142
    # a reduction shorter than the rows keeps its folds and stream under ws; only the
    # load of the (compressed) weights shrinks: 256 -> 128 bytes, 8 -> 4 cycles
    dense, sparse = cost(matmul(64, 16, 16)), cost(matmul(64, 16, 16), sparse=0.5)
    assert (dense["folds"], dense["stream_cycles"]) == (sparse["folds"], sparse["stream_cycles"])
    assert (dense["cycles"], sparse["cycles"]) == (8 + 64 + 30, 4 + 64 + 30)


def test_rates_scale_the_stream_only():
    ms = matmul(64, 16, 16)
    # the stream scales with the rate (int4: 2 MACs per PE per cycle), the load with
    # the width (256 values: int4 128 B = 4 cycles, fp32 1 KiB = 32), the skew with neither
    assert cost(ms, dtype="int4")["cycles"] == 4 + 32 + 30
    assert cost(ms, dtype="fp32")["cycles"] == 32 + 256 + 30


def test_single_word_registers_expose_every_load():
    ms = matmul(8, 64, 64)  # 4 x 4 folds of 8 streamed rows
    assert cost(ms, machine(stationary_words=1))["cycles"] == 16 * (8 + 8 + 30)
    assert cost(ms)["cycles"] == 8 + 16 * 8 + 30
    # whole-word loads (load_bytes_per_cycle = 0): a fold loads 16 rows in 16 cycles
    assert cost(ms, machine(load_bytes=0))["cycles"] == 16 + 16 * 16 + 30


def test_input_stationary_streams_output_channels():
    ms = conv(16, 8, 4, 4, k=1, pad=0)  # rows = c = 16, cols = 16 pixels, f = 8 streamed
    assert cost(ms, machine("is"))["cycles"] == 8 + 1 * 8 + 30  # 256 int8 inputs: 8 cycles


def test_vectorized_over_candidate_tiles_equals_one_by_one():
    ms = conv(64, 128, 28, 28)
    rng = np.random.default_rng(0)
    sizes = np.stack([rng.integers(1, ms.extents[d] + 1, 500) for d in
                      ("n", "g", "f", "oh", "ow", "c")], axis=1)
    tiles = tile_matrix(ms, ("n", "g", "f", "oh", "ow", "c"), sizes)
    assert tiles.shape == (500, 8) and np.all(tiles[:, 6:] == 3)
    for df in DATAFLOWS:
        mach = machine(df)
        together = step_cost(ms, tiles, mach.mapping("conv2d"), mach, "int8").cycles
        alone = [step_cost(ms, t[None], mach.mapping("conv2d"), mach, "int8").cycles[0]
                 for t in tiles[:20]]
        assert list(together[:20]) == alone
        assert np.all(together >= tiles.prod(axis=1) / 256)  # never beats the peak


@pytest.mark.parametrize("text,match", [
    ("rows=c*r*s cols=f", "expected 'rows=... cols=... stationary=...'"),
    ("rows=c*q cols=f stationary=weight", "unknown conv2d loop 'q'"),
    ("rows=c cols=c stationary=weight", "give one of them a factor"),
    ("rows=c:0 cols=f stationary=weight", "positive integer"),
    ("rows=c cols=f stationary=psum", "expected one of weight, input, output"),
])
def test_bad_mappings_are_named(text, match):
    with pytest.raises(MappingError, match=match):
        parse_mapping(text, "conv2d")


def test_machine_file_errors_name_the_field():
    with pytest.raises(MachineError, match=r"pe_array.mapping.matmul.*unknown matmul loop 'c'"):
        machine(matmul="rows=c cols=n stationary=weight")
    with pytest.raises(MachineError, match=r"pe_array.dataflow.*'ws', 'os', 'is'"):
        machine("rs")


def test_nest_cost_sums_the_steps_without_enumerating_them():
    ms = conv(24, 40, 30, 30)
    order = ("n", "g", "f", "oh", "ow", "c")
    rng = np.random.default_rng(1)
    cands = np.stack([rng.integers(1, ms.nest_extents[d] + 1, 200) for d in order], axis=1)
    got = nest_cost(ms, order, cands, M.mapping("conv2d"), M, "int8")
    for t, cycles, steps in zip(cands[:25], got.cycles[:25], got.steps[:25]):
        per_loop = []  # each loop's tile sizes step by step, the remainder last
        for j, d in enumerate(order):
            e, step = ms.nest_extents[d], int(t[j])
            per_loop.append([min(step, e - lo) for lo in range(0, e, step)])
        sizes = np.array(np.meshgrid(*per_loop, indexing="ij")).reshape(len(order), -1).T
        alone = step_cost(ms, tile_matrix(ms, order, sizes), M.mapping("conv2d"), M, "int8")
        pipelined = alone.cycles.sum() - alone.lead_cycles[1:].sum()  # first step: lead
        assert (cycles, steps) == (pipelined, len(sizes))


@pytest.mark.parametrize("name", ["lenet5", "transformer_encoder"])
def test_nest_cost_equals_the_simulated_pe_cycles_of_every_layer(name):
    from irflow import zoo
    from irflow.backends import sim
    from irflow.graph import input_names, main_func

    module = zoo.load(name, seed=0)
    fn = main_func(module)
    rng = np.random.default_rng(0)
    inputs = {n: rng.standard_normal(a.type.get_shape()).astype(np.float32)
              for n, a in zip(input_names(fn), fn.body.blocks[0].args)}
    result = sim.simulate(module, inputs)
    layers = [op for op in result.module.walk() if isinstance(op, accel.LayerOp)]
    checked = 0
    for op, trace, stats in zip(layers, result.traces, result.report.layers, strict=False):
        ms = map_space(accel.space_of_op(op))
        if ms is None:
            continue
        nest = op.tiles
        tiles = np.array([[nest.tile[d] for d in nest.order]])
        got = nest_cost(ms, nest.order, tiles, M.mapping(ms.family), M, trace.dtype)
        assert (got.cycles[0], got.steps[0]) == (stats.pe_cycles, stats.steps), stats.name
        checked += 1
    assert checked >= 3
