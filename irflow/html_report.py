"""The simulation report as one self-contained HTML page: plots, roofline, compare, graph.

A renderer of the report JSON (`irflow.sim.report/2`, docs/simulator.md §4): whatever
`irflow run --report-file` writes, plus the optional `"graph"` (the layer dataflow graph,
`layer_graph`) that `irflow run --html` adds. Plots are Plotly figures (plotly.js is
inlined once, so the page needs no network when viewed):

- per-layer cycles, stacked compute / stall; per-layer energy, stacked by part;
- a roofline: each layer at (MACs per DRAM byte, MACs per cycle) under the machine's
  compute roofs (one per data type used) and its DRAM-bandwidth slope;
- the 3C miss attribution (when the report has `"misses"`);
- the comparison of several stages (when it has `"comparison"`): ratios to the baseline;
- the dataflow graph of the layers (`scattergl`, WebGL: pans and zooms at 10,000 nodes),
  each node coloured by cycles or cache hit rate (a menu switches), with a search box
  that highlights the layers whose name contains the text and zooms to them.

    $ irflow run lenet5 --html report.html
    >>> from irflow.html_report import render_html
    >>> html = render_html(json.loads(Path("report.json").read_text()))
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import OpResult, SSAValue

from irflow.diagnostics import IrflowError

PARTS = ("mac", "vector", "cache", "dram")
COLORS = {"compute": "#4c78a8", "stall": "#e45756", "mac": "#4c78a8", "vector": "#72b7b2",
          "cache": "#f58518", "dram": "#e45756", "compulsory": "#9d755d",
          "capacity": "#e45756", "conflict": "#b279a2"}
GRAPH_DIV = "irflow-graph"
MAX_BARS = 300  # layers in a bar chart; the graph and the roofline show every layer
FOLD = 150  # generations per row of the graph drawing


def require_plotly() -> Any:
    try:
        import plotly
    except ImportError:
        raise IrflowError("--html needs plotly: pip install 'irflow[html]'") from None
    return plotly


# --------------------------------------------------------------------------------------
# The layer graph (added to the report JSON as "graph")


def layer_graph(lowered: ModuleOp) -> dict[str, Any]:
    """The dataflow between the layers of a lowered program: `nodes` are the report's
    layer indices (program order), `edges` [producer, consumer] pairs (through views)."""
    from irflow.dialects import accel
    from irflow.graph import main_func

    index: dict[SSAValue, int] = {}
    edges: list[list[int]] = []
    n = 0
    for op in main_func(lowered).body.blocks[0].ops:
        if isinstance(op, accel.ViewOp | accel.SideOp) and op.source in index:  # a side
            # output (`accel.side`): written by its source's layer
            index[op.output] = index[op.source]
        elif isinstance(op, accel.LayerOp):
            for v in op.inputs:
                if isinstance(v, OpResult) and v in index:
                    edges.append([index[v], n])
            index[op.output] = n
            n += 1
    return {"nodes": list(range(n)), "edges": sorted({tuple(e): e for e in edges}.values())}


def graph_positions(n: int, edges: Sequence[Sequence[int]]) -> tuple[list[float], list[float]]:
    """Node positions: x = topological generation (longest path from a source), y = spread
    within the generation (networkx `topological_generations`; O(nodes + edges)).

    A deep graph (more than `FOLD` generations: a 10,000-layer chain) is folded into rows
    of `FOLD` generations, alternating direction, so the whole graph fits one view."""
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from((int(a), int(b)) for a, b in edges)
    generations = [sorted(gen) for gen in nx.topological_generations(g)]
    width = max((len(gen) for gen in generations), default=1)
    fold = FOLD if len(generations) > FOLD else max(len(generations), 1)
    xs, ys = [0.0] * n, [0.0] * n
    for depth, generation in enumerate(generations):
        row, col = divmod(depth, fold)
        x = col if row % 2 == 0 else fold - 1 - col
        for k, node in enumerate(generation):
            xs[node] = float(x)
            ys[node] = k - (len(generation) - 1) / 2 - row * (width + 2)
    return xs, ys


# --------------------------------------------------------------------------------------
# Figures


def _top(layers: Sequence[Mapping[str, Any]], key: Any) -> tuple[list[int], str]:
    """Indices of the layers a bar chart shows (all, or the `MAX_BARS` largest by `key`,
    in program order: an SVG bar per layer stalls a browser at thousands) and a note."""
    if len(layers) <= MAX_BARS:
        return list(range(len(layers))), ""
    keep = sorted(sorted(range(len(layers)), key=lambda i: -key(layers[i]))[:MAX_BARS])
    return keep, f" ({MAX_BARS} largest of {len(layers):,} layers)"


def _cycles_figure(go: Any, layers: Sequence[Mapping[str, Any]]) -> Any:
    keep, note = _top(layers, lambda s: s["cycles"]["total"])
    x = [f"{i}: {layers[i]['name']}" for i in keep]
    fig = go.Figure([go.Bar(name=k, x=x, y=[layers[i]["cycles"][k] for i in keep],
                            marker_color=COLORS[k]) for k in ("compute", "stall")])
    fig.update_layout(barmode="stack", title=f"Cycles per layer: compute and stall{note}",
                      yaxis_title="cycles", xaxis_title="layer", height=420)
    return fig


def _energy_figure(go: Any, layers: Sequence[Mapping[str, Any]]) -> Any:
    keep, note = _top(layers, lambda s: s["energy_pj"]["total"])
    x = [f"{i}: {layers[i]['name']}" for i in keep]
    fig = go.Figure([go.Bar(name=k, x=x, y=[layers[i]["energy_pj"][k] / 1e6 for i in keep],
                            marker_color=COLORS[k]) for k in PARTS])
    fig.update_layout(barmode="stack", title=f"Energy per layer by part{note}",
                      yaxis_title="µJ", xaxis_title="layer", height=420)
    return fig


def _peak(machine: Mapping[str, Any], dtype: str) -> float | None:
    pe = machine.get("pe_array", {})
    rate = pe.get("macs_per_pe_per_cycle", {}).get(dtype)
    if rate is None or "rows" not in pe or "cols" not in pe:
        return None
    return float(pe["rows"] * pe["cols"] * rate)


def _roofline_figure(go: Any, doc: Mapping[str, Any]) -> Any:
    machine = doc["machine"]
    layers = [(i, layer) for i, layer in enumerate(doc["layers"]) if layer["macs"] > 0]
    bw = float(machine.get("dram", {}).get("bytes_per_cycle", 0) or 0)
    fig = go.Figure()
    points = []
    for i, layer in layers:
        dram = layer["dram"]["bytes_read"] + layer["dram"]["bytes_written"]
        intensity = layer["macs"] / max(dram, 1)
        perf = layer["macs"] / max(layer["cycles"]["total"], 1)
        points.append((i, layer, intensity, perf))
    if points:
        scatter = go.Scattergl if len(points) > 1000 else go.Scatter  # WebGL for many
        fig.add_trace(scatter(
            x=[p[2] for p in points], y=[p[3] for p in points], mode="markers",
            name="layers", marker={"size": 9, "color": [p[1]["cycles"]["total"] for p in points],
                                   "colorscale": "Viridis", "showscale": False},
            text=[f"{i}: {layer['name']} ({layer['op']}, {layer['dtype']})"
                  for i, layer, _, _ in points],
            hovertemplate="%{text}<br>%{x:.3g} MACs/byte, %{y:.3g} MACs/cycle<extra></extra>"))
        lo = min(p[2] for p in points) / 4
        hi = max(p[2] for p in points) * 4
        for dtype in sorted({layer["dtype"] for _, layer, _, _ in points}):
            peak = _peak(machine, dtype)
            if peak is None or bw <= 0:
                continue
            knee = peak / bw
            xs = [lo, max(lo, min(knee, hi)), hi]
            fig.add_trace(go.Scatter(x=xs, y=[min(peak, bw * v) for v in xs], mode="lines",
                                     name=f"roof {dtype} ({peak:g} MACs/cycle)",
                                     line={"dash": "dash"}))
    fig.update_layout(title=f"Roofline (DRAM {bw:g} B/cycle)", height=460,
                      xaxis={"type": "log", "title": "arithmetic intensity: MACs per DRAM byte"},
                      yaxis={"type": "log", "title": "achieved MACs per cycle"})
    return fig


def _misses_figure(go: Any, misses: Mapping[str, Any], top: int = 30) -> Any:
    rows = sorted(misses["rows"], key=lambda r: -r["misses"])[:top]
    x = [f"{r['layer']} · {r['role']}" for r in rows]
    loops = ["<br>".join(f"re-fetched across {loop}: {n:,}" for loop, n in
                         list(r["refetch_by_loop"].items())[:3]) or "no re-fetch" for r in rows]
    fig = go.Figure([go.Bar(name=k, x=x, y=[r[k] for r in rows], marker_color=COLORS[k],
                            customdata=loops,
                            hovertemplate="%{x}: %{y:,} " + k + "<br>%{customdata}"
                                          "<extra></extra>")
                     for k in ("compulsory", "capacity", "conflict")])
    fig.update_layout(barmode="stack", height=440, yaxis_title="misses (lines)",
                      title=f"Misses by layer and role, compulsory / capacity / conflict "
                            f"(top {len(rows)}; hover for the re-fetching loops)")
    return fig


def _compare_figure(go: Any, comparison: Mapping[str, Any]) -> Any:
    keys = ["cycles", "latency_ms", "dram_bytes", "cache_hit_rate", "energy_pj", "model_bytes"]
    fig = go.Figure([go.Bar(name=s["name"], x=keys,
                            y=[s["ratio"].get(k) for k in keys],
                            text=[f"{s['ratio'][k]:.3f}×" if s["ratio"].get(k) is not None
                                  else "-" for k in keys], textposition="outside")
                     for s in comparison["stages"]])
    fig.update_layout(barmode="group", height=440, yaxis_title="ratio to baseline",
                      title=f"Stages side by side, ratios to '{comparison['baseline']}'")
    return fig


def _compare_table(go: Any, comparison: Mapping[str, Any]) -> Any:
    stages = comparison["stages"]
    keys = list(stages[0]["figures"])
    cells = [keys] + [[f"{s['figures'][k]:.4g}" for k in keys] for s in stages]
    fig = go.Figure(go.Table(header={"values": ["metric", *(s["name"] for s in stages)]},
                             cells={"values": cells}))
    fig.update_layout(height=60 + 24 * len(keys), margin={"t": 10, "b": 10})
    return fig


def _graph_figure(go: Any, doc: Mapping[str, Any]) -> Any:
    layers = doc["layers"]
    graph = doc["graph"]
    n = len(graph["nodes"])
    xs, ys = graph_positions(n, graph["edges"])
    ex: list[float | None] = []
    ey: list[float | None] = []
    for a, b in graph["edges"]:
        if ys[a] == ys[b] and abs(xs[b] - xs[a]) > 1:  # a skip connection: an arch over
            span = abs(xs[b] - xs[a])                  # the layers it jumps
            ex += [xs[a], (xs[a] + xs[b]) / 2, xs[b], None]
            ey += [ys[a], ys[a] + 0.4 + 0.15 * min(span, 10), ys[b], None]
        else:
            ex += [xs[a], xs[b], None]
            ey += [ys[a], ys[b], None]
    cycles = [math.log10(max(layers[i]["cycles"]["total"], 1)) for i in range(n)]
    hit = [layers[i]["cache"]["hit_rate"] for i in range(n)]
    text = [f"{i}: {layers[i]['name']}<br>{layers[i]['op']}  {layers[i]['loc']}"
            f"<br>{layers[i]['cycles']['total']:,} cycles, hit rate "
            f"{100 * layers[i]['cache']['hit_rate']:.1f} %" for i in range(n)]
    edge_trace = go.Scattergl(x=ex, y=ey, mode="lines", hoverinfo="skip", name="edges",
                              line={"width": 1, "color": "#bbbbbb"})
    labelled = n <= 30  # names beside the nodes while they stay readable
    node_trace = go.Scattergl(
        x=xs, y=ys, mode="markers+text" if labelled else "markers", name="layers",
        hovertext=text, text=[layers[i]["name"] for i in range(n)] if labelled else None,
        textposition="top center", textfont={"size": 10},
        hovertemplate="%{hovertext}<extra></extra>",
        customdata=[layers[i]["name"] for i in range(n)],
        marker={"size": 10 if n < 2000 else 5, "color": cycles, "colorscale": "Viridis",
                "showscale": True, "colorbar": {"title": "log10 cycles"}})
    found = go.Scattergl(x=[], y=[], mode="markers", name="search", hoverinfo="skip",
                         marker={"size": 16, "color": "rgba(0,0,0,0)",
                                 "line": {"width": 2, "color": "#d62728"}})
    fig = go.Figure([edge_trace, node_trace, found])
    fig.update_layout(
        title=f"Dataflow graph: {n:,} layers, {len(graph['edges']):,} edges "
              "(drag to pan, scroll to zoom)",
        height=620, showlegend=False, dragmode="pan", hovermode="closest",
        xaxis={"visible": False}, yaxis={"visible": False},
        updatemenus=[{"type": "buttons", "direction": "right", "x": 0, "y": 1.08,
                      "xanchor": "left", "buttons": [
                          {"label": "colour: cycles", "method": "restyle",
                           "args": [{"marker.color": [cycles], "marker.colorbar.title.text":
                                     "log10 cycles"}, [1]]},
                          {"label": "colour: hit rate", "method": "restyle",
                           "args": [{"marker.color": [hit], "marker.colorbar.title.text":
                                     "hit rate"}, [1]]}]}])
    return fig


# Searching the graph: the only script besides plotly.js (no chart code: it moves the
# "search" trace onto the matching nodes and zooms the axes to them).
_SEARCH_JS = """
function irflowSearch(text) {
  var div = document.getElementById('%(div)s');
  var nodes = div.data[1], xs = [], ys = [];
  var q = text.trim().toLowerCase();
  if (q) {
    for (var i = 0; i < nodes.customdata.length; i++) {
      if (String(nodes.customdata[i]).toLowerCase().indexOf(q) >= 0) {
        xs.push(nodes.x[i]); ys.push(nodes.y[i]);
      }
    }
  }
  document.getElementById('irflow-search-count').textContent =
    q ? xs.length + ' match' + (xs.length === 1 ? '' : 'es') : '';
  Plotly.restyle(div, {x: [xs], y: [ys]}, [2]);
  if (xs.length) {
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    Plotly.relayout(div, {'xaxis.range': [x0 - 3, x1 + 3], 'yaxis.range': [y0 - 3, y1 + 3]});
  }
}
"""

_STYLE = """
body { font-family: Helvetica, Arial, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table.irflow { border-collapse: collapse; font-size: 0.9em; }
table.irflow td, table.irflow th { padding: 2px 10px; border-bottom: 1px solid #ddd;
  text-align: right; }
table.irflow td:first-child, table.irflow th:first-child { text-align: left; }
.figure { margin-bottom: 1em; }
"""


def render_html(doc: Mapping[str, Any], title: str | None = None) -> str:
    """The report JSON `doc` (a dict) as one self-contained HTML page (module docstring)."""
    plotly = require_plotly()
    import plotly.graph_objects as go
    import plotly.io as pio

    from irflow.notebook import summary_table

    layers = doc["layers"]
    title = title or f"irflow report: {doc.get('model') or 'program'} on " \
                     f"{doc['machine'].get('name', 'machine')}"
    sections: list[tuple[str, str]] = []

    def figure(fig: Any, div_id: str | None = None) -> str:
        return pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=div_id,
                           config={"displaylogo": False, "scrollZoom": True})

    sections.append(("Summary", summary_table(doc)))
    sections.append(("Time", figure(_cycles_figure(go, layers))))
    sections.append(("Energy", figure(_energy_figure(go, layers))))
    sections.append(("Roofline", figure(_roofline_figure(go, doc))))
    if doc.get("misses"):
        headline = f"<p>{html.escape(doc['misses']['headline'])}</p>"
        sections.append(("Miss attribution",
                         headline + figure(_misses_figure(go, doc["misses"]))))
    if doc.get("comparison"):
        comp = doc["comparison"]
        sections.append(("Compare", figure(_compare_figure(go, comp))
                         + figure(_compare_table(go, comp))))
    if doc.get("graph") and doc["graph"]["nodes"]:
        search = ('<p><label>Search layers: <input id="irflow-search" type="search" '
                  'placeholder="name contains..." oninput="irflowSearch(this.value)"></label> '
                  '<span id="irflow-search-count"></span></p>')
        sections.append(("Dataflow graph", search + figure(_graph_figure(go, doc), GRAPH_DIV)))
    body = "\n".join(f'<h2>{html.escape(h)}</h2>\n<div class="figure">{content}</div>'
                     for h, content in sections)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n"
            f"<script type=\"text/javascript\">{plotly.offline.get_plotlyjs()}</script>\n"
            f"<script type=\"text/javascript\">{_SEARCH_JS % {'div': GRAPH_DIV}}</script>\n"
            f"</head><body>\n<h1>{html.escape(title)}</h1>\n{body}\n"
            f"<p><small>irflow, plotly.js {plotly.__version__}; report schema "
            f"{html.escape(str(doc.get('schema')))}</small></p>\n</body></html>\n")


def write_html(path: str, doc: Mapping[str, Any]) -> None:
    from irflow.fileio import write_output

    write_output(path, render_html(doc))


def load_report(path: str) -> dict[str, Any]:
    """A report JSON file, checked to be one (`irflow html REPORT.json`)."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise IrflowError(f"{path}: cannot read a report JSON: {e}") from None
    if not isinstance(doc, dict) or not str(doc.get("schema", "")).startswith(
            "irflow.sim.report/"):
        raise IrflowError(f"{path}: not an irflow report (expected \"schema\": "
                          "\"irflow.sim.report/2\"; write one with --report-file)")
    return doc


__all__ = ["render_html", "write_html", "layer_graph", "graph_positions", "load_report"]
