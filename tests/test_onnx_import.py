"""ONNX import vs onnxruntime: one small graph per operator × attribute combination.

Each case is imported, run by the reference executor and compared with onnxruntime
(graph optimizations off) on seeded inputs: max abs error <= 1e-5 × max(1, |ref|).
"""

from __future__ import annotations

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import numpy as np  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx_helpers import assert_close, model, ort_run, single  # noqa: E402
from xdsl.dialects.builtin import NameLoc  # noqa: E402

from irflow.backends.reference import run  # noqa: E402
from irflow.dialects import nn  # noqa: E402
from irflow.frontends.onnx import import_onnx  # noqa: E402
from irflow.graph import input_names, main_func, output_names  # noqa: E402
from irflow.weights import weights_of  # noqa: E402

RNG = np.random.default_rng(0)


def r(*shape: int, positive: bool = False) -> np.ndarray:
    a = RNG.standard_normal(shape).astype(np.float32)
    return np.abs(a) + 0.1 if positive else a


def check(m, feeds=None, input_shapes=None):
    """Import `m`, run both executors on `feeds` (default: the graph inputs' arrays)."""
    feeds = feeds if feeds is not None else {}
    module = import_onnx(m, input_shapes=input_shapes)
    ours = run(module, feeds)
    refs = ort_run(m, feeds)
    names = [o.name for o in m.graph.output]
    assert list(ours) == names
    for name, ref in zip(names, refs):
        assert_close(ours[name], ref, what=name)
    return module


def op_names(module) -> list[str]:
    return [op.name for op in main_func(module).body.ops if op.name != "func.return"]


X4 = r(2, 4, 7, 7)
CASES: dict[str, tuple] = {}


def case(name: str, m, feeds) -> None:
    CASES[name] = (m, feeds)


