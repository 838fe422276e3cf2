"""Epilogue fusion: what `fuse-epilogue` saves, and int8 against fp32 before and after.

    .venv/bin/python bench/bench_epilogue.py            # TinyBERT-4, ResNet-18, MobileNetV2
    .venv/bin/python bench/bench_epilogue.py --models tinybert --by-kind

`tinybert` is a TinyBERT-4-shaped encoder written as ONNX the way exporters write BERT
(MatMul + Add for every projection, Reshape/Transpose into heads, Softmax,
LayerNormalization, Gelu, residual Adds; 4 layers, sequence 128, hidden 312, 12 heads,
FFN 1200), imported with irflow's ONNX frontend. fp32 is the `default` pipeline, int8
the `int8` pipeline (calibrate, then quantize: integer MatMuls with quantize/dequantize
layers between them and the float Adds, Gelus and LayerNorms), both as `irflow run`
compiles them. Each is simulated on the default machine twice: lowered without the
epilogue pass, and with it (the default: point-wise chains, softmax and layernorm on
whole rows, head transposes as layouts, the LayerNorm's cast as a side output).
Cost model only (`numerics=False`: the counts are the same as with numerics). Prints
cycles and DRAM bytes, the int8 / fp32 ratios, and the int8 MAC rate's share (fp32
peak ÷ int8 peak MACs per cycle), the ratio a MAC-bound int8 program would reach.

For TinyBERT a third row, "fused, rows whole", tiles both pipelines with the score,
attention-output and FFN-down matmuls' `n` loop whole (`tile{layers=...}`): fp32's own
tiles cut those rows (its tiles are 4x the bytes), so by default only int8 applies the
softmax and LayerNorm in the matmuls' output paths; this row is the matched comparison.
`--by-kind` prints the fused programs' cycles per layer kind.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from irflow import zoo
from irflow.backends.sim import simulate
from irflow.backends.sim.machine import load_machine
from irflow.graph import input_names, main_func
from irflow.passes.calibrate import set_calibration_data
from irflow.pipeline import run_pipeline


def tinybert_onnx(path: Path, layers: int = 4, seq: int = 128, hidden: int = 312,
                  heads: int = 12, ffn: int = 1200, seed: int = 0) -> None:
    """Write the TinyBERT-shaped ONNX encoder (module docstring) to `path`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes: list = []
    inits: list = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(name: str, *shape: int, scale: float = 0.05) -> str:
        return const(name, (rng.standard_normal(shape) * scale).astype(np.float32))

    def node(op: str, ins: list[str], out: str, **attrs: object) -> str:
        nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    hd = hidden // heads
    const("heads_shape", np.array([1, seq, heads, hd], np.int64))
    const("back_shape", np.array([1, seq, hidden], np.int64))
    x = "x"
    for i in range(layers):
        p = f"l{i}."

        def linear(v: str, name: str, n_in: int, n_out: int, p: str = p) -> str:
            m = node("MatMul", [v, weight(p + name + ".w", n_in, n_out)], p + name + ".mm")
            return node("Add", [m, weight(p + name + ".b", n_out, scale=0.02)], p + name)

        def split_heads(v: str, perm: list[int]) -> str:
            return node("Transpose", [node("Reshape", [v, "heads_shape"], v + ".r")],
                        v + ".t", perm=perm)

        def layernorm(v: str, name: str, p: str = p) -> str:
            return node("LayerNormalization", [
                v, const(p + name + ".g", np.ones(hidden, np.float32)),
                const(p + name + ".b", np.zeros(hidden, np.float32))], p + name, axis=-1)

        q = split_heads(linear(x, "q", hidden, hidden), [0, 2, 1, 3])
        k = split_heads(linear(x, "k", hidden, hidden), [0, 2, 3, 1])
        v = split_heads(linear(x, "v", hidden, hidden), [0, 2, 1, 3])
        s = node("Mul", [node("MatMul", [q, k], p + "scores"),
                         const(p + "scale", np.array(1 / np.sqrt(hd), np.float32))],
                 p + "scaled")
        a = node("Softmax", [s], p + "probs", axis=-1)
        ctx = node("Transpose", [node("MatMul", [a, v], p + "ctx")], p + "ctx.t",
                   perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, "back_shape"], p + "ctx.r")
        h = layernorm(node("Add", [linear(ctx, "o", hidden, hidden), x], p + "res1"), "ln1")
        f = linear(node("Gelu", [linear(h, "ff1", hidden, ffn)], p + "gelu"), "ff2", ffn,
                   hidden)
        x = layernorm(node("Add", [f, h], p + "res2"), "ln2")
    nodes.append(helper.make_node("Identity", [x], ["y"], name="out"))
    graph = helper.make_graph(
        nodes, "tinybert", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                          [1, seq, hidden])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, seq, hidden])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    onnx.save(model, path)


