"""irflow's mapping search against ZigZag 3.9.1 (LOMA) on the same machine and layers.

    .venv/bin/python bench/bench_zigzag.py                      # reference layers + ResNet-18
    .venv/bin/python bench/bench_zigzag.py --layers conv3x3,fc  # a subset, no ResNet-18
    .venv/bin/python bench/bench_zigzag.py --no-resnet18

ZigZag (PyPI `zigzag-dse`) runs in its own virtual environment, created on first use
under the user's cache folder (`$XDG_CACHE_HOME` or `~/.cache`, then
`irflow-bench/zigzag-venv`; `--venv` moves it). For every layer this script writes
ZigZag's accelerator, mapping and workload inputs from irflow's machine description
(`--hw`, default `default`) and the layer's `accel` iteration space, runs ZigZag's
stages the way its `api.get_hardware_performance_zigzag` chains them (spatial mapping
generation, LOMA temporal mapping search, cost model, minimal-latency reduction; its
save/visualisation stages and its inter-layer data-locality stages are left out: each
layer is costed alone, from DRAM to DRAM, as irflow's side is), and prints per layer:

- ZigZag: latency (`latency_total2`: compute, stalls, on/offloading, systolic drain),
  energy, DRAM bytes (its DRAM-level word accesses × 32 B), search time (wall);
- irflow (`int8` pipeline, `tile{search=latency}`: the fewest estimated cycles, ties
  within the pass's 1 % band broken by energy; `--tie 0.001` narrows the band to ZigZag's
  minimal-latency reduction): the chosen mapping's estimated
  cycles, the layer simulated alone (`backends/sim/isolated.py` `simulate_alone`: the
  layer's trace on a cold cache, flushed), its DRAM bytes and energy, and the search
  time (wall of the `tile` pass over the module);
- irflow *matched* (column `matched`, `m/ZZ`): the same trace under ZigZag's own
  assumptions, each one a documented simulator option (docs/simulator.md §2.6): no DRAM
  latency (ZigZag has none), a memory phase's cache hits overlapping its DRAM transfers
  (ZigZag's memory ports work in parallel), and the layer's output written back under
  compute once final (ZigZag offloads outputs during compute and exposes only the last
  period's; irflow's write-back cache otherwise holds them dirty and flushes at the end).

Matched assumptions (the int8 layers irflow compiles, its default machine; the
full list, and what cannot match, in docs/tiling.md "Against ZigZag"):

- PE array: 16x16, 1 int8 MAC per PE and cycle, weight-stationary as irflow's ws
  (rows = c·r·s or k, cols = f or n): ZigZag's spatial hints D1 = K, D2 = C·FY·FX
  (mixed unrolling on), both dimensions systolic (one drain per layer).
- Stationary registers: 2 words per PE (`rf_w`), written at 1 bit/cycle per PE, so the
  256 PEs take the 32 B/cycle weight load path. Partial sums: 32 bit, one 2-word
  accumulator per column (`rf_o`, served along D2).
- irflow's stream buffers (one step's tiles, double-buffered, no energy) as `sbuf`, a
  level of the cache's capacity (ZigZag double-buffers a level used up to 50 %, the
  same 2 x working set <= cache rule), one port per stream (ZigZag time-shares a port
  in whole cycles).
- The cache as a scratchpad (`cache`) of 256 KiB with one 64 B/cycle port, 400 pJ per
  64 B access (irflow's line access); DRAM one 32 B/cycle port at 160 pJ/B; MACs at
  0.23 pJ; registers free. Operand widths from irflow's layer: an int8 conv/matmul
  whose result irflow stores as int32 (requantized by the next layer) is given to
  ZigZag with O_final = 32 bit.
- ZigZag has no cache model (no lines, write-allocate, write-back flush, set
  conflicts) and no DRAM latency; it unrolls spatially by divisors of the array side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import venv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench modules
from reference_layers import Layer, layer_module  # noqa: E402

ZIGZAG = "zigzag-dse==3.9.1"
EXTRA = "six==1.17.0"
"""ZigZag's `parser/upgraded_validator.py` imports `six`, which its wheel does not declare."""


