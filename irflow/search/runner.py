"""Run a search on Dask: every evaluation a task, results streamed into the table.

    >>> result = run_search(load_space("space.toml"), "out/", scheduler="local")
    >>> result.front[0]["pipeline"]

- `scheduler="local"`: a `distributed.LocalCluster` with one single-threaded worker
  process per core (`workers=` to choose); `"tcp://HOST:8786"`: a cluster someone
  already runs (its workers need irflow installed, and the space's files at the same
  paths); or pass a connected `client=`.
- Each evaluation is `client.submit(evaluate_point, space, point)`; rows are written to
  `results.sqlite` as tasks finish (`as_completed`), each in its own transaction.
- Resuming: points whose key is in the table are not submitted again; the strategy is
  told their stored rows, so a seeded strategy replays the same batches and continues.
- A worker that dies: the scheduler reschedules its task on another worker (the nanny
  restarts the dead one); only that point is recomputed. A task that keeps killing
  workers (Dask's `allowed-failures`) is recorded as an error row.
"""

from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from irflow.diagnostics import IrflowError
from irflow.progress import Progress
from irflow.search.evaluate import evaluate_point
from irflow.search.front import (
    baseline_claims,
    front_csv,
    front_markdown,
    pareto,
    plot,
    reproduce_command,
    sensitivity_csv,
)
from irflow.search.space import Space, point_key
from irflow.search.strategies import make_strategy, uniform_point, violations
from irflow.search.table import ResultsTable

CONNECT_TIMEOUT = "5s"  # how long to wait for a remote scheduler before saying so


class SearchError(IrflowError):
    """A search that cannot run or whose result is unusable (scheduler, constraints)."""


@dataclass
class SearchResult:
    out_dir: Path
    rows: list[dict[str, Any]]
    front: list[dict[str, Any]]
    baselines: dict[str, dict[str, Any]]
    claims: dict[str, list[dict[str, Any]]]
    evaluated: int  # points this run computed
    reused: int  # points this run took from the table
    seconds: float
    workers: int = 0
    files: list[Path] = field(default_factory=list)


def connect(scheduler: str, workers: int | None = None) -> tuple[Any, Callable[[], None]]:
    """A Dask client for `scheduler` and a function closing what was opened."""
    from distributed import Client, LocalCluster

    if scheduler == "local":
        n = workers or os.cpu_count() or 1
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR)
        client = Client(cluster)

        def close() -> None:
            client.close()
            cluster.close()

        return client, close
    if not scheduler.startswith(("tcp://", "tls://", "inproc://")):
        raise SearchError(f"--scheduler expects 'local' or an address like "
                          f"tcp://HOST:8786, got '{scheduler}'")
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SearchError(f"cannot reach the Dask scheduler at {scheduler}: {reason}") from None
    return client, client.close


def _evaluate(client: Any, space: Space, points: Sequence[dict[str, Any]], role: str,
              table: ResultsTable, done: dict[str, dict[str, Any]], run: int, bar: Progress,
              counts: dict[str, int],
              on_result: Callable[[str, dict[str, Any]], None] | None) -> list[dict[str, Any]]:
    """Evaluate the points not in `done` as Dask tasks; rows in the order of `points`."""
    from distributed import as_completed

    keys = [point_key(p) for p in points]
    todo = {k: p for k, p in zip(keys, points) if k not in done}
    counts["reused"] += len(set(keys)) - len(todo)
    bar.grow(len(todo))
    futures = {client.submit(evaluate_point, space, p, key=f"irflow-search-{k}", pure=False,
                             retries=1): k for k, p in todo.items()}
    for fut in as_completed(futures):
        k = futures[fut]
        try:
            row = fut.result()
        except Exception as e:  # a worker lost too often (KilledWorker) or a crash
            row = {"status": "error", "error": f"{type(e).__name__}: {e}",
                   "pipeline": "", "machine": ""}
        if table.add(k, todo[k], row, run, role):
            counts["evaluated"] += 1
        done[k] = {**row, "key": k, "point": todo[k], "role": role}
        bar.advance()
        if on_result is not None:
            on_result(k, row)
    return [done[k] for k in keys]


