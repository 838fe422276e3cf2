"""The Pareto front of a search and what people look at: a table, a PNG and an HTML plot.

`pareto(rows, objectives)` keeps the feasible rows no other feasible row dominates (at
least as good in every objective, better in one), vectorized over all pairs with numpy.
`write_report(...)` writes, beside the results table:

- `front.md` — the front as a Markdown table, one row per point: its objectives, the
  other metrics, and the command that reproduces it (`irflow run MODEL -p "PIPELINE"
  --hw machines/<key>.toml --calib calib.npz`);
- `front.csv` — the same figures for a spreadsheet;
- `pareto.png` (matplotlib) and `pareto.html` (plotly, interactive: hover shows the
  pipeline) — every point, the front, and the uniform int8 / w4a8 baselines, on the
  first two objectives.
"""

from __future__ import annotations

import csv
import io
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from irflow.search.space import Objective, Space
from irflow.search.strategies import feasible


def _matrix(rows: Sequence[dict[str, Any]], objectives: Sequence[Objective]) -> np.ndarray:
    """Rows × objectives, every objective turned into 'smaller is better'."""
    m = np.array([[float(r[o.metric]) for o in objectives] for r in rows], np.float64)
    sign = np.array([1.0 if o.direction == "minimize" else -1.0 for o in objectives])
    return m.reshape(len(rows), len(objectives)) * sign


def dominates(a: dict[str, Any], b: dict[str, Any], objectives: Sequence[Objective]) -> bool:
    m = _matrix([a, b], objectives)
    return bool((m[0] <= m[1]).all() and (m[0] < m[1]).any())