# ---- Conv -------------------------------------------------------------------------------
W = r(6, 4, 3, 3)
B6 = r(6)
for label, attrs, w in [
    ("plain", {}, W),
    ("pads", {"pads": [1, 1, 1, 1]}, W),
    ("asym_pads", {"pads": [0, 1, 2, 1]}, W),
    ("stride2", {"strides": [2, 2], "pads": [1, 1, 1, 1]}, W),
    ("dilation2", {"dilations": [2, 2], "pads": [2, 2, 2, 2]}, W),
    ("groups2", {"group": 2}, r(6, 2, 3, 3)),
    ("depthwise", {"group": 4, "pads": [1, 1, 1, 1]}, r(4, 1, 3, 3)),
    ("same_upper_s2", {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, r(6, 4, 2, 2)),
    ("same_lower_s2", {"auto_pad": "SAME_LOWER", "strides": [2, 2]}, r(6, 4, 2, 2)),
    ("valid", {"auto_pad": "VALID", "strides": [2, 1]}, W),
    ("kernel_3x1", {"kernel_shape": [3, 1], "pads": [1, 0, 1, 0]}, r(6, 4, 3, 1)),
]:
    bias = r(w.shape[0])
    case(f"conv_{label}", single("Conv", {"x": X4}, {"w": w, "b": bias}, **attrs), {"x": X4})
case("conv_no_bias", single("Conv", {"x": X4}, {"w": W}), {"x": X4})

# ---- Gemm / MatMul ------------------------------------------------------------------------
A = r(3, 5)
for label, attrs, b, c in [
    ("transB", {"transB": 1}, r(4, 5), r(4)),
    ("noTrans", {}, r(5, 4), r(4)),
    ("transA", {"transA": 1}, r(5, 4), r(4)),
    ("alpha_beta", {"alpha": 0.5, "beta": 2.0, "transB": 1}, r(4, 5), r(4)),
    ("bias_1xN", {"transB": 1}, r(4, 5), r(1, 4)),
    ("bias_MxN", {}, r(5, 4), r(3, 4)),
    ("bias_scalar", {"beta": 0.5}, r(5, 4), r(1)),
    ("no_bias", {"transB": 1, "alpha": 2.0}, r(4, 5), None),
]:
    a = A.T.copy() if attrs.get("transA") else A
    inits = {"b": b} if c is None else {"b": b, "c": c}
    case(f"gemm_{label}", single("Gemm", {"a": a}, inits, **attrs), {"a": a})
case("gemm_runtime_b", single("Gemm", {"a": A, "b": r(5, 4)}, {"c": r(4)}, alpha=1.5),
     {"a": A, "b": r(5, 4)})
for label, sa, sb in [("2d", (3, 5), (5, 4)), ("batched", (2, 3, 5), (5, 4)),
                      ("broadcast", (2, 1, 3, 5), (3, 5, 4)), ("vec_mat", (5,), (5, 4)),
                      ("mat_vec", (3, 5), (5,))]:
    xa, xb = r(*sa), r(*sb)
    case(f"matmul_{label}", single("MatMul", {"a": xa, "b": xb}), {"a": xa, "b": xb})

# ---- elementwise --------------------------------------------------------------------------
for op in ("Add", "Sub", "Mul", "Div"):
    xa, xb = r(2, 3, 4), r(4, positive=op == "Div")
    case(f"{op.lower()}_broadcast", single(op, {"a": xa, "b": xb}), {"a": xa, "b": xb})
    xc = r(2, 1, 4)
    case(f"{op.lower()}_const_rhs", single(op, {"a": xc}, {"k": r(3, 1, positive=True)}),
         {"a": xc})
xp = r(2, 3, positive=True)
case("pow_const", single("Pow", {"a": xp}, {"e": np.float32(2.0)}), {"a": xp})
case("pow_runtime", single("Pow", {"a": xp, "e": r(3)}), {"a": xp, "e": r(3)})
case("pow_int_exponent", single("Pow", {"a": xp}, {"e": np.int64(3)}), {"a": xp})
for op in ("Relu", "Sigmoid", "Tanh", "Erf", "Exp", "Neg", "HardSwish"):
    xu = r(3, 8) * 4
    case(op.lower(), single(op, {"x": xu}), {"x": xu})
xs = r(3, 8, positive=True)
case("sqrt", single("Sqrt", {"x": xs}), {"x": xs})
xh = r(3, 8) * 4
case("hardsigmoid_default", single("HardSigmoid", {"x": xh}), {"x": xh})
case("hardsigmoid_attrs", single("HardSigmoid", {"x": xh}, alpha=0.3, beta=0.4), {"x": xh})

# ---- Clip ---------------------------------------------------------------------------------
XC = r(4, 6) * 5
case("clip_min_max", single("Clip", {"x": XC}, {"lo": np.float32(-1), "hi": np.float32(2)}),
     {"x": XC})
case("clip_relu6", single("Clip", {"x": XC}, {"lo": np.float32(0), "hi": np.float32(6)}),
     {"x": XC})
case("clip_min_only", single("Clip", {"x": XC}, {"lo": np.float32(-0.5)}), {"x": XC})
case("clip_max_only", single("Clip", {"x": XC}, {"hi": np.float32(0.5)}, order=["x", "", "hi"]),
     {"x": XC})
case("clip_none", single("Clip", {"x": XC}), {"x": XC})
case("clip_constant_nodes", model(
    [helper.make_node("Constant", [], ["lo"], value_float=-2.0),
     helper.make_node("Constant", [], ["hi"], value=numpy_helper.from_array(np.float32(1.5))),
     helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="clip")],
    {"x": XC}, ["y"]), {"x": XC})

# ---- normalization, softmax, reductions ------------------------------------------------------
XB = r(2, 3, 4, 4)
case("batchnorm", single("BatchNormalization", {"x": XB},
                         {"s": r(3), "b": r(3), "m": r(3), "v": r(3, positive=True)},
                         epsilon=1e-3), {"x": XB})
XL = r(2, 5, 8)
case("layernorm_last", single("LayerNormalization", {"x": XL}, {"g": r(8), "b": r(8)}), {"x": XL})
case("layernorm_axis_m2", single("LayerNormalization", {"x": XL}, {"g": r(5, 8), "b": r(5, 8)},
                                 axis=-2, epsilon=1e-3), {"x": XL})
