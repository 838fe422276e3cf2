"""The `irflow` command line, in the spirit of `mlir-opt` and friends.

    irflow run [MODEL]            compile with a pipeline and execute (simulator or reference)
    irflow opt INPUT -p PIPELINE  IR (or DSL/ONNX) in -> passes -> IR out
    irflow sim INPUT              simulate IR (lowered or high-level) and report
    irflow show MODEL             Graphviz picture of the dataflow graph
    irflow zoo                    list the built-in models
    irflow passes                 list the passes (with options) and named pipelines
    irflow export INPUT -o F      nn IR -> ONNX
    irflow train MODEL --data F   train the weights (irflow/train/cli.py)
    irflow search SPACE.toml      hardware-aware search on Dask (docs/search.md)

MODEL is a zoo name (`irflow zoo`) or a file (`.irf`, `.mlir`, `.onnx`). Errors print
one line (`file:line:col: error: ...`) and exit 1; `--debug` shows the traceback.

`irflow run -p int8` (or `w4a8`, `int8-sparse`) on the simulator also prints the
pipelines of `irflow.pipelines.COMPARISONS` side by side (fp32 first, with ratios);
`--compare A,B,...` picks the stages, `--no-compare` skips them (irflow/compare.py).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from irflow.diagnostics import IrflowError, did_you_mean
from irflow.dialects import nn

DEFAULT_PIPELINE = "default"


# --------------------------------------------------------------------------------------
# Shared argument handling


def parse_shape_flag(values: Sequence[str]) -> dict[str, list[int]]:
    """`--input-shape name=1x3x224x224` (repeatable) -> {name: [1, 3, 224, 224]}."""
    shapes: dict[str, list[int]] = {}
    for value in values:
        name, sep, dims = value.rpartition("=")
        try:
            if not sep or not name:
                raise ValueError
            shapes[name] = [int(d) for d in dims.lower().split("x")]
        except ValueError:
            raise IrflowError(
                f"--input-shape expects NAME=D0xD1x..., e.g. input=1x1x8x8, got '{value}'"
            ) from None
    return shapes


def load_model(spec: str | None, *, input_shapes: Sequence[str] = (), seed: int = 0,
               weights: str | None = None) -> tuple[ModuleOp, str]:
    """A model from a zoo name or a file path; returns (module, display name)."""
    from irflow import zoo
    from irflow.io import load

    spec = spec or zoo.DEFAULT_MODEL
    path = Path(spec)
    if spec not in zoo.names() and (path.suffix or path.exists()):
        return load(path, input_shapes=parse_shape_flag(input_shapes), weights=weights), path.name
    if spec in zoo.names():
        shapes = parse_shape_flag(input_shapes)
        return zoo.load(spec, seed=seed, input_shapes=shapes or None), spec
    hint = did_you_mean(spec, zoo.names(), clause=True)
    raise IrflowError(f"'{spec}' is neither a model file nor a zoo model"
                      + (hint or f" (zoo: {', '.join(zoo.names())})"))


def load_inputs(module: ModuleOp, path: str | None, seed: int) -> dict[str, np.ndarray]:
    """Inputs keyed by name from an `.npz` (checked), or seeded standard-normal arrays."""
    from irflow.inputs import random_inputs, read_inputs

    return random_inputs(module, seed) if path is None else read_inputs(module, path)


def save_arrays(path: str, arrays: Mapping[str, np.ndarray]) -> None:
    from irflow.fileio import write_output

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_output(path, buf.getvalue())


# Flags naming a file irflow writes, checked before any work (`check_output_flags`).
OUTPUT_FLAGS = {"output": "-o", "outputs": "--outputs", "report_file": "--report-file",
                "trace": "--trace", "weights_out": "--weights-out", "html": "--html"}
OUTPUT_DIR_COMMANDS = {"search"}  # whose -o names a folder


def check_output_flags(args: argparse.Namespace) -> None:
    """Every output path of the command can be written (its folder exists...), before
    any model is loaded or simulated; the error names the flag and the folder."""
    from irflow.fileio import check_output, check_output_dir

    for attr, flag in OUTPUT_FLAGS.items():
        if getattr(args, attr, None):
            if attr == "output" and args.command in OUTPUT_DIR_COMMANDS:
                check_output_dir(args.output, flag)
            else:
                check_output(getattr(args, attr), flag)
    if getattr(args, "dump_dir", None):
        check_output_dir(args.dump_dir, "--dump-dir")


def run_passes(module: ModuleOp, spec: str | None, args: argparse.Namespace) -> None:
    """Run pipeline `spec` on `module` with the IR-dump/timing flags of `args`."""
    from irflow.pipeline import PassManager, parse_pipeline

    for pass_spec in getattr(args, "load_pass", None) or ():
        from irflow.registry import load_pass

        load_pass(pass_spec)
    if not spec:
        return
    if getattr(args, "calib", None):
        from irflow.passes.calibrate import calibration_from_npz, set_calibration_data

        set_calibration_data(module, calibration_from_npz(module, args.calib))
    pm = PassManager(
        parse_pipeline(spec),
        verify_each=True,
        print_ir_after_all=getattr(args, "print_ir_after_all", False),
        print_ir_after=frozenset(getattr(args, "print_ir_after", None) or ()),
        print_ir_after_change=getattr(args, "print_ir_after_change", False),
        dump_dir=Path(args.dump_dir) if getattr(args, "dump_dir", None) else None,
        timing=getattr(args, "timing", False),
        generic=getattr(args, "generic", False),
        out=sys.stderr,
        instruments=_instruments(args),
        ir_diff=getattr(args, "ir_diff", False),
    )
    pm.run(module)


def _instruments(args: argparse.Namespace) -> list:
    """`--cost-after-each`: the per-pass cost table (irflow/pass_cost.py), on stderr."""
    if not getattr(args, "cost_after_each", False):
        return []
    from irflow.pass_cost import CostAfterEach

    return [CostAfterEach(getattr(args, "hw", None), seed=getattr(args, "seed", 0),
                          out=sys.stderr)]


# --------------------------------------------------------------------------------------
# Commands


def cmd_opt(args: argparse.Namespace) -> int:
    from irflow.io import check_weights_destination, print_module, save
    from irflow.weights import referenced_weights

    module, _ = load_model(args.input, input_shapes=args.input_shape, weights=args.weights)
    if args.output and not args.weights_out and referenced_weights(module):
        check_weights_destination(args.output, len(referenced_weights(module)))  # before work
    run_passes(module, args.pipeline, args)
    if args.output:
        save(module, args.output, generic=args.generic, debuginfo=args.debuginfo,
             weights=args.weights_out)
    else:
        sys.stdout.write(print_module(module, generic=args.generic, debuginfo=args.debuginfo))
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    from irflow import zoo

    width = max(len(n) for n in zoo.names())
    for name in zoo.names():
        default = "  (default)" if name == zoo.DEFAULT_MODEL else ""
        print(f"{name:<{width}}  {zoo.describe(name)}{default}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    stages = comparison_stages(args)  # checked before any work: a bad name fails at once
    if getattr(args, "html", None):
        from irflow.html_report import require_plotly

        require_plotly()  # a missing plotly fails before the simulation, not after it
    module, name = load_model(args.model, input_shapes=args.input_shape, seed=args.seed,
                              weights=args.weights)
    inputs = load_inputs(module, args.inputs, args.seed)
    if args.backend == "reference":
        run_passes(module, args.pipeline, args)
        outputs = run_reference(module, inputs, name)
    else:
        outputs = run_simulator(module, inputs, name, args, stages)
    if args.outputs:
        save_arrays(args.outputs, outputs)
    return 0


def run_reference(module: ModuleOp, inputs: dict[str, np.ndarray], name: str
                  ) -> dict[str, np.ndarray]:
    from irflow.analysis import op_macs
    from irflow.backends.reference import compile_function

    program = compile_function(module)
    timings: dict = {}
    start = time.perf_counter()
    outputs = program.run(inputs, timings=timings)
    total = time.perf_counter() - start
    print_op_table(name, timings, op_macs, total)
    for key, value in outputs.items():
        print(f"output {key}: shape {list(value.shape)}, {value.dtype}, "
              f"mean {float(np.mean(value)):.6g}, max {float(np.max(value)):.6g}")
    return outputs


def print_op_table(name: str, timings: Mapping, op_macs, total: float) -> None:  # noqa: ANN001
    from irflow.diagnostics import location_string

    rows = []
    for op, seconds in timings.items():
        shape = nn.format_shape(nn.shape_of(op.results[0])) if op.results else ""
        where = location_string(op.location) or ""
        rows.append((op.name, shape, op_macs(op), seconds * 1e3, where))
    print(f"model {name}: {len(rows)} ops on the reference executor")
    print(f"{'op':<20} {'result':<18} {'MACs':>14} {'ms':>9}  location")
    for op_name, shape, macs, ms, where in rows:
        print(f"{op_name:<20} {shape:<18} {macs:>14,} {ms:>9.3f}  {where}")
    total_macs = sum(r[2] for r in rows)
    print(f"{'total':<20} {'':<18} {total_macs:>14,} {total * 1e3:>9.3f}")


def comparison_stages(args: argparse.Namespace) -> tuple[str, ...] | None:
    """The stages `irflow run` compares: `--compare`, else the requested pipeline's
    `COMPARISONS` entry (simulator only), else none."""
    from irflow.compare import parse_stages, stages_for

    if getattr(args, "no_compare", False):
        return None
    if getattr(args, "compare", None):
        if args.backend != "sim":
            raise IrflowError("--compare needs the simulator backend (--backend sim)")
        return parse_stages(args.compare)
    return stages_for(args.pipeline) if args.backend == "sim" else None


def run_simulator(module: ModuleOp, inputs: dict[str, np.ndarray], name: str,
                  args: argparse.Namespace, stages: Sequence[str] | None = None
                  ) -> dict[str, np.ndarray]:
    """Compile with `args.pipeline`, simulate, and report; with `stages`, also run each
    stage on a fresh copy of the model and print the comparison after the report."""
    from irflow.backends.sim import simulate
    from irflow.backends.sim.machine import load_machine
    from irflow.backends.sim.report import chrome_trace
    from irflow.compare import calibration_batches, compare, fresh_copy, stage_result
    from irflow.fileio import write_output
    from irflow.passes.calibrate import set_calibration_data

    machine = load_machine(args.hw)
    if stages:
        pristine = fresh_copy(module)
        # every quantized stage, the requested one included, calibrates on the same data
        batches, calib_note = calibration_batches(module, args.calib, args.seed)
        set_calibration_data(module, batches)
    start = time.perf_counter()
    run_passes(module, args.pipeline, args)
    compiled = time.perf_counter()
    fuse = getattr(args, "fuse_layers", None)
    result = simulate(module, inputs, machine=machine, model=name,
                      misses=getattr(args, "misses", False),
                      fuse_layers={"objective": fuse} if fuse else False)
    simulated = time.perf_counter()
    if args.report == "table":
        print(result.report.table(), flush=True)  # before the other stages run
    comparison = None
    if stages:
        done = ({args.pipeline: stage_result(args.pipeline, module, result, compiled - start,
                                             simulated - compiled)}
                if args.pipeline in stages else {})
        comparison = compare(pristine, stages, inputs, machine=machine, model=name,
                             calibration=batches, calibration_note=calib_note, done=done,
                             progress=lambda line: print(f"irflow: {line}", file=sys.stderr,
                                                         flush=True))
        if args.report == "table":
            print("\n" + comparison.table())
    if args.report == "json":
        print(report_json(result.report, comparison))
    html_path = getattr(args, "html", None)
    if args.report_file or html_path:
        doc = report_dict(result, comparison, graph=bool(html_path))
        if args.report_file:
            write_output(args.report_file, json.dumps(doc, indent=2) + "\n")
        if html_path:
            from irflow.html_report import write_html

            write_html(html_path, doc)
    if args.trace:
        chrome_trace(result.report, args.trace)
    return result.outputs


def report_dict(result, comparison=None, graph: bool = False) -> dict:  # noqa: ANN001
    """The report JSON as a dict; with `graph`, the layer dataflow graph under "graph"
    (what the HTML page draws)."""
    d = result.report.to_dict()
    if comparison is not None:
        d["comparison"] = comparison.to_dict()
    if graph and result.module is not None:
        from irflow.html_report import layer_graph

        d["graph"] = layer_graph(result.module)
    return d


def report_json(report, comparison=None) -> str:  # noqa: ANN001
    """The report's JSON (`irflow.sim.report/2`), with `"comparison"` added when stages
    were compared (docs/simulator.md §4)."""
    d = report.to_dict()
    if comparison is not None:
        d["comparison"] = comparison.to_dict()
    return json.dumps(d, indent=2)


def cmd_sim(args: argparse.Namespace) -> int:
    module, name = load_model(args.input, input_shapes=args.input_shape)
    inputs = load_inputs(module, args.inputs, args.seed)
    outputs = run_simulator(module, inputs, name, args)
    if args.outputs:
        save_arrays(args.outputs, outputs)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from irflow.fileio import write_output
    from irflow.show import to_dot, to_svg

    module, _ = load_model(args.model, input_shapes=args.input_shape)
    dot = to_dot(module)
    if args.output is None:
        sys.stdout.write(dot)
    elif args.output.endswith(".svg"):
        write_output(args.output, to_svg(dot))
    else:
        write_output(args.output, dot)
    return 0


def cmd_html(args: argparse.Namespace) -> int:
    from irflow.html_report import load_report, write_html

    write_html(args.output, load_report(args.report))
    return 0


def cmd_passes(args: argparse.Namespace) -> int:
    from irflow.pass_catalog import catalog, format_catalog
    from irflow.registry import load_pass

    for spec in args.load_pass or ():
        load_pass(spec)
    print(format_catalog(catalog()))
    return 0


def version_text() -> str:
    """`irflow --version`: irflow's installed version and the versions it runs on."""
    from importlib.metadata import PackageNotFoundError, version

    def v(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "not installed"

    return (f"irflow {v('irflow')} (xDSL {v('xdsl')}, numpy {v('numpy')}, "
            f"Python {sys.version.split()[0]})")


def cmd_export(args: argparse.Namespace) -> int:
    from irflow.exporters.onnx import export_onnx

    module, _ = load_model(args.input, input_shapes=args.input_shape)
    export_onnx(module, args.output, opset=args.opset)
    return 0


# --------------------------------------------------------------------------------------
# Parser


def _add_pass_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--pipeline", help="pass pipeline, e.g. 'fold-batchnorm,cse' or a "
                   "named pipeline ('default')")
    p.add_argument("--load-pass", action="append", metavar="FILE.py:CLASS",
                   help="load a user pass (repeatable)")
    p.add_argument("--print-ir-after-all", action="store_true", help="print IR after every pass")
    p.add_argument("--print-ir-after", action="append", metavar="PASS",
                   help="print IR after the named pass (repeatable)")
    p.add_argument("--print-ir-after-change", action="store_true",
                   help="print IR after passes that changed it")
    p.add_argument("--dump-dir", metavar="DIR", help="write one numbered .mlir per pass")
    p.add_argument("--timing", action="store_true", help="time each pass")
    p.add_argument("--calib", metavar="NPZ", help="calibration data for the `calibrate` pass: "
                   "arrays keyed by input name, samples on the first axis")
    p.add_argument("--cost-after-each", action="store_true", help="simulate (cost model only) "
                   "after every pass that changed the IR and print the deltas (uses --hw)")
    p.add_argument("--ir-diff", action="store_true", help="print IR dumps as a unified diff "
                   "against the IR before the pass")


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=1x3x224x224",
                   help="fix a dynamic input shape (ONNX) or resize a zoo model's input"
                        " (repeatable)")
    p.add_argument("--weights", metavar="NPZ", help="weights for a DSL model (.npz)")


