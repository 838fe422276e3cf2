"""irflow's input surfaces as Hypothesis strategies of fuzz cases.

Each surface mutates a seed corpus taken from the zoo, the examples and the tests (or,
for pass pipelines and inputs, builds values from a small grammar) and pairs the result
with one of the `irflow` commands that read that kind of input:

    dsl       .irf text              opt / opt -p default / run (reference, int8) / show
    mlir      .mlir text (+ .npz)    opt / opt -p default / run --backend reference / sim / export
    onnx      mutated ModelProto     opt / opt -p default / run --backend reference / run -p int8
    toml      machine descriptions   sim --hw / run -p int8 --hw / opt -p tile{machine=...}
    pipeline  pass-pipeline strings  opt -p / run -p (simulator and reference)
    npz       input, calibration and weight archives   run --inputs / --calib / opt model.mlir
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from fuzz.harness import REPO, Case

SURFACES = ("dsl", "mlir", "onnx", "toml", "pipeline", "npz")

INTERESTING_INTS = ["0", "1", "-1", "2", "3", "7", "8", "16", "64", "255", "256", "1000",
                    "65536", "2147483648", "1099511627776", "-2147483649",
                    "18446744073709551616", "99999999999999999999999999"]
INTERESTING_FLOATS = ["0.0", "-0.0", "1e-45", "1e308", "1e309", "-1e309", "nan", "inf",
                      "-inf", "0.5", "1.5", "-3.25"]
_TOKEN = re.compile(r"\d+\.\d*(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?|[A-Za-z_][\w.]*|\s+|.",
                    re.S)
_NUMBER = re.compile(r"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")


# --------------------------------------------------------------------------------------
# Seeds


@functools.cache
def dsl_seeds() -> tuple[bytes, ...]:
    seeds = [p.read_bytes() for p in sorted((REPO / "irflow" / "zoo").glob("*.irf"))]
    seeds += [p.read_bytes() for p in sorted((REPO / "examples").glob("*.irf"))]
    # the DSL snippets of the tests (triple-quoted strings holding a `model`)
    for p in sorted((REPO / "tests").glob("test_dsl*.py")):
        for m in re.finditer(r'"""(.*?)"""', p.read_text(), re.S):
            if re.search(r"\bmodel\s+\w+\s*\(", m.group(1)):
                seeds.append(m.group(1).encode())
    return tuple(seeds)


@functools.cache
def _stage_modules() -> tuple[tuple[bytes, bytes], ...]:
    """(mlir text, weights npz) of small zoo models at each level."""
    import tempfile

    from irflow.cli import main

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in ("digits_cnn", "lenet5", "examples/tiny_mlp.irf"):
            for pipeline in (None, "default", "int8", "w4a8", "int8-sparse",
                             "default,tile,lower-to-accel"):
                path = Path(tmp) / "m.mlir"
                argv = ["opt", model, "-o", str(path), "--debuginfo"]
                with _quiet():
                    rc = main([*argv, "-p", pipeline] if pipeline else argv)
                if rc == 0:
                    npz = path.with_suffix(".npz")
                    out.append((path.read_bytes(), npz.read_bytes() if npz.exists() else b""))
    return tuple(out)


def _quiet():  # noqa: ANN202
    """Silence the CLI, and run it in the repository (relative model paths, so no path of
    this machine ends up in a seed's locations)."""
    import contextlib

    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.chdir(REPO))
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    return stack


@functools.cache
def mlir_seeds() -> tuple[tuple[bytes, bytes], ...]:
    seeds = [(p.read_bytes(), b"") for p in sorted((REPO / "tests" / "filecheck").rglob("*.mlir"))]
    return (*seeds, *_stage_modules())


@functools.cache
def onnx_seeds() -> tuple[bytes, ...]:
    import tempfile

    from irflow.cli import main

    seeds = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in ("digits_cnn", "lenet5", "examples/tiny_mlp.irf",
                      "examples/residual_cnn.irf"):
            path = Path(tmp) / "m.onnx"
            with _quiet():
                if main(["export", model, "-o", str(path)]) == 0:
                    seeds.append(path.read_bytes())
    return tuple(seeds + list(_small_onnx_models()))


