"""Real workloads on the simulator: ResNet-50 and BERT-base int8 end to end, and a
decoder's decode step against its physical limit, each run in its own process so that
its peak RSS is its own.

    .venv/bin/python bench/bench_workloads.py                       # everything below
    .venv/bin/python bench/bench_workloads.py --only cnn,bert       # int8 ResNet-50, BERT-base
    .venv/bin/python bench/bench_workloads.py --only decoder --decoder decoder-15m --cache 512
    .venv/bin/python bench/bench_workloads.py --only growth           # sim time vs model size

- `cnn` / `bert`: zoo load + `int8` pipeline (2 random calibration batches) + `simulate`
  (numerics + exact cache + cycles), wall time of each part and peak RSS;
- `growth`: simulate time (median of `--growth-runs`; the module tiled by `tile`, the
  mapping search, once before: its time is printed apart) against MACs and DRAM bytes for
  ResNet-18/34/50 and BERT-base with 2/6/12 encoder layers (`zoo.load("resnet18",
  blocks=(3, 4, 6, 3))`, `zoo.load("bert-base", layers=N)`), int8;
- `decoder`: one decode step (batch 1, `--cache` positions in the KV cache, per
  `--precisions`) — cycles, DRAM bytes, the physical limit (weights + KV read + KV
  written) / DRAM bandwidth next to it and the ratio, the simulated verdict
  (`limited_by`: bandwidth- or compute-bound), tokens/s at the machine's clock; then
  prefill cycles for S = 128 and 512 against the compute bound (MACs / peak).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    """This process's CPU seconds (user + system): steadier than wall time on a shared
    machine (BLAS runs single-threaded in the simulator and calibration)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _store_mib(module) -> dict[str, float]:  # noqa: ANN001
    """MiB of the module's weight store per dtype, lazy entries (not made) left out."""
    from irflow.weights import weights_of

    out: dict[str, float] = {}
    for _, a in weights_of(module).entries():
        if isinstance(a, np.ndarray):
            out[str(a.dtype)] = out.get(str(a.dtype), 0.0) + a.nbytes / 2**20
    return out


def _inputs(module, rng):  # noqa: ANN001, ANN202
    from irflow.graph import input_names, main_func

    fn = main_func(module)
    out = {}
    for n, a in zip(input_names(fn), fn.body.blocks[0].args):
        shape = a.type.get_shape()
        out[n] = (rng.integers(0, 1000, shape) if "i64" in str(a.type)
                  else rng.standard_normal(shape).astype(np.float32))
    return out


def one_int8(name: str, runs: int = 1) -> dict:
    from irflow import zoo
    from irflow.analysis import total_macs
    from irflow.backends.sim import simulate
    from irflow.passes.calibrate import set_calibration_data
    from irflow.pipeline import run_pipeline

    t0, c0 = time.perf_counter(), _cpu_s()
    if name.startswith("bert:"):  # bert-base's first N encoder layers
        module = zoo.load("bert-base", layers=int(name.split(":")[1]))
    else:
        module = (zoo.load("resnet18", blocks=(3, 4, 6, 3)) if name == "resnet34"
                  else zoo.load(name))
    macs = total_macs(module)
    rng = np.random.default_rng(0)
    set_calibration_data(module, [_inputs(module, rng) for _ in range(2)])
    run_pipeline(module, "int8")
    feeds = _inputs(module, rng)
    tile_cpu = 0.0
    if runs > 1:  # the growth table times the simulator: `tile` (the mapping search,
        # simulate's default tiling) once before, outside the timed runs
        c = time.process_time()
        run_pipeline(module, "tile")
        tile_cpu = time.process_time() - c
    t1, c1, rss1 = time.perf_counter(), _cpu_s(), _rss_mib()
    times, cpu = [], []
    for _ in range(runs):  # the growth table's median of `runs` simulations
        start, start_cpu = time.perf_counter(), time.process_time()
        result = simulate(module, feeds)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    t2 = t1 + float(np.median(times))
    total = result.report.total
    return {"what": f"{name} int8", "compile_s": t1 - t0, "simulate_s": t2 - t1,
            "total_s": t2 - t0, "cycles": total.cycles, "rss_mib": _rss_mib(), "macs": macs,
            "dram_bytes": total.dram_bytes_read + total.dram_bytes_written,
            "cpu_s": _cpu_s() - c0, "simulate_cpu_s": _cpu_s() - c1, "build_rss_mib": rss1,
            "simulate_runs": times, "simulate_cpu_median_s": float(np.median(cpu)),
            "tile_cpu_s": tile_cpu,
            "line_accesses": total.cache.accesses}