LAYERS = {
    "conv3x3": Layer("conv3x3 56² 64->64", "conv", (1, 64, 56, 56), (64, 64, 3, 3), 1, 1),
    "conv1x1": Layer("conv1x1 14² 256->256", "conv", (1, 256, 14, 14), (256, 256, 1, 1)),
    "depthwise": Layer("depthwise3x3 56² x144", "conv", (1, 144, 56, 56), (144, 1, 3, 3),
                       1, 1, 144),
    "fc": Layer("FC 512->1000 batch 1", "linear", (1, 512), (1000, 512)),
    "gemm": Layer("GEMM 128x768 · 768x768", "matmul", (128, 768), (768, 768)),
}

DRIVER = textwrap.dedent('''
    import json, logging, sys, time
    logging.disable(logging.CRITICAL)
    from zigzag.mapping.temporal_mapping import TemporalMappingType
    from zigzag.stages.evaluation.cost_model_evaluation import CostModelStage
    from zigzag.stages.main import MainStage
    from zigzag.stages.mapping.spatial_mapping_generation import SpatialMappingGeneratorStage
    from zigzag.stages.mapping.temporal_mapping_generator_stage import (
        TemporalMappingGeneratorStage)
    from zigzag.stages.parser.accelerator_parser import AcceleratorParserStage
    from zigzag.stages.parser.workload_parser import WorkloadParserStage
    from zigzag.stages.results.reduce_stages import MinimalLatencyStage, SumStage
    from zigzag.stages.workload_iterator import WorkloadStage
    from zigzag.hardware.architecture.memory_port import DataDirection

    job = json.load(open(sys.argv[1]))
    t0 = time.perf_counter()
    stages = [WorkloadParserStage, AcceleratorParserStage, SumStage, WorkloadStage,
              MinimalLatencyStage, SpatialMappingGeneratorStage, MinimalLatencyStage,
              TemporalMappingGeneratorStage, CostModelStage]
    main = MainStage(stages, accelerator=job["accelerator"], workload=job["workload"],
                     mapping=job["mapping"], loma_lpf_limit=job["lpf_limit"],
                     loma_show_progress_bar=False, nb_mappings_generated=3,
                     enable_mix_spatial_mapping_generation=True,
                     access_same_data_considered_as_no_access=True,
                     temporal_mapping_type=TemporalMappingType.UNEVEN)
    (total, per_layer), = main.run()
    wall = time.perf_counter() - t0
    out = []
    for cme, _ in per_layer:
        dram = 0.0
        for op, accesses in cme.memory_word_access.items():
            top = accesses[-1]  # the operand's highest level: DRAM
            dram += (top.get(DataDirection.RD_OUT_TO_LOW)
                     + top.get(DataDirection.WR_IN_BY_LOW)) * job["dram_word_bytes"]
        out.append({"name": cme.layer.name, "latency": float(cme.latency_total2),
                    "energy_pj": float(cme.energy_total), "dram_bytes": dram,
                    "ideal": float(cme.ideal_temporal_cycle),
                    "stall": float(cme.stall_slack_comb),
                    "onload": float(cme.data_onloading_cycle),
                    "offload": float(cme.data_offloading_cycle),
                    "spatial": str(cme.layer.spatial_mapping),
                    "temporal": str(cme.temporal_mapping)})
    print(json.dumps({"wall": wall, "layers": out}))
''')