def _small_onnx_models() -> list[bytes]:
    from onnx import TensorProto, helper, numpy_helper

    def model(nodes, inputs, outputs, inits=()) -> bytes:  # noqa: ANN001
        g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 10
        return m.SerializeToString()

    x4 = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])
    x2 = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((3, 2, 3, 3)).astype(np.float32), "w")
    m = numpy_helper.from_array(rng.standard_normal((3, 4)).astype(np.float32), "m")
    shape = numpy_helper.from_array(np.array([1, -1], np.int64), "shape")
    out = [
        model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], [x4], [y], [w]),
        model([helper.make_node("MatMul", ["x", "m"], ["t"]),
               helper.make_node("Relu", ["t"], ["y"])], [x2], [y], [m]),
        model([helper.make_node("Reshape", ["x", "shape"], ["t"]),
               helper.make_node("Softmax", ["t"], ["y"], axis=-1)], [x4], [y], [shape]),
        model([helper.make_node("MaxPool", ["x"], ["t"], kernel_shape=[2, 2], strides=[2, 2]),
               helper.make_node("Transpose", ["t"], ["y"], perm=[0, 2, 3, 1])], [x4], [y]),
        model([helper.make_node("Add", ["x", "x"], ["t"]),
               helper.make_node("Concat", ["t", "x"], ["y"], axis=1)], [x2], [y]),
    ]
    return out


@functools.cache
def toml_seeds() -> tuple[bytes, ...]:
    paths = sorted((REPO / "backends" / "sim" / "presets").glob("*.toml"))
    paths += sorted((REPO / "examples" / "hardware").glob("*.toml"))
    return tuple(p.read_bytes() for p in paths)


@functools.cache
def pass_options() -> dict[str, tuple[str, ...]]:
    import dataclasses

    from irflow.registry import PASSES, get_pass

    return {n: tuple(f.name.replace("_", "-") for f in dataclasses.fields(get_pass(n)))
            for n in PASSES}


@functools.cache
def pipeline_seeds() -> tuple[str, ...]:
    from irflow.pipelines import PIPELINES

    seeds = [*PIPELINES, *(",".join(v) for v in PIPELINES.values())]
    seeds += ["default,tile{sizes=32,32}", "tile{sizes=\"oc=16 ow=4\"}",
              "prune{mode=nm n=2 m=4},default", "quantize{bits=4 granularity=per-tensor}",
              "fold-constants{inline-limit=4 max-elements=64}", "fuse-activation{only=relu}",
              "default,tile,plan-memory,lower-to-accel", "calibrate{method=percentile "
              "percentile=99.9},quantize", "prune{mode=channel ratio=0.5 fold=bias}"]
    return tuple(seeds)


# --------------------------------------------------------------------------------------
# Mutations


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


@st.composite
def mutated_text(draw: st.DrawFn, seed: str, words: tuple[str, ...],
                 max_mutations: int = 4) -> str:
    """`seed` with 1..max_mutations token-level mutations: replace a number with an
    interesting one, replace/insert/delete/duplicate tokens, splice a word, nest."""
    toks = _tokens(seed)
    for _ in range(draw(st.integers(1, max_mutations))):
        if not toks:
            toks = [draw(st.sampled_from(words))]
        kind = draw(st.sampled_from(
            ["number", "number", "replace", "insert", "delete", "dup", "char", "nest",
             "word"]))
        i = draw(st.integers(0, len(toks) - 1))
        if kind == "number":
            nums = [k for k, t in enumerate(toks) if _NUMBER.fullmatch(t)]
            if nums:
                k = draw(st.sampled_from(nums))
                toks[k] = draw(st.sampled_from(INTERESTING_INTS + INTERESTING_FLOATS))
        elif kind == "replace":
            toks[i] = draw(st.sampled_from(words + tuple(t for t in toks if t.strip())))
        elif kind == "insert":
            toks.insert(i, draw(st.sampled_from(words)))
        elif kind == "delete":
            j = min(len(toks), i + draw(st.integers(1, 8)))
            del toks[i:j]
        elif kind == "dup":
            j = min(len(toks), i + draw(st.integers(1, 40)))
            k = draw(st.integers(0, len(toks)))
            toks[k:k] = toks[i:j]
        elif kind == "char":
            t = toks[i]
            pos = draw(st.integers(0, len(t)))
            toks[i] = t[:pos] + draw(st.characters(codec="utf-8")) + t[pos + 1:]
        elif kind == "nest":
            depth = draw(st.sampled_from([2, 10, 100, 300, 600, 2000]))
            opener = draw(st.sampled_from(["relu(", "(", "[", "{", "-", "add(x, ",
                                           "tensor<", "!quant.uniform<"]))
            closer = {"relu(": ")", "(": ")", "[": "]", "{": "}", "-": "",
                      "add(x, ": ")", "tensor<": ">", "!quant.uniform<": ">"}[opener]
            toks[i] = opener * depth + toks[i] + closer * depth
        else:
            toks[i] = draw(st.sampled_from(words))
    return "".join(toks)


