"""Reference executor vs onnxruntime on ResNet-18 (224×224, batch 1).

    .venv/bin/python bench/bench_reference.py [--runs 7] [--threads 1] [--zoo mobilenetv2,...]
        [--jit auto|on|off] [--winograd auto|off] [--profile]

Builds ResNet-18 twice from the same seeded weights — as `nn` IR with `GraphBuilder`
and as an ONNX graph with `onnx.helper` — so the benchmark needs neither the zoo nor
an exporter. Two irflow variants are timed:

- `graph`: conv, batchnorm and relu as separate ops (what a frontend produces);
- `folded`: batchnorm folded into the conv weights and relu fused (`act = "relu"`),
  i.e. what `fold-batchnorm,fuse-activation` produce — the same rewrites onnxruntime
  applies itself at its default optimization level.

Prints the median of `--runs` timed runs after one warm-up, the ratio to onnxruntime,
the per-op-kind time split (with `--profile`, onnxruntime's own per-node profile beside
it), the largest output difference, and peak memory (the executor's live-value peak,
tracemalloc's peak of numpy allocations during one run, and the process's max RSS). Both
engines use `--threads` threads: OpenBLAS through OPENBLAS_NUM_THREADS (set before numpy
loads, unless already set) and onnxruntime's intra-op pool (its graph runs sequentially);
irflow's numba kernels are single-threaded. Runs are interleaved so both engines see the
same machine load. Not part
of the test suite. Needs onnx and onnxruntime (the `test` extra); says so if they are absent.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable
from typing import Any


def _threads_from_argv() -> int:
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--threads", type=int, default=1)
    return ap.parse_known_args()[0].threads


# BLAS reads its thread count when numpy loads: set it before the import, so both
# engines get the same number of threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(_threads_from_argv()))

import numpy as np  # noqa: E402

BLOCKS = ((64, 1), (128, 2), (256, 2), (512, 2))  # (channels, first stride), 2 blocks each


def resnet18_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """He-initialized conv/fc weights and non-trivial batchnorm statistics."""
    rng = np.random.default_rng(seed)
    w: dict[str, np.ndarray] = {}

    def conv(name: str, cout: int, cin: int, k: int) -> None:
        std = np.sqrt(2.0 / (cin * k * k))
        w[f"{name}.weight"] = (rng.standard_normal((cout, cin, k, k)) * std).astype(np.float32)
        w[f"{name}.bn.scale"] = rng.uniform(0.5, 1.5, cout).astype(np.float32)
        w[f"{name}.bn.bias"] = (rng.standard_normal(cout) * 0.1).astype(np.float32)
        w[f"{name}.bn.mean"] = (rng.standard_normal(cout) * 0.1).astype(np.float32)
        w[f"{name}.bn.var"] = rng.uniform(0.5, 1.5, cout).astype(np.float32)

    conv("conv1", 64, 3, 7)
    cin = 64
    for li, (c, stride) in enumerate(BLOCKS, 1):
        for bi in range(2):
            p = f"layer{li}.{bi}"
            conv(f"{p}.conv1", c, cin, 3)
            conv(f"{p}.conv2", c, c, 3)
            if bi == 0 and (stride != 1 or cin != c):
                conv(f"{p}.downsample", c, cin, 1)
            cin = c
    w["fc.weight"] = (rng.standard_normal((1000, 512)) * np.sqrt(1.0 / 512)).astype(np.float32)
    w["fc.bias"] = np.zeros(1000, np.float32)
    return w


def fold_bn(w: dict[str, np.ndarray], name: str, eps: float = 1e-5
            ) -> tuple[np.ndarray, np.ndarray]:
    scale = w[f"{name}.bn.scale"] / np.sqrt(w[f"{name}.bn.var"] + np.float32(eps))
    weight = w[f"{name}.weight"] * scale[:, None, None, None]
    bias = w[f"{name}.bn.bias"] - w[f"{name}.bn.mean"] * scale
    return weight.astype(np.float32), bias.astype(np.float32)


def resnet18(e: Any, w: dict[str, np.ndarray], x: Any) -> Any:
    """The network, written once against an emitter (irflow or ONNX)."""
    def conv_bn(x: Any, name: str, stride: int, relu: bool) -> Any:
        k = w[f"{name}.weight"].shape[-1]
        return e.conv_bn(x, name, stride, k // 2, relu)

    y = conv_bn(x, "conv1", 2, True)
    y = e.maxpool(y)
    cin = 64
    for li, (c, stride) in enumerate(BLOCKS, 1):
        for bi in range(2):
            p = f"layer{li}.{bi}"
            s = stride if bi == 0 else 1
            h = conv_bn(y, f"{p}.conv1", s, True)
            h = conv_bn(h, f"{p}.conv2", 1, False)
            skip = conv_bn(y, f"{p}.downsample", s, False) if f"{p}.downsample.weight" in w else y
            y = e.add_relu(h, skip)
            cin = c
    del cin
    return e.head(y)


class IrflowEmitter:
    def __init__(self, w: dict[str, np.ndarray], folded: bool):
        from irflow.dialects import nn
        from irflow.graph import GraphBuilder

        self.nn, self.w, self.folded = nn, w, folded
        self.g = GraphBuilder()

    def _add(self, op: Any) -> Any:
        return self.g.add(op).results[0]

    def conv_bn(self, x: Any, name: str, stride: int, pad: int, relu: bool) -> Any:
        nn, g = self.nn, self.g
        act = "relu" if relu else None
        if self.folded:
            weight, bias = fold_bn(self.w, name)
            return self._add(nn.Conv2dOp(x, g.weight(f"{name}.weight", weight),
                                         g.weight(f"{name}.bias", bias), strides=(stride, stride),
                                         pads=(pad,) * 4, act=act))
        y = self._add(nn.Conv2dOp(x, g.weight(f"{name}.weight", self.w[f"{name}.weight"]),
                                  strides=(stride, stride), pads=(pad,) * 4))
        bn = [g.weight(f"{name}.bn.{k}", self.w[f"{name}.bn.{k}"])
              for k in ("scale", "bias", "mean", "var")]
        y = self._add(nn.BatchNormOp.make([y, *bn]))
        return self._add(nn.ReluOp(y)) if relu else y

    def maxpool(self, x: Any) -> Any:
        nn = self.nn
        return self._add(nn.MaxPoolOp.make([x], {
            "kernel": nn.int_array([3, 3]), "strides": nn.int_array([2, 2]),
            "pads": nn.int_array([1, 1, 1, 1])}))

    def add_relu(self, a: Any, b: Any) -> Any:
        nn = self.nn
        if self.folded:
            from xdsl.dialects.builtin import StringAttr

            return self._add(nn.AddOp.make([a, b], {"act": StringAttr("relu")}))
        return self._add(nn.ReluOp(self._add(nn.AddOp.make([a, b]))))

    def head(self, x: Any) -> Any:
        nn, g = self.nn, self.g
        y = self._add(nn.GlobalAvgPoolOp.make([x]))
        y = self._add(nn.FlattenOp.make([y]))
        return self._add(nn.LinearOp.make([y, g.weight("fc.weight", self.w["fc.weight"]),
                                           g.weight("fc.bias", self.w["fc.bias"])]))


class OnnxEmitter:
    def __init__(self, w: dict[str, np.ndarray]):
        from onnx import helper, numpy_helper

        self.h, self.nh, self.w = helper, numpy_helper, w
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.n = 0

    def _node(self, op: str, ins: list[str], **attrs: Any) -> str:
        self.n += 1
        out = f"t{self.n}"
        self.nodes.append(self.h.make_node(op, ins, [out], **attrs))
        return out

    def _init(self, name: str) -> str:
        self.inits.append(self.nh.from_array(self.w[name], name))
        return name

    def conv_bn(self, x: str, name: str, stride: int, pad: int, relu: bool) -> str:
        y = self._node("Conv", [x, self._init(f"{name}.weight")], strides=[stride, stride],
                       pads=[pad] * 4)
        y = self._node("BatchNormalization",
                       [y] + [self._init(f"{name}.bn.{k}") for k in ("scale", "bias", "mean",
                                                                     "var")], epsilon=1e-5)
        return self._node("Relu", [y]) if relu else y

    def maxpool(self, x: str) -> str:
        return self._node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])

    def add_relu(self, a: str, b: str) -> str:
        return self._node("Relu", [self._node("Add", [a, b])])

    def head(self, x: str) -> str:
        y = self._node("Flatten", [self._node("GlobalAveragePool", [x])])
        return self._node("Gemm", [y, self._init("fc.weight"), self._init("fc.bias")], transB=1)

    def model(self, out: str) -> bytes:
        from onnx import TensorProto

        h = self.h
        graph = h.make_graph(
            self.nodes, "resnet18",
            [h.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 224, 224])],
            [h.make_tensor_value_info(out, TensorProto.FLOAT, [1, 1000])], self.inits)
        model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
        model.ir_version = 8
        return model.SerializeToString()


def interleaved_times(fns: dict[str, Callable[[], Any]], runs: int
                      ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU seconds of each function over `runs` rounds, round-robin, so all see
    the same machine load (it is shared); one untimed warm-up call each (page faults,
    thread pools). With one thread per engine, CPU time is the time not lost to other
    processes — the steadier figure on a busy machine."""
    for fn in fns.values():
        fn()
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            wall[k].append(time.perf_counter() - w0)
            cpu[k].append(time.process_time() - c0)
    return wall, cpu


