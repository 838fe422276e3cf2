"""irflow against Stream (stream-dse 2.1.1) on a whole CNN: layer by layer and fused.

    .venv/bin/python bench/bench_stream.py                          # ResNet-18
    .venv/bin/python bench/bench_stream.py --model mobilenetv2 --time-limit 20

Stream (PyPI `stream-dse`, which needs Python >= 3.12) runs in its own virtual
environment, created on first use under the user's cache folder (`$XDG_CACHE_HOME` or
`~/.cache`, then `irflow-bench/stream-venv`; `--venv` moves it) with a Python 3.12
interpreter found on PATH (`python3.12`, or pyenv's 3.12 when its shim has none
selected; `--python` names one). This script writes Stream's inputs from irflow's:

- hardware: a system of one compute core with irflow's PE array, stationary registers,
  stream buffers and cache exactly as `bench_zigzag.py` describes them to ZigZag (the
  same function), Stream's example SIMD and pooling cores for the layers irflow runs on
  its vector unit, and an off-chip core with irflow's DRAM (bandwidth and pJ/B), all on
  one bus of the DRAM's bandwidth;
- workload: the zoo model after `fold-batchnorm`, exported to ONNX by irflow's exporter,
  its float tensors retyped int8 (Stream takes a tensor's width from its element type;
  the values do not matter to it) and ReLU6 written as Relu (Stream parses no Clip);

then runs `stream.api.evaluate_mapping` twice under a per-solve time limit (its MILP
allocation through OR-Tools): `fusion_cut_points = "per-layer"` (every layer its own
group) and Stream's own fusion groups (its mapping generator's cuts). It prints Stream's
cycles (the sum of its groups' estimated cycles), its off-chip bytes (its memory-access
estimate's port-wide transfers at the off-chip core), its energy (the allocation's
`energy` report, a family added to the default ones: it adds no constraint) and its wall
time, beside irflow's `int8` pipeline with
`tile{search=latency}` simulated as a whole network (cycles, DRAM bytes, energy). When
`irflow.passes.fuse_layers` exists (the `fuse-layers` pass, issue 10 item 3) a fused
irflow column is added (`fuse-layers` before `tile`); the layer-by-layer comparison
works without it. What does not match is in docs/tiling.md "Against Stream".
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench modules
import bench_zigzag as bz  # noqa: E402

STREAM = "stream-dse==2.1.1"
EXTRA = "six==1.17.0"  # zigzag-dse (a dependency) imports it without declaring it
PY = "3.12"

DRIVER = textwrap.dedent('''
    import json, logging, shutil, sys, time
    from importlib.resources import files
    logging.disable(logging.CRITICAL)
    from stream.api import SolveOptions, default_families, evaluate_mapping

    import yaml

    job = json.load(open(sys.argv[1]))
    cores = files("stream") / "inputs" / "examples" / "hardware" / "cores"
    for name in ("simd.yaml", "pooling.yaml"):
        shutil.copy(str(cores / name), job["dir"] + "/cores/" + name)
    system = job["system"]
    system["cores"] = {int(k): v for k, v in system["cores"].items()}  # JSON keys are text
    for name, doc in (("hw.yaml", system), ("cores/irflow_pe.yaml", job["pe"]),
                      ("cores/offchip.yaml", job["offchip_core"])):
        with open(job["dir"] + "/" + name, "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
    def energy(tree):  # the solve's EnergyIR (the `energy` family's report), anywhere
        if isinstance(tree, dict):
            if "total_pj" in tree and "per_iteration_pj" in tree:
                return tree["total_pj"]
            return next((e for e in map(energy, tree.values()) if e is not None), None)
        if isinstance(tree, list):
            return next((e for e in map(energy, tree) if e is not None), None)
        return None

    families = tuple(default_families(job["hw"]))
    if "energy" not in families:  # off by default: it adds no constraint, only the report
        families += ("energy",)
    out = {}
    for mode in job["modes"]:
        opts = SolveOptions(time_limit_s=job["time_limit"], artifacts=False, families=families,
                            stage_options={"fusion_cut_points": "per-layer"}
                            if mode == "per-layer" else {})
        t0 = time.perf_counter()
        try:
            est = evaluate_mapping(job["hw"], job["onnx"], job["dir"] + "/out-" + mode,
                                   options=opts)
        except Exception as e:  # an infeasible allocation or a parser gap: say which
            out[mode] = {"error": f"{type(e).__name__}: {str(e)[:300]}",
                         "wall": time.perf_counter() - t0}
            continue
        wall = time.perf_counter() - t0
        dram = 0.0  # its count of port-wide transfers at the off-chip core, in bytes
        accesses = est.context.get("group_memory_accesses") or {}
        for group in accesses.values():
            for core in (group or {}).get("cores", []):
                if core.get("is_offchip"):
                    dram += (core["read"] * core["read_bandwidth"]
                             + core["write"] * core["write_bandwidth"]) / 8
        pj = [energy(g) for g in (est.context.get("group_allocations") or {}).values()]
        out[mode] = {"cycles": float(est.cycles), "groups": len(est.group_cycles),
                     "dram_bytes": dram, "wall": wall,
                     "energy_uj": sum(pj) / 1e6 if pj and None not in pj else None}
    print(json.dumps(out))
''')


# --- the environment -----------------------------------------------------------------

def venv_path() -> Path:
    """`$XDG_CACHE_HOME/irflow-bench/stream-venv` (default `~/.cache`): outside the repo."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "irflow-bench" / "stream-venv"