DSL_WORDS = ("model", "block", "return", "if", "else", "for", "in", "and", "or", "not",
             "true", "false", "f32", "f16", "i8", "conv2d", "linear", "relu", "add", "matmul",
             "reshape", "transpose", "softmax", "batchnorm", "maxpool", "flatten", "concat",
             "shape", "out", "kernel", "stride", "pad", "axis", "perm", "x", "=", ",", "(",
             ")", "[", "]", "{", "}", ":", "//", "**", "-", "+", "*", "/", "==", "\n", "#",
             "0", "-1", "1e400", "None", "layernorm", "gelu", "global_avg_pool", "range")
MLIR_WORDS = ("%0", "%arg0", "func.func", "nn.conv2d", "nn.linear", "nn.relu", "nn.add",
              "nn.constant", "quant.quantize", "quant.dequantize", "accel.layer", "tensor<",
              ">", "x", "f32", "i8", "i4", "i32", "!quant.uniform<i8:f32, 0.5>", "#nn.weight<",
              "\"w\"", "dense<", "0", "-1", "{", "}", "(", ")", "<", "[", "]", ":", "->",
              "=", ",", "^bb0", "return", "func.return", "attributes", "loc(", "\"", "#",
              "array<i64:", "sym_name", "builtin.module", "unrealized_conversion_cast")
TOML_WORDS = ("[", "]", "=", "\"\"", "\"x\"", "[]", "{}", "true", "false", "0", "-1", "nan",
              "inf", "-inf", "1e308", "rows", "cols", "lanes", "size_bytes", "line_bytes",
              "ways", "clock_ghz", "bytes_per_cycle", "replacement", "\"lru\"", "\"fifo\"",
              "structured", "[\"2:4\"]", "\"csr\"", "int8", "fp32", "int4", "[pe_array]",
              "[cache]", "[vector]", "[dram]", "[energy]", "[sparsity]", "\n", "#", "\"2:0\"",
              "base", "\"micro\"", "\"nope\"", "'''", "1979-05-27")
PIPELINE_WORDS = (",", "{", "}", "=", " ", "\"", "default", "int8", "tile", "quantize",
                  "prune", "calibrate", "sizes", "bits", "zz=4", "oc=0", "32,32", "0", "-1",
                  "1e9", "nan", "true", "per-channel", "machine=micro", "builtin.module(",
                  ")", "func.func(", "nope")


# --------------------------------------------------------------------------------------
# Surfaces


# Seeds too big to run a pipeline and simulate in a fuzz case's time (they are compiled).
HEAVY_DSL = ("224", "BERT", "seq 128", "vocab")


@st.composite
def dsl_case(draw: st.DrawFn) -> Case:
    seed = draw(st.sampled_from(dsl_seeds())).decode()
    text = draw(mutated_text(seed, DSL_WORDS))
    if any(w in seed for w in HEAVY_DSL):  # ImageNet-sized zoo models: compile only
        return Case({"m.irf": text.encode("utf-8", "surrogatepass")}, ["opt", "{dir}/m.irf"])
    argv = draw(st.sampled_from([
        ["opt", "{dir}/m.irf"],
        ["opt", "{dir}/m.irf", "-p", "default"],
        ["run", "{dir}/m.irf", "--backend", "reference"],
        ["run", "{dir}/m.irf", "-p", "int8", "--no-compare", "--hw", "micro"],
        ["show", "{dir}/m.irf"],
        ["opt", "{dir}/m.irf", "-o", "{dir}/out.mlir"],
    ]))
    return Case({"m.irf": text.encode("utf-8", "surrogatepass")}, argv)


