"""Every differentiable nn op's VJP (as `grad` emits it) against central finite differences
in float64, over shapes and attributes drawn by hypothesis.

Each case builds a one-op model whose operands are all trainable float64 weights, puts an
MSE loss against a random target on its output (a random upstream gradient), and checks
the directional derivative along two random directions (`irflow.train.gradcheck`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import StringAttr, TensorType, f64, i1, i64
from xdsl.ir import SSAValue

from irflow.dialects import nn
from irflow.dialects.nn.indexing import PadOp
from irflow.graph import GraphBuilder
from irflow.train.gradcheck import gradcheck
from irflow.train.losses import MSE, CrossEntropy, Distillation
from irflow.weights import weights_of

TOL = 1e-6
CASES = settings(max_examples=8, deadline=None, derandomize=True)

Build = Callable[[GraphBuilder, Callable[[tuple[int, ...]], SSAValue]], SSAValue]


def check(build: Build, seed: int = 0, positive: bool = False, loss=None,  # noqa: ANN001
          scale: float = 1.0, domain: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
    """Build the one-op model with random weights and check its gradients."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder()
    count = [0]

    def weight(shape: tuple[int, ...]) -> SSAValue:
        count[0] += 1
        a = rng.standard_normal(shape) * scale
        if positive:
            a = np.abs(a) + 0.5
        if domain is not None:
            a = domain(a)
        return g.weight(f"w{count[0]}", a, element_type=f64)

    y = build(g, weight)
    module = g.finish([y], ["y"])
    shape = nn.shape_of(y)
    loss = loss or MSE()
    targets = {"target": rng.standard_normal(shape)} if isinstance(loss, MSE) else {
        "labels": rng.integers(0, shape[1], shape[0])}
    if isinstance(loss, Distillation):
        targets["teacher_logits"] = rng.standard_normal(shape) * 2
    report = gradcheck(module, loss, {}, targets, directions=2, seed=seed)
    assert len(report.params) == len(weights_of(module))
    assert report.worst_rel_error < TOL, (report.analytic, report.numeric)


def op(g: GraphBuilder, cls: type[nn.NNOp], *operands: SSAValue, **props) -> SSAValue:  # noqa: ANN003
    return g.add(cls.make(list(operands), props)).results[0]


def emit(g: GraphBuilder, value_op) -> SSAValue:  # noqa: ANN001
    return g.add(value_op).results[0]


shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


