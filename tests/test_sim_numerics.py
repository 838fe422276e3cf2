"""The simulator computes what the reference executor computes, tile by tile.

Every op kind runs as a one-op graph with odd sizes, once with the default tiling and
once with small tile sizes that divide nothing (remainder tiles everywhere); every zoo
model runs whole. Tolerance: |sim - ref| <= ATOL + RTOL·|ref| elementwise. Tiling
changes the float32 summation order of conv/matmul reductions (partial sums over input
channel / k tiles); measured on the zoo the largest error was 1.4e-6 absolute on
outputs of magnitude ~5 (transformer), far inside RTOL = 1e-4, ATOL = 1e-5.
A test-only off-by-one slice in the executor must break the numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nn_helpers import as_props
from xdsl.dialects.builtin import ModuleOp, i64
from xdsl.ir import SSAValue

from irflow import zoo
from irflow.backends import sim
from irflow.backends.reference import run
from irflow.backends.sim import executor
from irflow.backends.sim.machine import load_machine
from irflow.context import make_context
from irflow.dialects import nn
from irflow.graph import GraphBuilder, input_names, main_func
from irflow.io import verify_module
from irflow.passes.lower_to_accel import LowerToAccelPass
from irflow.passes.plan_memory import PlanMemoryPass
from irflow.passes.tile import TilePass
from irflow.weights import attach_weights, weights_of

RTOL, ATOL = 1e-4, 1e-5

# Small sizes that divide none of the odd extents below: remainder tiles on every loop.
ODD_TILES = "n=1,g=2,f=2,oh=3,ow=2,c=2,b=2,m=3,k=5,d0=1,d1=2,d2=3,d3=2"


def one_op(cls: type[nn.NNOp], shapes: list[tuple[int, ...]], weights: int = 0,
           seed: int = 0, positive: tuple[int, ...] = (), **props: Any
           ) -> tuple[ModuleOp, dict[str, np.ndarray]]:
    """`cls` applied to len(shapes) operands: the first `len - weights` are inputs, the
    rest weights (seeded normal arrays; absolute values for the `positive` operands)."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder()
    operands: list[SSAValue] = []
    inputs = {}
    n_inputs = len(shapes) - weights
    for i, s in enumerate(shapes):
        array = rng.standard_normal(s).astype(np.float32)
        if i in positive:
            array = np.abs(array) + np.float32(0.1)
        if i < n_inputs:
            operands.append(g.input(f"x{i}", s))
            inputs[f"x{i}"] = array
        else:
            operands.append(g.weight(f"w{i}", array))
    op = g.add(cls.make(operands, as_props(props)))
    return g.finish(list(op.results)), inputs


def lowered(module: ModuleOp, **tile: Any) -> ModuleOp:
    ctx = make_context()
    for p in (TilePass(**tile), PlanMemoryPass(), LowerToAccelPass()):
        p.apply(ctx, module)
    verify_module(module)
    return module


def check(module: ModuleOp, inputs: dict[str, np.ndarray], **tile: Any) -> None:
    ref = run(module, inputs)
    low = lowered(attach_weights(module.clone(), weights_of(module)), **tile)
    out = sim.simulate(low, inputs).outputs
    assert out.keys() == ref.keys()
    for k in ref:
        assert out[k].shape == ref[k].shape
        np.testing.assert_allclose(out[k], ref[k], rtol=RTOL, atol=ATOL, err_msg=k)


Case = Callable[[], tuple[ModuleOp, dict[str, np.ndarray]]]