@st.composite
def mlir_case(draw: st.DrawFn) -> Case:
    text, npz = draw(st.sampled_from(mlir_seeds()))
    mutated = draw(mutated_text(text.decode(), MLIR_WORDS))
    files = {"m.mlir": mutated.encode("utf-8", "surrogatepass")}
    if npz:
        files["m.npz"] = npz
    argv = draw(st.sampled_from([
        ["opt", "{dir}/m.mlir"],
        ["opt", "{dir}/m.mlir", "--generic"],
        ["opt", "{dir}/m.mlir", "-p", "default"],
        ["run", "{dir}/m.mlir", "--backend", "reference", "-p", ""],
        ["sim", "{dir}/m.mlir", "--hw", "micro"],
        ["export", "{dir}/m.mlir", "-o", "{dir}/out.onnx"],
    ]))
    return Case(files, argv)


@st.composite
def onnx_case(draw: st.DrawFn) -> Case:
    import onnx

    seed = draw(st.sampled_from(onnx_seeds()))
    m = onnx.ModelProto()
    m.ParseFromString(seed)
    for _ in range(draw(st.integers(1, 3))):
        _mutate_onnx(draw, m)
    data = m.SerializeToString()
    if draw(st.integers(0, 9)) == 0:  # now and then, raw bytes
        b = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
        data = bytes(b)
    argv = draw(st.sampled_from([
        ["opt", "{dir}/m.onnx"],
        ["opt", "{dir}/m.onnx", "-p", "default"],
        ["run", "{dir}/m.onnx", "--backend", "reference"],
        ["run", "{dir}/m.onnx", "-p", "int8", "--no-compare", "--hw", "micro"],
    ]))
    return Case({"m.onnx": data}, argv)