def _add_sim_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hw", metavar="PRESET|FILE.toml", help="machine preset or TOML file")
    p.add_argument("--report", choices=("table", "json"), default="table",
                   help="report format on stdout")
    p.add_argument("--report-file", metavar="F", help="also write the JSON report to F")
    p.add_argument("--trace", metavar="F.json", help="write a Chrome trace (opens in Perfetto)")
    p.add_argument("--misses", action="store_true", help="attribute cache misses: 3C split "
                   "per layer and tensor role, re-fetches by loop (docs/insight.md)")
    p.add_argument("--html", metavar="F.html", help="write a self-contained HTML report "
                   "(plots, roofline, compare, dataflow graph)")
    p.add_argument("--fuse-layers", metavar="OBJECTIVE", choices=(
        "latency", "energy", "edp", "dram", "always"), help="fuse layer chains depth-first "
        "where the estimate pays under OBJECTIVE (fuse-layers; docs/simulator.md §2.5)")


def _add_explain_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--explain-tiling", metavar="LAYER", help="print the tiling search's top "
                   "candidates for LAYER (estimated cycles, DRAM bytes, energy) and why the "
                   "winner won (docs/tiling.md)")


def _add_compare_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--compare", metavar="STAGES", help="comma-separated named pipelines to "
                   "simulate side by side, the first as the baseline (default: fp32 and the "
                   "requested pipeline for int8, w4a8, int8-sparse)")
    g.add_argument("--no-compare", action="store_true", help="print only the requested "
                   "pipeline's report")


