"""The reference executor against onnxruntime, one ONNX node (or a tiny chain) per case.

Each case builds the ONNX graph directly with `onnx.helper` (no importer involved) and
the same computation as `nn` ops with `GraphBuilder`, runs both on the same seeded
inputs, and compares: |irflow - onnxruntime| <= 1e-5 + 1e-5·|onnxruntime| elementwise
(float32 on both sides; two correct float32 implementations differ by rounding only).
The executor's behaviour (value lifetimes, input checks, check mode, errors) is
tests/test_reference_executor.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nn_helpers import as_props, typed_value
from onnx import TensorProto, helper, numpy_helper
from xdsl.dialects.builtin import f32, i64
from xdsl.ir import SSAValue

from irflow.backends.reference import KERNELS, evaluate_op, run
from irflow.backends.reference.kernels import erf
from irflow.diagnostics import ExecutionError
from irflow.dialects import nn
from irflow.graph import GraphBuilder

RTOL = ATOL = 1e-5


# --------------------------------------------------------------------------------------
# Harness


class Net:
    """Builds the irflow side of a case: `net.op(nn.AddOp, a, b, act="relu")`."""

    def __init__(self, g: GraphBuilder):
        self.g = g

    def op(self, cls: type[nn.NNOp], *operands: SSAValue | None, **props: Any) -> SSAValue:
        return self.g.add(cls.make(list(operands), as_props(props))).results[0]

    def ops(self, cls: type[nn.NNOp], *operands: SSAValue, **props: Any) -> list[SSAValue]:
        return list(self.g.add(cls.make(list(operands), as_props(props))).results)


Build = Callable[[Net, list[SSAValue]], SSAValue | list[SSAValue]]


@dataclass
class Case:
    id: str
    nodes: list[onnx.NodeProto]
    inputs: dict[str, np.ndarray]  # graph inputs of both models, in order
    build: Build
    inits: dict[str, np.ndarray] = field(default_factory=dict)  # ONNX-only constants
    outputs: Sequence[str] = ("y",)
    opset: int = 17
    out_dtype: type = np.float32


_ONNX_TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64}


def onnx_reference(case: Case) -> list[np.ndarray]:
    graph = helper.make_graph(
        case.nodes,
        case.id,
        [helper.make_tensor_value_info(k, _ONNX_TYPES[v.dtype], v.shape)
         for k, v in case.inputs.items()],
        [helper.make_tensor_value_info(o, _ONNX_TYPES[np.dtype(case.out_dtype)], None)
         for o in case.outputs],
        [numpy_helper.from_array(v, k) for k, v in case.inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", case.opset)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    return sess.run(list(case.outputs), case.inputs)


def irflow_result(case: Case) -> list[np.ndarray]:
    g = GraphBuilder()
    args = [g.input(k, v.shape, f32 if v.dtype == np.float32 else i64)
            for k, v in case.inputs.items()]
    ys = case.build(Net(g), args)
    ys = ys if isinstance(ys, list) else [ys]
    module = g.finish(ys, list(case.outputs))
    module.verify()
    outs = run(module, case.inputs, check=True)
    return [outs[o] for o in case.outputs]


def rand(*shape: int, seed: int = 0, low: float | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed + 7919 * len(shape) + sum(shape))
    if low is not None:
        return rng.uniform(low, low + 2.0, shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


N = helper.make_node


# --------------------------------------------------------------------------------------
# Cases


def conv_case(cid: str, x: tuple[int, ...], w: tuple[int, ...], *, bias: bool = True,
              strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), groups: int = 1,
              act: str | None = None) -> Case:
    inputs = {"x": rand(*x, seed=1), "w": rand(*w, seed=2) * 0.3}
    names = ["x", "w"]
    if bias:
        inputs["b"] = rand(w[0], seed=3)
        names.append("b")
    attrs = dict(strides=list(strides), pads=list(pads), dilations=list(dilations), group=groups)
    onnx_act = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}
    nodes = [N("Conv", names, ["c" if act else "y"], **attrs)]
    if act:
        nodes.append(N(onnx_act[act], ["c"], ["y"]))

    def build(net: Net, a: list[SSAValue]) -> SSAValue:
        return net.g.add(nn.Conv2dOp(a[0], a[1], a[2] if bias else None, strides=strides,
                                     pads=pads, dilations=dilations, groups=groups,
                                     act=act)).results[0]

    return Case(cid, nodes, inputs, build)


def pool_case(cid: str, kind: str, x: tuple[int, ...], kernel, strides=(1, 1), pads=(0,) * 4,
              ceil: int = 0, count_include_pad: int = 0) -> Case:
    attrs: dict[str, Any] = dict(kernel_shape=list(kernel), strides=list(strides),
                                 pads=list(pads), ceil_mode=ceil)
    props: dict[str, Any] = dict(kernel=kernel, strides=strides, pads=pads, ceil_mode=ceil)
    cls: type[nn.NNOp] = nn.MaxPoolOp
    if kind == "AveragePool":
        attrs["count_include_pad"] = count_include_pad
        props["count_include_pad"] = count_include_pad
        cls = nn.AvgPoolOp
    return Case(cid, [N(kind, ["x"], ["y"], **attrs)], {"x": rand(*x, seed=4)},
                lambda net, a: net.op(cls, a[0], **props))


def unary_case(cid: str, onnx_op: str, cls: type[nn.NNOp], *, low: float | None = None,
               attrs: dict[str, Any] | None = None, props: dict[str, Any] | None = None,
               opset: int = 17, scale: float = 3.0) -> Case:
    x = rand(3, 4, 5, seed=5, low=low) * (1.0 if low is not None else scale)
    return Case(cid, [N(onnx_op, ["x"], ["y"], **(attrs or {}))], {"x": x},
                lambda net, a: net.op(cls, a[0], **(props or {})), opset=opset)


def binary_case(cid: str, onnx_op: str, cls: type[nn.NNOp], sa, sb, *,
                low_b: float | None = None, act: str | None = None) -> Case:
    inputs = {"a": rand(*sa, seed=6), "b": rand(*sb, seed=7, low=low_b)}
    if onnx_op == "Pow":
        inputs["a"] = np.abs(inputs["a"]) + 0.5
    nodes = [N(onnx_op, ["a", "b"], ["t" if act else "y"])]
    if act:
        nodes.append(N("Relu", ["t"], ["y"]))
    props = {"act": act} if act else {}
    return Case(cid, nodes, inputs, lambda net, a: net.op(cls, a[0], a[1], **props))


def matmul_case(cid: str, sa, sb, act: str | None = None) -> Case:
    nodes = [N("MatMul", ["a", "b"], ["t" if act else "y"])]
    if act:
        nodes.append(N("Sigmoid", ["t"], ["y"]))
    props = {"act": act} if act else {}
    return Case(cid, nodes, {"a": rand(*sa, seed=8), "b": rand(*sb, seed=9)},
                lambda net, a: net.op(nn.MatmulOp, a[0], a[1], **props))


def _silu_case() -> Case:
    return Case("silu", [N("Sigmoid", ["x"], ["s"]), N("Mul", ["x", "s"], ["y"])],
                {"x": rand(3, 4, 5, seed=10) * 4}, lambda net, a: net.op(nn.SiluOp, a[0]))


def _relu6_case() -> Case:
    return Case("relu6", [N("Clip", ["x", "lo", "hi"], ["y"])], {"x": rand(64, seed=11) * 8},
                lambda net, a: net.op(nn.Relu6Op, a[0]),
                inits={"lo": np.array(0, np.float32), "hi": np.array(6, np.float32)})


def _clip_case(lo: float | None, hi: float | None) -> Case:
    names = ["x", "lo" if lo is not None else "", "hi" if hi is not None else ""]
    inits = {k: np.array(v, np.float32) for k, v in (("lo", lo), ("hi", hi)) if v is not None}
    props = {k: float(v) for k, v in (("min", lo), ("max", hi)) if v is not None}
    return Case(f"clip-{lo}-{hi}", [N("Clip", names, ["y"])], {"x": rand(64, seed=12) * 3},
                lambda net, a: net.op(nn.ClipOp, a[0], **props), inits=inits)


def _linear_cases() -> list[Case]:
    gemm = Case("linear-gemm", [N("Gemm", ["x", "w", "b"], ["y"], transB=1)],
                {"x": rand(4, 16, seed=13), "w": rand(10, 16, seed=14), "b": rand(10, seed=15)},
                lambda net, a: net.op(nn.LinearOp, a[0], a[1], a[2]))
    # rank-3 input with fused relu: MatMul(x, Wᵀ) + b -> Relu
    w = rand(8, 16, seed=16)
    seq = Case("linear-3d-relu",
               [N("Transpose", ["w"], ["wt"], perm=[1, 0]), N("MatMul", ["x", "wt"], ["m"]),
                N("Add", ["m", "b"], ["s"]), N("Relu", ["s"], ["y"])],
               {"x": rand(2, 5, 16, seed=17), "w": w, "b": rand(8, seed=18)},
               lambda net, a: net.op(nn.LinearOp, a[0], a[1], a[2], act="relu"))
    nobias = Case("linear-nobias", [N("Gemm", ["x", "w"], ["y"], transB=1)],
                  {"x": rand(3, 16, seed=19), "w": rand(6, 16, seed=20)},
                  lambda net, a: net.op(nn.LinearOp, a[0], a[1]))
    return [gemm, seq, nobias]


def _norm_cases() -> list[Case]:
    c = 6
    bn = Case("batchnorm", [N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"],
                              epsilon=1e-3)],
              {"x": rand(2, c, 5, 5, seed=21), "s": rand(c, seed=22), "b": rand(c, seed=23),
               "m": rand(c, seed=24), "v": rand(c, seed=25, low=0.1)},
              lambda net, a: net.op(nn.BatchNormOp, *a, epsilon=1e-3), opset=15)
    ln = Case("layernorm-last", [N("LayerNormalization", ["x", "s", "b"], ["y"], axis=-1,
                                   epsilon=1e-5)],
              {"x": rand(2, 7, 32, seed=26) * 3 + 1, "s": rand(32, seed=27),
               "b": rand(32, seed=28)},
              lambda net, a: net.op(nn.LayerNormOp, *a, axis=-1))
    ln1 = Case("layernorm-axis1", [N("LayerNormalization", ["x", "s"], ["y"], axis=1,
                                     epsilon=1e-3)],
               {"x": rand(3, 4, 5, seed=29), "s": rand(4, 5, seed=30)},
               lambda net, a: net.op(nn.LayerNormOp, *a, axis=1, epsilon=1e-3))
    return [bn, ln, ln1]


def _softmax_reduce_cases() -> list[Case]:
    cases = []
    for axis in (-1, 1, 0):
        cases.append(Case(f"softmax-axis{axis}", [N("Softmax", ["x"], ["y"], axis=axis)],
                          {"x": rand(3, 4, 5, seed=31) * 20},  # large logits: needs max-subtraction
                          lambda net, a, axis=axis: net.op(nn.SoftmaxOp, a[0], axis=axis),
                          opset=13))
    for axes, keep in (((-1,), 1), ((1, 2), 0), ((0,), 1)):
        cases.append(Case(f"reduce-mean-{axes}-{keep}",
                          [N("ReduceMean", ["x"], ["y"], axes=list(axes), keepdims=keep)],
                          {"x": rand(3, 4, 5, seed=32)},
                          lambda net, a, axes=axes, keep=keep: net.op(
                              nn.ReduceMeanOp, a[0], axes=axes, keepdims=keep)))
    cases.append(Case("global-avg-pool", [N("GlobalAveragePool", ["x"], ["y"])],
                      {"x": rand(2, 3, 7, 5, seed=33)},
                      lambda net, a: net.op(nn.GlobalAvgPoolOp, a[0])))
    return cases


def _movement_cases() -> list[Case]:
    x = rand(2, 3, 4, 5, seed=34)
    cases = [
        Case("reshape", [N("Reshape", ["x", "shape"], ["y"])], {"x": x},
             lambda net, a: net.g.add(nn.ReshapeOp(a[0], [6, 20])).results[0],
             inits={"shape": np.array([6, 20], np.int64)}),
        Case("flatten-axis2", [N("Flatten", ["x"], ["y"], axis=2)], {"x": x},
             lambda net, a: net.op(nn.FlattenOp, a[0], axis=2)),
        Case("flatten-axis-neg", [N("Flatten", ["x"], ["y"], axis=-1)], {"x": x},
             lambda net, a: net.op(nn.FlattenOp, a[0], axis=-1)),
        Case("flatten-axis0", [N("Flatten", ["x"], ["y"], axis=0)], {"x": x},
             lambda net, a: net.op(nn.FlattenOp, a[0], axis=0)),
        Case("transpose", [N("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])], {"x": x},
             lambda net, a: net.op(nn.TransposeOp, a[0], perm=(0, 2, 3, 1))),
        Case("concat", [N("Concat", ["x", "z"], ["y"], axis=-1)],
             {"x": x, "z": rand(2, 3, 4, 2, seed=35)},
             lambda net, a: net.op(nn.ConcatOp, a[0], a[1], axis=-1)),
        Case("split", [N("Split", ["x", "sizes"], ["y0", "y1"], axis=1)], {"x": x},
             lambda net, a: net.ops(nn.SplitOp, a[0], axis=1, sizes=(1, 2)),
             inits={"sizes": np.array([1, 2], np.int64)}, outputs=("y0", "y1")),
        Case("gather-negative", [N("Gather", ["t", "ids"], ["y"], axis=0)],
             {"t": rand(10, 4, seed=36), "ids": np.array([[0, -1, 3], [-10, 9, 2]], np.int64)},
             lambda net, a: net.op(nn.GatherOp, a[0], a[1], axis=0)),
        Case("gather-axis1", [N("Gather", ["t", "ids"], ["y"], axis=1)],
             {"t": rand(3, 6, 2, seed=37), "ids": np.array([5, -6, 1], np.int64)},
             lambda net, a: net.op(nn.GatherOp, a[0], a[1], axis=1)),
    ]
    for cid, starts, ends, axes, steps in (
        ("slice", [1, 0], [3, 4], [1, 3], [1, 2]),
        ("slice-negative", [-1, -2], [-4, -100], [2, 3], [-1, -1]),
        ("slice-clamped", [0], [1 << 40], [0], [1]),
    ):
        cases.append(Case(
            cid, [N("Slice", ["x", "s", "e", "a", "st"], ["y"])], {"x": x},
            lambda net, a, s=starts, e=ends, ax=axes, st=steps: net.op(
                nn.SliceOp, a[0], starts=s, ends=e, axes=ax, steps=st),
            inits={"s": np.array(starts, np.int64), "e": np.array(ends, np.int64),
                   "a": np.array(axes, np.int64), "st": np.array(steps, np.int64)}))
    return cases


CASES: list[Case] = [
    conv_case("conv-basic", (1, 3, 9, 9), (8, 3, 3, 3)),
    conv_case("conv-stride-pad", (2, 4, 11, 10), (6, 4, 3, 3), strides=(2, 2), pads=(1, 1, 1, 1)),
    conv_case("conv-asym-pad-stride", (1, 3, 12, 9), (5, 3, 3, 2), strides=(2, 3),
              pads=(0, 1, 2, 1), bias=False),
    conv_case("conv-dilation", (1, 2, 13, 13), (4, 2, 3, 3), dilations=(2, 3), pads=(2, 3, 2, 3)),
    conv_case("conv-7x7-s2", (1, 3, 32, 32), (8, 3, 7, 7), strides=(2, 2), pads=(3, 3, 3, 3),
              act="relu"),
    conv_case("conv-1x1", (2, 16, 5, 5), (8, 16, 1, 1)),
    conv_case("conv-1x1-stride", (1, 16, 8, 8), (8, 16, 1, 1), strides=(2, 2), bias=False),
    conv_case("conv-groups2", (1, 8, 7, 7), (6, 4, 3, 3), groups=2, pads=(1, 1, 1, 1)),
    conv_case("conv-groups4-1x1", (1, 8, 5, 5), (8, 2, 1, 1), groups=4, act="sigmoid"),
    conv_case("conv-depthwise", (2, 12, 9, 9), (12, 1, 3, 3), groups=12, pads=(1, 1, 1, 1),
              act="relu"),
    conv_case("conv-depthwise-s2", (1, 12, 10, 10), (12, 1, 3, 3), groups=12, strides=(2, 2),
              pads=(0, 1, 1, 0)),
    conv_case("conv-depthwise-nhwc", (2, 40, 7, 7), (40, 1, 3, 3), groups=40,
              pads=(1, 1, 1, 1), act="relu"),  # C >= 4·OW: the channels-last path
    conv_case("conv-depthwise-nhwc-s2-mult", (1, 24, 9, 8), (48, 1, 3, 3), groups=24,
              strides=(2, 2), pads=(1, 0, 1, 1), dilations=(1, 2)),
    conv_case("conv-depthwise-mult2-dil", (1, 4, 9, 9), (8, 1, 3, 3), groups=4,
              dilations=(2, 2), pads=(2, 2, 2, 2), act="tanh"),
    pool_case("maxpool-basic", "MaxPool", (1, 3, 8, 8), (2, 2), (2, 2)),
    pool_case("maxpool-resnet", "MaxPool", (1, 4, 16, 16), (3, 3), (2, 2), (1, 1, 1, 1)),
    pool_case("maxpool-ceil", "MaxPool", (1, 2, 9, 10), (3, 3), (2, 2), ceil=1),
    pool_case("maxpool-ceil-pad", "MaxPool", (1, 2, 7, 8), (3, 2), (2, 3), (1, 0, 1, 1), ceil=1),
    pool_case("avgpool-basic", "AveragePool", (2, 3, 8, 8), (2, 2), (2, 2)),
    pool_case("avgpool-pad-exclude", "AveragePool", (1, 3, 7, 7), (3, 3), (2, 2), (1, 1, 1, 1)),
    pool_case("avgpool-pad-include", "AveragePool", (1, 3, 7, 7), (3, 3), (2, 2), (1, 1, 1, 1),
              count_include_pad=1),
    pool_case("avgpool-ceil-exclude", "AveragePool", (1, 2, 9, 10), (3, 3), (2, 2), (1, 0, 0, 1),
              ceil=1),
    pool_case("avgpool-ceil-include", "AveragePool", (1, 2, 9, 10), (3, 3), (2, 2), (1, 0, 0, 1),
              ceil=1, count_include_pad=1),
    unary_case("relu", "Relu", nn.ReluOp),
    unary_case("sigmoid", "Sigmoid", nn.SigmoidOp, scale=30.0),  # saturating both ends
    unary_case("tanh", "Tanh", nn.TanhOp),
    unary_case("gelu-exact", "Gelu", nn.GeluOp, opset=20),
    unary_case("gelu-tanh", "Gelu", nn.GeluOp, attrs={"approximate": "tanh"},
               props={"approximate": "tanh"}, opset=20),
    unary_case("hardsigmoid-default", "HardSigmoid", nn.HardSigmoidOp, scale=5.0),
    unary_case("hardsigmoid-params", "HardSigmoid", nn.HardSigmoidOp, scale=5.0,
               attrs={"alpha": 0.3, "beta": 0.4}, props={"alpha": 0.3, "beta": 0.4}),
    unary_case("hardswish", "HardSwish", nn.HardSwishOp, scale=5.0, opset=14),
    unary_case("erf", "Erf", nn.ErfOp),
    unary_case("sqrt", "Sqrt", nn.SqrtOp, low=0.01),
    unary_case("exp", "Exp", nn.ExpOp),
    unary_case("neg", "Neg", nn.NegOp),
    _silu_case(),
    _relu6_case(),
    _clip_case(-1.0, 0.5),
    _clip_case(None, 0.5),
    _clip_case(-0.25, None),
    binary_case("add-bcast", "Add", nn.AddOp, (2, 3, 4), (4,)),
    binary_case("add-relu", "Add", nn.AddOp, (2, 3, 4), (2, 3, 4), act="relu"),
    binary_case("sub-bcast2", "Sub", nn.SubOp, (3, 1, 5), (4, 1)),
    binary_case("mul-scalar", "Mul", nn.MulOp, (2, 3), ()),
    binary_case("div", "Div", nn.DivOp, (4, 5), (1, 5), low_b=0.5),
    binary_case("pow", "Pow", nn.PowOp, (4, 5), (5,)),
    Case("div-int-truncates", [N("Div", ["a", "b"], ["y"])],
         {"a": np.array([7, -7, 7, -7, 6, -6, 0], np.int64),
          "b": np.array([2, 2, -2, -2, 3, 3, -5], np.int64)},
         lambda net, a: net.op(nn.DivOp, a[0], a[1]), out_dtype=np.int64),
    matmul_case("matmul-2d", (4, 8), (8, 3)),
    matmul_case("matmul-batched-bcast", (2, 3, 4, 5), (5, 6)),
    matmul_case("matmul-bcast-batch", (2, 1, 4, 5), (3, 5, 6), act="sigmoid"),
    matmul_case("matmul-vec-lhs", (5,), (3, 5, 2)),
    matmul_case("matmul-vec-rhs", (4, 5), (5,)),
    *_linear_cases(),
    *_norm_cases(),
    *_softmax_reduce_cases(),
    *_movement_cases(),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_kernel_matches_onnxruntime(case: Case) -> None:
    expected = onnx_reference(case)
    got = irflow_result(case)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        assert g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL)


def test_every_nn_op_has_a_kernel() -> None:
    missing = [op.name for op in nn.NN.operations if op not in KERNELS]
    assert missing == []


def test_gather_out_of_range_is_an_execution_error() -> None:
    case = next(c for c in _movement_cases() if c.id == "gather-negative")
    bad = dict(case.inputs, ids=np.array([[0, 10, 0], [0, 0, 0]], np.int64))
    with pytest.raises(ExecutionError, match=r"index 10 is out of range \[-10, 10\)"):
        irflow_result(Case(case.id, case.nodes, bad, case.build))


# --------------------------------------------------------------------------------------
# Numerics of named helpers


def test_erf_within_one_ulp_of_math_erf() -> None:
    x = np.linspace(-6.0, 6.0, 400_001, dtype=np.float32)
    x = np.concatenate([x, np.float32([0.0, -0.0, 1e-30, -1e-20, 1e-7, np.inf, -np.inf])])
    ref = np.array([math.erf(float(v)) for v in x])
    got = erf(x)
    assert got.dtype == np.float32
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    err_ulp = np.abs(got.astype(np.float64) - ref) / ulp
    assert err_ulp.max() <= 1.0, f"max error {err_ulp.max():.2f} ulp at x={x[err_ulp.argmax()]}"
    assert np.isnan(erf(np.float32([np.nan]))).all()


def test_sigmoid_and_softmax_do_not_overflow() -> None:
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        ys = evaluate_op(nn.SigmoidOp(typed_value([3])), [np.float32([-1e4, 0.0, 1e4])])
        np.testing.assert_array_equal(ys[0], np.float32([0.0, 0.5, 1.0]))
        sm = nn.SoftmaxOp.make([typed_value([1, 3])])
        ys = evaluate_op(sm, [np.float32([[1e4, 1e4, -1e4]])])
        np.testing.assert_allclose(ys[0], [[0.5, 0.5, 0.0]])


# --------------------------------------------------------------------------------------
# Random attribute combinations against onnxruntime (hypothesis, derandomized)

@st.composite
def conv_configs(draw: st.DrawFn) -> Case:
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg, fg = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    h = draw(st.integers(max(1, dil[0] * (kh - 1) + 1 - pads[0] - pads[2]), 12))
    w = draw(st.integers(max(1, dil[1] * (kw - 1) + 1 - pads[1] - pads[3]), 12))
    return conv_case("conv-random", (draw(st.integers(1, 2)), cg * groups, h, w),
                     (fg * groups, cg, kh, kw), bias=draw(st.booleans()), strides=strides,
                     pads=pads, dilations=dil, groups=groups,
                     act=draw(st.sampled_from([None, "relu"])))


@st.composite
def pool_configs(draw: st.DrawFn) -> Case:
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    pads = (draw(st.integers(0, k[0] - 1)), draw(st.integers(0, k[1] - 1)),
            draw(st.integers(0, k[0] - 1)), draw(st.integers(0, k[1] - 1)))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    hw = (draw(st.integers(k[0], 11)), draw(st.integers(k[1], 11)))
    return pool_case("pool-random", draw(st.sampled_from(["MaxPool", "AveragePool"])),
                     (1, 2, *hw), k, strides, pads, ceil=draw(st.integers(0, 1)),
                     count_include_pad=draw(st.integers(0, 1)))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(conv_configs())
def test_random_conv_matches_onnxruntime(case: Case) -> None:
    np.testing.assert_allclose(irflow_result(case)[0], onnx_reference(case)[0],
                               rtol=RTOL, atol=ATOL)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(pool_configs())
def test_random_pool_matches_onnxruntime(case: Case) -> None:
    np.testing.assert_allclose(irflow_result(case)[0], onnx_reference(case)[0],
                               rtol=RTOL, atol=ATOL)