def venv_path() -> Path:
    """`$XDG_CACHE_HOME/irflow-bench/zigzag-venv` (default `~/.cache`): outside the repo."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "irflow-bench" / "zigzag-venv"


def zigzag_python(where: Path) -> Path:
    """The ZigZag venv's interpreter, creating the venv on first use."""
    py = where / "bin" / "python"
    probe = [str(py), "-c", "import importlib.metadata as m; "
             "assert m.version('zigzag-dse') == '3.9.1'; import six"]
    if py.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return py
    print(f"creating the ZigZag environment ({ZIGZAG}) in the user cache ...", flush=True)
    venv.create(where, with_pip=True, clear=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", ZIGZAG, EXTRA], check=True)
    return py


# --- ZigZag inputs from irflow's machine and layer spaces -------------------------------

def accelerator(machine) -> dict:  # noqa: ANN001
    """ZigZag's accelerator description of `machine` at int8 (module docstring table)."""
    pe, cache, dram = machine.pe_array, machine.cache, machine.dram
    psum = pe.psum_bits.int8
    per_pe_load = max(1, round(pe.load_bytes_per_cycle * 8 / (pe.rows * pe.cols)))
    hit_bits = int(cache.hit_bytes_per_cycle * 8)
    dram_bits = int(dram.bytes_per_cycle * 8)
    load_bits = int(pe.load_bytes_per_cycle * 8)
    line_pj = machine.cache_line_pj * hit_bits / (cache.line_bytes * 8)
    every = ["I1, tl", "I1, fh", "I2, tl", "I2, fh", "O, tl", "O, th", "O, fh", "O, fl"]

    def port(name: str, kind: str, bits: int, alloc: list[str]) -> dict:
        return {"name": name, "type": kind, "bandwidth_min": bits, "bandwidth_max": bits,
                "allocation": alloc}

    return {
        "name": f"irflow_{machine.name}",
        "memories": {
            "rf_w": {"size": pe.stationary_words_per_pe * 8, "r_cost": 0.0, "w_cost": 0.0,
                     "area": 0.0, "latency": 1, "operands": ["I2"],
                     "ports": [port("r_port_1", "read", 8, ["I2, tl"]),
                               port("w_port_1", "write", per_pe_load, ["I2, fh"])],
                     "served_dimensions": []},
            "rf_o": {"size": pe.psum_words_per_pe * psum, "r_cost": 0.0, "w_cost": 0.0,
                     "area": 0.0, "latency": 1, "operands": ["O"],
                     "ports": [port("r_port_1", "read", psum, ["O, tl"]),
                               port("r_port_2", "read", psum, ["O, th"]),
                               port("w_port_1", "write", psum, ["O, fh"]),
                               port("w_port_2", "write", psum, ["O, fl"])],
                     # one accumulator per column: partial sums flow down the rows
                     "served_dimensions": ["D2"]},
            # irflow's stream buffers: one step's tiles, double-buffered (2 x working set
            # <= the cache: ZigZag's own double-buffer rule at 50 % of this capacity), fed
            # to the array at its rate (a port per stream: ZigZag time-shares a port in
            # whole cycles), no energy charged; filled from the cache
            "sbuf": {"size": cache.size_bytes * 8, "r_cost": 0.0, "w_cost": 0.0,
                     "area": 0.0, "latency": 1, "operands": ["I1", "I2", "O"],
                     "ports": [port("r_port_1", "read", pe.rows * 8, ["I1, tl"]),
                               port("r_port_2", "read", load_bits, ["I2, tl"]),
                               port("r_port_3", "read", pe.cols * psum, ["O, th"]),
                               port("w_port_1", "write", pe.cols * psum, ["O, fl"]),
                               port("w_port_2", "write", hit_bits, ["I1, fh", "I2, fh",
                                                                    "O, fh"]),
                               port("r_port_4", "read", hit_bits, ["O, tl"])],
                     "served_dimensions": ["D1", "D2"]},
            "cache": {"size": cache.size_bytes * 8, "r_cost": line_pj, "w_cost": line_pj,
                      "area": 0.0, "latency": 1, "operands": ["I1", "I2", "O"],
                      "ports": [port("rw_port_1", "read_write", hit_bits, every)],
                      "served_dimensions": ["D1", "D2"]},
            "dram": {"size": 10**12, "r_cost": machine.dram_pj_per_byte * dram_bits / 8,
                     "w_cost": machine.dram_pj_per_byte * dram_bits / 8, "area": 0.0,
                     "latency": 1, "operands": ["I1", "I2", "O"],
                     "ports": [port("rw_port_1", "read_write", dram_bits, every)],
                     "served_dimensions": ["D1", "D2"]},
        },
        "operational_array": {"unit_energy": machine.energy.mac_pj.int8, "unit_area": 1.0,
                              "dimensions": ["D1", "D2"], "sizes": [pe.cols, pe.rows],
                              "systolic_dimensions": ["D1", "D2"]},
    }


def zigzag_layer(space, name: str, ident: int,  # noqa: ANN001
                 bits: tuple[int, int, int]) -> tuple[dict, dict]:
    """ZigZag's workload entry and spatial-mapping hint for an `accel` layer space
    (conv2d: B K G OX OY C FX FY as ZigZag's ONNX conv parser writes them; matmul and
    linear: its Gemm form); `bits`: input, weight and stored-output widths."""
    ext = space.extents
    prec = {"I": bits[0], "W": bits[1], "O": 32, "O_final": bits[2]}
    src = {"I": ident, "W": ident}
    if space.kind == "nn.conv2d":
        x = space.operands[0]
        kh, kw = space.operands[1].view[3], space.operands[1].view[4]
        ay, ax = x.axes[3], x.axes[4]
        ih, iw = x.view[3], x.view[4]
        pads = [[a.offset, (o - 1) * a.stride + k - a.offset - size]
                for a, o, k, size in ((ax, ext["ow"], kw, iw), (ay, ext["oh"], kh, ih))]
        layer = {"id": ident, "name": name, "operator_type": "Conv",
                 "equation": "O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]",
                 "dimension_relations": [f"ix={ax.stride}*ox+1*fx",
                                         f"iy={ay.stride}*oy+1*fy"],
                 "loop_dims": ["B", "K", "G", "OX", "OY", "C", "FX", "FY"],
                 "loop_sizes": [ext["n"], ext["f"], ext["g"], ext["ow"], ext["oh"],
                                ext["c"], kw, kh],
                 "operand_precision": prec, "operand_source": src,
                 "pr_loop_dims": ["IX", "IY"], "pr_loop_sizes": [iw, ih],
                 "padding": [[max(p, 0) for p in pad] for pad in pads]}
        hint = {"D1": ["K"], "D2": ["C", "FX", "FY"]}
    else:  # b m n k: O[d][k] += I[d][c] * W[c][k] with D = b·m rows, C = k, K = n
        layer = {"id": ident, "name": name, "operator_type": "Gemm",
                 "equation": "O[d][k]+=I[d][c]*W[c][k]", "dimension_relations": [],
                 "loop_dims": ["C", "D", "K"],
                 "loop_sizes": [ext["k"], ext.get("b", 1) * ext["m"], ext["n"]],
                 "operand_precision": prec, "operand_source": src}
        hint = {"D1": ["K"], "D2": ["C"]}
    return layer, hint


def run_zigzag(py: Path, machine, layers: list[IrflowLayer],  # noqa: ANN001
               lpf_limit: int) -> dict:
    """ZigZag on irflow's PE layers as one workload; its JSON result."""
    workload, mapping = [], []
    for i, r in enumerate(layers):
        label = r.label
        layer, hint = zigzag_layer(r.space, label, i, r.bits)
        workload.append(layer)
        mapping.append({"name": label, "spatial_mapping_hint": hint,
                        "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"}})
    mapping.append({"name": "default", "spatial_mapping_hint": {"D1": ["K"], "D2": ["C"]},
                    "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"}})
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(os.environ.get("IRFLOW_ZIGZAG_KEEP") or tmp)
        (t / "hw.yaml").write_text(json.dumps(accelerator(machine), indent=1))
        (t / "mapping.yaml").write_text(json.dumps(mapping, indent=1))
        (t / "driver.py").write_text(DRIVER)  # (JSON is YAML: ZigZag reads both)
        (t / "job.json").write_text(json.dumps({
            "accelerator": str(t / "hw.yaml"), "mapping": str(t / "mapping.yaml"),
            "workload": workload, "lpf_limit": lpf_limit,
            "dram_word_bytes": machine.dram.bytes_per_cycle}))
        run = subprocess.run([str(py), str(t / "driver.py"), str(t / "job.json")],
                             capture_output=True, text=True, cwd=t)
    if run.returncode:
        raise RuntimeError(f"ZigZag failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


# --- irflow's side --------------------------------------------------------------------

def int8(module, inputs=None):  # noqa: ANN001, ANN201
    """`module` through the `int8` pipeline (calibrated on random inputs), and inputs
    (seeded random ones unless given)."""
    from irflow.graph import input_names, main_func
    from irflow.passes.calibrate import set_calibration_data
    from irflow.pipeline import run_pipeline

    rng = np.random.default_rng(0)
    if inputs is None:
        fn = main_func(module)
        inputs = {n: rng.standard_normal(a.type.get_shape()).astype(np.float32)
                  for n, a in zip(input_names(fn), fn.body.blocks[0].args)}
    set_calibration_data(module, [{n: rng.standard_normal(v.shape).astype(np.float32)
                                   for n, v in inputs.items()} for _ in range(2)])
    run_pipeline(module, "int8")
    return module, inputs


@dataclass(frozen=True)
class IrflowLayer:
    label: str
    space: object
    est_cycles: float
    cycles: int
    dram_bytes: int
    energy_pj: float
    flush_cycles: int  # of `cycles`: writing back what the layer left dirty
    matched: int  # cycles under ZigZag's assumptions (module docstring)
    mapping: str
    bits: tuple[int, int, int]  # input, weight, stored output


def matched_machine(machine):  # noqa: ANN001, ANN201
    """`machine` without DRAM latency (ZigZag models none)."""
    import dataclasses

    return dataclasses.replace(machine,
                               dram=dataclasses.replace(machine.dram, latency_cycles=0))


def tile_pass(tie: float | None) -> str:
    """irflow's searched tiling: `tile{search=latency}`, with `tie` if given."""
    return "tile{search=latency" + ("" if tie is None else f" tie={tie}") + "}"


def run_irflow(module, inputs, machine,  # noqa: ANN001
               tie: float | None) -> tuple[list[IrflowLayer], float]:
    """Search every PE layer (`tile{search=latency}`), then simulate each alone: as
    irflow's simulator runs it, and under ZigZag's assumptions (`matched`)."""
    from irflow.backends.sim import simulate
    from irflow.backends.sim.isolated import simulate_alone
    from irflow.graph import main_func
    from irflow.passes import tile_search as ts
    from irflow.pipeline import run_pipeline

    t0 = time.perf_counter()
    run_pipeline(module, tile_pass(tie))
    search_s = time.perf_counter() - t0
    # each layer as ZigZag costs it: alone and unfused (its epilogue layers separate)
    traces = {t.name: t for t in simulate(module, inputs, numerics=False, progress=False,
                                          epilogue=False).traces}
    zz = matched_machine(machine)
    out = []
    for label, e in ts.chosen_estimates(main_func(module), machine).items():
        alone = simulate_alone(traces[label], machine)
        matched = simulate_alone(traces[label], zz, drain=True, overlap_ports=True)
        tiles = ",".join(f"{d}={e.nest.tile[d]}" for d in e.nest.order
                         if e.space.extents[d] > 1)
        bits = tuple(int(8 * b) for b in (e.itemsizes[0], e.itemsizes[1], e.itemsizes[-1]))
        out.append(IrflowLayer(label, e.space, float(e.scores.cycles[0]), alone.cycles,
                               alone.dram_bytes, alone.energy_pj, alone.flush.cycles,
                               matched.cycles, tiles, bits))
    return out, search_s


# --- the table ------------------------------------------------------------------------

HEAD = (f"{'layer':<26} {'ZZ cycles':>12} {'ZZ uJ':>8} {'ZZ DRAM B':>11} {'ZZ s':>7} | "
        f"{'irflow est':>12} {'irflow sim':>12} {'flush':>6} {'sim/ZZ':>6} {'matched':>12} "
        f"{'m/ZZ':>6} {'DRAM B':>11} {'uJ':>8} {'s':>6}")


def row(name: str, zz: dict, zz_s: float, ir: list[IrflowLayer], ir_s: float) -> str:
    est = sum(r.est_cycles for r in ir)
    cyc = sum(r.cycles for r in ir)
    flush = sum(r.flush_cycles for r in ir)
    matched = sum(r.matched for r in ir)
    return (f"{name:<26} {zz['latency']:>12,.0f} {zz['energy_pj'] / 1e6:>8.2f} "
            f"{zz['dram_bytes']:>11,.0f} {zz_s:>7.1f} | {est:>12,.0f} {cyc:>12,} "
            f"{flush:>6,} {cyc / zz['latency']:>6.3f} {matched:>12,} "
            f"{matched / zz['latency']:>6.3f} "
            f"{sum(r.dram_bytes for r in ir):>11,} "
            f"{sum(r.energy_pj for r in ir) / 1e6:>8.2f} {ir_s:>6.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", default=",".join(LAYERS),
                    help="reference layers: " + ", ".join(LAYERS))
    ap.add_argument("--no-resnet18", action="store_true", help="skip ResNet-18 whole")
    ap.add_argument("--hw", default="default", help="irflow machine (preset or .toml)")
    ap.add_argument("--lpf-limit", type=int, default=6,
                    help="ZigZag LOMA's lpf_limit (its API default: 6)")
    ap.add_argument("--venv", type=Path, default=None,
                    help="ZigZag's virtual environment (default: the user cache)")
    ap.add_argument("--tie", type=float, default=None,
                    help="irflow's tie band (tile's `tie`; default the pass's, 1 %%; 0.001: "
                         "the fewest estimated cycles, as ZigZag's minimal-latency reduction)")
    ap.add_argument("--verbose", action="store_true", help="print both mappings per layer")
    args = ap.parse_args(argv)
    from irflow.backends.sim.machine import load_machine

    py = zigzag_python(args.venv or venv_path())
    machine = load_machine(args.hw)
    print(f"ZigZag 3.9.1 (LOMA, lpf_limit {args.lpf_limit}, latency) vs irflow "
          f"{tile_pass(args.tie)}, int8, machine {machine.name!r}; load "
          f"average {os.getloadavg()[0]:.1f}")
    print(HEAD)
    names = [n for n in args.layers.split(",") if n]
    for name in names:
        layer = LAYERS[name]
        module, inputs = int8(*layer_module(layer))
        ir, ir_s = run_irflow(module, inputs, machine, args.tie)
        res = run_zigzag(py, machine, ir, args.lpf_limit)
        print(row(layer.name, res["layers"][0], res["wall"], ir, ir_s), flush=True)
        if args.verbose:
            z = res["layers"][0]
            print(f"    zigzag: ideal {z['ideal']:,.0f} + stall {z['stall']:,.0f} + onload "
                  f"{z['onload']:,.0f} + offload {z['offload']:,.0f}; {z['spatial']} | "
                  f"{z['temporal']}")
            print(f"    irflow: {ir[0].mapping}")
    if not args.no_resnet18:
        from irflow import zoo

        module, inputs = int8(zoo.load("resnet18", seed=0))
        ir, ir_s = run_irflow(module, inputs, machine, args.tie)
        res = run_zigzag(py, machine, ir, args.lpf_limit)
        by_name = {z["name"]: z for z in res["layers"]}
        res["layers"] = [by_name[r.label] for r in ir]  # ZigZag's order is its graph's
        total = {k: sum(z[k] for z in res["layers"]) for k in ("latency", "energy_pj",
                                                               "dram_bytes")}
        if args.verbose:
            for z, r in zip(res["layers"], ir):
                print(row(f"  {r.label}"[:26], z, 0.0, [r], 0.0))
        print(row(f"ResNet-18 ({len(ir)} PE layers)", total, res["wall"], ir, ir_s))
        worse = [r.label for z, r in zip(res["layers"], ir) if r.cycles > z["latency"]]
        print(f"ResNet-18 layers where irflow's simulated cycles exceed ZigZag's: "
              f"{len(worse)} of {len(ir)} {worse}")
        worse = [r.label for z, r in zip(res["layers"], ir) if r.matched > z["latency"]]
        print(f"... matched (no DRAM latency, ports overlapped, output drained under "
              f"compute): {len(worse)} of {len(ir)} {worse}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