def _add_io_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inputs", metavar="NPZ", help="input arrays keyed by input name")
    p.add_argument("--outputs", metavar="NPZ", help="save outputs keyed by output name")
    p.add_argument("--seed", type=int, default=0, help="seed for random inputs and weights")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="irflow", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--version", action="version", version=version_text())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="compile and execute a model (default: resnet18 on the "
                       "simulator)")
    p.add_argument("model", nargs="?", help="zoo name or model file (default: resnet18)")
    p.add_argument("--backend", choices=("sim", "reference"), default="sim")
    _add_pass_flags(p)
    _add_model_flags(p)
    _add_io_flags(p)
    _add_sim_flags(p)
    _add_compare_flags(p)
    _add_explain_flag(p)
    p.set_defaults(func=cmd_run, pipeline=DEFAULT_PIPELINE)

    p = sub.add_parser("opt", help="run a pass pipeline on IR and print the result")
    p.add_argument("input", help="IR (.mlir), DSL (.irf), ONNX (.onnx) or a zoo name")
    p.add_argument("-o", "--output", help="write IR here (weights go to a .npz beside it)")
    p.add_argument("--weights-out", metavar="NPZ", help="write the weights here instead of "
                   "beside -o (needed when -o is a device or FIFO, e.g. /dev/stdout)")
    p.add_argument("--generic", action="store_true", help="print the generic op form")
    p.add_argument("--debuginfo", action="store_true", help="print source locations")
    p.add_argument("--hw", metavar="PRESET|FILE.toml", help="machine for --cost-after-each")
    _add_pass_flags(p)
    _add_model_flags(p)
    _add_explain_flag(p)
    p.set_defaults(func=cmd_opt)

    p = sub.add_parser("sim", help="simulate IR on the accelerator and report")
    p.add_argument("input", help="IR file (lowered or nn level) or zoo name")
    _add_pass_flags(p)
    _add_model_flags(p)
    _add_io_flags(p)
    _add_sim_flags(p)
    _add_explain_flag(p)
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("show", help="Graphviz DOT (or SVG) of the dataflow graph")
    p.add_argument("model", nargs="?", help="zoo name or model file")
    p.add_argument("-o", "--output", help="write .dot or .svg (SVG needs Graphviz 'dot')")
    _add_model_flags(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("html", help="render a report JSON (--report-file) as an HTML page")
    p.add_argument("report", help="the report JSON")
    p.add_argument("-o", "--output", required=True, help="the .html file to write")
    p.set_defaults(func=cmd_html)

    p = sub.add_parser("zoo", help="list the built-in models")
    p.set_defaults(func=cmd_zoo)

    p = sub.add_parser("passes", help="list every registered pass with its options, and "
                       "the named pipelines")
    p.add_argument("--load-pass", action="append", metavar="FILE.py:CLASS",
                   help="also load (and list) a user pass (repeatable)")
    p.set_defaults(func=cmd_passes)

    p = sub.add_parser("export", help="export nn IR to ONNX")
    p.add_argument("input", help="IR file, DSL file or zoo name")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=17)
    _add_model_flags(p)
    p.set_defaults(func=cmd_export)

    from irflow.train.cli import add_parser as add_train_parser

    add_train_parser(sub, _add_model_flags, _add_pass_flags)
    from irflow.search.cli import add_parser as add_search_parser  # irflow search SPACE.toml

    add_search_parser(sub)
    for p in sub.choices.values():  # `irflow run ... --quiet` as well as `irflow -q run ...`
        p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="no progress bars")
    return parser


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    """Warnings from passes (e.g. prune's skipped layers) as one line, without Python source."""
    print(f"irflow: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from irflow.progress import quiet

    try:
        with warnings.catch_warnings(), quiet(args.quiet):
            if not args.debug:
                warnings.showwarning = _show_warning
            check_output_flags(args)
            from irflow.passes.tile_explain import explaining

            with explaining(getattr(args, "explain_tiling", None)) as request:
                code = int(args.func(args) or 0)
                if request is not None:
                    request.check()
            return code
    except IrflowError as e:
        if args.debug:
            raise
        print(f"irflow: {e}", file=sys.stderr)
        return 1
    except (OSError, MemoryError) as e:
        if args.debug:
            raise
        print(f"irflow: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug in irflow, not in the input: say so, briefly
        if args.debug:
            raise
        print(f"irflow: internal error: {type(e).__name__}: {e} (rerun with --debug for the "
              "traceback)", file=sys.stderr)
        return 70
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