case("layernorm_no_bias", single("LayerNormalization", {"x": XL}, {"g": r(8)}), {"x": XL})
case("softmax_last", single("Softmax", {"x": XL}), {"x": XL})
case("softmax_axis1", single("Softmax", {"x": XL}, axis=1), {"x": XL})
case("reduce_mean_attr", single("ReduceMean", {"x": XL}, axes=[-1]), {"x": XL})
case("reduce_mean_nokeep", single("ReduceMean", {"x": XL}, axes=[1, 2], keepdims=0), {"x": XL})
case("reduce_mean_input_opset18", single("ReduceMean", {"x": XL}, {"ax": np.int64([-1])},
                                         opset=18), {"x": XL})
case("reduce_mean_all", single("ReduceMean", {"x": XL}), {"x": XL})

# ---- pooling --------------------------------------------------------------------------------
XP = r(2, 3, 9, 9)
for label, attrs in [
    ("k2s2", {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ("k3s2p1", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("k3s1p1", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
    ("ceil", {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}),
    ("same_upper", {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ("asym", {"kernel_shape": [3, 2], "strides": [1, 2], "pads": [0, 1, 2, 0]}),
]:
    case(f"maxpool_{label}", single("MaxPool", {"x": XP}, **attrs), {"x": XP})
    case(f"avgpool_{label}", single("AveragePool", {"x": XP}, **attrs), {"x": XP})
case("avgpool_count_include_pad", single("AveragePool", {"x": XP}, kernel_shape=[3, 3],
                                         pads=[1, 1, 1, 1], count_include_pad=1), {"x": XP})
case("global_avg_pool", single("GlobalAveragePool", {"x": XP}), {"x": XP})

# ---- data movement --------------------------------------------------------------------------
XD = r(2, 3, 4, 5)
for axis in (0, 1, 2, -1):
    case(f"flatten_axis{axis}", single("Flatten", {"x": XD}, axis=axis), {"x": XD})
case("reshape_0_minus1", single("Reshape", {"x": XD}, {"s": np.int64([0, -1, 5])}), {"x": XD})
case("reshape_static", single("Reshape", {"x": XD}, {"s": np.int64([6, 20])}), {"x": XD})
case("transpose_default", single("Transpose", {"x": XD}), {"x": XD})
case("transpose_perm", single("Transpose", {"x": XD}, perm=[0, 2, 3, 1]), {"x": XD})
case("concat_axis1", single("Concat", {"a": XD, "b": r(2, 2, 4, 5)}, axis=1),
     {"a": XD, "b": r(2, 2, 4, 5)})
case("concat_const_neg_axis", single("Concat", {"a": XD}, {"c": r(2, 3, 4, 2)}, axis=-1),
     {"a": XD})
case("split_sizes", single("Split", {"x": XD}, {"s": np.int64([2, 3])}, n_out=2, axis=-1),
     {"x": XD})
case("split_equal", single("Split", {"x": XD}, n_out=3, axis=1), {"x": XD})
case("split_num_outputs_opset18", single("Split", {"x": XD}, n_out=2, axis=3, num_outputs=2,
                                         opset=18), {"x": XD})
for label, starts, ends, axes, steps in [
    ("basic", [1], [3], [1], None),
    ("negative", [-3, 0], [-1, 2], [3, 2], None),
    ("steps", [0, 1], [5, 4], [3, 2], [2, 2]),
    ("reverse", [-1], [-6], [3], [-1]),
    ("int_max", [1], [np.iinfo(np.int64).max], [3], None),
    ("no_axes", [0, 1], [1, 3], None, None),
]:
    inits = {"st": np.int64(starts), "en": np.int64(ends)}
    if axes is not None:
        inits["ax"] = np.int64(axes)
    if steps is not None:
        inits["sp"] = np.int64(steps)
    case(f"slice_{label}", single("Slice", {"x": XD}, inits), {"x": XD})
TABLE = r(10, 6)
IDS = np.int64([[1, 7, 3], [0, 9, 9]])
case("gather_embedding", single("Gather", {"ids": IDS}, {"t": TABLE}, order=["t", "ids"]),
     {"ids": IDS})
case("gather_axis1_const", single("Gather", {"x": XD}, {"i": np.int64([2, 0])}, axis=1),
     {"x": XD})
case("gather_scalar", single("Gather", {"x": XL}, {"i": np.int64(0)}, axis=1), {"x": XL})
case("gather_negative", single("Gather", {"x": XL}, {"i": np.int64([-1])}, axis=2), {"x": XL})
XQ = r(2, 1, 4, 1)
case("squeeze_axes", single("Squeeze", {"x": XQ}, {"a": np.int64([1])}), {"x": XQ})
case("squeeze_all", single("Squeeze", {"x": XQ}), {"x": XQ})
case("unsqueeze", single("Unsqueeze", {"x": XL}, {"a": np.int64([0, -1])}), {"x": XL})
case("identity", single("Identity", {"x": XL}), {"x": XL})
case("dropout", single("Dropout", {"x": XL}), {"x": XL})
case("dropout_ratio_input", single("Dropout", {"x": XL}, {"ratio": np.float32(0.3)}), {"x": XL})

# ---- shape chains folded at import time ---------------------------------------------------
case("shape_chain_flatten", model(
    [helper.make_node("Shape", ["x"], ["s"]),
     helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.int64(0))),
     helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
     helper.make_node("Constant", [], ["ax"], value=numpy_helper.from_array(np.int64([0]))),
     helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
     helper.make_node("Constant", [], ["m1"], value_ints=[-1]),
     helper.make_node("Concat", ["n1", "m1"], ["shape"], axis=0),
     helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")],
    {"x": XD}, ["y"]), {"x": XD})
XSE = r(3, 4, 1)
case("shape_start_end", model(
    [helper.make_node("Shape", ["x"], ["s"], start=1, end=-1),
     helper.make_node("Cast", ["s"], ["sf"], to=TensorProto.FLOAT),
     helper.make_node("Mul", ["x", "sf"], ["y"])],
    {"x": XSE}, ["y"], opset=15), {"x": XSE})
case("constant_of_shape", model(
    [helper.make_node("Shape", ["x"], ["s"]),
     helper.make_node("ConstantOfShape", ["s"], ["ones"],
                      value=numpy_helper.from_array(np.float32([1.5]))),
     helper.make_node("Add", ["x", "ones"], ["y"])],
    {"x": XD}, ["y"]), {"x": XD})
case("cast_same_type", single("Cast", {"x": XL}, to=TensorProto.FLOAT), {"x": XL})
case("constant_value_floats", model(
    [helper.make_node("Constant", [], ["k"], value_floats=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0,
                                                           8.0]),
     helper.make_node("Mul", ["x", "k"], ["y"])], {"x": XL}, ["y"]), {"x": XL})
case("gelu_opset20", single("Gelu", {"x": XL}, opset=20), {"x": XL})
case("gelu_tanh_opset20", single("Gelu", {"x": XL}, opset=20, approximate="tanh"), {"x": XL})


@pytest.mark.parametrize("name", list(CASES))
def test_operator_matches_onnxruntime(name: str) -> None:
    m, feeds = CASES[name]
    check(m, feeds)


# ---- what the IR looks like ---------------------------------------------------------------


def test_gemm_folds_transpose_alpha_beta_into_constants() -> None:
    b, c = r(5, 4), r(4)
    m = single("Gemm", {"a": A}, {"fc.weight": b, "fc.bias": c}, alpha=0.5, beta=2.0)
    module = check(m, {"a": A})
    assert op_names(module) == ["nn.constant", "nn.constant", "nn.linear"]
    store = weights_of(module)
    np.testing.assert_allclose(store["fc.weight"], 0.5 * b.T, rtol=1e-6)
    np.testing.assert_allclose(store["fc.bias"], 2.0 * c, rtol=1e-6)
    assert set(store) == {"fc.weight", "fc.bias"}


def test_shape_chain_folds_to_a_static_reshape() -> None:
    m, feeds = CASES["shape_chain_flatten"]
    module = check(m, feeds)
    assert op_names(module) == ["nn.reshape"]
    assert len(weights_of(module)) == 0


def test_clip_0_6_becomes_relu6_and_other_bounds_are_properties() -> None:
    assert "nn.relu6" in op_names(import_onnx(CASES["clip_relu6"][0]))
    module = import_onnx(CASES["clip_constant_nodes"][0])
    (clip,) = [op for op in main_func(module).body.ops if isinstance(op, nn.ClipOp)]
    assert clip.min.value.data == -2.0 and clip.max.value.data == 1.5


def test_squeeze_unsqueeze_become_reshape_and_identity_is_forwarded() -> None:
    assert op_names(import_onnx(CASES["unsqueeze"][0])) == ["nn.reshape"]
    assert op_names(import_onnx(CASES["squeeze_all"][0])) == ["nn.reshape"]
    assert op_names(import_onnx(CASES["identity"][0])) == []


def test_names_locations_and_weights_follow_the_onnx_graph() -> None:
    x = r(1, 4)
    nodes = [helper.make_node("Gemm", ["input.1", "fc.weight", "fc.bias"], ["h"],
                              name="/fc/Gemm", transB=1),
             helper.make_node("Relu", ["h"], ["out:0"], name="/act/Relu")]
    m = model(nodes, {"input.1": x}, ["out:0"],
              {"fc.weight": r(3, 4), "fc.bias": r(3), "unused": r(7)})
    module = check(m, {"input.1": x})
    f = main_func(module)
    assert input_names(f) == ["input.1"] and output_names(f) == ["out:0"]
    assert set(weights_of(module)) == {"fc.weight", "fc.bias"}
    locs = [op.location for op in f.body.ops if op.name in ("nn.linear", "nn.relu")]
    assert all(isinstance(loc, NameLoc) for loc in locs)
    assert [loc.desc.data for loc in locs] == ["/fc/Gemm", "/act/Relu"]


def test_dynamic_batch_is_set_by_input_shapes() -> None:
    x = r(5, 4)
    node = helper.make_node("Relu", ["x"], ["y"])
    m = model([node], {"x": x}, ["y"], dynamic={"x": ["N", 4]})
    module = check(m, {"x": x}, input_shapes={"x": [5, 4]})
    assert nn.shape_of(main_func(module).body.blocks[0].args[0]) == (5, 4)


def test_unsorted_graph_is_imported_in_topological_order() -> None:
    x = r(2, 3)
    nodes = [helper.make_node("Relu", ["h"], ["y"], name="second"),
             helper.make_node("Neg", ["x"], ["h"], name="first")]
    m = model(nodes, {"x": x}, ["y"])
    module = import_onnx(m)
    assert op_names(module) == ["nn.neg", "nn.relu"]
    np.testing.assert_array_equal(run(module, {"x": x})["y"], np.maximum(-x, 0))


@pytest.mark.parametrize("opset", range(13, 22))
def test_small_network_across_opsets(opset: int) -> None:
    x = r(2, 3, 6, 6)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["c", "lo", "hi"], ["a"]),
        helper.make_node("MaxPool", ["a"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Unsqueeze", ["p", "ax"], ["u"]),
        helper.make_node("Squeeze", ["u", "ax"], ["s"]),
        helper.make_node("Flatten", ["s"], ["f"]),
        helper.make_node("Split", ["f", "sp"], ["f1", "f2"], axis=1),
        helper.make_node("Gemm", ["f1", "fw", "fb"], ["g"], transB=1),
        helper.make_node("Softmax", ["g"], ["y"]),
    ]
    inits = {"w": r(4, 3, 3, 3), "b": r(4), "lo": np.float32(0), "hi": np.float32(1),
             "ax": np.int64([0]), "sp": np.int64([20, 16]), "fw": r(5, 20), "fb": r(5)}
    check(model(nodes, {"x": x}, ["y", "f2"], inits, opset=opset), {"x": x})


def test_bert_like_encoder_block_with_dynamic_batch_and_sequence() -> None:
    """Embeddings, decomposed LayerNorm, attention with Shape-chain reshapes, erf GELU."""
    d, heads, vocab = 8, 2, 11
    mk = helper.make_node
    i64 = numpy_helper.from_array

    def split_heads(src: str, out: str) -> list:
        # [B, S, d] -> [B, S, heads, d/heads] -> [B, heads, S, d/heads], shape from Shape ops
        return [
            mk("Shape", [src], [f"{out}_s"]),
            mk("Gather", [f"{out}_s", "i0"], [f"{out}_b"], axis=0),
            mk("Gather", [f"{out}_s", "i1"], [f"{out}_n"], axis=0),
            mk("Unsqueeze", [f"{out}_b", "ax0"], [f"{out}_b1"]),
            mk("Unsqueeze", [f"{out}_n", "ax0"], [f"{out}_n1"]),
            mk("Concat", [f"{out}_b1", f"{out}_n1", "hd"], [f"{out}_shape"], axis=0),
            mk("Reshape", [src, f"{out}_shape"], [f"{out}_r"]),
            mk("Transpose", [f"{out}_r"], [out], perm=[0, 2, 1, 3]),
        ]

    nodes = [
        mk("Gather", ["emb", "ids"], ["e"], axis=0),
        mk("Add", ["e", "pos"], ["h"]),
        # LayerNorm decomposed the way older exporters write it
        mk("ReduceMean", ["h"], ["mu"], axes=[-1]),
        mk("Sub", ["h", "mu"], ["hc"]),
        mk("Pow", ["hc", "two"], ["sq"]),
        mk("ReduceMean", ["sq"], ["var"], axes=[-1]),
        mk("Add", ["var", "eps"], ["ve"]),
        mk("Sqrt", ["ve"], ["sd"]),
        mk("Div", ["hc", "sd"], ["hn"]),
        mk("Mul", ["hn", "ln_g"], ["hg"]),
        mk("Add", ["hg", "ln_b"], ["x"]),
        mk("MatMul", ["x", "wq"], ["q0"]),
        mk("MatMul", ["x", "wk"], ["k0"]),
        mk("MatMul", ["x", "wv"], ["v0"]),
        *split_heads("q0", "q"), *split_heads("k0", "k"), *split_heads("v0", "v"),
        mk("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        mk("MatMul", ["q", "kt"], ["s0"]),
        mk("Div", ["s0", "scale"], ["s1"]),
        mk("Softmax", ["s1"], ["p"], axis=-1),
        mk("MatMul", ["p", "v"], ["ctx0"]),
        mk("Transpose", ["ctx0"], ["ctx1"], perm=[0, 2, 1, 3]),
        mk("Constant", [], ["flat"], value=i64(np.int64([0, 0, -1]))),
        mk("Reshape", ["ctx1", "flat"], ["ctx"]),
        mk("Add", ["ctx", "x"], ["res"]),
        # GELU as erf arithmetic
        mk("Div", ["res", "sqrt2"], ["g0"]),
        mk("Erf", ["g0"], ["g1"]),
        mk("Add", ["g1", "one"], ["g2"]),
        mk("Mul", ["res", "g2"], ["g3"]),
        mk("Mul", ["g3", "half"], ["g"]),
        mk("Gather", ["g", "i0"], ["cls"], axis=1),
        mk("Gemm", ["cls", "wp", "bp"], ["pool0"], transB=1),
        mk("Tanh", ["pool0"], ["pooled"]),
    ]
    seq = 5
    inits = {
        "emb": r(vocab, d), "pos": r(seq, d), "two": np.float32(2), "eps": np.float32(1e-5),
        "ln_g": r(d), "ln_b": r(d), "wq": r(d, d), "wk": r(d, d), "wv": r(d, d),
        "i0": np.int64(0), "i1": np.int64(1), "ax0": np.int64([0]),
        "hd": np.int64([heads, d // heads]), "scale": np.float32(np.sqrt(d // heads)),
        "sqrt2": np.float32(np.sqrt(2)), "one": np.float32(1), "half": np.float32(0.5),
        "wp": r(d, d), "bp": r(d),
    }
    ids = RNG.integers(0, vocab, (3, seq)).astype(np.int64)
    m = model(nodes, {"ids": ids}, ["pooled", "g"], inits, dynamic={"ids": ["B", "S"]})
    module = check(m, {"ids": ids}, input_shapes={"ids": ids.shape})
    ops = op_names(module)
    assert "nn.reshape" in ops and "nn.gather" in ops and "nn.linear" in ops
    assert "nn.concat" not in ops  # the shape computations were folded