def pareto(space: Space, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The feasible, non-dominated rows (ties: identical figures are all kept), sorted by
    the first objective."""
    cand = [r for r in rows if feasible(space, r)
            and all(r.get(o.metric) is not None for o in space.objectives)]
    if not cand:
        return []
    m = _matrix(cand, space.objectives)
    le = (m[:, None, :] <= m[None, :, :]).all(axis=2)  # le[i, j]: i no worse than j
    lt = (m[:, None, :] < m[None, :, :]).any(axis=2)
    dominated = (le & lt).any(axis=0)
    front = [r for r, d in zip(cand, dominated) if not d]
    return sorted(front, key=lambda r: _matrix([r], space.objectives)[0, 0])


def baseline_claims(rows: Sequence[dict[str, Any]], baselines: dict[str, dict[str, Any]],
                    quality: str) -> dict[str, list[dict[str, Any]]]:
    """Which rows beat each baseline as the outcome asks: vs `int8`, fewer cycles at equal
    or better `quality`; vs `w4a8`, better `quality` at equal or fewer cycles."""
    out: dict[str, list[dict[str, Any]]] = {}
    ok = [r for r in rows if r.get("status") == "ok" and r.get(quality) is not None]
    for name, b in baselines.items():
        if b.get("status") != "ok" or b.get(quality) is None:
            continue
        if name == "int8":
            out[name] = [r for r in ok if r["cycles"] < b["cycles"]
                         and r[quality] >= b[quality]]
        else:
            out[name] = [r for r in ok if r[quality] > b[quality]
                         and r["cycles"] <= b["cycles"]]
    return out


FIGURES: tuple[tuple[str, str], ...] = (
    ("cycles", "{:,.0f}"), ("latency_ms", "{:.4g}"), ("energy_pj", "{:.4g}"),
    ("dram_bytes", "{:,.0f}"), ("model_bytes", "{:,.0f}"), ("accuracy", "{:.2f}"),
    ("sqnr_db", "{:.2f}"),
)


def _fmt(row: dict[str, Any], key: str, fmt: str) -> str:
    v = row.get(key)
    return "-" if v is None else fmt.format(v)


def reproduce_command(space: Space, row: dict[str, Any], model: str, machine_file: str,
                      calib_file: str) -> str:
    """`irflow run` of one point: `model` is the source (or the filled family template)."""
    args = ["irflow", "run", model, "-p", row["pipeline"], "--hw", machine_file,
            "--no-compare"]
    if "calibrate" in row["pipeline"]:
        args += ["--calib", calib_file]
    if space.input_shape and not model.endswith(".irf"):  # a resized zoo model is a file
        args += ["--input-shape", space.input_shape]
    if space.weights:
        args += ["--weights", space.weights]
    return shlex.join(args)


def front_markdown(space: Space, front: Sequence[dict[str, Any]], commands: dict[str, str],
                   baselines: dict[str, dict[str, Any]]) -> str:
    head = ["key", *(k for k, _ in FIGURES), "pipeline"]
    lines = [f"# Pareto front: {Path(space.path).name}", "",
             "objectives: " + ", ".join(f"{o.direction} {o.metric}" for o in space.objectives),
             "constraints: " + (", ".join(f"{k} = {v:g}" for k, v in space.constraints)
                                or "none"), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def line(label: str, r: dict[str, Any]) -> str:
        return ("| " + " | ".join([label, *(_fmt(r, k, f) for k, f in FIGURES),
                                   f"`{r['pipeline']}`"]) + " |")

    lines += [line(r["key"], r) for r in front]
    if baselines:
        lines += ["", "baselines (base machine):", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += [line(name, r) for name, r in baselines.items() if r.get("status") == "ok"]
    lines += ["", "reproduce a point (files beside this table):", ""]
    lines += [f"- `{r['key']}`: `{commands[r['key']]}`" for r in front]
    return "\n".join(lines) + "\n"


def front_csv(front: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["key", *(k for k, _ in FIGURES), "pipeline", "machine"])
    for r in front:
        w.writerow([r["key"], *(r.get(k) for k, _ in FIGURES), r["pipeline"],
                    r["machine"].replace("\n", "; ")])
    return buf.getvalue()


def sensitivity_csv(space: Space, rows: Sequence[dict[str, Any]]) -> str:
    """HAQ's per-layer sensitivity: each row that differs from uniform w8a8 in one layer —
    that layer, its (w, a) bits, the output SQNR, accuracy, cycles and Δcycles."""
    from irflow.search.space import point_key
    from irflow.search.strategies import uniform_point

    base = uniform_point(space, 8, 8)
    by_key = {r["key"]: r for r in rows}
    b = by_key.get(point_key(base))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["layer", "w_bits", "a_bits", "sqnr_db", "accuracy", "cycles", "delta_cycles"])
    for r in rows:
        changed = {k for k, v in r["point"].items() if base.get(k) != v}
        if any("." not in k for k in changed) or r.get("status") != "ok" or b is None:
            continue  # a baseline (whole-model settings) or a failed point
        diff = {k.split(".", 1)[1] for k in changed}
        if len(diff) != 1:
            continue
        layer = diff.pop()
        w.writerow([layer, r["point"][f"w_bits.{layer}"], r["point"][f"a_bits.{layer}"],
                    r.get("sqnr_db"), r.get("accuracy"), r["cycles"],
                    r["cycles"] - b["cycles"]])
    return buf.getvalue()


def plot(space: Space, rows: Sequence[dict[str, Any]], front: Sequence[dict[str, Any]],
         baselines: dict[str, dict[str, Any]], png: Path, html: Path) -> None:
    """The first two objectives: all points (grey), the front (line), baselines (marked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    objs = list(space.objectives[:2])
    if len(objs) < 2:
        objs = [objs[0], Objective("cycles" if objs[0].metric != "cycles" else "sqnr_db",
                                   "minimize")]
    x, y = objs[0].metric, objs[1].metric
    ok = [r for r in rows if r.get("status") == "ok" and r.get(x) is not None
          and r.get(y) is not None]
    good = [r for r in front if r.get(x) is not None and r.get(y) is not None]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ax.scatter([r[x] for r in ok], [r[y] for r in ok], s=14, c="0.7", label="evaluated")
    ax.plot([r[x] for r in good], [r[y] for r in good], "o-", c="tab:red", ms=5,
            label="Pareto front")
    for (name, r), mark in zip(baselines.items(), ("s", "D", "^")):
        if r.get("status") == "ok" and r.get(x) is not None and r.get(y) is not None:
            ax.scatter([r[x]], [r[y]], marker=mark, s=60, c="tab:blue", zorder=3)
            ax.annotate(name, (r[x], r[y]), textcoords="offset points", xytext=(6, 4))
    ax.set_xlabel(f"{x} ({objs[0].direction})")
    ax.set_ylabel(f"{y} ({objs[1].direction})")
    ax.set_title(f"irflow search: {Path(space.path).name}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)

    gfig = go.Figure()
    gfig.add_trace(go.Scatter(x=[r[x] for r in ok], y=[r[y] for r in ok], mode="markers",
                              name="evaluated", marker={"color": "lightgrey"},
                              text=[r["pipeline"] for r in ok]))
    gfig.add_trace(go.Scatter(x=[r[x] for r in good], y=[r[y] for r in good],
                              mode="lines+markers", name="Pareto front",
                              text=[f"{r['key']}: {r['pipeline']}" for r in good]))
    for name, r in baselines.items():
        if r.get("status") == "ok" and r.get(x) is not None and r.get(y) is not None:
            gfig.add_trace(go.Scatter(x=[r[x]], y=[r[y]], mode="markers+text", name=name,
                                      text=[name], textposition="top right",
                                      marker={"size": 11, "symbol": "square"}))
    gfig.update_layout(title=f"irflow search: {Path(space.path).name}",
                       xaxis_title=x, yaxis_title=y, hovermode="closest")
    gfig.write_html(html, include_plotlyjs=True, full_html=True)


__all__ = ["pareto", "dominates", "baseline_claims", "front_markdown", "front_csv", "plot",
           "reproduce_command", "sensitivity_csv"]