def load(name: str, tmp: Path):  # noqa: ANN201
    if name == "tinybert":
        from irflow.frontends.onnx import import_onnx

        path = tmp / "tinybert.onnx"
        if not path.exists():
            tinybert_onnx(path)
        return import_onnx(str(path))
    return zoo.load(name, seed=0)


ROWS = ";".join(f"l{i}.{loop}" for i in range(4)
                for loop in ("scores:n=128", "o.mm:n=312", "ff2.mm:n=312"))
"""TinyBERT's matmuls whose result rows a softmax or LayerNorm normalizes: `n` whole."""


def measure(name: str, tmp: Path, by_kind: bool = False
            ) -> dict[tuple[str, str], tuple[int, int]]:
    """(pipeline, lowering) -> (cycles, DRAM bytes); lowering "unfused", "fused" and,
    for TinyBERT, "rows" (fused, tiled with ROWS)."""
    out = {}
    for pipeline in ("default", "int8"):
        module = load(name, tmp)
        fn = main_func(module)
        rng = np.random.default_rng(0)
        shapes = {n: a.type.get_shape() for n, a in zip(input_names(fn),
                                                        fn.body.blocks[0].args)}

        def sample(rng: np.random.Generator = rng, shapes: dict = shapes) -> dict:
            return {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}

        if pipeline == "int8":
            set_calibration_data(module, [sample() for _ in range(2)])
        run_pipeline(module, pipeline)
        inputs = sample()
        for lowering in ("unfused", "fused") + (("rows",) if name == "tinybert" else ()):
            if lowering == "rows":
                run_pipeline(module, f'tile{{layers="{ROWS}"}}')
            report = simulate(module, inputs, numerics=False, progress=False,
                              epilogue=lowering != "unfused").report
            t = report.total
            out[pipeline, lowering] = (t.cycles, t.dram_bytes_read + t.dram_bytes_written)
            if by_kind and lowering != "unfused":
                kinds: dict[str, list[int]] = {}
                for layer in report.layers:
                    k = kinds.setdefault(f"{layer.op} ({layer.unit}, {layer.dtype})", [0, 0])
                    k[0] += layer.cycles
                    k[1] += layer.compute_cycles
                print(f"  {name} {pipeline} {lowering}: cycles (compute) per layer kind: "
                      + ", ".join(f"{k} {c:,} ({p:,})" for k, (c, p) in sorted(
                          kinds.items(), key=lambda kv: -kv[1][0])))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tinybert,resnet18,mobilenetv2")
    parser.add_argument("--by-kind", action="store_true",
                        help="print the fused programs' cycles per layer kind")
    args = parser.parse_args(argv)
    m = load_machine("default")
    share = m.peak_macs_per_cycle("fp32") / m.peak_macs_per_cycle("int8")
    print(f"default machine; the int8 MAC rate's share: fp32 peak {m.peak_macs_per_cycle('fp32'):g}"
          f" / int8 peak {m.peak_macs_per_cycle('int8'):g} MACs per cycle = {share:.2f}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'model':<12} {'epilogue':<17} {'fp32 cycles':>13} {'int8 cycles':>13} "
          f"{'int8/fp32':>9} {'fp32 DRAM B':>14} {'int8 DRAM B':>14} {'int8/fp32':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            r = measure(name, Path(tmp), args.by_kind)
            for lowering in ("unfused", "fused", "rows"):
                if ("default", lowering) not in r:
                    continue
                (fc, fd), (ic, idr) = r["default", lowering], r["int8", lowering]
                label = "fused, rows whole" if lowering == "rows" else lowering
                print(f"{name:<12} {label:<17} {fc:>13,} {ic:>13,} "
                      f"{ic / fc:>9.3f} {fd:>14,} {idr:>14,} {idr / fd:>9.3f}")
            for pipe in ("default", "int8"):
                (c0, d0), (c1, d1) = r[pipe, "unfused"], r[pipe, "fused"]
                print(f"{'':<12} {pipe}: fused / unfused cycles {c1 / c0:.3f}, "
                      f"DRAM bytes {d1 / d0:.3f}")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