CONV = (1, 6, 11, 9)
CASES: dict[str, Case] = {
    "conv3x3": lambda: one_op(nn.Conv2dOp, [CONV, (7, 6, 3, 3), (7,)], 2, pads=[1, 1, 1, 1]),
    "conv_strided_relu": lambda: one_op(nn.Conv2dOp, [CONV, (5, 6, 3, 3)], 1,
                                        strides=[2, 2], pads=[1, 0, 1, 2], act="relu"),
    "conv_dilated": lambda: one_op(nn.Conv2dOp, [CONV, (4, 6, 3, 2)], 1,
                                   dilations=[2, 3], pads=[2, 1, 0, 1]),
    "conv_grouped": lambda: one_op(nn.Conv2dOp, [CONV, (9, 2, 3, 3), (9,)], 2, groups=3,
                                   pads=[1, 1, 1, 1], act="relu6"),
    "conv_depthwise": lambda: one_op(nn.Conv2dOp, [CONV, (6, 1, 3, 3)], 1, groups=6,
                                     strides=[2, 2], pads=[1, 1, 1, 1]),
    "conv_depthwise_mult2": lambda: one_op(nn.Conv2dOp, [CONV, (12, 1, 5, 5)], 1, groups=6,
                                           pads=[2, 2, 2, 2]),
    "conv1x1_pad_beyond_kernel": lambda: one_op(nn.Conv2dOp, [CONV, (3, 6, 1, 1)], 1,
                                                pads=[2, 0, 3, 2]),
    "conv1x1": lambda: one_op(nn.Conv2dOp, [CONV, (10, 6, 1, 1)], 1, act="sigmoid"),
    "conv_7x7_s2": lambda: one_op(nn.Conv2dOp, [(1, 3, 17, 15), (8, 3, 7, 7)], 1,
                                  strides=[2, 2], pads=[3, 3, 3, 3]),
    "matmul": lambda: one_op(nn.MatmulOp, [(13, 17), (17, 11)]),
    "matmul_batched": lambda: one_op(nn.MatmulOp, [(3, 13, 17), (3, 17, 11)]),
    "matmul_bcast": lambda: one_op(nn.MatmulOp, [(2, 3, 13, 17), (17, 11)], 1, act="tanh"),
    "matmul_vec": lambda: one_op(nn.MatmulOp, [(17,), (17, 11)]),
    "matvec": lambda: one_op(nn.MatmulOp, [(13, 17), (17,)]),
    "linear": lambda: one_op(nn.LinearOp, [(2, 5, 17), (11, 17), (11,)], 2, act="relu"),
    "add_bcast": lambda: one_op(nn.AddOp, [(2, 7, 5, 3), (7, 1, 1)], act="relu"),
    "sub": lambda: one_op(nn.SubOp, [(7, 5), (7, 5)]),
    "mul_scalar": lambda: one_op(nn.MulOp, [(3, 7, 5), (1,)]),
    "div": lambda: one_op(nn.DivOp, [(3, 7, 5), (5,)]),
    "batchnorm": lambda: one_op(nn.BatchNormOp, [(2, 5, 7, 3), (5,), (5,), (5,), (5,)], 4,
                                positive=(4,)),
    "layernorm": lambda: one_op(nn.LayerNormOp, [(3, 7, 9), (9,), (9,)], 2),
    "layernorm_axis1": lambda: one_op(nn.LayerNormOp, [(3, 7, 9), (7, 9)], 1, axis=1),
    "softmax": lambda: one_op(nn.SoftmaxOp, [(3, 7, 9)]),
    "softmax_axis1": lambda: one_op(nn.SoftmaxOp, [(3, 7, 9)], axis=1),
    "reduce_mean": lambda: one_op(nn.ReduceMeanOp, [(3, 7, 9)], axes=[1]),
    "reduce_mean_drop": lambda: one_op(nn.ReduceMeanOp, [(3, 7, 9)], axes=[0, 2],
                                       keepdims=0),
    "maxpool": lambda: one_op(nn.MaxPoolOp, [CONV], kernel=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1]),
    "maxpool_ceil": lambda: one_op(nn.MaxPoolOp, [CONV], kernel=[2, 3], strides=[2, 2],
                                   ceil_mode=1),
    "avgpool": lambda: one_op(nn.AvgPoolOp, [CONV], kernel=[3, 3], strides=[2, 1],
                              pads=[1, 1, 1, 1]),
    "avgpool_include_pad": lambda: one_op(nn.AvgPoolOp, [CONV], kernel=[3, 2], strides=[2, 2],
                                          pads=[1, 1, 1, 0], count_include_pad=1,
                                          ceil_mode=1),
    "global_avg_pool": lambda: one_op(nn.GlobalAvgPoolOp, [CONV]),
    "transpose": lambda: one_op(nn.TransposeOp, [(2, 3, 5, 7)], perm=[0, 2, 3, 1]),
    "transpose_view": lambda: one_op(nn.TransposeOp, [(2, 1, 5, 1)], perm=[3, 0, 2, 1]),
    "concat": lambda: one_op(nn.ConcatOp, [(2, 3, 5), (2, 4, 5), (2, 1, 5)], axis=1),
    "slice": lambda: one_op(nn.SliceOp, [(4, 9, 7)], starts=[1, 8], ends=[9, 0],
                            axes=[1, 2], steps=[2, -3]),
    "split": lambda: one_op(nn.SplitOp, [(2, 9, 5)], axis=1, sizes=[2, 4, 3]),
    "flatten": lambda: one_op(nn.FlattenOp, [(2, 3, 5, 7)], axis=2),
    "reshape": lambda: _reshape(),
    "gather": lambda: _gather(),
}
for _name in ("relu", "relu6", "sigmoid", "tanh", "gelu", "silu", "hardsigmoid", "hardswish",
              "erf", "exp", "neg"):
    CASES[_name] = lambda n=_name: one_op(executor.NN_OPS[f"nn.{n}"], [(2, 5, 7, 3)])