PRECISIONS = {
    "fp32": "",
    "fp16": "convert-float",
    "w8a16": "convert-float,quantize-groups{bits=8 group=32}",
    "w4a16": "convert-float,quantize-groups{bits=4 group=32}",
    "w4a8": "convert-float,quantize-groups{bits=4 group=32},calibrate,"
            "quantize-groups{act-bits=8}",
}


def one_decode(name: str, cache: int, precision: str = "fp32") -> dict:
    from irflow import zoo
    from irflow.backends.sim import simulate
    from irflow.backends.sim.decode_bound import decode_bound
    from irflow.backends.sim.machine import load_machine
    from irflow.pipeline import run_pipeline

    t0, c0 = time.perf_counter(), _cpu_s()
    module = zoo.load(name, entry="decode", cache=cache)
    if "calibrate" in PRECISIONS[precision]:  # one batch of random ids and cache
        from irflow.passes.calibrate import set_calibration_data

        set_calibration_data(module, [_inputs(module, np.random.default_rng(1))])
    if PRECISIONS[precision]:
        run_pipeline(module, PRECISIONS[precision])
    bound = decode_bound(module)
    feeds = _inputs(module, np.random.default_rng(0))
    t1, c1, rss1, store = time.perf_counter(), _cpu_s(), _rss_mib(), _store_mib(module)
    total = simulate(module, feeds).report.total
    t2 = time.perf_counter()
    clock = load_machine("default").clock_ghz * 1e9
    return {"what": f"{name} decode {precision} (cache {cache})", "compile_s": t1 - t0,
            "simulate_s": t2 - t1, "total_s": t2 - t0, "cycles": total.cycles,
            "dram_bytes": total.dram_bytes_read + total.dram_bytes_written,
            "bound_bytes": bound.total_bytes, "bound_cycles": bound.cycles,
            "verdict": total.roofline_bound, "limited_by": total.limited_by,
            "tokens_per_s": clock / total.cycles,
            "rss_mib": _rss_mib(), "build_rss_mib": rss1, "store_mib": store,
            "compile_cpu_s": c1 - c0, "simulate_cpu_s": _cpu_s() - c1}


def one_prefill(name: str, seq: int, precision: str = "fp32",
                numerics_flag: str = "numerics") -> dict:
    from irflow import zoo
    from irflow.backends.sim import simulate
    from irflow.pipeline import run_pipeline

    t0 = time.perf_counter()
    module = zoo.load(name, entry="prefill", seq=seq)
    if PRECISIONS[precision]:
        run_pipeline(module, PRECISIONS[precision])
    feeds = _inputs(module, np.random.default_rng(0))
    t1 = time.perf_counter()
    numerics = numerics_flag == "numerics"
    total = simulate(module, feeds, numerics=numerics).report.total
    t2 = time.perf_counter()
    what = "" if numerics else ", cost model only (numerics=False)"
    return {"what": f"{name} prefill {precision} S={seq}{what}", "compile_s": t1 - t0,
            "simulate_s": t2 - t1, "total_s": t2 - t0, "cycles": total.cycles,
            "roofline_cycles": total.roofline_cycles, "verdict": total.roofline_bound,
            "compute_bound": total.pe_busy_cycles, "limited_by": total.limited_by,
            "rss_mib": _rss_mib()}


def child(argv: list[str]) -> dict:
    kind = argv[0]
    if kind == "int8":
        return one_int8(argv[1], int(argv[2]) if len(argv) > 2 else 1)
    if kind == "decode":
        return one_decode(argv[1], int(argv[2]), argv[3])
    return one_prefill(argv[1], int(argv[2]), argv[3], argv[4])


