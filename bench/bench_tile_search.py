"""Mapping search benchmark: search time, and simulated cycles with and without it.

    .venv/bin/python bench/bench_tile_search.py                  # ResNet-18 search time
    .venv/bin/python bench/bench_tile_search.py --simulate       # + full simulation of
        ResNet-18 and MobileNetV2 int8 with search=none vs search=latency (minutes)

1. Wall and CPU time of `tile{search=latency}` on ResNet-18 int8 (all layers; the
   target is <= 10 s), median of 3.
2. `--simulate`: total simulated cycles, DRAM bytes and energy of each model compiled
   with `int8,tile{search=none}` and `int8,tile{search=latency}` (numerics off: the
   counts are identical, see `simulate(numerics=False)`), and per PE layer the
   search's estimate beside the simulated cycles / DRAM bytes (the distribution of
   |estimate / simulated - 1|): `--estimates lenet5,transformer_encoder`.
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


def int8_model(model: str):  # noqa: ANN201
    module = zoo.load(model, seed=0)
    fn = main_func(module)
    rng = np.random.default_rng(0)
    inputs = {n: rng.standard_normal(a.type.get_shape()).astype(np.float32)
              for n, a in zip(input_names(fn), fn.body.blocks[0].args)}
    set_calibration_data(module, [{n: rng.standard_normal(v.shape).astype(np.float32)
                                   for n, v in inputs.items()} for _ in range(2)])
    run_pipeline(module, "int8")
    return module, inputs


def bench_time(model: str = "resnet18", repeats: int = 3) -> None:
    module, _ = int8_model(model)
    wall, cpu = [], []
    for _ in range(repeats):
        m = module.clone()
        t, c = time.perf_counter(), time.process_time()
        run_pipeline(m, "tile{search=latency}")
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    print(f"{model} int8: tile{{search=latency}} wall {statistics.median(wall):.2f} s, "
          f"CPU {statistics.median(cpu):.2f} s (median of {repeats}; target <= 10 s)")


def bench_simulate(model: str, objectives: tuple[str, ...] = ("none", "latency")) -> None:
    module, inputs = int8_model(model)
    rows = {}
    for search in objectives:
        m = module.clone()
        run_pipeline(m, f"tile{{search={search}}}")
        r = simulate(m, inputs, numerics=False, progress=False).report
        rows[search] = r.total
    for search, t in rows.items():
        print(f"{model} int8 search={search:<8} cycles {t.cycles:>14,}  DRAM "
              f"{t.dram_bytes_read + t.dram_bytes_written:>14,} B  energy "
              f"{t.energy.total_pj / 1e6:>10.1f} uJ")
    for search in objectives[1:]:
        ratio = rows[search].cycles / rows[objectives[0]].cycles
        print(f"{model} int8 cycles search={search} / search={objectives[0]} = {ratio:.3f}")


def bench_estimates(model: str) -> None:
    """Per PE layer of `model` (fp32, search=latency): estimate vs simulated."""
    import sys

    sys.path.insert(0, "tests")
    from test_tile_search import layer_estimates

    from irflow.context import make_context
    from irflow.passes.tile import TilePass

    module = zoo.load(model, seed=0)
    TilePass(search="latency").apply(make_context(), module)
    est = layer_estimates(module)
    fn = main_func(module)
    inputs = {n: np.zeros(a.type.get_shape(), np.float32)
              for n, a in zip(input_names(fn), fn.body.blocks[0].args)}
    by = {s.name: s for s in simulate(module, inputs, numerics=False,
                                      progress=False).report.layers}
    ec, ed = [], []
    for k, (c, d) in est.items():
        s = by[k]
        sd = s.dram_bytes_read + s.dram_bytes_written
        ec.append(c / s.cycles - 1)
        ed.append(d / max(sd, 1) - 1)
        print(f"{model} {k:32s} cycles est {c:12,.0f} sim {s.cycles:12,} ({ec[-1]:+.1%})  "
              f"DRAM est {d:12,.0f} sim {sd:12,} ({ed[-1]:+.1%})")
    a, b = np.abs(ec), np.abs(ed)
    print(f"{model}: {len(a)} PE layers; |cycles error| median {np.median(a):.1%} max "
          f"{a.max():.1%}, {np.sum(a <= 0.05)} within 5 %; |DRAM error| median "
          f"{np.median(b):.1%} max {b.max():.1%}, {np.sum(b <= 0.05)} within 5 %")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--simulate", action="store_true")
    ap.add_argument("--models", default="resnet18,mobilenetv2")
    ap.add_argument("--objectives", default="none,latency")
    ap.add_argument("--estimates", default="", help="models: estimate vs simulation")
    args = ap.parse_args()
    if args.estimates:
        for model in args.estimates.split(","):
            bench_estimates(model)
        return
    bench_time()
    if args.simulate:
        for model in args.models.split(","):
            bench_simulate(model, tuple(args.objectives.split(",")))


if __name__ == "__main__":
    main()
