"""Mapping search benchmark: search time, and simulated cycles with and without it.

    .venv/bin/python bench/bench_tile_search.py                  # ResNet-18 search time
    .venv/bin/python bench/bench_tile_search.py --simulate       # + full simulation of
        ResNet-18 and MobileNetV2 int8 with search=none vs search=balanced (minutes)

1. Wall and CPU time of `tile{search=balanced}` on ResNet-18 int8 (all layers; the
   target is <= 10 s), median of 3, and the CPU time per scored candidate.
2. `--simulate`: total simulated cycles, DRAM bytes and energy of each model compiled
   with `<pipeline>,tile{search=none}` and `<pipeline>,tile{search=...}` (numerics off:
   the counts are identical, see `simulate(numerics=False)`); `--pipeline default`
   is what `irflow run` compiles with.
3. `--estimates lenet5,resnet18`: per PE layer the search's estimate beside the
   layer simulated alone on a cold cache (cycles and DRAM bytes);
   `--estimates-pipeline default` compiles the models with that pipeline first.
4. `--against-rule`: per model of `--models` (default: the whole zoo and the decoders)
   and precision (`--precisions fp32,int8`), total simulated cycles, DRAM bytes and
   energy of `simulate`'s default tiling (what `irflow run`/`irflow sim` compile: the
   mapping search, `tile`'s default) over those of `tile{search=none}` (the halving
   rule), and the search's share of the time (`tile` alone, both ways).
   Decoders are `NAME:decode` (one decode step, 64 cached positions) or `NAME:prefill`
   (S = 128); their `int8` is w4a8 (int4 weights in groups of 32, int8 activations).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from irflow import zoo
from irflow.backends.sim import simulate
from irflow.graph import input_names, main_func
from irflow.passes.calibrate import set_calibration_data
from irflow.pipeline import run_pipeline


def int8_model(model: str, pipeline: str = "int8"):  # noqa: ANN201
    module = zoo.load(model, seed=0)
    fn = main_func(module)
    rng = np.random.default_rng(0)
    del fn
    inputs = _feeds(module, rng)
    set_calibration_data(module, [_feeds(module, rng) for _ in range(2)])
    run_pipeline(module, pipeline)
    return module, inputs


def bench_time(model: str = "resnet18", repeats: int = 3, search: str = "balanced",
               pipeline: str = "int8") -> None:
    """Wall/CPU time of the whole search, and CPU per candidate inside `estimate`."""
    import os

    from irflow.passes import layer_traffic
    from irflow.passes import tile_search as ts

    module, _ = int8_model(model, pipeline)
    wall, cpu = [], []
    scored = [0, 0.0]
    plain = ts.estimate

    def counted(*a, **k):  # noqa: ANN002, ANN003, ANN202
        c0 = time.process_time()
        sc = plain(*a, **k)
        scored[0] += len(sc.cycles)
        scored[1] += time.process_time() - c0
        return sc

    ts.estimate = counted
    try:
        for _ in range(repeats):
            m = module.clone()
            ts._MEMOS.clear()  # each run searches afresh (no scores from the last one)
            layer_traffic._ROWS.clear()  # ... and no set-conflict rows either
            t, c = time.perf_counter(), time.process_time()
            run_pipeline(m, f"tile{{search={search}}}")
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    finally:
        ts.estimate = plain
    print(f"{model} {pipeline}: tile{{search={search}}} wall {statistics.median(wall):.2f} s, "
          f"CPU {statistics.median(cpu):.2f} s (median of {repeats}; target <= 10 s); "
          f"{scored[0] // repeats:,} candidates, {1e6 * scored[1] / max(scored[0], 1):.1f} "
          f"us CPU each; load average {os.getloadavg()[0]:.1f}")


def bench_simulate(model: str, objectives: tuple[str, ...] = ("none", "balanced"),
                   pipeline: str = "int8") -> None:
    module, inputs = int8_model(model, pipeline)
    rows = {}
    for search in objectives:
        m = module.clone()
        run_pipeline(m, f"tile{{search={search}}}")
        r = simulate(m, inputs, numerics=False, progress=False).report
        rows[search] = r.total
    for search, t in rows.items():
        print(f"{model} {pipeline} search={search:<8} cycles {t.cycles:>14,}  DRAM "
              f"{t.dram_bytes_read + t.dram_bytes_written:>14,} B  energy "
              f"{t.energy.total_pj / 1e6:>10.1f} uJ")
    base = rows[objectives[0]]
    for search in objectives[1:]:
        t = rows[search]
        d0 = base.dram_bytes_read + base.dram_bytes_written
        print(f"{model} {pipeline} search={search} / search={objectives[0]}: cycles "
              f"{t.cycles / base.cycles:.3f}x, DRAM "
              f"{(t.dram_bytes_read + t.dram_bytes_written) / d0:.3f}x, energy "
              f"{t.energy.total_pj / base.energy.total_pj:.3f}x")


def bench_estimates(model: str, pipeline: str = "") -> None:
    """Per PE layer of `model` (fp32, search=latency): the estimate of the chosen
    candidate beside the layer simulated alone on a cold cache and flushed
    (`backends/sim/isolated.py`, the comparison docs/tiling.md states)."""
    import sys

    sys.path.insert(0, "tests")
    from test_tile_search import estimate_vs_alone

    ec, ed = [], []
    for label, c, sc, d, sd in estimate_vs_alone(model, pipeline=pipeline):
        ec.append(c / sc - 1)
        ed.append(d / max(sd, 1) - 1)
        print(f"{model} {label:32s} cycles est {c:12,.0f} sim {sc:12,} ({ec[-1]:+.1%})  "
              f"DRAM est {d:12,.0f} sim {sd:12,} ({ed[-1]:+.1%})")
    a, b = np.abs(ec), np.abs(ed)
    print(f"{model}: {len(a)} PE layers; |cycles error| median {np.median(a):.1%} max "
          f"{a.max():.1%}, {np.sum(a <= 0.05)} within 5 %; |DRAM error| median "
          f"{np.median(b):.1%} max {b.max():.1%}, {np.sum(b <= 0.05)} within 5 %")


ZOO_AND_DECODERS = ("lenet5,digits_cnn,transformer_encoder,resnet18,mobilenetv2,resnet50,"
                    "bert-base,decoder-15m:decode,decoder-15m:prefill")
DECODER_PIPELINES = {"fp32": "", "int8": "convert-float,quantize-groups{bits=4 group=32},"
                     "calibrate,quantize-groups{act-bits=8}"}


def _feeds(module, rng):  # noqa: ANN001, ANN202
    fn = main_func(module)
    return {n: (rng.integers(0, 1000, a.type.get_shape()) if "i64" in str(a.type)
                else rng.standard_normal(a.type.get_shape()).astype(np.float32))
            for n, a in zip(input_names(fn), fn.body.blocks[0].args)}


def load_for(model: str, precision: str):  # noqa: ANN201
    """The model compiled as `irflow run` would before `tile` (fp32: `default`; int8:
    the `int8` pipeline, or w4a8 for a decoder), and inputs."""
    name, _, entry = model.partition(":")
    if not entry:
        return int8_model(name, "default" if precision == "fp32" else "int8")
    from irflow.passes.calibrate import set_calibration_data

    module = zoo.load(name, seed=0, entry=entry,
                      **({"cache": 64} if entry == "decode" else {"seq": 128}))
    rng = np.random.default_rng(0)
    pipeline = DECODER_PIPELINES[precision]
    if "calibrate" in pipeline:
        set_calibration_data(module, [_feeds(module, rng)])
    if pipeline:
        run_pipeline(module, pipeline)
    return module, _feeds(module, rng)


def bench_against_rule(model: str, precision: str) -> None:
    """The default tiling against `tile{search=none}`, whole network simulated."""
    from irflow.backends.sim import lower
    from irflow.backends.sim.machine import load_machine

    module, inputs = load_for(model, precision)
    machine = load_machine(None)
    rule = module.clone()
    t0 = time.perf_counter()
    run_pipeline(rule, "tile{search=none}")
    t_rule = time.perf_counter() - t0
    t0 = time.perf_counter()
    searched = lower(module, machine)  # what simulate() does with an untiled module
    t_search = time.perf_counter() - t0
    totals = [simulate(m, inputs, machine=machine, numerics=False, progress=False).report.total
              for m in (rule, searched)]

    def dram(t) -> int:  # noqa: ANN001
        return t.dram_bytes_read + t.dram_bytes_written

    r, d = totals
    print(f"| {model} {precision} | {r.cycles:,} | {d.cycles:,} ({d.cycles / r.cycles:.4f}x) | "
          f"{dram(r):,} | {dram(d):,} ({dram(d) / dram(r):.4f}x) | "
          f"{r.energy.total_pj / 1e6:,.1f} | {d.energy.total_pj / 1e6:,.1f} "
          f"({d.energy.total_pj / r.energy.total_pj:.4f}x) | {t_rule:.2f} s / "
          f"{t_search:.2f} s |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--simulate", action="store_true")
    ap.add_argument("--models", default="resnet18,mobilenetv2")
    ap.add_argument("--objectives", default="none,balanced")
    ap.add_argument("--pipeline", default="int8", help="the pipeline before tile (default: "
                    "int8; 'default' is what irflow run compiles with)")
    ap.add_argument("--estimates", default="", help="models: estimate vs simulation")
    ap.add_argument("--against-rule", action="store_true",
                    help="the default tiling against tile{search=none} (--models, "
                    "default: the zoo and the decoders; --precisions)")
    ap.add_argument("--precisions", default="fp32,int8")
    ap.add_argument("--estimates-pipeline", default="", help="run before tile in --estimates "
                    "(default: none; 'default' is what irflow run compiles)")
    ap.add_argument("--time-model", default="resnet18", help="the model of the search-time "
                    "measurement (1.)")
    args = ap.parse_args()
    if args.against_rule:
        import os

        models = (ZOO_AND_DECODERS if args.models == ap.get_default("models")
                  else args.models)
        print(f"load average {os.getloadavg()[0]:.1f}")
        print("| model | rule cycles | default cycles | rule DRAM B | default DRAM B | "
              "rule energy uJ | default energy uJ | tile: rule / lower with the search |")
        print("|---|---|---|---|---|---|---|---|")
        for model in models.split(","):
            for precision in args.precisions.split(","):
                bench_against_rule(model, precision)
        print(f"load average {os.getloadavg()[0]:.1f}")
        return
    if args.estimates:
        for model in args.estimates.split(","):
            bench_estimates(model, args.estimates_pipeline)
        return
    bench_time(args.time_model, pipeline=args.pipeline)
    if args.simulate:
        for model in args.models.split(","):
            bench_simulate(model, tuple(args.objectives.split(",")), args.pipeline)


if __name__ == "__main__":
    main()
