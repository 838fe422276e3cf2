"""The table-driven nn families (math, logic, reductions, indexing): every op is reachable
from the DSL, verifies its shapes, and its reference kernel computes what numpy says."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.utils.exceptions import VerifyException

from irflow.backends.reference import run
from irflow.diagnostics import IrflowError
from irflow.dialects import nn
from irflow.frontends.dsl import compile_source
from irflow.graph import GraphBuilder

FAMILY_OPS = {*nn.MATH_OPS.values(), *nn.LOGIC_OPS.values(), *nn.REDUCTION_OPS.values(),
              *nn.INDEXING_OPS.values()}

SOURCE = """\
model fam(x: f32[2, 3], y: f32[2, 3], i: i64[2, 3], c: f32[1, 8, 2, 2], idx: i64[2, 2]) {
  pos = add(abs(x), 0.5)
  m = [abs(x), log(pos), reciprocal(pos), floor(x), ceil(x), round(x), sign(x), sin(x),
       cos(x), tan(x), asin(tanh(x)), acos(tanh(x)), atan(x), sinh(x), cosh(x), asinh(x),
       acosh(add(pos, 1.0)), atanh(mul(tanh(x), 0.5)), softplus(x), softsign(x), mish(x),
       leaky_relu(x, alpha=0.1), elu(x), selu(x), celu(x), thresholded_relu(x),
       shrink(x, lambd=0.2, bias=0.1)]
  b = [less(x, y), less_or_equal(x, y), greater(x, y), greater_or_equal(x, y), equal(x, x),
       is_nan(x), is_inf(x)]
  l = logical_xor(logical_or(logical_and(b[0], b[2]), logical_not(b[1])), b[3])
  w = where(l, minimum(x, y), maximum(x, y))
  ints = [bitwise_and(i, i), bitwise_or(i, i), bitwise_xor(i, i), bitwise_not(i),
          bit_shift(i, i, direction="LEFT"), mod(i, add(abs(i), 1)), cast(x, to="i64")]
  pr = prelu(x, y)
  md = mod(x, add(abs(y), 1.0), fmod=true)
  r = [reduce_sum(w, axes=[1]), reduce_max(w, axes=[0]), reduce_min(w, axes=[1]),
       reduce_prod(w, axes=[1]), reduce_l1(w, axes=[1]), reduce_l2(w, axes=[1]),
       reduce_log_sum(pos, axes=[1]), reduce_log_sum_exp(w, axes=[1]),
       reduce_sum_square(w, axes=[1], keepdims=false)]
  am = [arg_max(w, axis=1), arg_min(w, axis=0, keepdims=false, select_last_index=true)]
  sm = [log_softmax(w), hardmax(w), cumsum(w, axis=1), cumprod(w, axis=1, exclusive=true,
        reverse=true)]
  v, k = topk(w, k=2)
  g = [expand(reduce_sum(w, axes=[0]), shape=[4, 2, 3]), tile(w, repeats=[2, 1]),
       pad(w, pads=[0, 1, 1, 2], mode="reflect"), pad(w, pads=[1, 0, 0, -1], value=7.0),
       trilu(w, upper=false, k=1), gather_elements(w, idx, axis=1),
       gather_nd(w, idx), scatter_elements(w, idx, v, axis=1, reduction="add"),
       scatter_nd(w, idx, reduce_sum(w, axes=[1], keepdims=false)),
       one_hot(idx, reduce_sum(reshape(w, shape=[6, 1]), axes=[1], keepdims=false),
               depth=3)]
  ds = space_to_depth(depth_to_space(c, blocksize=2, mode="CRD"), blocksize=2, mode="CRD")
  return w, pr, md, v, k, ds
}
"""


def _inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"x": rng.standard_normal((2, 3)).astype(np.float32),
            "y": rng.standard_normal((2, 3)).astype(np.float32),
            "i": rng.integers(-5, 6, (2, 3)),
            "c": rng.standard_normal((1, 8, 2, 2)).astype(np.float32),
            "idx": np.array([[0, 2], [1, 1]])}


def test_dsl_reaches_every_family_op_and_the_kernels_agree_with_numpy() -> None:
    module = compile_source(SOURCE)
    produced = {type(op) for op in module.walk()}
    assert FAMILY_OPS - produced == set(), f"no DSL call produces {FAMILY_OPS - produced}"
    a = _inputs()
    out = run(module, a, check=True)  # check: every result matches its declared type
    x, y = a["x"], a["y"]
    lt, le, gt, ge = x < y, x <= y, x > y, x >= y
    cond = ((lt & gt) | ~le) ^ ge
    w = np.where(cond, np.minimum(x, y), np.maximum(x, y))
    np.testing.assert_array_equal(out["w"], w)
    np.testing.assert_allclose(out["pr"], np.where(x < 0, x * y, x), rtol=1e-6)
    np.testing.assert_allclose(out["md"], np.fmod(x, np.abs(y) + 1), rtol=1e-6)
    order = np.argsort(-w, axis=1, kind="stable")[:, :2]
    np.testing.assert_array_equal(out["k"], order)
    np.testing.assert_array_equal(out["v"], np.take_along_axis(w, order, axis=1))
    np.testing.assert_array_equal(out["ds"], a["c"])  # CRD space_to_depth inverts CRD d2s


def _one(op_src: str, inputs: dict[str, np.ndarray], decl: str) -> np.ndarray:
    module = compile_source(f"model t({decl}) {{\n  return {op_src}\n}}\n")
    return next(iter(run(module, inputs, check=True).values()))


@pytest.mark.parametrize(("src", "expected"), [
    ("reduce_log_sum_exp(x, axes=[1])",
     lambda x: np.log(np.exp(x).sum(1, keepdims=True))),
    ("cumsum(x, axis=1, exclusive=true)",
     lambda x: np.concatenate([np.zeros((2, 1), np.float32), np.cumsum(x, 1)[:, :-1]], 1)),
    ("pad(x, pads=[1, 1, 1, 1], mode=\"edge\")", lambda x: np.pad(x, 1, mode="edge")),
    ("pad(x, pads=[0, 2, 0, 2], mode=\"wrap\")",
     lambda x: np.pad(x, ((0, 0), (2, 2)), mode="wrap")),
    ("trilu(x, k=-1)", lambda x: np.triu(x, -1)),
    ("hardmax(x)", lambda x: (x == x.max(1, keepdims=True)).astype(np.float32)),
    ("elu(x, alpha=0.5)", lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    ("round(mul(x, 4.0))", lambda x: np.round(4 * x)),
])
def test_kernel_matches_numpy(src: str, expected) -> None:
    x = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(_one(src, {"x": x}, "x: f32[2, 3]"), expected(x), rtol=1e-5,
                               atol=1e-6)


def test_shapes_are_verified() -> None:
    g = GraphBuilder()
    x = g.input("x", [2, 3])
    with pytest.raises(VerifyException, match="nn.pad expects 4 pads"):
        nn.INDEXING_OPS["pad"].make([x], {"pads": nn.int_array([1, 1])})
    with pytest.raises(VerifyException, match="broadcast-compatible"):
        nn.INDEXING_OPS["expand"].make([x], {"shape": nn.int_array([4, 2])})
    with pytest.raises(VerifyException, match="nn.topk expects 0 <= k <= 3"):
        nn.REDUCTION_OPS["topk"].make([x], {"k": nn.i64_attr(4)})
    with pytest.raises(VerifyException, match="i1 result"):
        nn.LOGIC_OPS["less"].make([x, x], {}).verify()


def test_out_of_range_index_is_a_located_error() -> None:
    src = "gather_elements(x, i, axis=1)"
    with pytest.raises(IrflowError, match="out of range"):
        _one(src, {"x": np.zeros((2, 3), np.float32), "i": np.array([[0, 3], [0, 0]])},
             "x: f32[2, 3], i: i64[2, 2]")


def test_a_family_op_lowers_to_the_vector_unit() -> None:
    """The math family has an accel form (`dialects/accel_vector.py`; the simulator's
    numbers: tests/test_lower_families.py)."""
    from irflow.backends.sim import lower
    from irflow.backends.sim.machine import load_machine
    from irflow.dialects import accel
    from irflow.graph import main_func

    module = compile_source("model t(x: f32[1, 8]) {\n  return abs(relu(x))\n}\n", "t.irf")
    low = lower(module, load_machine("default"))
    units = {op.kind.data: op.unit.data for op in main_func(low).body.blocks[0].ops
             if isinstance(op, accel.LayerOp)}
    assert units == {"nn.relu": "vector", "nn.abs": "vector"}
