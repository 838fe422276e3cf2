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
   |estimate / simulated - 1|).
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


def bench_simulate(model: str) -> None:
    module, inputs = int8_model(model)
    rows = {}
    for search in ("none", "latency"):
        m = module.clone()
        run_pipeline(m, f"tile{{search={search}}}")
        r = simulate(m, inputs, numerics=False, progress=False).report
        rows[search] = r.total
    for search, t in rows.items():
        print(f"{model} int8 search={search:<8} cycles {t.cycles:>14,}  DRAM "
              f"{t.dram_bytes_read + t.dram_bytes_written:>14,} B  energy "
              f"{t.energy.total_pj / 1e6:>10.1f} uJ")
    ratio = rows["latency"].cycles / rows["none"].cycles
    print(f"{model} int8 cycles search=latency / search=none = {ratio:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--simulate", action="store_true")
    ap.add_argument("--models", default="resnet18,mobilenetv2")
    args = ap.parse_args()
    bench_time()
    if args.simulate:
        for model in args.models.split(","):
            bench_simulate(model)


if __name__ == "__main__":
    main()
