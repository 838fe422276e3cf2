"""ONNX's own backend node tests on irflow: pass / fail / unsupported, per operator and overall.

    .venv/bin/python bench/bench_onnx_conformance.py            # table + totals
    .venv/bin/python bench/bench_onnx_conformance.py --failures # also each failure's message
    .venv/bin/python bench/bench_onnx_conformance.py --simulate # + the simulator, per operator

Runs every case of `onnx.backend.test.loader.load_node_model_tests()` (the 1,884 node test
cases of onnx 1.23.2, generated in memory: no downloads) through `irflow.onnx_backend`
exactly as `onnx.backend.test.BackendTest` does (prepare, run every data set, compare with
its `assert_similar_outputs`: same shapes and dtypes, rtol/atol of the case). A case is

* **pass** — every output matches;
* **mismatch** — it ran and an output differs (a wrong number, shape or dtype);
* **error** — it imported but failed to run;
* **unsupported** — the import refused it (an unsupported operator, attribute, type or
  opset: an `OnnxImportError` naming the node).

`--simulate` (issue 11 item 3): every case that passes on the reference executor is also
lowered (`tile`, `plan-memory`, `lower-to-accel`) and run on the simulator
(`irflow.backends.sim.simulate`, machine "default", with `fuse-epilogue` unless
`--no-epilogue`) on every data set, compared with the
case's expected outputs the same way (its rtol/atol; integers and booleans exact). Such a
case is

* **sim-pass** — simulated, every output matches;
* **sim-located** — the lowering or the simulator stopped with an `IrflowError` (a located
  error naming the op: what the accelerator cannot run, never a silent CPU fallback);
* **sim-mismatch** — it simulated and an output differs;
* **sim-crash** — any other Python exception, or an `IrflowError` wrapping one (the
  simulator names the op a `TypeError` came from, but it is still a bug).

The operator of a case is its node's op type; a multi-node case (`..._expanded`, the
function body of an op) counts under the op it expands.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
import warnings

import numpy as np


def _op_of(case: object, by_name: dict[str, str]) -> str:
    model = case.model  # type: ignore[attr-defined]
    nodes = model.graph.node
    name = case.name  # type: ignore[attr-defined]
    if "_expanded" in name:
        base = name[: name.index("_expanded")]
        if base in by_name:
            return by_name[base]
    if len(nodes) == 1:
        return nodes[0].op_type
    return nodes[-1].op_type if nodes else "(empty)"


def classify(case: object) -> tuple[str, str]:
    """('pass' | 'mismatch' | 'error' | 'unsupported', message) for one node test case."""
    from onnx.backend.test.runner import Runner, _normalize_tensor

    from irflow.diagnostics import IrflowError
    from irflow.frontends.onnx import OnnxImportError
    from irflow.onnx_backend import IrflowBackend

    try:
        rep = IrflowBackend.prepare(case.model)  # type: ignore[attr-defined]
    except OnnxImportError as e:
        return "unsupported", str(e)
    except Exception as e:  # noqa: BLE001 - anything else is irflow's failure
        return "error", f"prepare: {type(e).__name__}: {e}"
    for inputs, ref_outputs in case.data_sets:  # type: ignore[attr-defined]
        inputs = [_normalize_tensor(x) for x in inputs]
        refs = [_normalize_tensor(x) for x in ref_outputs]
        try:
            with np.errstate(all="ignore"):
                outs = rep.run(inputs)
        except OnnxImportError as e:  # a specialized import (bound inputs) refused
            return "unsupported", str(e)
        except IrflowError as e:
            return "error", str(e)
        except Exception as e:  # noqa: BLE001
            return "error", f"{type(e).__name__}: {e}"
        try:
            Runner.assert_similar_outputs(refs, list(outs), rtol=case.rtol,  # type: ignore[attr-defined]
                                          atol=case.atol)  # type: ignore[attr-defined]
        except AssertionError as e:
            return "mismatch", " ".join(str(e).split())[:300]
    return "pass", ""


SIM_KINDS = ("sim-pass", "sim-located", "sim-mismatch", "sim-crash")


def simulate_case(case: object, epilogue: bool = True) -> tuple[str, str]:
    """(one of SIM_KINDS, message) for a case that passes on the reference executor;
    `epilogue=False` lowers without `fuse-epilogue`."""
    from onnx.backend.test.runner import Runner, _normalize_tensor

    from irflow.backends.sim import simulate
    from irflow.diagnostics import IrflowError
    from irflow.onnx_backend import IrflowBackend

    rep = IrflowBackend.prepare(case.model)  # type: ignore[attr-defined]
    for inputs, ref_outputs in case.data_sets:  # type: ignore[attr-defined]
        inputs = [_normalize_tensor(x) for x in inputs]
        refs = [_normalize_tensor(x) for x in ref_outputs]
        try:
            module, feeds = rep.specialize(inputs)
            with np.errstate(all="ignore"):
                result = simulate(module, feeds, machine="default", progress=False,
                                  epilogue=epilogue)
            outs = [result.outputs[n] for n in rep.output_names]
        except IrflowError as e:
            cause = e.__cause__  # the simulator wraps a Python exception with its op:
            kind = ("sim-crash" if cause is not None and not isinstance(cause, IrflowError)
                    else "sim-located")  # located, but still a bug
            return kind, " ".join(str(e).split())[:300]
        except Exception as e:  # noqa: BLE001 - not an IrflowError: a bug
            return "sim-crash", f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
        try:
            Runner.assert_similar_outputs(refs, outs, rtol=case.rtol,  # type: ignore[attr-defined]
                                          atol=case.atol)  # type: ignore[attr-defined]
        except AssertionError as e:
            return "sim-mismatch", " ".join(str(e).split())[:300]
    return "sim-pass", ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failures", action="store_true", help="print every non-pass case")
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    parser.add_argument("--simulate", action="store_true",
                        help="also simulate every passing case (lower-to-accel + simulator)")
    parser.add_argument("--no-epilogue", action="store_true",
                        help="with --simulate: lower without fuse-epilogue")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    from onnx.backend.test.loader import load_node_model_tests

    start = time.perf_counter()
    cases = [c for c in load_node_model_tests() if args.k in c.name]
    by_name = {c.name: c.model.graph.node[0].op_type for c in cases
               if len(c.model.graph.node) == 1}
    table: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    failures: list[tuple[str, str, str]] = []
    sim_failures: list[tuple[str, str, str]] = []
    for case in cases:
        outcome, message = classify(case)
        table[_op_of(case, by_name)][outcome] += 1
        if outcome != "pass":
            failures.append((case.name, outcome, message))
        elif args.simulate:
            outcome, message = simulate_case(case, epilogue=not args.no_epilogue)
            table[_op_of(case, by_name)][outcome] += 1
            if outcome != "sim-pass":
                sim_failures.append((case.name, outcome, message))
    elapsed = time.perf_counter() - start

    kinds: tuple[str, ...] = ("pass", "mismatch", "error", "unsupported")
    if args.simulate:
        kinds += SIM_KINDS
    print(f"{'operator':<34}" + "".join(f"{k:>13}" for k in kinds))
    for op in sorted(table):
        print(f"{op:<34}" + "".join(f"{table[op][k]:>13}" for k in kinds))
    total = collections.Counter[str]()
    for counts in table.values():
        total.update(counts)
    print(f"{'TOTAL (' + str(len(cases)) + ' cases)':<34}" + "".join(f"{total[k]:>13}"
                                                                 for k in kinds))
    full = sum(1 for c in table.values()
               if c["pass"] == sum(c[k] for k in ("pass", "mismatch", "error", "unsupported")))
    print(f"operators: {len(table)}, all cases passing: {full}; {elapsed:.1f} s")
    if args.simulate:
        for kind in SIM_KINDS:
            ops = sorted(op for op, c in table.items() if c[kind])
            print(f"{kind} ({len(ops)} operators): {', '.join(ops)}")
        for name, outcome, message in sim_failures:
            print(f"{outcome:<13} {name}: {message}")
    if args.failures:
        for name, outcome, message in failures:
            print(f"{outcome:<12} {name}: {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