def _runs(python: str) -> bool:
    want = tuple(int(x) for x in PY.split("."))
    probe = [python, "-c", f"import sys; assert sys.version_info[:2] == {want}"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def find_python(explicit: str | None = None) -> str:
    """A Python 3.12 interpreter: `explicit`, else `python3.12` on PATH, else pyenv's."""
    if explicit:
        if not _runs(explicit):
            raise SystemExit(f"--python {explicit} is not a working Python {PY}")
        return explicit
    found = shutil.which(f"python{PY}")
    if found and _runs(found):
        return found
    pyenv = shutil.which("pyenv")
    if pyenv:  # a pyenv shim with no 3.12 selected: ask pyenv for its 3.12 install
        versions = subprocess.run([pyenv, "versions", "--bare"], capture_output=True,
                                  text=True).stdout.split()
        for v in sorted((v for v in versions if v.startswith(PY + ".")), reverse=True):
            prefix = subprocess.run([pyenv, "prefix", v], capture_output=True,
                                    text=True).stdout.strip()
            candidate = str(Path(prefix) / "bin" / f"python{PY}")
            if prefix and _runs(candidate):
                return candidate
    raise SystemExit(f"Stream (stream-dse) needs Python >= {PY}: no working python{PY} on "
                     "PATH (nor in pyenv); install one or pass --python")


def stream_python(where: Path, interpreter: str | None) -> Path:
    """The Stream venv's interpreter, creating the venv on first use."""
    py = where / "bin" / "python"
    probe = [str(py), "-c", "import importlib.metadata as m; "
             f"assert m.version('stream-dse') == '{STREAM.split('==')[1]}'; import six"]
    if py.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return py
    base = find_python(interpreter)
    print(f"creating the Stream environment ({STREAM}, {base}) in the user cache ...",
          flush=True)
    subprocess.run([base, "-m", "venv", "--clear", str(where)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", STREAM, EXTRA], check=True)
    return py


# --- Stream's inputs ---------------------------------------------------------------

def pe_core(machine) -> dict:  # noqa: ANN001
    """irflow's PE array as a Stream compute core: ZigZag's description of it
    (`bench_zigzag.accelerator`) without the DRAM level, which is the off-chip core's."""
    core = bz.accelerator(machine)
    del core["memories"]["dram"]
    core.update(name="irflow_pe", type="zigzag.compute",
                operand_precision={"input": "int8", "accumulator": "int32"},
                operator_types=["Conv", "Gemm", "MatMul"])
    return core


def offchip_core(machine) -> dict:  # noqa: ANN001
    """irflow's DRAM as Stream's off-chip core: one port of its bandwidth, its pJ/B."""
    bits = int(machine.dram.bytes_per_cycle * 8)
    pj = machine.dram_pj_per_byte * bits / 8
    every = ["I1, fh", "I1, tl", "I2, fh", "I2, tl", "O, fh", "O, tl", "O, fl", "O, th"]
    return {"name": "offchip", "type": "zigzag.offchip",
            "memories": {"dram": {
                "size": 10**12, "r_cost": pj, "w_cost": pj, "area": 0, "latency": 1,
                "operands": ["I1", "I2", "O"],
                "ports": [{"name": "rw_port_1", "type": "read_write", "bandwidth_min": bits,
                           "bandwidth_max": bits, "allocation": every}],
                "served_dimensions": ["D1", "D2"]}},
            "operational_array": {"unit_energy": 0, "unit_area": 0,
                                  "dimensions": ["D1", "D2"], "sizes": [0, 0]}}


def system(machine) -> dict:  # noqa: ANN001
    """The system: PE core 0, SIMD 1, pooling 2 (Stream's examples), off-chip 3; one bus
    of the DRAM's bandwidth, on-chip links at the cache's hit bandwidth."""
    hit = int(machine.cache.hit_bytes_per_cycle * 8)
    return {"name": f"irflow_{machine.name}",
            "cores": {0: "cores/irflow_pe.yaml", 1: "cores/simd.yaml",
                      2: "cores/pooling.yaml", 3: "cores/offchip.yaml"},
            "offchip_core_id": 3, "unit_energy_cost": 0,
            "core_connectivity": [
                {"type": "link", "cores": [0, 1], "bandwidth": hit},
                {"type": "link", "cores": [0, 2], "bandwidth": hit},
                {"type": "bus", "cores": [0, 1, 2, 3],
                 "bandwidth": int(machine.dram.bytes_per_cycle * 8)}]}


def write_onnx(model: str, path: Path, retype: bool = True) -> None:
    """The zoo model with batchnorm folded (Stream has no BatchNormalization), as ONNX
    whose float tensors are retyped int8: Stream takes a tensor's width from its ONNX
    element type, and irflow's side runs int8 (the values are irrelevant to Stream)."""
    import onnx
    from onnx import TensorProto, numpy_helper

    from irflow import zoo
    from irflow.exporters.onnx import export_onnx
    from irflow.pipeline import run_pipeline

    module = zoo.load(model, seed=0)
    run_pipeline(module, "fold-batchnorm")
    proto = export_onnx(module)
    g = proto.graph
    for vi in (*g.input, *g.output, *g.value_info) if retype else ():
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            vi.type.tensor_type.elem_type = TensorProto.INT8
    for i, init in enumerate(g.initializer):
        if retype and init.data_type == TensorProto.FLOAT:
            g.initializer[i].CopyFrom(numpy_helper.from_array(
                np.zeros(tuple(init.dims), np.int8), init.name))
    # Stream parses neither Clip nor Constant: ReLU6 (MobileNetV2) becomes a Relu, the
    # same one-operation-per-element work on its SIMD core, without its bound constants
    nodes = [n for n in g.node if n.op_type != "Constant"]
    for n in nodes:
        if n.op_type == "Clip":
            n.op_type = "Relu"
            del n.input[1:]
    del g.node[:]
    g.node.extend(nodes)
    onnx.save(proto, path)


def run_stream(py: Path, machine, model: str, modes: list[str],  # noqa: ANN001
               time_limit: float, timeout: float, retype: bool = True) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(os.environ.get("IRFLOW_STREAM_KEEP") or tmp)
        (t / "cores").mkdir(exist_ok=True)
        write_onnx(model, t / "model.onnx", retype)
        (t / "driver.py").write_text(DRIVER)
        out = {}
        for mode in modes:  # one process each, so a run over the cap loses only itself
            (t / "job.json").write_text(json.dumps({
                "system": system(machine), "pe": pe_core(machine),
                "offchip_core": offchip_core(machine),
                "hw": str(t / "hw.yaml"), "onnx": str(t / "model.onnx"), "dir": str(t),
                "modes": [mode], "time_limit": time_limit, "offchip": 3}))
            try:
                run = subprocess.run([str(py), str(t / "driver.py"), str(t / "job.json")],
                                     capture_output=True, text=True, cwd=t, timeout=timeout)
            except subprocess.TimeoutExpired:
                out[mode] = {"error": f"no result within {timeout:.0f} s", "wall": timeout}
                continue
            if run.returncode:
                raise RuntimeError(f"Stream failed:\n{run.stderr[-3000:]}")
            out.update(json.loads(run.stdout.strip().splitlines()[-1]))
    return out


# --- irflow's side ------------------------------------------------------------------

def fuse_layers_available() -> bool:
    return importlib.util.find_spec("irflow.passes.fuse_layers") is not None


def run_irflow(model: str, machine, fuse: str = "") -> dict:  # noqa: ANN001
    """The zoo model through `int8` and `tile{search=latency}`, simulated; with `fuse`
    (an objective), lowered and `fuse-layers{objective=fuse}` first (docs/accel.md §4b)."""
    from irflow import zoo
    from irflow.backends.sim import simulate
    from irflow.pipeline import run_pipeline

    module, inputs = bz.int8(zoo.load(model, seed=0))
    t0 = time.perf_counter()
    run_pipeline(module, "tile{search=latency}")
    if fuse:
        run_pipeline(module, "plan-memory,lower-to-accel,fuse-epilogue,"
                             f"fuse-layers{{objective={fuse}}}")
    search_s = time.perf_counter() - t0
    result = simulate(module, inputs, machine=machine, numerics=False, progress=False)
    tot = result.report.total
    return {"cycles": tot.cycles, "dram_bytes": tot.dram_bytes_read + tot.dram_bytes_written,
            "energy_uj": tot.energy.total_pj / 1e6, "search_s": search_s,
            "layers": len(result.report.layers)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="resnet18", help="zoo model (resnet18, mobilenetv2)")
    ap.add_argument("--hw", default="default", help="irflow machine (preset or .toml)")
    ap.add_argument("--modes", default="per-layer,fused",
                    help="Stream runs: per-layer, fused (its own fusion groups)")
    ap.add_argument("--time-limit", type=float, default=20.0,
                    help="Stream's per-solve time limit (s; its default is 300)")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="wall-clock cap on each of Stream's runs (s)")
    ap.add_argument("--fuse-objective", default="latency",
                    help="irflow's fuse-layers objective (latency, energy, edp, dram)")
    ap.add_argument("--float-workload", action="store_true",
                    help="keep the ONNX tensors fp32 (Stream then moves 32-bit data)")
    ap.add_argument("--venv", type=Path, default=None, help="Stream's virtual environment")
    ap.add_argument("--python", default=None, help="a Python 3.12 to create it with")
    args = ap.parse_args(argv)
    from irflow.backends.sim.machine import load_machine

    machine = load_machine(args.hw)
    py = stream_python(args.venv or venv_path(), args.python)
    modes = [m for m in args.modes.split(",") if m]
    print(f"Stream 2.1.1 ({', '.join(modes)}; solve limit {args.time_limit:g} s; "
          f"{'fp32' if args.float_workload else 'int8'} workload) vs irflow "
          f"int8 tile{{search=latency}}, {args.model}, machine {machine.name!r}; load "
          f"average {os.getloadavg()[0]:.1f}", flush=True)
    res = run_stream(py, machine, args.model, modes, args.time_limit, args.timeout,
                     not args.float_workload) if modes else {}
    for mode in modes:
        r = res[mode]
        if "error" in r:
            print(f"Stream {mode:<14} no result ({r['wall']:.0f} s): {r['error']}")
        else:
            uj = "-" if r["energy_uj"] is None else f"{r['energy_uj']:.1f}"
            print(f"Stream {mode:<14} {r['cycles']:>14,.0f} cycles  {r['groups']:>4} groups  "
                  f"DRAM {r['dram_bytes']:>12,.0f} B  {uj:>8} uJ  {r['wall']:.0f} s")
    runs = [("layer by layer", "")] + ([(f"fuse-layers {args.fuse_objective}",
                                          args.fuse_objective)]
                                        if fuse_layers_available() else [])
    for label, fuse in runs:
        try:
            r = run_irflow(args.model, machine, fuse)
        except Exception as e:  # noqa: BLE001 -- the fused pass is another helper's, in progress
            print(f"irflow {label:<22} failed: {type(e).__name__}: {e}")
            continue
        print(f"irflow {label:<22} {r['cycles']:>14,} cycles  {r['layers']:>4} layers  DRAM "
              f"{r['dram_bytes']:>12,} B  {r['energy_uj']:>8.1f} uJ  search {r['search_s']:.1f} s")
    if not fuse_layers_available():
        print("irflow fused: no fuse-layers pass in this tree (irflow/passes/fuse_layers.py)")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
