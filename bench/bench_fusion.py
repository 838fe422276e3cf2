"""Layer fusion: layer by layer against `fuse-layers` (depth-first groups), simulated.

    .venv/bin/python bench/bench_fusion.py                       # the three models, fp32
    .venv/bin/python bench/bench_fusion.py --models mobilenetv2 --dtype fp32,int8

Each zoo model (MobileNetV2, ResNet-18, the transformer encoder) is compiled as
`irflow run` compiles it (`default` pipeline, or `int8`: calibrate on two random
samples, quantize) and simulated on the default machine: once layer by layer (with
epilogue fusion, the default), then with `fuse-layers` under each objective (`dram`,
`latency`, `energy`; and `always`: every chain that fits, paying or not). Prints the
simulated cycles, DRAM bytes (read + written), energy, the groups formed and the layers
in them, and the outputs' largest difference from the unfused run (`--numerics`; by
default the cost model only, whose counts equal the numerics run's).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from irflow import zoo
from irflow.backends.sim import simulate
from irflow.dialects import accel
from irflow.graph import input_names, main_func
from irflow.passes.calibrate import set_calibration_data
from irflow.pipeline import run_pipeline

MODELS = ("mobilenetv2", "resnet18", "transformer_encoder")
OBJECTIVES = ("dram", "latency", "energy", "always")


def compile_model(name: str, dtype: str) -> tuple[object, dict[str, np.ndarray]]:
    """The model as `irflow run` compiles it, and one random input."""
    module = zoo.load(name, seed=0)
    fn = main_func(module)
    rng = np.random.default_rng(0)
    shapes = {n: a.type.get_shape() for n, a in zip(input_names(fn), fn.body.blocks[0].args)}

    def sample() -> dict[str, np.ndarray]:
        return {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}

    if dtype == "int8":
        set_calibration_data(module, [sample() for _ in range(2)])
    run_pipeline(module, "default" if dtype == "fp32" else "int8")
    return module, sample()


def row(label: str, r: object, base: object | None, wall: float, diff: str) -> str:
    t = r.report.total  # type: ignore[attr-defined]
    dram = t.dram_bytes_read + t.dram_bytes_written
    groups = [op for op in r.module.walk() if isinstance(op, accel.FusedOp)]  # type: ignore[attr-defined]
    fused = sum(len(g.layers) for g in groups)
    ratio = ""
    if base is not None:
        b = base.report.total  # type: ignore[attr-defined]
        b_dram = b.dram_bytes_read + b.dram_bytes_written
        ratio = (f"{t.cycles / b.cycles:>7.3f} {dram / b_dram:>7.3f}"
                 f" {t.energy.total_pj / b.energy.total_pj:>7.3f}")
    else:
        ratio = f"{'1':>7} {'1':>7} {'1':>7}"
    return (f"  {label:<16} {t.cycles:>12,} {dram:>13,} {t.energy.total_pj / 1e6:>11,.1f} "
            f"{ratio} {len(groups):>6} {fused:>6} {t.macs:>13,} {wall:>6.1f} {diff}")


def estimate_vs_simulation(module: object, x: dict[str, np.ndarray], base: object,
                           objective: str) -> str:
    """The pass's estimates for the groups it forms against the simulated figures of
    the same layers (fused and layer by layer)."""
    from irflow.backends.sim import lower
    from irflow.backends.sim.machine import load_machine
    from irflow.passes.fuse_layers import FuseLayersPass

    machine = load_machine("default")
    low = lower(module, machine)  # type: ignore[arg-type]
    chosen = [d for d in FuseLayersPass(objective=objective).fuse(low, machine) if d.chosen]
    fused = simulate(low, x, numerics=False, progress=False)
    a = {s.name: s for s in base.report.layers}  # type: ignore[attr-defined]
    b = {s.name: s for s in fused.report.layers}
    labels = [lab for d in chosen for lab in d.labels]

    def dram(rows: dict, lab: str) -> int:
        return rows[lab].dram_bytes_read + rows[lab].dram_bytes_written

    est_u = sum(d.unfused.dram_bytes for d in chosen)
    est_f = sum(d.fused.dram_bytes for d in chosen)
    sim_u = sum(dram(a, lab) for lab in labels)
    sim_f = sum(dram(b, lab) for lab in labels)
    cyc_e = sum(d.fused.cycles for d in chosen) / max(sum(d.unfused.cycles for d in chosen), 1)
    cyc_s = sum(b[lab].cycles for lab in labels) / max(sum(a[lab].cycles for lab in labels), 1)
    return (f"  the {len(labels)} fused layers ({objective}): DRAM bytes fused / layer by layer "
            f"estimated {est_f:,.0f} / {est_u:,.0f} = {est_f / max(est_u, 1):.3f}, simulated "
            f"{sim_f:,} / {sim_u:,} = {sim_f / max(sim_u, 1):.3f}; cycles estimated "
            f"{cyc_e:.3f}, simulated {cyc_s:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--dtype", default="fp32", help="fp32, int8 or fp32,int8")
    ap.add_argument("--objectives", default=",".join(OBJECTIVES))
    ap.add_argument("--overlap", default="cache", choices=("cache", "recompute"),
                    help="rows two bands share: kept in a line buffer, or recomputed")
    ap.add_argument("--numerics", action="store_true",
                    help="compute the values too and print the largest output difference")
    args = ap.parse_args()
    print("default machine (256 KiB cache, 32 B/cycle DRAM); cycles, DRAM bytes read + "
          "written, energy uJ; ratios to layer by layer; groups formed, layers in them")
    head = (f"  {'run':<16} {'cycles':>12} {'DRAM B':>13} {'energy uJ':>11} {'cyc':>7} "
            f"{'DRAM':>7} {'energy':>7} {'groups':>6} {'layers':>6} {'MACs':>13} "
            f"{'wall s':>6} max |diff|")
    for dtype in args.dtype.split(","):
        for name in args.models.split(","):
            module, x = compile_model(name, dtype)
            print(f"{name} {dtype}")
            print(head)
            t0 = time.perf_counter()
            base = simulate(module, x, numerics=args.numerics, progress=False)
            print(row("layer by layer", base, None, time.perf_counter() - t0, ""))
            for obj in args.objectives.split(","):
                t0 = time.perf_counter()
                r = simulate(module, x, numerics=args.numerics, progress=False,
                             fuse_layers={"objective": obj, "overlap": args.overlap})
                wall = time.perf_counter() - t0
                diff = ""
                if args.numerics:
                    worst = max(float(np.abs(r.outputs[k] - base.outputs[k]).max())
                                for k in base.outputs)
                    diff = f"{worst:.2e}"
                print(row(f"fused {obj}", r, base, wall, diff))
            if "dram" in args.objectives.split(",") and args.overlap == "cache":
                print(estimate_vs_simulation(module, x, base, "dram"))


if __name__ == "__main__":
    main()
