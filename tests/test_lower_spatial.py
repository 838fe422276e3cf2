"""The spatial and data-movement ops lower to accel layers (`dialects/accel_spatial.py`)
and the simulator computes them tile by tile (`backends/sim/spatial_tiles.py`).

Every case runs as a one-op graph with the default tiling and with small tiles that
divide nothing (remainder tiles, windows across tile edges). Vector and DMA layers
repeat the reference kernel's operations per element: their outputs are bit-identical;
the PE layers (conv_transpose, contraction einsums) sum per input-channel / k tile and
are held to the simulator's tolerance (test_sim_numerics.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from test_sim_numerics import ATOL, RTOL, lowered, one_op
from xdsl.dialects.builtin import ModuleOp, StringAttr, i64

from irflow.backends import sim
from irflow.backends.reference import run
from irflow.dialects import accel, nn
from irflow.dialects.nn import indexing as ix
from irflow.dialects.nn import spatial as spm
from irflow.graph import GraphBuilder
from irflow.weights import attach_weights, weights_of

ODD = "n=1,g=1,f=2,oh=3,ow=2,od=2,c=2,b=2,m=3,k=2,d0=1,d1=2,d2=3,d3=2,d4=1"

Built = tuple[ModuleOp, dict[str, np.ndarray]]


def _indexed(cls: type[nn.NNOp], data: tuple[int, ...], idx: np.ndarray,
             updates: tuple[int, ...] | None = None, **props: Any) -> Built:
    """`cls(data, indices[, updates])` with the indices a constant."""
    from nn_helpers import as_props

    rng = np.random.default_rng(4)
    g = GraphBuilder()
    ops = [g.input("x", data), g.weight("idx", idx, element_type=i64)]
    inputs = {"x": rng.standard_normal(data).astype(np.float32)}
    if updates is not None:
        ops.append(g.input("u", updates))
        inputs["u"] = rng.standard_normal(updates).astype(np.float32)
    y = g.add(cls.make(ops, as_props(props))).results[0]
    return g.finish([y]), inputs


def _one_hot() -> Built:
    g = GraphBuilder()
    i = g.input("i", [3, 5], i64)
    v = g.weight("v", np.array([-1.0, 2.0], np.float32))
    y = g.add(ix.OneHotOp.make([i, v], {"depth": nn.i64_attr(7), "axis": nn.i64_attr(1)}))
    return g.finish([y.results[0]]), {"i": np.random.default_rng(5).integers(-7, 7, (3, 5))}


def _resize(mode: str, coord: str, shape: tuple[int, ...], sizes: list[int],
            **extra: Any) -> Built:
    scales = [o / i for o, i in zip(sizes, shape)]
    return one_op(spm.ResizeOp, [shape], sizes=sizes, scales=spm.f64_array(scales),
                  mode=mode, coordinate_transformation_mode=coord, **extra)


def _einsum(eq: str, *shapes: tuple[int, ...]) -> Built:
    return one_op(spm.EinsumOp, list(shapes), equation=StringAttr(eq))


X4 = (2, 5, 7, 6)
PE_CASES: dict[str, Any] = {
    "conv_transpose_s2": lambda: one_op(spm.ConvTransposeOp, [(1, 4, 5, 6), (4, 3, 3, 3),
                                                              (3,)], 2, strides=[2, 2],
                                        pads=[1, 0, 1, 1]),
    "conv_transpose_grouped_dil_outpad": lambda: one_op(
        spm.ConvTransposeOp, [(2, 4, 4, 5), (4, 3, 2, 3)], 1, strides=[3, 2], groups=2,
        dilations=[2, 1], output_padding=[1, 1], pads=[0, 2, 1, 0]),
    "conv_transpose_3d": lambda: one_op(spm.ConvTransposeOp, [(1, 3, 3, 4, 3),
                                                              (3, 4, 2, 3, 2), (4,)], 2,
                                        strides=[2, 1, 2], pads=[0, 1, 1, 1, 0, 0],
                                        dilations=[2, 1, 1], output_padding=[1, 0, 0]),
    "conv_transpose_1d": lambda: one_op(spm.ConvTransposeOp, [(1, 3, 9), (3, 4, 4)], 1,
                                        strides=[2], pads=[1, 2]),
    "conv_transpose_crop": lambda: one_op(spm.ConvTransposeOp, [(1, 2, 4, 4), (2, 2, 2, 2)],
                                          1, strides=[1, 1], pads=[2, 1, 1, 0]),
    "einsum_bmm": lambda: _einsum("bij,bjk->bik", (3, 5, 7), (3, 7, 4)),
    "einsum_attention": lambda: _einsum("bhqd,bhkd->bhqk", (2, 3, 5, 4), (2, 3, 6, 4)),
    "einsum_multi_k": lambda: _einsum("ijk,jkl->il", (5, 3, 4), (3, 4, 6)),
    # not a plain contraction: the vector unit, one loop per output axis
    "einsum_broadcast_implicit": lambda: _einsum("...ij,...jk", (2, 1, 3, 4), (3, 4, 5)),
    "einsum_three_operands": lambda: _einsum("ij,jk,kl->il", (4, 3), (3, 5), (5, 2)),
    "einsum_summed_in_one": lambda: _einsum("ijk,jl->il", (4, 3, 5), (3, 6)),
}
VECTOR_EINSUMS = {"einsum_broadcast_implicit", "einsum_three_operands", "einsum_summed_in_one"}
CASES: dict[str, Any] = {
    "pool_max_3d": lambda: one_op(spm.PoolOp, [(1, 3, 6, 7, 5)], mode="max",
                                  kernel=[2, 3, 2], strides=[2, 1, 2], pads=[1, 1, 0, 0, 1, 1]),
    "pool_avg_1d_ceil": lambda: one_op(spm.PoolOp, [(2, 3, 11)], mode="avg", kernel=[3],
                                       strides=[2], pads=[1, 1], ceil_mode=1,
                                       count_include_pad=1),
    "pool_avg_2d_dilated": lambda: one_op(spm.PoolOp, [X4], mode="avg", kernel=[2, 3],
                                          dilations=[2, 1], pads=[1, 1, 1, 1]),
    "pool_lp_2d": lambda: one_op(spm.PoolOp, [X4], mode="lp", kernel=[3, 2], p=3,
                                 strides=[2, 2], pads=[1, 0, 1, 1]),
    "resize_nearest_up": lambda: _resize("nearest", "asymmetric", (1, 2, 5, 4), [1, 2, 10, 8]),
    "resize_nearest_half_pixel": lambda: _resize("nearest", "half_pixel", (1, 2, 5, 4),
                                                 [1, 2, 7, 9], nearest_mode="ceil"),
    "resize_linear_align": lambda: _resize("linear", "align_corners", (1, 2, 5, 4),
                                           [1, 2, 9, 11]),
    "resize_linear_down": lambda: _resize("linear", "pytorch_half_pixel", (2, 3, 9, 8),
                                          [2, 3, 4, 3]),
    "resize_cubic_crop": lambda: _resize("cubic", "tf_crop_and_resize", (1, 2, 6, 5),
                                         [1, 2, 7, 7], extrapolation_value=0.5,
                                         roi=spm.f64_array([0, 0, 0.2, -0.1, 1, 1, 1.1, 0.8])),
    "lrn": lambda: one_op(spm.LRNOp, [(2, 9, 3, 4)], size=4, alpha=0.1, beta=0.6, bias=2.0),
    "trilu_upper": lambda: one_op(ix.TriluOp, [(2, 7, 6)], k=1),
    "trilu_lower": lambda: one_op(ix.TriluOp, [(7, 9)], upper=0, k=-2),
    "einsum_trace_diag": lambda: _einsum("bii->bi", (3, 5, 5)),
    "expand": lambda: one_op(ix.ExpandOp, [(3, 1, 5)], shape=[2, 3, 4, 5]),
    "tile": lambda: one_op(ix.TileOp, [(2, 3, 5)], repeats=[2, 3, 1]),
    "pad_constant": lambda: one_op(ix.PadOp, [(2, 5, 6)], pads=[0, 2, -1, 1, 3, 2],
                                   value=1.5),
    "pad_reflect": lambda: one_op(ix.PadOp, [(2, 5, 6)], pads=[0, 3, 2, 0, 4, -1],
                                  mode="reflect"),
    "pad_edge": lambda: one_op(ix.PadOp, [(2, 5, 6)], pads=[1, 2, 0, 0, 3, 7], mode="edge"),
    "pad_wrap": lambda: one_op(ix.PadOp, [(2, 5, 6)], pads=[0, 6, 2, 1, 3, 2], mode="wrap"),
    "depth_to_space_dcr": lambda: one_op(ix.DepthToSpaceOp, [(1, 12, 3, 2)], blocksize=2),
    "depth_to_space_crd": lambda: one_op(ix.DepthToSpaceOp, [(2, 8, 3, 2)], blocksize=2,
                                         mode="CRD"),
    "space_to_depth": lambda: one_op(ix.SpaceToDepthOp, [(1, 3, 6, 4)], blocksize=2),
    "space_to_depth_crd": lambda: one_op(ix.SpaceToDepthOp, [(2, 2, 6, 9)], blocksize=3,
                                         mode="CRD"),
    "gather_elements": lambda: _indexed(
        ix.GatherElementsOp, (4, 6, 5), np.random.default_rng(6).integers(-6, 6, (4, 3, 5)),
        axis=1),
    "gather_nd_batch": lambda: _indexed(
        ix.GatherNDOp, (2, 5, 4, 3), np.random.default_rng(7).integers(0, 4, (2, 6, 2)),
        batch_dims=1),
    "scatter_elements_add": lambda: _indexed(
        ix.ScatterElementsOp, (5, 6), np.random.default_rng(8).integers(0, 6, (3, 4)),
        (3, 4), axis=1, reduction="add"),
    "scatter_nd": lambda: _indexed(
        ix.ScatterNDOp, (6, 4, 5), np.array([[4], [0], [2]]), (3, 4, 5)),
    "one_hot": _one_hot,
}


def _simulate(module: ModuleOp, inputs: dict[str, np.ndarray], **tile: Any
              ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], ModuleOp]:
    ref = run(module, inputs)
    low = lowered(attach_weights(module.clone(), weights_of(module)), **tile)
    return ref, sim.simulate(low, inputs).outputs, low


@pytest.mark.parametrize("tiles", ["default", "odd"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_vector_and_copy_layers_equal_the_reference(name: str, tiles: str) -> None:
    module, inputs = CASES[name]()
    ref, out, low = _simulate(module, inputs, **({"sizes": ODD} if tiles == "odd" else {}))
    (layer,) = [op for op in low.walk() if isinstance(op, accel.LayerOp)]
    assert layer.unit.data in ("vector", "dma")
    if tiles == "odd":
        assert layer.tiles.n_steps() > 1
    for k in ref:
        np.testing.assert_array_equal(out[k], ref[k], err_msg=k)


@pytest.mark.parametrize("tiles", ["default", "odd"])
@pytest.mark.parametrize("name", sorted(PE_CASES))
def test_summing_layers_match_the_reference(name: str, tiles: str) -> None:
    module, inputs = PE_CASES[name]()
    ref, out, low = _simulate(module, inputs, **({"sizes": ODD} if tiles == "odd" else {}))
    (layer,) = [op for op in low.walk() if isinstance(op, accel.LayerOp)]
    assert layer.unit.data == ("vector" if name in VECTOR_EINSUMS else "pe")
    for k in ref:
        np.testing.assert_allclose(out[k], ref[k], rtol=RTOL, atol=ATOL, err_msg=k)


def test_conv_transpose_costs_its_equivalent_convolution() -> None:
    """docs/simulator.md §2.3's worked example: a 3×3 stride-2 transposed conv 16→16 on
    8×8 (pads 1, output_padding 1: 16×16 out) is charged as the stride-1 conv over the
    15×15 zero-inserted input — the same 589,824 MACs (4× the 147,456 useful ones) and
    PE cycles 32 + 9·1024 + 30 = 9,278; it reads the 8×8 input, not the 15×15 one."""
    ct, inputs = one_op(spm.ConvTransposeOp, [(1, 16, 8, 8), (16, 16, 3, 3)], 1,
                        strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])
    w = weights_of(ct)[next(iter(weights_of(ct)))]
    u = np.zeros((1, 16, 15, 15), np.float32)
    u[:, :, ::2, ::2] = inputs["x0"]
    g = GraphBuilder()
    flipped = np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
    conv = g.add(nn.Conv2dOp.make([g.input("u", u.shape), g.weight("w", flipped)],
                                  {"pads": nn.int_array([1, 1, 2, 2])}))
    eq = g.finish([conv.results[0]])
    runs = []
    for module, feeds in ((ct, inputs), (eq, {"u": u})):
        low = lowered(attach_weights(module.clone(), weights_of(module)))
        runs.append(sim.simulate(low, feeds))
    a, b = (r.report.layers[0] for r in runs)
    np.testing.assert_allclose(*(next(iter(r.outputs.values())) for r in runs), rtol=1e-5,
                               atol=1e-5)
    assert (a.macs, a.pe_cycles, a.steps) == (b.macs, b.pe_cycles, b.steps) == (589_824, 9_278, 1)
    assert (a.cycles, b.cycles) == (10_406, 10_728)
    assert a.dram_bytes_read < b.dram_bytes_read


def test_a_whole_indexed_axis_too_big_for_the_cache_is_a_warning() -> None:
    """gather_elements loads its indexed axis whole (the addresses in it depend on the
    data): when one row cannot fit the cache the layer says so, and still computes."""
    module, inputs = _indexed(ix.GatherElementsOp, (2, 6000),
                              np.random.default_rng(9).integers(0, 6000, (2, 4000)), axis=1)
    ref, out, low = _simulate(module, inputs, machine="micro")
    (layer,) = [op for op in low.walk() if isinstance(op, accel.LayerOp)]
    assert any("this layer streams from DRAM" in n for n in layer.notes)
    np.testing.assert_array_equal(next(iter(out.values())), next(iter(ref.values())))


def test_a_vector_layer_costs_its_ops() -> None:
    """docs/simulator.md §2.3: LRN size 5 on 1×32×8×8 fp32, one step on the default
    machine: 2,048 outputs × 5 = 10,240 ops at 5 cycles (`layernorm`) over 64 lanes =
    800 cycles; 8 KiB in (128 cold lines: 256 + 100) and out (write-allocate, 256 + 100)."""
    module, inputs = one_op(spm.LRNOp, [(1, 32, 8, 8)], size=5)
    low = lowered(attach_weights(module.clone(), weights_of(module)))
    s = sim.simulate(low, inputs).report.layers[0]
    assert (s.steps, s.vector_ops, s.compute_cycles, s.cycles) == (1, 10_240, 800, 1_512)


def test_a_layer_the_accelerator_cannot_run_is_a_located_error() -> None:
    """A 4-D pooling window has no tiled form: lower-to-accel stops at the op's node."""
    from xdsl.dialects.builtin import FileLineColLoc, IntAttr

    from irflow.diagnostics import IrflowError

    module, inputs = one_op(spm.PoolOp, [(1, 2, 3, 3, 3, 3)], mode="max", kernel=[2, 2, 2, 2])
    pool = next(op for op in module.walk() if isinstance(op, spm.PoolOp))
    pool.location = FileLineColLoc(StringAttr("pool4d.irf"), IntAttr(3), IntAttr(7))
    with pytest.raises(IrflowError, match=r"pool4d\.irf:3:7.*no tiled form for a 4-D nn\.pool"):
        _simulate(module, inputs)


@pytest.mark.parametrize("name", ["pad_reflect", "resize_linear_align", "gather_nd_batch",
                                  "conv_transpose_3d"])
def test_traces_do_not_depend_on_the_numbers(name: str) -> None:
    """The lines a spatial or copy layer touches follow from shapes, params and tiles
    alone (indexed axes are whole), so `numerics=False` records the same trace."""
    from irflow.backends.sim.executor import execute

    module, inputs = {**CASES, **PE_CASES}[name]()
    low = lowered(attach_weights(module.clone(), weights_of(module)), sizes=ODD)
    full, bare = execute(low, inputs), execute(low, inputs, numerics=False)
    for a, b in zip(full.traces, bare.traces, strict=True):
        np.testing.assert_array_equal(a.line, b.line)
        np.testing.assert_array_equal(a.step_vector_ops, b.step_vector_ops)
