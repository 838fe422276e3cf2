"""VJPs of the indexing, scan, top-k and float-valued logic ops (`irflow/train/vjp_indexing.py`,
the second half of `irflow/train/vjp_math.py`) against central finite differences in float64,
in the style of `test_grad_ops.py` (its `check` harness). Data avoids ties and kinks by
construction (random normals; indices drawn without repeats where a repeat is undefined)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_grad_ops import CASES, check, op
from xdsl.dialects.builtin import StringAttr, TensorType, f32, f64, i64
from xdsl.ir import SSAValue

from irflow.backends.reference import compile_function
from irflow.dialects import nn
from irflow.dialects.nn import indexing as ix
from irflow.graph import GraphBuilder
from irflow.train.grad import GRAD_PREFIX, STEP_FUNC, grad
from irflow.train.losses import MSE

REDUCE = nn.REDUCTION_OPS
LOGIC = nn.LOGIC_OPS


@CASES
@given(st.sampled_from(["min", "max"]), st.integers(0, 2**6))
def test_min_max(short: str, mask: int) -> None:
    shape = (2, 3, 4)
    rhs = tuple(1 if mask >> i & 1 else d for i, d in enumerate(shape))[(mask >> 3) & 1:]
    check(lambda g, weight: op(g, LOGIC[short], weight(shape), weight(rhs)), seed=mask)


@pytest.mark.parametrize("short", ["min", "max"])
def test_min_max_ties_share_the_gradient_equally(short: str) -> None:
    """torch.maximum/minimum's convention: at a == b each operand gets dy / 2."""
    g = GraphBuilder()
    a = g.weight("a", np.array([1.0, 2.0, 3.0]), element_type=f64)
    b = g.weight("b", np.array([1.0, 5.0, 0.0]), element_type=f64)
    y = op(g, LOGIC[short], a, b)
    step = grad(g.finish([y], ["y"]), MSE())
    out = compile_function(step, STEP_FUNC).run({"a": np.array([1.0, 2.0, 3.0]),
                                                 "b": np.array([1.0, 5.0, 0.0]),
                                                 "target": np.zeros(3)})
    dy = 2 * np.minimum([1.0, 2.0, 3.0], [1.0, 5.0, 0.0]) / 3 if short == "min" else (
        2 * np.maximum([1.0, 2.0, 3.0], [1.0, 5.0, 0.0]) / 3)
    a_wins = [0.5, 1.0, 0.0] if short == "min" else [0.5, 0.0, 1.0]
    np.testing.assert_allclose(out[GRAD_PREFIX + "a"], dy * a_wins)
    np.testing.assert_allclose(out[GRAD_PREFIX + "b"], dy * (1 - np.array(a_wins)))


@CASES
@given(st.sampled_from([(2, 3, 4, 4), (3, 4)]), st.sampled_from(["full", "channel", "one"]))
def test_prelu(shape: tuple[int, ...], slope: str) -> None:
    sshape = {"full": shape, "channel": (shape[1],) + (1,) * (len(shape) - 2),
              "one": (1,)}[slope]
    check(lambda g, weight: op(g, LOGIC["prelu"], weight(shape), weight(sshape)))