def ort_session(model: bytes, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def ort_profile(model: bytes, threads: int, inputs: dict[str, np.ndarray], runs: int = 5
                ) -> dict[str, float]:
    """onnxruntime's own per-node kernel times (`SessionOptions.enable_profiling`), summed
    by op type: seconds per run, the median of `runs` runs after a warm-up."""
    import json
    import tempfile

    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        opts.profile_file_prefix = os.path.join(tmp, "ort")
        sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        for _ in range(runs + 1):
            sess.run(None, inputs)
        with open(sess.end_profiling()) as f:
            events = json.load(f)
    per_node: dict[str, list[float]] = defaultdict(list)
    kind: dict[str, str] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_node[e["name"]].append(e["dur"] * 1e-6)
            kind[e["name"]] = e["args"]["op_name"]
    by_kind: dict[str, float] = defaultdict(float)
    for name, durs in per_node.items():
        by_kind[kind[name]] += statistics.median(durs[1:] or durs)
    return by_kind


def compare(title: str, sess: Any, progs: dict[str, Any], inputs: dict[str, np.ndarray],
            runs: int, model: bytes | None = None) -> None:
    """Check outputs agree, then time onnxruntime and each program, round-robin."""
    import onnxruntime as ort

    print(f"\n== {title}")
    ort_outs = sess.run(None, inputs)
    fns: dict[str, Callable[[], Any]] = {"onnxruntime": lambda: sess.run(None, inputs)}
    for label, prog in progs.items():
        fns[label] = lambda prog=prog: prog.run(inputs)
        outs = list(prog.run(inputs).values())
        diff = max(float(np.abs(o - r).max()) for o, r in zip(outs, ort_outs, strict=True))
        scale = max(float(np.abs(r).max()) for r in ort_outs)
        print(f"irflow [{label}]: {len(prog.steps)} ops; max |diff| vs onnxruntime "
              f"{diff:.2e} (outputs up to {scale:.2g})")

    wall, cpu = interleaved_times(fns, runs)
    print(f"onnxruntime {ort.__version__} ({sess.get_session_options().intra_op_num_threads} "
          f"intra-op threads, default optimizations), "
          f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, "
          f"{runs} interleaved runs, medians:")
    for k in fns:
        ratio = "" if k == "onnxruntime" else (
            f"  ratio {statistics.median(wall[k]) / statistics.median(wall['onnxruntime']):.2f}x"
            f" wall, {statistics.median(cpu[k]) / statistics.median(cpu['onnxruntime']):.2f}x"
            " CPU")
        print(f"  {k:12s} wall {statistics.median(wall[k]) * 1e3:7.1f} ms  "
              f"CPU {statistics.median(cpu[k]) * 1e3:7.1f} ms{ratio}")

    for label, prog in progs.items():
        timings: dict[Any, float] = {}
        stats: dict[str, int] = {}
        for _ in range(3):
            prog.run(inputs, timings=timings, stats=stats)
        by_kind: dict[str, float] = defaultdict(float)
        for op, sec in timings.items():
            by_kind[op.name] += sec / 3
        total = sum(by_kind.values())
        top = sorted(by_kind.items(), key=lambda kv: -kv[1])[:6]
        split = ", ".join(f"{k} {v * 1e3:.1f} ms ({v / total:.0%})" for k, v in top)
        print(f"irflow [{label}] per-op time: {split}")
        if model is not None and label == "folded":
            ort_kinds = ort_profile(model, sess.get_session_options().intra_op_num_threads,
                                    inputs)
            top = sorted(ort_kinds.items(), key=lambda kv: -kv[1])[:4]
            print(f"onnxruntime's profile (enable_profiling, same threads), per node kind: "
                  f"{', '.join(f'{k} {v * 1e3:.1f} ms' for k, v in top)}; total "
                  f"{sum(ort_kinds.values()) * 1e3:.1f} ms in kernels; irflow [folded] "
                  f"{total * 1e3:.1f} ms in kernels")
        tracemalloc.start()
        tracemalloc.reset_peak()
        prog.run(inputs)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        weights = sum(v.nbytes for v in prog.initial if v is not None)
        print(f"  memory: live values peak {stats['peak_bytes'] / 2**20:.1f} MiB (executor "
              f"count); numpy allocations peak during a run {peak / 2**20:.1f} MiB "
              f"(tracemalloc, incl. im2col buffers); weights {weights / 2**20:.1f} MiB")


def bench_resnet18(args: argparse.Namespace) -> None:
    from irflow.backends.reference import compile_function

    w = resnet18_weights()
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    oe = OnnxEmitter(w)
    model = oe.model(resnet18(oe, w, "x"))
    sess = ort_session(model, args.threads)
    progs = {}
    for label, folded in (("graph", False), ("folded", True)):
        e = IrflowEmitter(w, folded)
        module = e.g.finish([resnet18(e, w, e.g.input("x", [1, 3, 224, 224]))], ["logits"])
        progs[label] = compile_function(module)
    compare("ResNet-18, 1x3x224x224 (built in this script)", sess, progs, {"x": x}, args.runs,
            model if args.profile else None)


def bench_zoo(name: str, args: argparse.Namespace) -> None:
    """A zoo model as loaded (`graph`) and after `fold-batchnorm,fuse-activation`
    (`folded`), against onnxruntime on the model exported by irflow's ONNX exporter."""
    from irflow import zoo
    from irflow.backends.reference import compile_function
    from irflow.exporters.onnx import export_onnx
    from irflow.pipeline import run_pipeline

    module = zoo.load(name, seed=0)
    model = export_onnx(module).SerializeToString()
    sess = ort_session(model, args.threads)
    progs = {"graph": compile_function(module)}
    run_pipeline(module, "fold-batchnorm,fuse-activation")
    progs["folded"] = compile_function(module)
    rng = np.random.default_rng(1)
    inputs = {
        n: (rng.standard_normal(s.shape) if s.dtype.kind == "f"
            else rng.integers(0, 100, s.shape)).astype(s.dtype)
        for n, s in zip(progs["graph"].input_names, progs["graph"].input_specs)
    }
    compare(f"zoo '{name}' ({', '.join(f'{k} {v.shape}' for k, v in inputs.items())}; "
            "ONNX from irflow's exporter)", sess, progs, inputs, args.runs,
            model if args.profile else None)


def _kernels_used() -> str:
    """Which conv kernels the reference executor runs here (numba or numpy only)."""
    from irflow.backends.reference import conv

    mode = conv.jit_mode()
    if mode == "off" or not conv.jit_available():
        state = "installed" if conv.jit_available() else "not installed"
        return f"numpy only (IRFLOW_REFERENCE_JIT={mode}, numba {state})"
    import numba

    wino = ("Winograd F(4x4,3x3)/F(2x2,3x3) for large float32 3x3 stride-1 convs"
            if conv.winograd_mode() != "off" else "no Winograd (IRFLOW_REFERENCE_WINOGRAD=off)")
    return (f"numba {numba.__version__} for depthwise conv, the bias+relu epilogue (with a "
            "residual add fused into the conv before it), max pool, add+relu, the stems' "
            f"banded im2col and the Winograd transforms (IRFLOW_REFERENCE_JIT={mode}); {wino}; "
            "numpy/OpenBLAS for the GEMMs")


def main(argv: list[str] | None = None) -> int:
    from extras import require

    require("bench_reference.py", "onnx", "onnxruntime")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1,
                    help="threads for onnxruntime and for OpenBLAS (default 1: on a shared "
                         "machine, multi-threaded timings are dominated by contention)")
    ap.add_argument("--zoo", default="",
                    help="also compare these zoo models (comma-separated, e.g. "
                         "mobilenetv2,transformer_encoder)")
    ap.add_argument("--jit", choices=("auto", "on", "off"), default=None,
                    help="the reference conv's numba kernels (IRFLOW_REFERENCE_JIT; "
                         "default: the variable's value, else auto)")
    ap.add_argument("--winograd", choices=("auto", "off"), default=None,
                    help="the reference conv's Winograd path (IRFLOW_REFERENCE_WINOGRAD; "
                         "default: the variable's value, else auto)")
    ap.add_argument("--profile", action="store_true",
                    help="also print onnxruntime's own per-node profile (enable_profiling, "
                         "the same thread count) next to irflow's per-op split")
    args = ap.parse_args(argv)
    if args.jit is not None:
        os.environ["IRFLOW_REFERENCE_JIT"] = args.jit
    if args.winograd is not None:
        os.environ["IRFLOW_REFERENCE_WINOGRAD"] = args.winograd

    print("command:", " ".join([os.path.basename(sys.executable), *sys.argv]))
    print(f"reference conv kernels: {_kernels_used()}")
    bench_resnet18(args)
    for name in filter(None, args.zoo.split(",")):
        bench_zoo(name, args)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nprocess max RSS {rss:.0f} MiB (all engines and variants)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
