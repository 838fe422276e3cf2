"""Rich display in Jupyter: evaluate a module, a simulation result or a comparison in a cell.

    >>> module = irflow.zoo.load("lenet5")
    >>> module                    # the IR, syntax-coloured (pygments, irflow/mlir_lexer.py)
    >>> simulate(module, x)       # the report: summary, per-layer table, miss headline
    >>> compare(module, ("default", "int8"), x)    # the stages side by side

`_repr_html_` is what Jupyter (and VS Code, and nbconvert) call to show an object.
`SimReport`, `SimResult` and `Comparison` define it and call the functions here; the IR
module is xDSL's `ModuleOp`, so `install()` — run when `irflow.io` is imported, i.e. by
every irflow loader — adds `_repr_html_` to that class (only if it has none).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from xdsl.dialects.builtin import ModuleOp

MAX_ROWS = 200  # layers shown in a notebook table (the rest are counted)


def ir_html(text: str) -> str:
    """IR text as an HTML block with inline colours (no stylesheet needed)."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter

    from irflow.mlir_lexer import MLIRLexer

    formatter = HtmlFormatter(noclasses=True, nobackground=True, style="friendly")
    return ('<div style="max-height: 40em; overflow: auto; font-size: 0.85em">'
            f"{highlight(text, MLIRLexer(), formatter)}</div>")


def module_html(module: ModuleOp) -> str:
    """`ModuleOp._repr_html_`: the module's IR, syntax-coloured."""
    from irflow.mlir_text import print_module

    return ir_html(print_module(module))


def install() -> None:
    """Give xDSL's `ModuleOp` a `_repr_html_` (if it has none): Jupyter shows the IR."""
    if not hasattr(ModuleOp, "_repr_html_"):
        ModuleOp._repr_html_ = module_html  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------
# Reports and comparisons, from their JSON dicts (the same data the HTML page renders)


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f'<table class="irflow"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def summary_table(doc: Mapping[str, Any]) -> str:
    """The report's totals (and the miss headline) as a small HTML table."""
    t = doc["total"]
    m = doc["machine"]
    rows = [
        ["model", doc.get("model") or "program"],
        ["machine", f"{m.get('name', '')}: {m.get('description', '')}"],
        ["layers", f"{sum(1 for s in doc['layers'] if s['op'] != 'cache.flush'):,}"],
        ["cycles", f"{t['cycles']['total']:,} (compute {t['cycles']['compute']:,}, "
                   f"stall {t['cycles']['stall']:,})"],
        ["latency", f"{t['latency_ms']:.4g} ms"],
        ["MACs", f"{t['macs']:,}"],
        ["cache hit rate", f"{100 * t['cache']['hit_rate']:.1f} %"],
        ["DRAM bytes", f"{t['dram']['bytes_read']:,} read, {t['dram']['bytes_written']:,} "
                       "written"],
        ["energy", f"{t['energy_pj']['total'] / 1e6:.4g} µJ"],
    ]
    if doc.get("misses"):
        rows.append(["misses", doc["misses"]["headline"]])
    return _table(["", ""], rows)


def report_html(doc: Mapping[str, Any]) -> str:
    """`SimReport._repr_html_`: the summary and one row per layer."""
    layers = doc["layers"]
    rows = [[s["name"], s["op"], f"{s['cycles']['total']:,}", f"{s['cycles']['stall']:,}",
             f"{s['macs']:,}", f"{100 * s['cache']['hit_rate']:.1f}",
             f"{s['dram']['bytes_read'] + s['dram']['bytes_written']:,}",
             f"{s['energy_pj']['total'] / 1e6:.3f}", s.get("loc", "")]
            for s in layers[:MAX_ROWS]]
    more = (f"<p>... and {len(layers) - MAX_ROWS:,} more layers "
            "(<code>report.to_dict()</code> has all)</p>" if len(layers) > MAX_ROWS else "")
    head = ["layer", "op", "cycles", "stall", "MACs", "hit %", "DRAM B", "µJ", "loc"]
    return summary_table(doc) + "<br>" + _table(head, rows) + more


def comparison_html(doc: Mapping[str, Any]) -> str:
    """`Comparison._repr_html_`: metrics down, stages across, ratios to the baseline."""
    stages = doc["stages"]
    head = ["metric", *(s["name"] for s in stages)]
    rows = []
    for key in stages[0]["figures"]:
        cells = [key, f"{stages[0]['figures'][key]:.4g}"]
        for s in stages[1:]:
            ratio = s["ratio"][key]
            cells.append(f"{s['figures'][key]:.4g}"
                         + (f" ({ratio:.3f}×)" if ratio is not None else ""))
        rows.append(cells)
    caption = (f"<p>{html.escape(doc['model'] or 'program')} on machine "
               f"'{html.escape(doc['machine'])}', ratios to '{html.escape(doc['baseline'])}'"
               "</p>")
    return caption + _table(head, rows)


__all__ = ["ir_html", "module_html", "install", "summary_table", "report_html",
           "comparison_html"]
