"""What the insight tools cost: cost-only simulation and the 3C miss attribution.

Run: .venv/bin/python bench/bench_insight.py [--model resnet18] [--hw default] [--repeat 3]

Compiles the model with the `default` pipeline, then times (CPU seconds of this process,
median of `--repeat` runs; the first run of each warms numba's cache):

- `simulate` with numerics (what `irflow run` does) and with `numerics=False` (what
  `--cost-after-each` does), checking the two reports are equal;
- `attribute_misses` (the `--misses` extra pass) with the numba kernel and, once, with
  the numpy fallback (`--numpy`), checking the two attributions are equal.
"""

from __future__ import annotations

import argparse
import statistics
import time

from irflow import zoo
from irflow.backends.sim import simulate
from irflow.backends.sim.misses import attribute_misses
from irflow.cli import load_inputs
from irflow.pipeline import run_pipeline


def timed(fn, repeat):  # noqa: ANN001, ANN201
    times, out = [], None
    for _ in range(repeat):
        t = time.process_time()
        out = fn()
        times.append(time.process_time() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--hw", default="default")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--numpy", action="store_true", help="also time the numpy 3C fallback")
    a = ap.parse_args()
    m = zoo.load(a.model)
    run_pipeline(m, "default")
    x = load_inputs(m, None, 0)
    full_s, full = timed(lambda: simulate(m, x, machine=a.hw, progress=False), a.repeat)
    cost_s, cost = timed(lambda: simulate(m, x, machine=a.hw, numerics=False, progress=False),
                         a.repeat)
    assert full.report.to_dict() == cost.report.to_dict()
    accesses = sum(t.line.size for t in cost.traces)
    attribute_misses(cost.traces, cost.outcomes, cost.report.machine)  # load numba
    fa_s, att = timed(lambda: attribute_misses(cost.traces, cost.outcomes, cost.report.machine),
                      a.repeat)
    print(f"{a.model} on {a.hw}: {len(cost.traces)} layers, {accesses:,} line accesses")
    print(f"simulate, numerics:        {full_s:8.2f} s")
    print(f"simulate, cost model only: {cost_s:8.2f} s  (identical report)")
    print(f"3C attribution ({att.kernel}):   {fa_s:8.2f} s  "
          f"(+{100 * fa_s / cost_s:.0f} % of the cost-only simulation)")
    if a.numpy:
        np_s, att_np = timed(lambda: attribute_misses(cost.traces, cost.outcomes,
                                                      cost.report.machine, backend="numpy"), 1)
        assert att_np.rows == att.rows
        print(f"3C attribution (numpy):   {np_s:8.2f} s  (one run; identical rows)")
    print(f"headline: {att.headline()}")


if __name__ == "__main__":
    main()