def _mutate_onnx(draw: st.DrawFn, m) -> None:  # noqa: ANN001, C901
    from onnx import helper

    from irflow.frontends.onnx import SUPPORTED_OPERATORS

    g = m.graph
    names = sorted({n for node in g.node for n in (*node.input, *node.output)}
                   | {v.name for v in g.input} | {i.name for i in g.initializer}) or ["x"]
    kind = draw(st.sampled_from(["dim", "dim", "attr", "attr", "op_type", "rename_in",
                                 "rename_out", "drop_node", "dup_node", "init", "elem_type",
                                 "opset", "drop_input", "swap"]))
    ints = [0, -1, -5, 1, 2, 3, 7, 64, 1 << 20, 1 << 31, 1 << 40, (1 << 63) - 1]
    if kind == "dim":
        vis = [*g.input, *g.output, *g.value_info]
        dims = [d for v in vis for d in v.type.tensor_type.shape.dim]
        if dims:
            d = draw(st.sampled_from(dims))
            if draw(st.booleans()):
                d.dim_value = draw(st.sampled_from(ints))
            else:
                d.dim_param = draw(st.sampled_from(["N", "", "batch"]))
    elif kind == "attr" and g.node:
        node = draw(st.sampled_from(list(g.node)))
        if node.attribute:
            a = draw(st.sampled_from(list(node.attribute)))
            if a.ints:
                a.ints[draw(st.integers(0, len(a.ints) - 1))] = draw(st.sampled_from(ints))
            elif a.type == a.INT:
                a.i = draw(st.sampled_from(ints))
            elif a.type == a.FLOAT:
                a.f = draw(st.sampled_from([0.0, -1.0, float("nan"), float("inf"), 1e30]))
            else:
                del node.attribute[:]
        else:
            node.attribute.append(helper.make_attribute(
                draw(st.sampled_from(["axis", "perm", "kernel_shape", "group", "alpha"])),
                draw(st.sampled_from([0, -7, 3, [0, 0], [1, 2, 3]]))))
    elif kind == "op_type" and g.node:
        node = draw(st.sampled_from(list(g.node)))
        node.op_type = draw(st.sampled_from(SUPPORTED_OPERATORS + ("Loop", "")))
    elif kind == "rename_in" and g.node:
        node = draw(st.sampled_from(list(g.node)))
        if node.input:
            node.input[draw(st.integers(0, len(node.input) - 1))] = draw(
                st.sampled_from([*names, "", "missing"]))
    elif kind == "rename_out" and g.node:
        node = draw(st.sampled_from(list(g.node)))
        if node.output:
            node.output[draw(st.integers(0, len(node.output) - 1))] = draw(
                st.sampled_from([*names, ""]))
    elif kind == "drop_node" and g.node:
        del g.node[draw(st.integers(0, len(g.node) - 1))]
    elif kind == "dup_node" and g.node:
        node = g.node[draw(st.integers(0, len(g.node) - 1))]
        g.node.insert(draw(st.integers(0, len(g.node))), node)
    elif kind == "init" and g.initializer:
        t = g.initializer[draw(st.integers(0, len(g.initializer) - 1))]
        sub = draw(st.sampled_from(["dims", "type", "truncate", "drop"]))
        if sub == "dims" and t.dims:
            t.dims[draw(st.integers(0, len(t.dims) - 1))] = draw(st.sampled_from(ints))
        elif sub == "type":
            t.data_type = draw(st.sampled_from([0, 2, 3, 6, 7, 10, 11, 16, 99]))
        elif sub == "truncate":
            t.raw_data = t.raw_data[: len(t.raw_data) // 2]
        else:
            g.initializer.remove(t)
    elif kind == "elem_type" and g.input:
        v = draw(st.sampled_from(list(g.input)))
        v.type.tensor_type.elem_type = draw(st.sampled_from([0, 2, 3, 6, 7, 10, 11, 16, 99]))
    elif kind == "opset" and m.opset_import:
        m.opset_import[0].version = draw(st.sampled_from([1, 7, 11, 13, 18, 21, 99]))
    elif kind == "drop_input" and g.input:
        del g.input[draw(st.integers(0, len(g.input) - 1))]
    elif kind == "swap" and len(g.node) > 1:
        i = draw(st.integers(0, len(g.node) - 2))
        a, b = g.node[i], g.node[i + 1]
        ca, cb = type(a)(), type(b)()
        ca.CopyFrom(a)
        cb.CopyFrom(b)
        g.node[i].CopyFrom(cb)
        g.node[i + 1].CopyFrom(ca)


@st.composite
def toml_case(draw: st.DrawFn) -> Case:
    seed = draw(st.sampled_from(toml_seeds())).decode()
    text = draw(mutated_text(seed, TOML_WORDS))
    argv = draw(st.sampled_from([
        ["sim", "lenet5", "--hw", "{dir}/m.toml"],
        ["run", "digits_cnn", "-p", "int8", "--no-compare", "--hw", "{dir}/m.toml"],
        ["run", "digits_cnn", "-p", "int8-sparse", "--no-compare", "--hw", "{dir}/m.toml"],
        ["opt", "digits_cnn", "-p", 'default,tile{machine="{dir}/m.toml"},lower-to-accel'],
    ]))
    return Case({"m.toml": text.encode("utf-8", "surrogatepass")}, argv)


@st.composite
def _pipeline_text(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(mutated_text(draw(st.sampled_from(pipeline_seeds())), PIPELINE_WORDS))
    opts = pass_options()
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        name = draw(st.sampled_from([*opts, "default", "int8", "w4a8", "sparse", "nope"]))
        fields = opts.get(name, ())
        chosen = []
        for _ in range(draw(st.integers(0, 3))):
            key = draw(st.sampled_from([*fields, "zz"])) if fields else "zz"
            value = draw(st.sampled_from(
                ["0", "-1", "1", "4", "8", "32,32", "\"oc=4 oh=2\"", "\"zz=4\"", "true",
                 "nan", "1e300", "per-tensor", "per-channel", "nm", "channel", "magnitude",
                 "micro", "\"\"", "l1", "bias", "exact", '"{dir}/none.npz"', "2:4",
                 "\"oc=0\"", "\"oc=-3\"", "\"ic=1000000\"", "minmax", "percentile",
                 "entropy", "relu,gelu", "conv1", "x"]))
            chosen.append(f"{key}={value}")
        parts.append(name + ("{" + " ".join(chosen) + "}" if chosen else ""))
    return ",".join(parts)


@st.composite
def pipeline_case(draw: st.DrawFn) -> Case:
    spec = draw(_pipeline_text())
    argv = draw(st.sampled_from([
        ["opt", "digits_cnn", "-p", spec],
        ["run", "lenet5", "-p", spec, "--no-compare", "--hw", "micro"],
        ["run", "{repo}/examples/tiny_mlp.irf", "--backend", "reference", "-p", spec],
    ]))
    return Case({}, argv)


_DTYPES = ["float32", "float64", "float16", "int8", "uint8", "int64", "bool", "complex64",
           "<U3", "int32"]
_SHAPES = [(1, 1, 8, 8), (8, 1, 1, 8, 8), (1, 8, 8), (), (0,), (1, 1, 8, 9), (1, 64),
           (2, 1, 8, 8), (1, 1, 0, 8), (64,), (4, 1, 8, 8)]


@st.composite
def _array(draw: st.DrawFn, like: np.ndarray | None = None) -> np.ndarray:
    """An array like `like` with one thing changed (dtype, shape or values), or any."""
    dtype = like.dtype if like is not None else np.dtype(draw(st.sampled_from(_DTYPES)))
    shape = like.shape if like is not None else draw(st.sampled_from(_SHAPES))
    what = draw(st.sampled_from(["dtype", "shape", "values", "values"]))
    if like is None or what == "dtype":
        dtype = np.dtype(draw(st.sampled_from(_DTYPES)))
    if like is None or what == "shape":
        shape = draw(st.sampled_from(_SHAPES))
    base = np.random.default_rng(draw(st.integers(0, 3))).standard_normal(shape)
    fill = draw(st.sampled_from(["normal", "nan", "inf", "zeros", "huge", "one-nan"]))
    if fill == "nan":
        base[...] = np.nan
    elif fill == "inf":
        base[...] = np.inf
    elif fill == "zeros":
        base[...] = 0
    elif fill == "huge":
        base *= 1e38
    elif fill == "one-nan" and base.size:
        base.flat[0] = np.nan
    with np.errstate(all="ignore"):
        return base.astype(dtype) if dtype.kind != "U" else base.astype(str)


@st.composite
def npz_case(draw: st.DrawFn) -> Case:
    """A valid archive for one of the five uses (inputs, int8 inputs, calibration data,
    weights beside an .mlir, --weights of a DSL model) with 0-2 arrays changed, added or
    removed, and 1 in 5 archives corrupted as bytes."""
    mlir, weights = _stage_modules()[0]  # digits_cnn, nn level, with its weights
    target = draw(st.sampled_from(["inputs", "inputs-int8", "calib", "weights", "dsl-weights"]))
    if target.startswith("inputs"):
        arrays = {"input": np.random.default_rng(0).standard_normal((1, 1, 8, 8))
                  .astype(np.float32)}
    elif target == "calib":
        arrays = {"input": np.random.default_rng(0).standard_normal((8, 1, 8, 8))
                  .astype(np.float32)}
    else:
        with np.load(io.BytesIO(weights)) as z:
            arrays = {k: z[k] for k in z.files}
    for _ in range(draw(st.integers(0, 2))):
        how = draw(st.sampled_from(["change", "change", "add", "drop"]))
        key = draw(st.sampled_from(sorted(arrays))) if arrays else "input"
        if how == "change" and arrays:
            arrays[key] = draw(_array(arrays[key]))
        elif how == "add":
            arrays[draw(st.sampled_from(["x", "input.1", "extra", "", "a/b"]))] = draw(_array())
        else:
            arrays.pop(key, None)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    if draw(st.integers(0, 4)) == 0:
        b = bytearray(data)
        how = draw(st.sampled_from(["flip", "truncate", "garbage"]))
        if how == "flip" and b:
            for _ in range(draw(st.integers(1, 6))):
                b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
        elif how == "truncate":
            b = b[: draw(st.integers(0, len(b)))]
        else:
            b = bytearray(draw(st.binary(max_size=64)))
        data = bytes(b)
    if target == "inputs":
        return Case({"x.npz": data}, ["run", "digits_cnn", "--inputs", "{dir}/x.npz",
                                      "--backend", "reference"])
    if target == "inputs-int8":
        return Case({"x.npz": data}, ["run", "digits_cnn", "--inputs", "{dir}/x.npz",
                                      "-p", "int8", "--no-compare", "--hw", "micro"])
    if target == "calib":
        return Case({"x.npz": data}, ["run", "digits_cnn", "--calib", "{dir}/x.npz",
                                      "-p", "int8", "--no-compare", "--hw", "micro"])
    if target == "weights":
        return Case({"m.mlir": mlir, "m.npz": data},
                    ["run", "{dir}/m.mlir", "--backend", "reference", "-p", ""])
    dsl = (REPO / "irflow" / "zoo" / "digits_cnn.irf").read_bytes()
    return Case({"m.irf": dsl, "w.npz": data},
                ["run", "{dir}/m.irf", "--weights", "{dir}/w.npz", "--backend", "reference"])


STRATEGIES: dict[str, Callable[[], st.SearchStrategy[Case]]] = {
    "dsl": dsl_case, "mlir": mlir_case, "onnx": onnx_case, "toml": toml_case,
    "pipeline": pipeline_case, "npz": npz_case,
}
