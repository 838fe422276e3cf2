"""`irflow search SPACE.toml`: the subcommand, registered by `add_parser` (irflow/cli.py).

    irflow search examples/search/digits_mixed.toml -o out/ --workers 2
    irflow search space.toml --scheduler tcp://HOST:8786

Prints the front (and how it compares with uniform int8 and w4a8), writes
`out/results.sqlite`, `front.md`, `front.csv`, `pareto.png`, `pareto.html`. Running the
same command again resumes: finished points are read from the table, not recomputed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def cmd_search(args: argparse.Namespace) -> int:
    from irflow.search.runner import run_search
    from irflow.search.space import load_space

    space = load_space(args.space)
    out = Path(args.output or f"search-{Path(args.space).stem}")
    result = run_search(space, out, scheduler=args.scheduler, workers=args.workers,
                        progress=not args.no_progress)
    print(summary(space, result))
    return 0


def summary(space: Any, result: Any) -> str:
    from irflow.search.front import FIGURES

    quality = "accuracy" if space.data_kind == "digits" else "sqnr_db"
    lines = [f"irflow search: {Path(space.path).name}: {len(result.rows)} points in the table "
             f"({result.evaluated} evaluated now, {result.reused} reused), "
             f"{result.seconds:.1f} s on {result.workers} worker(s); "
             f"front: {len(result.front)} points"]
    head = ["key", *(k for k, _ in FIGURES)]
    lines.append("  ".join(f"{h:>12}" for h in head))
    for name, r in [*((r["key"], r) for r in result.front),
                    *((f"[{n}]", r) for n, r in result.baselines.items())]:
        if r.get("status") != "ok":
            continue
        cells = [name] + ["-" if r.get(k) is None or r[k] != r[k] else f.format(r[k])
                          for k, f in FIGURES]  # None or NaN: not measured
        lines.append("  ".join(f"{c:>12}" for c in cells))
    for name, beat in result.claims.items():
        verb = ("fewer cycles at equal or better" if name == "int8"
                else f"better {quality} at equal or fewer cycles than")
        lines.append(f"points with {verb} {quality} vs uniform {name}: {len(beat)}"
                     if name == "int8" else f"points with {verb} uniform {name}: {len(beat)}")
    lines.append(f"report: {result.out_dir / 'front.md'}, {result.out_dir / 'pareto.png'}, "
                 f"{result.out_dir / 'pareto.html'}")
    return "\n".join(lines)


def add_parser(sub: Any) -> None:
    """Register `irflow search` on the CLI's subparsers."""
    p = sub.add_parser("search", help="hardware-aware search over compression, "
                       "architecture and machine knobs (Dask)")
    p.add_argument("space", help="the search space (.toml; docs/search.md)")
    p.add_argument("-o", "--output", help="results directory (default: search-<space>); "
                   "an existing one is resumed")
    p.add_argument("--scheduler", default="local", help="'local' (a LocalCluster, one worker "
                   "per core) or a Dask scheduler address, tcp://HOST:8786")
    p.add_argument("--workers", type=int, help="LocalCluster workers (default: one per core)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_search)