@CASES
@given(st.data())
def test_conv2d(data: st.DataObject) -> None:
    groups = data.draw(st.sampled_from([1, 2]))
    c, f = groups * data.draw(st.integers(1, 2)), groups * data.draw(st.integers(1, 2))
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    sh, sw = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    dh, dw = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    pads = data.draw(st.lists(st.integers(0, 2), min_size=4, max_size=4))
    h = data.draw(st.integers(dh * (kh - 1) + 1, 7))
    w = data.draw(st.integers(dw * (kw - 1) + 1, 7))
    bias = data.draw(st.booleans())
    act = data.draw(st.sampled_from([None, "relu", "tanh"]))

    def build(g, weight):  # noqa: ANN001, ANN202
        x, wt = weight((2, c, h, w)), weight((f, c // groups, kh, kw))
        b = weight((f,)) if bias else None
        return emit(g, nn.Conv2dOp(x, wt, b, strides=(sh, sw), pads=pads, dilations=(dh, dw),
                                   groups=groups, act=act))

    check(build)


@CASES
@given(st.data())
def test_depthwise_conv2d(data: st.DataObject) -> None:
    c = data.draw(st.integers(1, 4))
    mult = data.draw(st.integers(1, 2))
    stride = data.draw(st.integers(1, 2))

    def build(g, weight):  # noqa: ANN001, ANN202
        return emit(g, nn.Conv2dOp(weight((1, c, 5, 5)), weight((c * mult, 1, 3, 3)),
                                   strides=(stride, stride), pads=(1, 1, 1, 1), groups=c))

    check(build)


@CASES
@given(st.data())
def test_pools(data: st.DataObject) -> None:
    cls = data.draw(st.sampled_from([nn.MaxPoolOp, nn.AvgPoolOp]))
    k = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    s = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    pads = [data.draw(st.integers(0, k[i % 2] - 1)) for i in range(4)]
    ceil = data.draw(st.integers(0, 1))
    props = {"kernel": nn.int_array(k), "strides": nn.int_array(s), "pads": nn.int_array(pads),
             "ceil_mode": nn.i64_attr(ceil)}
    if cls is nn.AvgPoolOp:
        props["count_include_pad"] = nn.i64_attr(data.draw(st.integers(0, 1)))

    def build(g, weight):  # noqa: ANN001, ANN202
        return emit(g, cls.make([weight((2, 2, 6, 5))], props))

    check(build, seed=data.draw(st.integers(0, 100)))


@pytest.mark.parametrize("name", ["relu", "relu6", "clip", "sigmoid", "tanh", "gelu", "gelu_tanh",
                                  "silu", "hardsigmoid", "hardswish", "erf", "sqrt", "exp", "neg"])
@settings(max_examples=3, deadline=None, derandomize=True)
@given(shape=st.lists(st.integers(4, 8), min_size=2, max_size=3).map(tuple),
       seed=st.integers(0, 100))
def test_unary(name: str, shape: tuple[int, ...], seed: int) -> None:
    def build(g, weight):  # noqa: ANN001, ANN202
        x = weight(shape)
        if name == "clip":
            return emit(g, nn.ClipOp(x, min=nn.f64(-0.5), max=nn.f64(0.7)))
        if name == "gelu_tanh":
            return emit(g, nn.GeluOp(x, approximate=StringAttr("tanh")))
        if name == "hardsigmoid":
            return emit(g, nn.HardSigmoidOp(x, alpha=nn.f64(0.3), beta=nn.f64(0.4)))
        cls = {"neg": nn.NegOp, "gelu": nn.GeluOp, "erf": nn.ErfOp, "sqrt": nn.SqrtOp,
               "exp": nn.ExpOp}.get(name) or nn.FUSABLE_ACTIVATIONS[name]
        return emit(g, cls(x))

    check(build, seed=seed, positive=name == "sqrt", scale=4.0)  # past relu6's, hardswish's kinks


@CASES
@given(st.sampled_from([nn.AddOp, nn.SubOp, nn.MulOp, nn.DivOp, nn.PowOp]), shapes,
       st.integers(0, 2**8))
def test_binary_broadcasting(cls: type[nn.NNOp], shape: tuple[int, ...], mask: int) -> None:
    # rhs: the shape with some dimensions set to 1 and maybe a leading one dropped
    rhs = tuple(1 if mask >> i & 1 else d for i, d in enumerate(shape))[(mask >> 7) & 1:]

    def build(g, weight):  # noqa: ANN001, ANN202
        a, b = weight(shape), weight(rhs or (1,))  # pow: a > 0, so both are differentiable
        return op(g, cls, a, b)

    check(build, seed=mask, positive=cls in (nn.DivOp, nn.PowOp))


@CASES
@given(st.sampled_from([((3, 4), (4, 2)), ((2, 3, 4), (4, 5)), ((4,), (4, 3)), ((2, 4), (4,)),
                        ((2, 1, 2, 3), (3, 3, 2)), ((3,), (3,))]))
def test_matmul(shapes_ab: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
    a, b = shapes_ab
    check(lambda g, weight: op(g, nn.MatmulOp, weight(a), weight(b)))


@CASES
@given(st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple), st.booleans())
def test_linear(lead: tuple[int, ...], bias: bool) -> None:
    def build(g, weight):  # noqa: ANN001, ANN202
        ops = [weight(lead + (4,)), weight((3, 4))] + ([weight((3,))] if bias else [])
        return op(g, nn.LinearOp, *ops)

    check(build)


@CASES
@given(st.integers(-3, 2), st.booleans(), st.booleans())
def test_layernorm(axis: int, bias: bool, full_scale: bool) -> None:
    shape = (2, 3, 4)
    norm = shape[axis % 3:]
    scale = norm if full_scale else norm[-1:]

    def build(g, weight):  # noqa: ANN001, ANN202
        ops = [weight(shape), weight(scale)] + ([weight(norm)] if bias else [])
        return op(g, nn.LayerNormOp, *ops, axis=nn.i64_attr(axis))

    check(build)


def test_batchnorm() -> None:
    def build(g, weight):  # noqa: ANN001, ANN202
        x, scale, bias = weight((2, 3, 4, 4)), weight((3,)), weight((3,))
        mean = g.inline(np.array([0.1, -0.2, 0.3]), f64)
        var = g.inline(np.array([0.5, 1.5, 2.0]), f64)
        return op(g, nn.BatchNormOp, x, scale, bias, mean, var)

    check(build)


@CASES
@given(st.integers(-3, 2))
def test_softmax(axis: int) -> None:
    check(lambda g, weight: op(g, nn.SoftmaxOp, weight((2, 3, 4)), axis=nn.i64_attr(axis)))


@CASES
@given(st.lists(st.integers(0, 2), min_size=1, max_size=3, unique=True), st.integers(0, 1))
def test_reduce_mean(axes: list[int], keep: int) -> None:
    check(lambda g, weight: op(g, nn.ReduceMeanOp, weight((2, 3, 4)), axes=nn.int_array(axes),
                               keepdims=nn.i64_attr(keep)))


def test_global_avg_pool() -> None:
    check(lambda g, weight: op(g, nn.GlobalAvgPoolOp, weight((2, 3, 4, 5))))


@CASES
@given(st.permutations([0, 1, 2]))
def test_movement(perm: list[int]) -> None:
    def build(g, weight):  # noqa: ANN001, ANN202
        x = op(g, nn.TransposeOp, weight((2, 3, 4)), perm=nn.int_array(perm))
        flat = op(g, nn.FlattenOp, x, axis=nn.i64_attr(1))
        y = emit(g, nn.ReshapeOp(flat, (12, 2)))
        a, b = nn.SplitOp.make([y], {"axis": nn.i64_attr(0), "sizes": nn.int_array(
            [2, nn.shape_of(y)[0] - 2])}).results
        g.add(a.owner)
        sl = op(g, nn.SliceOp, b, starts=nn.int_array([3, 0]), ends=nn.int_array([100, 2]),
                axes=nn.int_array([0, 1]), steps=nn.int_array([2, 1]))
        return op(g, nn.ConcatOp, sl, a, a, axis=nn.i64_attr(0))

    check(build)


def test_gather_repeated_indices_accumulate() -> None:
    def build(g, weight):  # noqa: ANN001, ANN202
        ids = g.inline(np.array([[0, 2, 2], [4, 0, -1]]), i64)
        return op(g, nn.GatherOp, weight((5, 3)), ids, axis=nn.i64_attr(0))

    check(build)


@CASES
@given(st.floats(0.0, 0.5), st.integers(1, 4), st.integers(2, 5))
def test_cross_entropy(smoothing: float, batch: int, classes: int) -> None:
    check(lambda g, weight: weight((batch, classes)), loss=CrossEntropy(smoothing))


@CASES
@given(st.floats(0.5, 8.0), st.floats(0.0, 1.0))
def test_distillation_kl(temperature: float, alpha: float) -> None:
    check(lambda g, weight: weight((3, 5)),
          loss=Distillation(CrossEntropy(0.1), alpha=alpha, temperature=temperature))


def test_loss_values_match_their_definitions() -> None:
    """The kernels against the formulas (torch's definitions, written out in numpy)."""
    from irflow.backends.reference.grad_kernels import log_softmax
    from irflow.backends.reference.kernels import KERNELS
    from irflow.dialects.nn import losses as lo

    rng = np.random.default_rng(1)
    s, t = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    y = np.array([0, 5, 2, 2])
    g = GraphBuilder()
    a, b = g.weight("s", s, element_type=f64), g.weight("t", t, element_type=f64)
    lbl = g.inline(y, i64)
    ce = lo.CrossEntropyOp.make([a, lbl], {"label_smoothing": nn.f64(0.2)})
    kl = lo.KlDivOp.make([a, b], {"temperature": nn.f64(3.0)})
    mse = lo.MseOp.make([a, b])
    onehot = np.eye(6)[y] * 0.8 + 0.2 / 6
    assert KERNELS[lo.CrossEntropyOp](ce)(s, y) == pytest.approx(
        -(onehot * log_softmax(s)).sum(axis=1).mean())
    pt = np.exp(log_softmax(t / 3))
    assert KERNELS[lo.KlDivOp](kl)(s, t) == pytest.approx(
        9 * (pt * (np.log(pt) - log_softmax(s / 3))).sum() / 4)
    assert KERNELS[lo.MseOp](mse)(s, t) == pytest.approx(((s - t) ** 2).mean())


@CASES
@given(st.integers(-2, -1), st.floats(1e-6, 0.5))
def test_rms_norm(axis: int, eps: float) -> None:
    def build(g, weight):  # noqa: ANN001, ANN202
        x = weight((2, 3, 4))
        return op(g, nn.RMSNormOp, x, weight((2, 3, 4)[axis:]), axis=nn.i64_attr(axis),
                  epsilon=nn.f64(eps))

    check(build)


@CASES
@given(st.integers(1, 2), st.integers(1, 3), st.sampled_from([2, 4, 6]))
def test_rotary(heads: int, seq: int, dim: int) -> None:
    check(lambda g, weight: op(g, nn.RotaryOp, weight((2, heads, seq, dim)),
                               weight((2, seq, dim // 2)), weight((2, seq, dim // 2))))


@CASES
@given(st.sampled_from([(2, 2), (4, 2), (3, 1)]), st.integers(1, 4), st.integers(0, 3),
       st.booleans(), st.sampled_from([None, 0.7]))
def test_attention(heads: tuple[int, int], seq: int, past: int, causal: bool,
                   scale: float | None) -> None:
    hq, hkv = heads
    props = {"causal": nn.i64_attr(int(causal))} | ({"scale": nn.f64(scale)} if scale else {})

    def build(g, weight):  # noqa: ANN001, ANN202
        q, k, v = weight((1, hq, seq, 4)), weight((1, hkv, seq + past, 4)), weight(
            (1, hkv, seq + past, 3))
        return op(g, nn.AttentionOp, q, k, v, **props)

    check(build)


# Each differentiable math row with inputs mapped into its domain (log > 0, asin in (-1, 1),
# acosh > 1) and non-default properties where it has them.
MATH_DOMAIN: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "log": lambda a: np.abs(a) + 0.5, "reciprocal": lambda a: np.abs(a) + 0.5,
    "asin": lambda a: 0.8 * np.tanh(a), "acos": lambda a: 0.8 * np.tanh(a),
    "atanh": lambda a: 0.8 * np.tanh(a), "acosh": lambda a: np.abs(a) + 1.5,
    "tan": lambda a: np.tanh(a) * 1.2}
MATH_PROPS = {"leaky_relu": {"alpha": 0.2}, "elu": {"alpha": 0.7}, "celu": {"alpha": 1.5},
              "selu": {}, "thresholded_relu": {"alpha": 0.3},
              "shrink": {"lambd": 0.4, "bias": 0.1}}


@pytest.mark.parametrize("name", nn.math.DIFFERENTIABLE_MATH)
def test_math_unary(name: str) -> None:
    def build(g, weight):  # noqa: ANN001, ANN202
        return op(g, nn.MATH_OPS[name], weight((3, 4)),
                  **{k: nn.f64(v) for k, v in MATH_PROPS.get(name, {}).items()})

    check(build, seed=3, scale=2.0, domain=MATH_DOMAIN.get(name))


@pytest.mark.parametrize("name", ["reduce_sum", "reduce_max", "reduce_min", "reduce_prod",
                                  "reduce_l1", "reduce_l2", "reduce_log_sum",
                                  "reduce_log_sum_exp", "reduce_sum_square"])
@settings(max_examples=3, deadline=None, derandomize=True)
@given(axes=st.lists(st.integers(-3, 2), min_size=1, max_size=2, unique=True),
       keep=st.integers(0, 1))
def test_reductions(name: str, axes: list[int], keep: int) -> None:
    if len({a % 3 for a in axes}) < len(axes):
        axes = axes[:1]

    def build(g, weight):  # noqa: ANN001, ANN202
        return op(g, nn.REDUCTION_OPS[name], weight((2, 3, 4)), axes=nn.int_array(axes),
                  keepdims=nn.i64_attr(keep))

    check(build, positive=name == "reduce_log_sum")


@CASES
@given(st.lists(st.integers(-1, 2), min_size=4, max_size=4), st.floats(-1.0, 1.0))
def test_pad_constant(pads: list[int], value: float) -> None:
    check(lambda g, weight: op(g, PadOp, weight((3, 4)), pads=nn.int_array(pads),
                               value=nn.f64(value)))


@CASES
@given(shapes, st.integers(0, 2**8))
def test_where(shape: tuple[int, ...], mask: int) -> None:
    rhs = tuple(1 if mask >> i & 1 else d for i, d in enumerate(shape))

    def build(g, weight):  # noqa: ANN001, ANN202
        cond = g.inline(np.random.default_rng(mask).random(shape) > 0.5, i1)
        return emit(g, nn.LOGIC_OPS["where"].create(  # make() would type it like the i1 cond
            operands=[cond, weight(shape), weight(rhs)], result_types=[TensorType(f64, shape)]))

    check(build, seed=mask)
