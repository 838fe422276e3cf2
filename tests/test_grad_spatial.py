"""VJPs of the ONNX einsum and n-D spatial ops (`irflow/train/vjp_spatial.py`) against central
finite differences in float64, in the style of `test_grad_ops.py` (its `check` harness)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_grad_ops import check, op
from xdsl.dialects.builtin import FloatAttr, StringAttr, f64

from irflow.backends.reference import compile_function
from irflow.dialects import nn
from irflow.dialects.nn.einsum import EinsumOp
from irflow.dialects.nn.spatial import ConvTransposeOp, LRNOp, PoolOp, ResizeOp, f64_array
from irflow.graph import GraphBuilder
from irflow.train.grad import GRAD_PREFIX, STEP_FUNC, grad
from irflow.train.losses import MSE

# (equation, each operand's `...` axes): matmul, batched, outer, reductions, implicit
# output, ellipsis with broadcasting, a letter summed over one operand alone, three operands
EINSUMS = [
    ("ij,jk->ik", None), ("bij,bjk->bik", None), ("i,j->ij", None), ("ij->j", None),
    ("ij->", None), ("ij->ji", None), ("ij,jk", None), ("ij,jk->i", None),
    ("ij,jk,kl->il", None), ("bhqd,bhkd->bhqk", None),
    ("...ij,...jk->...ik", [(2, 1), (3,)]), ("...i,i", [(2, 3), ()]),
    # repeated letters (diagonals): trace, diagonal, a repeat with a summed letter,
    # a letter three times, a diagonal contracted with another operand
    ("ii", None), ("ii->i", None), ("iij->j", None), ("iii->i", None), ("iji,jk->ik", None),
]


def einsum_shapes(equation: str, ellipses: list[tuple[int, ...]] | None,
                  sizes: dict[str, int]) -> list[tuple[int, ...]]:
    terms = equation.partition("->")[0].split(",")
    ells = ellipses or [()] * len(terms)
    return [tuple(sizes[c] for c in t.partition("...")[0]) + ell
            + tuple(sizes[c] for c in t.partition("...")[2]) for t, ell in zip(terms, ells)]


@pytest.mark.parametrize("equation,ellipses", EINSUMS)
@settings(max_examples=3, deadline=None, derandomize=True)
@given(st.fixed_dictionaries({c: st.integers(1, 3) for c in "bhijklqd"}))
def test_einsum(equation: str, ellipses: list[tuple[int, ...]] | None,
                sizes: dict[str, int]) -> None:
    shapes = einsum_shapes(equation, ellipses, sizes)
    check(lambda g, weight: op(g, EinsumOp, *[weight(s) for s in shapes],
                               equation=StringAttr(equation)))


@settings(max_examples=16, deadline=None, derandomize=True)
@given(st.data())
def test_conv_transpose(data: st.DataObject) -> None:
    nd = data.draw(st.integers(1, 3))
    groups = data.draw(st.sampled_from([1, 2]))
    c, fg = groups * data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    k = [data.draw(st.integers(1, 3)) for _ in range(nd)]
    s = [data.draw(st.integers(1, 2)) for _ in range(nd)]
    d = [data.draw(st.integers(1, 2)) for _ in range(nd)]
    # output_padding up to max(stride, dilation) - 1: ≥ stride where the dilation is larger
    outpad = [data.draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, d)]
    spatial = [data.draw(st.integers(1, 3 if nd < 3 else 2)) for _ in range(nd)]
    full = [(i - 1) * si + (ki - 1) * di + 1 + o
            for i, si, ki, di, o in zip(spatial, s, k, d, outpad)]
    pads = [data.draw(st.integers(0, min(1, (f - 1) // 2))) for f in full for _ in (0, 1)]
    pads = pads[0::2] + pads[1::2]
    bias = data.draw(st.booleans())
    props = {"strides": nn.int_array(s), "pads": nn.int_array(pads),
             "dilations": nn.int_array(d), "output_padding": nn.int_array(outpad),
             "groups": nn.i64_attr(groups)}

    def build(g, weight):  # noqa: ANN001, ANN202
        operands = [weight((2, c, *spatial)), weight((c, fg, *k))]
        if bias:
            operands.append(weight((fg * groups,)))
        return op(g, ConvTransposeOp, *operands, **props)

    check(build, seed=nd)


@pytest.mark.parametrize("s,d,outpad,pads", [
    ((2, 1, 2), (1, 2, 1), (1, 0, 1), (1, 0, 0, 0, 1, 0)),  # depth stride, pads
    ((1, 2, 1), (3, 1, 2), (2, 1, 1), (0, 1, 0, 1, 0, 0)),  # output_padding >= stride
])
def test_conv_transpose_3d(s: tuple[int, ...], d: tuple[int, ...], outpad: tuple[int, ...],
                           pads: tuple[int, ...]) -> None:
    props = {"strides": nn.int_array(s), "pads": nn.int_array(pads),
             "dilations": nn.int_array(d), "output_padding": nn.int_array(outpad),
             "groups": nn.i64_attr(2)}
    check(lambda g, weight: op(g, ConvTransposeOp, weight((1, 2, 2, 2, 1)),
                               weight((2, 1, 2, 1, 2)), weight((2,)), **props))


@settings(max_examples=8, deadline=None, derandomize=True)
@given(st.sampled_from([(2, 4, 3), (1, 5, 2, 2), (1, 3, 1, 2, 2)]), st.integers(1, 4),
       st.sampled_from([(1e-4, 0.75, 1.0), (0.5, 0.6, 2.0), (1.0, 1.5, 0.5)]))
def test_lrn(shape: tuple[int, ...], size: int, abk: tuple[float, float, float]) -> None:
    alpha, beta, bias = abk
    check(lambda g, weight: op(g, LRNOp, weight(shape), size=nn.i64_attr(size),
                               alpha=FloatAttr(alpha, f64), beta=FloatAttr(beta, f64),
                               bias=FloatAttr(bias, f64)))


@settings(max_examples=16, deadline=None, derandomize=True)
@given(st.data())
def test_resize(data: st.DataObject) -> None:
    mode = data.draw(st.sampled_from(["nearest", "linear", "cubic"]))
    coord = data.draw(st.sampled_from(["half_pixel", "half_pixel_symmetric", "align_corners",
                                       "asymmetric", "pytorch_half_pixel",
                                       "tf_crop_and_resize"]))
    shape = (1, 2, data.draw(st.integers(1, 4)), data.draw(st.integers(2, 4)))
    sizes = (1, 2, data.draw(st.integers(1, 5)), data.draw(st.integers(1, 6)))
    props = {"sizes": nn.int_array(sizes),
             "scales": f64_array([o / i for o, i in zip(sizes, shape)]),
             "mode": StringAttr(mode), "coordinate_transformation_mode": StringAttr(coord),
             "exclude_outside": nn.i64_attr(data.draw(st.integers(0, 1))),
             "antialias": nn.i64_attr(data.draw(st.integers(0, 1)) if mode != "nearest" else 0),
             "nearest_mode": StringAttr(data.draw(st.sampled_from(
                 ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"])))}
    if coord == "tf_crop_and_resize":
        props["roi"] = f64_array([0, 0, -0.2, 0.1, 1, 1, 0.9, 1.3])
        props["extrapolation_value"] = FloatAttr(0.5, f64)
    check(lambda g, weight: op(g, ResizeOp, weight(shape), **props))


@settings(max_examples=20, deadline=None, derandomize=True)
@given(st.data())
def test_pool(data: st.DataObject) -> None:
    mode = data.draw(st.sampled_from(["avg", "lp", "max"]))
    nd = data.draw(st.integers(1, 3))
    k = [data.draw(st.integers(1, 3)) for _ in range(nd)]
    s = [data.draw(st.integers(1, 2)) for _ in range(nd)]
    d = [data.draw(st.integers(1, 2)) for _ in range(nd)]
    pads = [data.draw(st.integers(0, (ki - 1) // 2)) for ki in k for _ in (0, 1)]
    pads = pads[0::2] + pads[1::2]
    spatial = [data.draw(st.integers((ki - 1) * di + 1, (ki - 1) * di + 3 if nd < 3 else
                                     (ki - 1) * di + 2)) for ki, di in zip(k, d)]
    props = {"mode": StringAttr(mode), "kernel": nn.int_array(k), "strides": nn.int_array(s),
             "pads": nn.int_array(pads), "dilations": nn.int_array(d),
             "ceil_mode": nn.i64_attr(data.draw(st.integers(0, 1))),
             "count_include_pad": nn.i64_attr(data.draw(st.integers(0, 1))),
             "p": nn.i64_attr(data.draw(st.integers(1, 3)))}
    check(lambda g, weight: op(g, PoolOp, weight((1, 2, *spatial)), **props), seed=nd)



def test_pool_max_ties_go_to_the_first_maximum() -> None:
    """As nn.maxpool_grad (and torch): a tied window sends dy to its first maximum."""
    g = GraphBuilder()
    x = g.weight("x", np.ones((1, 1, 3)), element_type=f64)
    y = op(g, PoolOp, x, mode=StringAttr("max"), kernel=nn.int_array([2]))
    out = compile_function(grad(g.finish([y], ["y"]), MSE()), STEP_FUNC).run(
        {"x": np.ones((1, 1, 3)), "target": np.zeros((1, 1, 2))})
    np.testing.assert_allclose(out[GRAD_PREFIX + "x"], [[[1.0, 1.0, 0.0]]])