CASES["clip"] = lambda: one_op(nn.ClipOp, [(2, 5, 7)], min=-0.5, max=0.75)
CASES["sqrt"] = lambda: _sqrt()


def _reshape() -> tuple[ModuleOp, dict[str, np.ndarray]]:
    g = GraphBuilder()
    x = g.input("x", [2, 3, 5])
    r = g.add(nn.ReshapeOp(x, [6, 5])).results[0]
    y = g.add(nn.ReluOp(r)).results[0]
    return g.finish([y]), {"x": np.random.default_rng(1).standard_normal((2, 3, 5), np.float32)}


def _gather() -> tuple[ModuleOp, dict[str, np.ndarray]]:
    g = GraphBuilder()
    table = g.weight("table", np.random.default_rng(2).standard_normal((50, 6), np.float32))
    ids = g.input("ids", [2, 5], i64)
    y = g.add(nn.GatherOp.make([table, ids], {"axis": nn.i64_attr(0)})).results[0]
    return g.finish([y]), {"ids": np.random.default_rng(3).integers(-50, 50, (2, 5))}


def _sqrt() -> tuple[ModuleOp, dict[str, np.ndarray]]:
    return one_op(nn.SqrtOp, [(3, 7, 5)], positive=(0,))


@pytest.mark.parametrize("tiles", ["default", "odd"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_one_op_matches_reference(name: str, tiles: str):
    module, inputs = CASES[name]()
    check(module, inputs, **({"sizes": ODD_TILES} if tiles == "odd" else {}))


@settings(max_examples=25, deadline=None)
@given(
    c=st.integers(1, 6), f=st.integers(1, 6), h=st.integers(3, 9), w=st.integers(3, 9),
    k=st.sampled_from([1, 2, 3]), stride=st.integers(1, 3), pad=st.integers(0, 3),
    tf=st.integers(1, 6), toh=st.integers(1, 9), tow=st.integers(1, 9), tc=st.integers(1, 6),
    order=st.sampled_from(["n,g,f,oh,ow,c", "c,n,g,f,oh,ow", "ow,c,oh,f,n,g"]),
)
def test_conv_any_tiling_matches_reference(c, f, h, w, k, stride, pad, tf, toh, tow, tc,
                                           order):
    """Any tile sizes and any loop order — reduction outermost included — same numbers
    (padding may exceed the kernel: whole tiles of padding)."""
    module, inputs = one_op(nn.Conv2dOp, [(1, c, h, w), (f, c, k, k), (f,)], 2,
                            strides=[stride, stride], pads=[pad] * 4, act="relu")
    check(module, inputs, sizes=f"f={tf},oh={toh},ow={tow},c={tc}", order=order)


@settings(max_examples=25, deadline=None)
@given(
    batch=st.sampled_from([(), (3,), (2, 2)]), bcast=st.booleans(), linear=st.booleans(),
    m=st.integers(1, 9), k=st.integers(1, 9), n=st.integers(1, 9),
    tb=st.integers(1, 4), tm=st.integers(1, 9), tk=st.integers(1, 9), tn=st.integers(1, 9),
    order=st.sampled_from(["b,m,n,k", "k,b,m,n", "n,k,m,b"]),
)
def test_matmul_any_tiling_matches_reference(batch, bcast, linear, m, k, n, tb, tm, tk, tn,
                                             order):
    """Batched, broadcast and linear contractions under any tiling and loop order."""
    if linear:
        module, inputs = one_op(nn.LinearOp, [(*batch, m, k), (n, k), (n,)], 2, act="relu")
    else:
        rhs = (k, n) if bcast else (*batch, k, n)
        module, inputs = one_op(nn.MatmulOp, [(*batch, m, k), rhs], 1 if bcast else 0)
    check(module, inputs, sizes=f"b={tb},m={tm},k={tk},n={tn}", order=order)


@settings(max_examples=25, deadline=None)
@given(
    c=st.integers(1, 4), h=st.integers(2, 9), w=st.integers(2, 9),
    kh=st.integers(1, 3), kw=st.integers(1, 3), sh=st.integers(1, 3), sw=st.integers(1, 3),
    pad=st.integers(0, 2), ceil=st.booleans(), include_pad=st.booleans(),
    is_max=st.booleans(), toh=st.integers(1, 5), tow=st.integers(1, 5),
)
def test_pool_any_tiling_matches_reference(c, h, w, kh, kw, sh, sw, pad, ceil, include_pad,
                                           is_max, toh, tow):
    """Window divisors and edge padding per tile, for any tile sizes."""
    kh, kw = min(kh, h), min(kw, w)
    pads = [min(pad, kh - 1), min(pad, kw - 1), min(pad, kh - 1), min(pad, kw - 1)]
    props = {"kernel": [kh, kw], "strides": [sh, sw], "pads": pads, "ceil_mode": int(ceil)}
    if not is_max:
        props["count_include_pad"] = int(include_pad)
    module, inputs = one_op(nn.MaxPoolOp if is_max else nn.AvgPoolOp, [(1, c, h, w)], **props)
    check(module, inputs, sizes=f"oh={toh},ow={tow},c=1")


@pytest.mark.parametrize("name", ["digits_cnn", "lenet5", "transformer_encoder"])
def test_zoo_model_matches_reference(name: str):
    _check_zoo(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenetv2", "resnet18", "resnet50",
                                  "bert-base"])
def test_big_zoo_model_matches_reference(name: str):
    _check_zoo(name)


def test_every_zoo_model_is_covered():
    covered = {"digits_cnn", "lenet5", "transformer_encoder", "mobilenetv2", "resnet18",
               "resnet50", "bert-base"}
    assert set(zoo.names()) <= covered


def _check_zoo(name: str) -> None:
    module = zoo.load(name, seed=0)
    fn = main_func(module)
    rng = np.random.default_rng(0)
    inputs = {}
    for n, arg in zip(input_names(fn), fn.body.blocks[0].args):
        shape = arg.type.get_shape()
        inputs[n] = (rng.integers(0, 100, shape) if "i64" in str(arg.type)
                     else rng.standard_normal(shape).astype(np.float32))
    ref = run(module, inputs)
    out = sim.simulate(module, inputs).outputs
    for k in ref:
        np.testing.assert_allclose(out[k], ref[k], rtol=RTOL, atol=ATOL, err_msg=k)


def test_off_by_one_slice_gives_wrong_numbers(monkeypatch: pytest.MonkeyPatch):
    """A test-only bug — every operand slice not at the origin shifted back by one —
    keeps all shapes right and must still be caught by the numbers."""
    module, inputs = CASES["conv3x3"]()
    ref = run(module, inputs)
    low = lowered(attach_weights(module.clone(), weights_of(module)), sizes="oh=4,ow=4")
    good = sim.simulate(low, inputs).outputs["output0"]
    np.testing.assert_allclose(good, ref["output0"], rtol=RTOL, atol=ATOL)
    real = executor._index

    def shifted(ranges):
        return real([(a - 1, b - 1, c) if a > 0 and c == 1 else (a, b, c) for a, b, c in ranges])

    monkeypatch.setattr(executor, "_index", shifted)
    bad = sim.simulate(low, inputs).outputs["output0"]
    assert not np.allclose(bad, ref["output0"], rtol=RTOL, atol=ATOL)


def test_swapped_tile_bounds_give_wrong_numbers(monkeypatch: pytest.MonkeyPatch):
    """Input windows read from the mirror-image rows and columns (swapped loop bounds:
    tile [lo, hi) of an 11-row output read as [11 - hi, 11 - lo)) are caught; the
    slices keep their shapes, so only the numbers can tell."""
    module, inputs = CASES["conv3x3"]()  # output 11 x 9
    ref = run(module, inputs)["output0"]
    low = lowered(attach_weights(module.clone(), weights_of(module)), sizes="oh=4,ow=4")
    real_range = executor.accel.Axis.range
    extent = {"oh": 11, "ow": 9}

    def mirrored(self, size, lo, hi):
        if self.kind == "window":
            lo, hi = extent[self.dim] - hi, extent[self.dim] - lo
        return real_range(self, size, lo, hi)

    monkeypatch.setattr(executor.accel.Axis, "range", mirrored)
    out = sim.simulate(low, inputs).outputs["output0"]
    assert out.shape == ref.shape
    assert not np.allclose(out, ref, rtol=RTOL, atol=ATOL)


def test_simulate_accepts_a_machine_and_leaves_the_module_alone():
    module, inputs = CASES["conv3x3"]()
    before = str(module)
    result = sim.simulate(module, inputs, machine=load_machine("micro"))
    assert str(module) == before  # lowered a copy
    assert result.module is not None and sim.is_lowered(result.module)
    assert result.report.total.macs == 7 * 6 * 9 * 11 * 9


def test_bad_inputs_are_simulation_errors():
    from irflow.diagnostics import SimulationError

    module, inputs = CASES["relu"]()
    with pytest.raises(SimulationError, match=r"missing input\(s\) \['x0'\]"):
        sim.simulate(module, {})
    with pytest.raises(SimulationError,
                       match=r"input 'x0' expects shape \[2, 5, 7, 3\], got \[3\]"):
        sim.simulate(module, {"x0": np.zeros(3, np.float32)})