def run_search(space: Space, out_dir: str | Path, *, scheduler: str = "local",
               workers: int | None = None, client: Any = None, progress: bool = True,
               on_result: Callable[[str, dict[str, Any]], None] | None = None
               ) -> SearchResult:
    """Search `space`, writing `out_dir/results.sqlite` and the front's report files."""
    start = time.perf_counter()
    out = Path(out_dir)
    close: Callable[[], None] = lambda: None  # noqa: E731
    if client is None:
        client, close = connect(scheduler, workers)
    counts = {"evaluated": 0, "reused": 0}
    try:
        table = ResultsTable(out / "results.sqlite", space)
        done = table.done()
        run = table.next_run()
        n_workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))
        bar = Progress(0, "irflow search", unit="pt", enabled=None if progress else False,
                       leave=True)
        base_points = {"int8": uniform_point(space, 8, 8, baseline=True),
                       "w4a8": uniform_point(space, 4, 8, baseline=True)}
        base_rows = _evaluate(client, space, list(base_points.values()), "baseline", table,
                              done, run, bar, counts, on_result)
        strategy = make_strategy(space)
        while batch := strategy.ask():
            rows = _evaluate(client, space, batch, space.strategy, table, done, run, bar,
                             counts, on_result)
            strategy.tell(batch, rows)
        bar.close()
    finally:
        close()
    rows = table.rows()
    table.close()
    baselines = dict(zip(base_points, base_rows))
    front = pareto(space, rows)
    quality = "accuracy" if space.data_kind == "digits" else "sqnr_db"
    result = SearchResult(out, rows, front, baselines, baseline_claims(rows, baselines, quality),
                          counts["evaluated"], counts["reused"], time.perf_counter() - start,
                          n_workers)
    result.files = write_report(space, result)
    if not front:
        raise SearchError(_no_front(space, rows) + f" (results kept in {out / 'results.sqlite'})")
    return result


def _no_front(space: Space, rows: Sequence[dict[str, Any]]) -> str:
    ok = [r for r in rows if r.get("status") == "ok"]
    if not ok:
        errors = {r.get("error") for r in rows if r.get("error")}
        return f"no point evaluated successfully: {next(iter(errors), 'no points')}"
    parts = []
    for i, (key, limit) in enumerate(space.constraints):
        best = min(violations(space, r)[i] for r in ok)
        parts.append(f"{key} = {limit:g} (closest: off by {best:.4g})")
    return "no point meets the constraints: " + "; ".join(parts)


def write_report(space: Space, result: SearchResult) -> list[Path]:
    """front.md, front.csv, pareto.png, pareto.html, and the files their commands name."""
    from irflow.fileio import write_output
    from irflow.search.evaluate import model_context
    from irflow.search.recipe import load_float_model, zoo_source_at
    from irflow.search.space import render_template

    out = result.out_dir
    files: list[Path] = []
    shown = {r["key"]: r for r in [*result.front, *result.baselines.values()]
             if r.get("status") == "ok"}
    commands: dict[str, str] = {}
    ctx = model_context(space, tuple(sorted(
        (k.name[5:], k.values[0]) for k in space.knobs if k.kind == "arch")))
    buf = io.BytesIO()
    np.savez(buf, **{ctx.data.input: np.concatenate(
        [b[ctx.data.input] for b in ctx.data.calibration])})
    calib = out / "calib.npz"
    write_output(calib, buf.getvalue())
    files.append(calib)
    for key, r in shown.items():
        mfile = out / "machines" / f"{key}.toml"
        mfile.parent.mkdir(exist_ok=True)
        write_output(mfile, r["machine"])
        model = space.source
        if space.template:
            arch = {k[5:]: v for k, v in r["point"].items() if k.startswith("arch.")}
            mpath = out / "models" / f"{key}.irf"
            mpath.parent.mkdir(exist_ok=True)
            write_output(mpath, render_template(Path(space.source).read_text(), arch,
                                                space.source))
            load_float_model(str(mpath), "", "", {})  # it compiles
            model = str(mpath)
        elif space.input_shape and not Path(space.source).suffix:  # a zoo model, resized
            mpath = out / "models" / f"{space.source}.irf"
            mpath.parent.mkdir(exist_ok=True)
            write_output(mpath, zoo_source_at(space.source, space.input_shape))
            model = str(mpath)
        commands[key] = reproduce_command(space, r, model, str(mfile), str(calib))
    reports = [("front.md", front_markdown(space, result.front, commands, result.baselines)),
               ("front.csv", front_csv(result.front))]
    if space.strategy == "haq":
        reports.append(("sensitivity.csv", sensitivity_csv(space, result.rows)))
    for name, text in reports:
        write_output(out / name, text)
        files.append(out / name)
    if result.front:
        plot(space, result.rows, result.front, result.baselines, out / "pareto.png",
             out / "pareto.html")
        files += [out / "pareto.png", out / "pareto.html"]
    return files


__all__ = ["run_search", "connect", "SearchResult", "SearchError", "write_report"]
