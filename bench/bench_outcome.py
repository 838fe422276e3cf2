"""Outcome benchmark: what int8, 2:4 and channel pruning buy for ResNet-18 on a machine.

    .venv/bin/python bench/bench_outcome.py                    # ResNet-18, default machine
    .venv/bin/python bench/bench_outcome.py --hw micro         # another machine
    .venv/bin/python bench/bench_outcome.py --calib calib.npz  # real calibration data

Stages (`COMPARISONS["int8-sparse"]` in irflow/pipelines.py): fp32 dense (`default`) ->
`int8` -> `int8-sparse` (2:4 on every conv/linear whose reduction axis allows it, then
int8) -> `int8-channel50` (half of every prunable channel group removed, then int8).
Each stage starts from a fresh copy of the model and is simulated on the same machine
with the same seeded input; the table gives cycles, latency, DRAM bytes, cache hit rate,
energy (total and by part) and model bytes, each with its ratio to fp32, then each
stage's pipeline and `simulate` wall time. Accuracy is bench_quant_accuracy.py's and
bench_prune_accuracy.py's business: the zoo's ResNet-18 has seeded random weights.

Same table from the command line: `irflow run resnet18 --pipeline int8-sparse`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from irflow import zoo
from irflow.backends.sim.machine import load_machine
from irflow.cli import load_inputs
from irflow.compare import calibration_batches, compare
from irflow.diagnostics import IrflowError
from irflow.pipelines import COMPARISONS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resnet18", help="zoo model (default: resnet18)")
    ap.add_argument("--hw", help="machine preset or TOML (default: the default machine)")
    ap.add_argument("--stages", default=",".join(COMPARISONS["int8-sparse"]),
                    help="comma-separated named pipelines, the first is the baseline")
    ap.add_argument("--calib", metavar="NPZ", help="calibration data (else seeded random)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the input and weights")
    args = ap.parse_args(argv)
    print("$ " + shlex.join([".venv/bin/python", "bench/bench_outcome.py",
                             *(argv if argv is not None else sys.argv[1:])]))

    machine = load_machine(args.hw)
    module = zoo.load(args.model, seed=args.seed)
    inputs = load_inputs(module, None, args.seed)
    batches, note = calibration_batches(module, args.calib, args.seed)
    start = time.perf_counter()
    c = compare(module, args.stages.split(","), inputs, machine=machine, model=args.model,
                calibration=batches, calibration_note=note,
                progress=lambda line: print(line, file=sys.stderr, flush=True))
    total = time.perf_counter() - start
    print(c.table())
    print()
    print(f"{'stage':<16} {'pipeline s':>10} {'simulate s':>10}  MACs")
    for s in c.stages:
        print(f"{s.name:<16} {s.pipeline_seconds:>10.2f} {s.simulate_seconds:>10.2f}  "
              f"{s.report.total.macs:,}")
    print(f"all stages, wall: {total:.1f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except IrflowError as e:
        print(f"bench_outcome: {e}", file=sys.stderr)
        sys.exit(1)