def run_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_median(repeat: int, *args: str) -> tuple[dict, str]:
    """`repeat` runs of one child: the median of every number (RSS: the largest), and
    the runs' end-to-end seconds with the 1-minute load average before each."""
    runs, notes = [], []
    for _ in range(repeat):
        load = os.getloadavg()[0]
        runs.append(run_child(*args))
        notes.append(f"{runs[-1]['total_s']:.1f} s @ load {load:.1f}")
    med = dict(runs[0])
    for k, v in runs[0].items():
        if isinstance(v, int | float) and not isinstance(v, bool):
            vals = [r[k] for r in runs]
            med[k] = max(vals) if "rss" in k else statistics.median(vals)
    return med, ", ".join(notes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="cnn,bert,decoder,growth")
    parser.add_argument("--decoder", default="decoder-15m")
    parser.add_argument("--cache", type=int, default=512)
    parser.add_argument("--prefill", default="128,512")
    parser.add_argument("--precisions", default="fp16,w8a16,w4a16,w4a8",
                        help=f"decode precisions, from {', '.join(PRECISIONS)}")
    parser.add_argument("--prefill-precision", default="fp16")
    parser.add_argument("--prefill-numerics", action=argparse.BooleanOptionalAction,
                        default=True, help="compute values in the prefill runs (the "
                        "1 B model's prefill takes minutes of numpy; --no-prefill-numerics "
                        "gives the same cycles from the traces alone)")
    parser.add_argument("--growth-runs", type=int, default=3,
                        help="simulations per growth-table model (the median is shown)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each cnn / bert / decode measurement: medians printed "
                        "(peak RSS: the largest), each run's time and load average after them")
    parser.add_argument("--child", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    only = set(args.only.split(","))
    for key, name in (("cnn", "resnet50"), ("bert", "bert-base")):
        if key in only:
            r, runs = run_median(args.repeat, "int8", name)
            print(f"{r['what']}: end to end {r['total_s']:.2f} s (compile + int8 pipeline "
                  f"{r['compile_s']:.2f} s, simulate {r['simulate_s']:.2f} s; target <= 10 s; "
                  f"CPU {r['cpu_s']:.2f} s, simulate {r['simulate_cpu_s']:.2f} s), "
                  f"{r['cycles']:,} cycles, peak RSS {r['rss_mib']:.0f} MiB (after the "
                  f"pipeline {r['build_rss_mib']:.0f} MiB); median of {args.repeat}: {runs}")
    if "growth" in only:
        print(f"growth (int8, simulate only, median of {args.growth_runs}): CPU time per MAC "
              "and per (MAC + DRAM byte); wall times of the runs beside (load-sensitive)")
        print(f"{'model':10s} {'MACs':>15s} {'DRAM bytes':>13s} {'CPU s':>7s} "
              f"{'ns/MAC':>7s} {'ns/(MAC+B)':>10s} {'lines':>11s} {'ns/line':>7s}  wall runs (s)")
        for name in ("resnet18", "resnet34", "resnet50", "bert:2", "bert:6", "bert:12"):
            r = run_child("int8", name, str(args.growth_runs))
            ns = 1e9 * r["simulate_cpu_median_s"]
            print(f"{name:10s} {r['macs']:15,} {r['dram_bytes']:13,} "
                  f"{r['simulate_cpu_median_s']:7.2f} "
                  f"{ns / r['macs']:7.3f} {ns / (r['macs'] + r['dram_bytes']):10.3f} "
                  f"{r['line_accesses']:11,} {ns / r['line_accesses']:7.0f}  "
                  + " ".join(f"{t:.2f}" for t in r["simulate_runs"])
                  + f"  (tile, before: {r['tile_cpu_s']:.2f} s CPU)")
    if "decoder" in only:
        for p in filter(None, args.precisions.split(",")):
            r, runs = run_median(args.repeat, "decode", args.decoder, str(args.cache), p)
            store = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(r["store_mib"].items()))
            print(f"{r['what']}: {r['cycles']:,} cycles, DRAM {r['dram_bytes']:,} B; limit "
                  f"{r['bound_bytes']:,} B = {r['bound_cycles']:,.0f} cycles "
                  f"(x{r['cycles'] / r['bound_cycles']:.3f}), {r['limited_by']}-bound "
                  f"(roofline: {r['verdict']}), "
                  f"{r['tokens_per_s']:.1f} tokens/s; simulate {r['simulate_s']:.2f} s "
                  f"(CPU {r['simulate_cpu_s']:.2f} s), build + quantize {r['compile_s']:.2f} s "
                  f"(CPU {r['compile_cpu_s']:.2f} s), peak RSS {r['rss_mib']:.0f} MiB (after "
                  f"the build {r['build_rss_mib']:.0f} MiB; weights made by then, MiB by "
                  f"dtype: {store}); median of {args.repeat}: {runs}")
        for s in filter(None, args.prefill.split(",")):
            r = run_child("prefill", args.decoder, s, args.prefill_precision,
                          "numerics" if args.prefill_numerics else "cost")
            print(f"{r['what']}: {r['cycles']:,} cycles; compute bound (MACs / peak) "
                  f"{r['compute_bound']:,.0f} (x{r['cycles'] / r['compute_bound']:.3f}), "
                  f"{r['limited_by']}-bound (roofline {r['roofline_cycles']:,.0f}, "
                  f"{r['verdict']}); simulate {r['simulate_s']:.2f} s, "
                  f"peak RSS {r['rss_mib']:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
