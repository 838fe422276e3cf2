"""Real workloads on the simulator: ResNet-50 and BERT-base int8 end to end, and a
decoder's decode step against its physical limit, each run in its own process so that
its peak RSS is its own.

    .venv/bin/python bench/bench_workloads.py                       # everything below
    .venv/bin/python bench/bench_workloads.py --only cnn,bert       # int8 ResNet-50, BERT-base
    .venv/bin/python bench/bench_workloads.py --only decoder --decoder decoder-15m --cache 512

- `cnn` / `bert`: zoo load + `int8` pipeline (2 random calibration batches) + `simulate`
  (numerics + exact cache + cycles), wall time of each part and peak RSS;
- `decoder`: one decode step (batch 1, `--cache` positions in the KV cache, fp32) —
  cycles, DRAM bytes, the physical limit (weights + KV read + KV written) / DRAM
  bandwidth next to it, tokens/s at the machine's clock; then prefill cycles for
  S = 128 and 512 with the report's roofline verdict (compute- or memory-bound).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _inputs(module, rng):  # noqa: ANN001, ANN202
    from irflow.graph import input_names, main_func

    fn = main_func(module)
    out = {}
    for n, a in zip(input_names(fn), fn.body.blocks[0].args):
        shape = a.type.get_shape()
        out[n] = (rng.integers(0, 1000, shape) if "i64" in str(a.type)
                  else rng.standard_normal(shape).astype(np.float32))
    return out


def one_int8(name: str) -> dict:
    from irflow import zoo
    from irflow.backends.sim import simulate
    from irflow.passes.calibrate import set_calibration_data
    from irflow.pipeline import run_pipeline

    t0 = time.perf_counter()
    module = zoo.load(name)
    rng = np.random.default_rng(0)
    set_calibration_data(module, [_inputs(module, rng) for _ in range(2)])
    run_pipeline(module, "int8")
    t1 = time.perf_counter()
    result = simulate(module, _inputs(module, rng))
    t2 = time.perf_counter()
    total = result.report.total
    return {"what": f"{name} int8", "compile_s": t1 - t0, "simulate_s": t2 - t1,
            "total_s": t2 - t0, "cycles": total.cycles, "rss_mib": _rss_mib()}


def one_decode(name: str, cache: int) -> dict:
    from irflow import zoo
    from irflow.backends.sim import simulate
    from irflow.backends.sim.decode_bound import decode_bound
    from irflow.backends.sim.machine import load_machine

    t0 = time.perf_counter()
    module = zoo.load(name, entry="decode", cache=cache)
    bound = decode_bound(module)
    feeds = _inputs(module, np.random.default_rng(0))
    t1 = time.perf_counter()
    total = simulate(module, feeds).report.total
    t2 = time.perf_counter()
    clock = load_machine("default").clock_ghz * 1e9
    return {"what": f"{name} decode fp32 (cache {cache})", "compile_s": t1 - t0,
            "simulate_s": t2 - t1, "total_s": t2 - t0, "cycles": total.cycles,
            "dram_bytes": total.dram_bytes_read + total.dram_bytes_written,
            "bound_bytes": bound.total_bytes, "bound_cycles": bound.cycles,
            "verdict": total.roofline_bound, "tokens_per_s": clock / total.cycles,
            "rss_mib": _rss_mib()}


def one_prefill(name: str, seq: int) -> dict:
    from irflow import zoo
    from irflow.backends.sim import simulate

    t0 = time.perf_counter()
    module = zoo.load(name, entry="prefill", seq=seq)
    feeds = _inputs(module, np.random.default_rng(0))
    t1 = time.perf_counter()
    total = simulate(module, feeds).report.total
    t2 = time.perf_counter()
    return {"what": f"{name} prefill fp32 S={seq}", "compile_s": t1 - t0,
            "simulate_s": t2 - t1, "total_s": t2 - t0, "cycles": total.cycles,
            "roofline_cycles": total.roofline_cycles, "verdict": total.roofline_bound,
            "rss_mib": _rss_mib()}


def child(argv: list[str]) -> dict:
    kind = argv[0]
    if kind == "int8":
        return one_int8(argv[1])
    if kind == "decode":
        return one_decode(argv[1], int(argv[2]))
    return one_prefill(argv[1], int(argv[2]))


def run_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="cnn,bert,decoder")
    parser.add_argument("--decoder", default="decoder-15m")
    parser.add_argument("--cache", type=int, default=512)
    parser.add_argument("--prefill", default="128,512")
    parser.add_argument("--child", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    only = set(args.only.split(","))
    for key, name in (("cnn", "resnet50"), ("bert", "bert-base")):
        if key in only:
            r = run_child("int8", name)
            print(f"{r['what']}: end to end {r['total_s']:.2f} s (compile + int8 pipeline "
                  f"{r['compile_s']:.2f} s, simulate {r['simulate_s']:.2f} s; target <= 10 s), "
                  f"{r['cycles']:,} cycles, peak RSS {r['rss_mib']:.0f} MiB")
    if "decoder" in only:
        r = run_child("decode", args.decoder, str(args.cache))
        print(f"{r['what']}: {r['cycles']:,} cycles, DRAM {r['dram_bytes']:,} B; limit "
              f"{r['bound_bytes']:,} B = {r['bound_cycles']:,.0f} cycles "
              f"(x{r['cycles'] / r['bound_cycles']:.3f}), {r['verdict']}-bound, "
              f"{r['tokens_per_s']:.1f} tokens/s; simulate {r['simulate_s']:.2f} s, "
              f"build {r['compile_s']:.2f} s, peak RSS {r['rss_mib']:.0f} MiB")
        for s in filter(None, args.prefill.split(",")):
            r = run_child("prefill", args.decoder, s)
            print(f"{r['what']}: {r['cycles']:,} cycles (roofline {r['roofline_cycles']:,.0f}, "
                  f"{r['verdict']}-bound); simulate {r['simulate_s']:.2f} s, "
                  f"peak RSS {r['rss_mib']:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