@CASES
@given(st.integers(0, 1), st.sampled_from([((3, 4), (3, 4)), ((2, 3), (3,))]))
def test_mod(fmod: int, shapes: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
    check(lambda g, weight: op(g, LOGIC["mod"], weight(shapes[0]), weight(shapes[1]),
                               fmod=nn.i64_attr(fmod)), positive=True, scale=3.0)


def test_cast_float_to_float() -> None:
    """f64 -> f32 -> f64: dy is cast back at each step (no finite differences: the f32 step
    rounds the forward)."""
    g = GraphBuilder()
    w = np.array([0.5, -1.25, 3.0])
    x = g.weight("w", w, element_type=f64)
    cast = nn.MATH_OPS["cast"]
    y32 = g.add(cast.create(operands=[x], result_types=[TensorType(f32, [3])])).results[0]
    y = g.add(cast.create(operands=[y32], result_types=[TensorType(f64, [3])])).results[0]
    out = compile_function(grad(g.finish([y], ["y"]), MSE()), STEP_FUNC).run(
        {"w": w, "target": np.zeros(3)})
    np.testing.assert_allclose(out[GRAD_PREFIX + "w"], 2 * w / 3)


@CASES
@given(st.integers(-3, 2))
def test_log_softmax(axis: int) -> None:
    check(lambda g, weight: op(g, REDUCE["log_softmax"], weight((2, 3, 4)),
                               axis=nn.i64_attr(axis)))


@CASES
@given(st.sampled_from(["cumsum", "cumprod"]), st.integers(-2, 1), st.integers(0, 1),
       st.integers(0, 1))
def test_scans(short: str, axis: int, exclusive: int, reverse: int) -> None:
    check(lambda g, weight: op(g, REDUCE[short], weight((3, 4)), axis=nn.i64_attr(axis),
                               exclusive=nn.i64_attr(exclusive), reverse=nn.i64_attr(reverse)),
          positive=short == "cumprod")


def topk(g: GraphBuilder, x: SSAValue, **props: int) -> tuple[SSAValue, SSAValue]:
    attrs = {k: nn.i64_attr(v) for k, v in props.items()}
    shape = REDUCE["topk"].infer_shapes([nn.shape_of(x)], attrs)[0]
    values, idx = g.add(REDUCE["topk"].create(
        operands=[x], properties=attrs,
        result_types=[TensorType(f64, shape), TensorType(i64, shape)])).results
    return values, idx


@CASES
@given(st.integers(-2, 1), st.integers(1, 3), st.integers(0, 1), st.integers(0, 1))
def test_topk_values(axis: int, k: int, largest: int, sort: int) -> None:
    def build(g, weight):  # noqa: ANN001, ANN202
        return topk(g, weight((3, 4)), k=k, axis=axis, largest=largest, sorted=sort)[0]

    check(build)


def test_topk_indices_carry_no_gradient() -> None:
    """Routing by top-k indices (a gather with them) differentiates the gathered data; the
    integer indices cut the path instead of being an error."""
    def build(g, weight):  # noqa: ANN001, ANN202
        scores, data = weight((2, 5)), weight((2, 5))
        values, idx = topk(g, scores, k=2)
        picked = op(g, ix.GatherElementsOp, data, idx, axis=nn.i64_attr(1))
        return op(g, nn.MulOp, picked, values)

    check(build)


@CASES
@given(st.sampled_from([((3, 1), (2, 3, 4)), ((1, 4), (3, 4)), ((2, 1, 3), (2, 4, 3))]))
def test_expand(shapes: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
    src, to = shapes
    check(lambda g, weight: op(g, ix.ExpandOp, weight(src), shape=nn.int_array(to)))


@CASES
@given(st.lists(st.integers(1, 3), min_size=2, max_size=3))
def test_tile(repeats: list[int]) -> None:
    shape = (2, 3, 2)[:len(repeats)]
    check(lambda g, weight: op(g, ix.TileOp, weight(shape), repeats=nn.int_array(repeats)))


@CASES
@given(st.sampled_from(["reflect", "edge", "wrap"]),
       st.lists(st.integers(-1, 2), min_size=4, max_size=4))
def test_pad_modes(mode: str, pads: list[int]) -> None:
    check(lambda g, weight: op(g, ix.PadOp, weight((4, 5)), pads=nn.int_array(pads),
                               mode=StringAttr(mode)))


@CASES
@given(st.integers(0, 1), st.integers(-2, 2))
def test_trilu(upper: int, k: int) -> None:
    check(lambda g, weight: op(g, ix.TriluOp, weight((2, 3, 4)), upper=nn.i64_attr(upper),
                               k=nn.i64_attr(k)))


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
@pytest.mark.parametrize("cls", [ix.DepthToSpaceOp, ix.SpaceToDepthOp])
def test_depth_space(cls: type[nn.NNOp], mode: str) -> None:
    shape = (1, 8, 2, 3) if cls is ix.DepthToSpaceOp else (1, 2, 4, 6)
    check(lambda g, weight: op(g, cls, weight(shape), blocksize=nn.i64_attr(2),
                               mode=StringAttr(mode)))


@CASES
@given(st.integers(-2, 1), st.integers(0, 100))
def test_gather_elements(axis: int, seed: int) -> None:
    """Repeated and negative indices: the gradient accumulates."""
    shape = (3, 4)
    ishape = (3, 5) if axis % 2 == 1 else (5, 4)
    n = shape[axis]
    idx = np.random.default_rng(seed).integers(-n, n, ishape)

    def build(g, weight):  # noqa: ANN001, ANN202
        return op(g, ix.GatherElementsOp, weight(shape), g.inline(idx, i64),
                  axis=nn.i64_attr(axis))

    check(build)


@CASES
@given(st.integers(0, 1), st.integers(1, 2), st.integers(0, 100))
def test_gather_nd(batch_dims: int, last: int, seed: int) -> None:
    shape = (2, 3, 4)
    rng = np.random.default_rng(seed)
    dims = shape[batch_dims:batch_dims + last]
    idx = np.stack([rng.integers(-d, d, (2, 3)) for d in dims], axis=-1)  # repeats, negatives

    def build(g, weight):  # noqa: ANN001, ANN202
        return op(g, ix.GatherNDOp, weight(shape), g.inline(idx, i64),
                  batch_dims=nn.i64_attr(batch_dims))

    check(build)


REDUCTIONS = st.sampled_from(["none", "add", "mul", "max", "min"])


@CASES
@given(REDUCTIONS, st.integers(-2, 1), st.integers(0, 100))
def test_scatter_elements(reduction: str, axis: int, seed: int) -> None:
    """none: distinct indices along the axis (repeats are undefined); the reductions:
    repeats and negatives (mul on values away from 0)."""
    rng = np.random.default_rng(seed)
    shape, ishape = (4, 5), (2, 3)
    a = axis % 2
    if reduction == "none":  # a distinct position per element along the axis
        idx = np.stack([rng.permutation(shape[a])[:ishape[a]] for _ in range(ishape[1 - a])],
                       axis=1 - a)
    else:
        idx = rng.integers(-shape[a], shape[a], ishape)

    def build(g, weight):  # noqa: ANN001, ANN202
        return op(g, ix.ScatterElementsOp, weight(shape), g.inline(idx, i64), weight(ishape),
                  axis=nn.i64_attr(axis), reduction=StringAttr(reduction))

    check(build, seed=seed, positive=reduction == "mul")


@CASES
@given(REDUCTIONS, st.integers(1, 2), st.integers(0, 100))
def test_scatter_nd(reduction: str, last: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (3, 4, 2)
    cells = np.array(list(np.ndindex(*shape[:last])))
    rows = rng.permutation(len(cells))[:3] if reduction == "none" else rng.integers(
        0, len(cells), 3)
    idx = cells[rows]

    def build(g, weight):  # noqa: ANN001, ANN202
        return op(g, ix.ScatterNDOp, weight(shape), g.inline(idx, i64),
                  weight((3,) + shape[last:]), reduction=StringAttr(reduction))

    check(build, seed=seed, positive=reduction == "mul")


@CASES
@given(st.integers(-2, 1))
def test_one_hot_values(axis: int) -> None:
    idx = np.array([[0, 3, -1], [2, 2, 1]])

    def build(g, weight):  # noqa: ANN001, ANN202
        return g.add(ix.OneHotOp.make([g.inline(idx, i64), weight((2,))], {
            "depth": nn.i64_attr(4), "axis": nn.i64_attr(axis)}, element_type=f64)).results[0]

    check(build)


def test_scatter_max_ties_share_the_gradient() -> None:
    """data 2 and two updates 2 tie for the maximum at index 0: a third of dy each."""
    g = GraphBuilder()
    d = g.weight("d", np.array([2.0, 0.0]), element_type=f64)
    u = g.weight("u", np.array([2.0, 2.0, 1.0]), element_type=f64)
    y = op(g, ix.ScatterElementsOp, d, g.inline(np.array([0, 0, 1]), i64), u,
           reduction=StringAttr("max"))
    out = compile_function(grad(g.finish([y], ["y"]), MSE()), STEP_FUNC).run(
        {"d": np.array([2.0, 0.0]), "u": np.array([2.0, 2.0, 1.0]), "target": np.zeros(2)})
    dy = np.array([2.0, 1.0])  # d(mean(y²))/dy for y = [2, 1]
    np.testing.assert_allclose(out[GRAD_PREFIX + "d"], [dy[0] / 3, 0.0])
    np.testing.assert_allclose(out[GRAD_PREFIX + "u"], [dy[0] / 3, dy[0] / 3, dy[1]])


def test_chain_of_the_new_rules() -> None:
    """The rules composed, with a value used twice (their contributions add up)."""
    def build(g, weight):  # noqa: ANN001, ANN202
        x = op(g, ix.PadOp, weight((1, 2, 4, 4)), pads=nn.int_array([0, 0, 1, 2, 0, 0, 2, 1]),
               mode=StringAttr("reflect"))
        y = g.add(nn.Conv2dOp(x, weight((8, 2, 3, 3)))).results[0]
        y = op(g, LOGIC["max"], y, op(g, ix.ExpandOp, weight((8, 1, 1)),
                                      shape=nn.int_array([1, 8, 5, 5])))
        y = op(g, ix.DepthToSpaceOp, y, blocksize=nn.i64_attr(2))
        y = op(g, REDUCE["cumsum"], y, axis=nn.i64_attr(3))
        values, idx = topk(g, y, k=3, axis=2)
        y = op(g, nn.AddOp, values, op(g, ix.GatherElementsOp, y, idx, axis=nn.i64_attr(2)))
        return op(g, REDUCE["log_softmax"], op(g, ix.TileOp, y, repeats=nn.int_array(
            [1, 1, 1, 2])), axis=nn.i64_attr(-1))

    check(build)
