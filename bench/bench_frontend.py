"""Frontend speed: DSL → IR (parse + build + verify) and IR → text, per zoo model.

    .venv/bin/python bench/bench_frontend.py [--repeat 7] [MODEL ...]

Prints, per model, the median wall time of: compiling the DSL source (lark parse,
evaluation, op construction and seeded weight generation, final verification),
verifying again on its own, printing the IR (custom format, with locations), and
parsing that text back; plus the IR's line count and size. The one-off cost of
building the LALR parser is printed first (it is cached for the process).
Target (issue 2): ResNet-18 parse DSL + verify + print under 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import time

import irflow.zoo
from irflow.frontends import dsl, dsl_parse
from irflow.io import parse_mlir, print_module, verify_module


def median_time(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def bench_model(name: str, repeat: int) -> None:
    source = irflow.zoo.source(name)
    t_compile, module = median_time(lambda: dsl.compile_source(source, f"{name}.irf"), repeat)
    t_verify, _ = median_time(lambda: verify_module(module), repeat)
    t_print, text = median_time(lambda: print_module(module, debuginfo=True), repeat)
    t_parse, _ = median_time(lambda: parse_mlir(text, f"{name}.mlir"), repeat)
    ops = sum(1 for _ in module.walk())
    total = t_compile + t_print  # compile_source already verifies once
    print(f"{name:<20} {ops:>5} {1e3 * t_compile:>7.0f}ms {1e3 * t_verify:>6.0f}ms "
          f"{1e3 * t_print:>6.0f}ms {1e3 * total:>6.0f}ms {1e3 * t_parse:>7.0f}ms "
          f"{len(text.splitlines()):>6} {len(text) / 1024:>7.1f}KB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=irflow.zoo.names())
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    t0 = time.perf_counter()
    dsl_parse._parser()
    print(f"LALR parser load (built once, cached on disk by lark): "
          f"{1e3 * (time.perf_counter() - t0):.0f} ms")
    header = (f"{'model':<20} {'ops':>5} {'compile':>9} {'verify':>8} {'print':>8} "
              f"{'total':>8} {'reparse':>9} {'lines':>6} {'text':>9}")
    print(header)
    print("-" * len(header))
    for name in args.models:
        bench_model(name, args.repeat)
    print("compile = lark parse + evaluate + build ops + seeded weights + verify; "
          "total = compile + print")


if __name__ == "__main__":
    main()
