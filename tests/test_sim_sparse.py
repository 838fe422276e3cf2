"""The simulator profits from sparsity exactly as the machine description says.

- 2:4 weights on a machine whose PE array supports 2:4 (default): half the MAC cycles,
  stored compressed — N values + N 2-bit indices per run of 4 — so the placed weight,
  its DRAM bytes and its cache lines shrink to `storage_bits / 8`;
- unstructured sparsity: stored in the machine's `unstructured_format` (default: a
  bitmap + the non-zeros), computed dense;
- a machine without the 2:4 datapath (micro: no structured patterns, dense storage)
  runs the same program dense, with a note;
- channel pruning: the model is smaller, nothing else.

Outputs equal the reference executor's (bit for bit for integer programs). The
figures are checked against formulas worked out by hand on a single linear layer.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp

from irflow import zoo
from irflow.backends import sim
from irflow.backends.reference import run
from irflow.backends.sim.machine import load_machine
from irflow.dialects import accel, nn
from irflow.graph import GraphBuilder, input_names, main_func
from irflow.passes.calibrate import set_calibration_data
from irflow.passes.prune import prune_channels, prune_magnitude, prune_nm
from irflow.pipeline import run_pipeline
from irflow.sparsity import storage_bits

M, K, N = 64, 256, 128  # linear: x [M, K] · W[N, K]^T
TILE = "tile{sizes=\"m=64,n=64,k=128\" order=\"b,n,m,k\"}"  # the same nest dense and sparse


def linear(seed: int = 0) -> tuple[ModuleOp, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    g = GraphBuilder()
    x = g.input("x", (M, K))
    w = g.weight("fc.weight", rng.standard_normal((N, K)).astype(np.float32))
    y = g.add(nn.LinearOp.make([x, w], {}))
    return g.finish(list(y.results)), {"x": rng.standard_normal((M, K)).astype(np.float32)}


def simulate(module: ModuleOp, inputs: dict[str, np.ndarray], machine: str = "default",
             pipeline: str = "") -> sim.SimResult:
    if pipeline:
        run_pipeline(module, pipeline)
    run_pipeline(module, TILE.replace("tile{", f"tile{{machine={machine} "))
    return sim.simulate(module, inputs, machine=machine)


def the_layer(result: sim.SimResult, op: str = "nn.linear"):
    return next(s for s in result.report.layers if s.op == op)


def weight_op(result: sim.SimResult) -> accel.WeightOp:
    assert result.module is not None
    return next(op for op in result.module.walk() if isinstance(op, accel.WeightOp))


def weight_dram_bytes(result: sim.SimResult) -> int:
    return the_layer(result).cache_by_role.weight.misses * load_machine(None).cache.line_bytes


def pe_cycles(result: sim.SimResult) -> int:
    """Σ over steps of the cycles the PE array streams operands (folds × streamed
    length; loads and fill/drain excluded). Under ws the linear's k is on the rows:
    2:4 halves its row folds (k tile 128 -> 64: 8 -> 4 folds of 16 rows)."""
    return the_layer(result).mapped_cycles


def quantized(module: ModuleOp, inputs: dict[str, np.ndarray], sparse: bool) -> None:
    set_calibration_data(module, [inputs])
    if sparse:
        prune_nm(module, 2, 4)
    run_pipeline(module, "calibrate,quantize{bits=8 granularity=per-channel}")


@pytest.mark.parametrize("dtype", ["fp32", "int8"])
def test_two_four_halves_mac_cycles_and_stores_values_plus_indices(dtype: str):
    results = {}
    refs = {}
    for sparse in (False, True):
        module, inputs = linear()
        if dtype == "int8":
            quantized(module, inputs, sparse)
        elif sparse:
            prune_nm(module, 2, 4)
        refs[sparse] = run(module, inputs)
        results[sparse] = simulate(module, inputs)
    dense, sparse = results[False], results[True]
    elem_bits = 32 if dtype == "fp32" else 8
    # MAC cycles: same MACs counted, half the cycles on the PE array
    assert the_layer(sparse).macs == the_layer(dense).macs == M * K * N
    assert pe_cycles(dense) == M * K * N // load_machine(None).peak_macs_per_cycle(dtype)
    assert pe_cycles(sparse) * 2 == pe_cycles(dense)
    # storage: per run of 4 weights, 2 values + 2 two-bit indices
    bits = N * K // 4 * 2 * (elem_bits + 2)
    assert bits == storage_bits((N, K), elem_bits, nn.SparsityAttr.nm(2, 4, axis=1))
    w = weight_op(sparse)
    assert accel.stored_bits(w) == bits and w.attributes[accel.FORMAT_ATTR].data == "2:4"
    assert accel.stored_bits(weight_op(dense)) == N * K * elem_bits
    # the weight is read once (it is cold and fits the cache): its lines are its bytes
    assert weight_dram_bytes(sparse) == math.ceil(bits / 8 / 64) * 64
    assert weight_dram_bytes(dense) == N * K * elem_bits // 8
    # the placed size: activations start after the compressed weight
    assert weight_dram_bytes(sparse) < weight_dram_bytes(dense)
    for s, r in ((dense, refs[False]), (sparse, refs[True])):
        for k in r:
            if dtype == "int8":
                np.testing.assert_array_equal(s.outputs[k], r[k])
            else:
                np.testing.assert_allclose(s.outputs[k], r[k], rtol=1e-4, atol=1e-5)


def test_compressed_weight_shrinks_the_weight_region():
    module, inputs = linear()
    prune_nm(module, 2, 4)
    result = simulate(module, inputs)
    assert result.module is not None
    placed = [op for op in result.module.walk()
              if isinstance(op, accel.InputOp | accel.WeightOp)]
    w = next(op for op in placed if isinstance(op, accel.WeightOp))
    x = next(op for op in placed if isinstance(op, accel.InputOp))
    stored = -(-accel.stored_bits(w) // 8)
    assert stored == N * K // 4 * 2 * 34 // 8  # fp32 2:4: 34 bits per kept weight
    assert w.addr.value.data == 0 and x.addr.value.data == -(-stored // 64) * 64


def test_unstructured_is_a_bitmap_and_computes_dense():
    results = {}
    for sparse in (False, True):
        module, inputs = linear()
        if sparse:
            prune_magnitude(module, 0.75)
        ref = run(module, inputs)
        results[sparse] = simulate(module, inputs)
        for k in ref:
            np.testing.assert_allclose(results[sparse].outputs[k], ref[k], rtol=1e-4, atol=1e-5)
    dense, sparse = results[False], results[True]
    nnz = round(0.25 * N * K)
    bits = N * K + nnz * 32  # one bit per element + the non-zero values
    w = weight_op(sparse)
    assert w.attributes[accel.FORMAT_ATTR].data == "bitmap"
    assert accel.stored_bits(w) == bits
    assert weight_dram_bytes(sparse) == math.ceil(bits / 8 / 64) * 64
    assert pe_cycles(sparse) == pe_cycles(dense)  # computed dense


def test_machine_without_sparse_support_runs_two_four_dense():
    results = {}
    for sparse in (False, True):
        module, inputs = linear()
        if sparse:
            prune_nm(module, 2, 4)
        results[sparse] = simulate(module, inputs, machine="micro")
    dense, sparse = results[False], results[True]
    assert accel.STORED_BITS_ATTR not in weight_op(sparse).attributes  # micro: dense storage
    assert the_layer(sparse).compute_cycles == the_layer(dense).compute_cycles
    assert the_layer(sparse).dram_bytes_read == the_layer(dense).dram_bytes_read
    assert any("2:4" in n for n in the_layer(sparse).notes)


def test_int8_two_four_model_is_bit_exact_and_cheaper():
    """int8 + 2:4 on a whole model: the reference's bits; fewer cycles and bytes."""
    figures = {}
    for sparse in (False, True):
        module = zoo.load("digits_cnn", seed=0)
        fn = main_func(module)
        rng = np.random.default_rng(1)
        inputs = {n: rng.standard_normal(a.type.get_shape()).astype(np.float32)
                  for n, a in zip(input_names(fn), fn.body.blocks[0].args)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # layers that cannot be 2:4 stay dense
            run_pipeline(module, "int8-sparse" if sparse else "int8")
        ref = run(module, inputs)
        result = sim.simulate(module, inputs)
        for k in ref:
            np.testing.assert_array_equal(result.outputs[k], ref[k])
        pe = [s for s in result.report.layers if s.unit == "pe_array"]
        figures[sparse] = (sum(s.compute_cycles for s in pe),
                           sum(s.cache_by_role.weight.misses for s in pe))
    assert figures[True][0] < figures[False][0]
    assert figures[True][1] < figures[False][1]


def test_channel_pruned_model_is_simply_smaller():
    module = zoo.load("resnet18", seed=0)
    small = zoo.load("resnet18", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prune_channels(small, 0.5)
    for m in (module, small):
        run_pipeline(m, "default")
    dense = sim.lower(module, load_machine(None))
    pruned = sim.lower(small, load_machine(None))

    def weight_bytes(m: ModuleOp) -> int:
        return sum(accel.stored_nbytes(op) for op in m.walk() if isinstance(op, accel.WeightOp))

    assert not any(accel.STORED_BITS_ATTR in op.attributes for op in pruned.walk())
    assert weight_bytes(pruned) < 0.5 * weight_bytes(dense)
