"""The HTML report (irflow/html_report.py): self-contained, and rendered by a real browser."""

import copy
import json
import re
import time

import browser
import numpy as np
import pytest

from irflow.cli import main
from irflow.html_report import FOLD, graph_positions, render_html


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """lenet5 through int8 (so the report has a comparison) with the miss attribution."""
    d = tmp_path_factory.mktemp("html")
    html, js = d / "report.html", d / "report.json"
    assert main(["run", "lenet5", "-p", "int8", "--misses", "--html", str(html),
                 "--report-file", str(js), "-q"]) == 0
    return html, json.loads(js.read_text())


def test_the_page_is_self_contained_and_renders_the_json(report, tmp_path):
    html, doc = report
    text = html.read_text()
    assert "<script src" not in text and not re.search(r"""src=["']https?:""", text)
    assert "plotly.js v" in text or "plotly.js" in text  # the library itself is inlined
    assert {"comparison", "misses", "graph"} <= set(doc)
    assert doc["graph"]["nodes"] == list(range(len(doc["graph"]["nodes"])))
    assert len(doc["graph"]["nodes"]) == len([s for s in doc["layers"]
                                              if s["op"] != "cache.flush"])
    for h in ("Time", "Energy", "Roofline", "Miss attribution", "Compare", "Dataflow graph"):
        assert f"<h2>{h}</h2>" in text
    # `irflow html` renders the same JSON into the same sections
    again = tmp_path / "again.html"
    assert main(["html", str(html.with_suffix(".json")), "-o", str(again)]) == 0
    assert again.read_text().count("<h2>") == text.count("<h2>")


def test_html_of_a_file_that_is_not_a_report_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text('{"schema": "something/1"}')
    assert main(["html", str(bad), "-o", str(tmp_path / "x.html")]) == 1
    assert "not an irflow report" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def test_graph_layout_puts_each_layer_after_its_producers():
    xs, ys = graph_positions(5, [[0, 1], [0, 2], [1, 3], [2, 3], [3, 4]])
    assert xs == [0, 1, 1, 2, 3] and ys[1] != ys[2]
    # a deep chain folds into rows, alternating direction: neighbours stay adjacent
    n = 3 * FOLD
    xs, ys = graph_positions(n, [[i, i + 1] for i in range(n - 1)])
    assert len(set(ys)) == 3 and max(xs) == FOLD - 1
    assert all(abs(xs[i + 1] - xs[i]) + abs(ys[i + 1] - ys[i]) <= 3 for i in range(n - 1))


def _open(tmp_path, html):
    exe = browser.find_chromium()
    if exe is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    b = browser.Browser.launch(tmp_path, exe)
    return b, b.open(html)


def _wait_for_plots(page, n, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = page.evaluate("document.querySelectorAll('.js-plotly-plot .main-svg').length "
                            "? document.querySelectorAll('.js-plotly-plot').length : 0")
        if got >= n:
            return got
        time.sleep(0.2)
    return got


def _not_blank(png):
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
    non_white = float(np.mean(pixels.min(axis=1) < 235))
    return non_white, len(np.unique(pixels, axis=0))


@pytest.mark.slow
def test_chromium_renders_every_chart_without_console_errors(report, tmp_path):
    html, doc = report
    b, page = _open(tmp_path, html)
    with b:
        plots = _wait_for_plots(page, 7)
        # time, energy, roofline, misses, compare bars + table, graph
        assert plots == 7, plots
        assert page.evaluate("document.querySelectorAll('.js-plotly-plot .bars .point')"
                             ".length") > 0  # bars were drawn, not just axes
        assert page.evaluate("document.querySelectorAll('#irflow-graph canvas').length") > 0
        n = len(doc["graph"]["nodes"])
        assert page.evaluate("document.getElementById('irflow-graph').data[1].x.length") == n
        page.evaluate("irflowSearch('conv')")
        assert page.evaluate("document.getElementById('irflow-search-count').textContent") \
            == "2 matches"
        shot = page.screenshot(tmp_path / "report.png")
        assert page.errors == []
    non_white, colours = _not_blank(shot)
    assert non_white > 0.05 and colours > 50, (non_white, colours)


@pytest.mark.slow
def test_a_ten_thousand_layer_graph_loads_and_searches(report, tmp_path):
    """10,000 nodes: WebGL (scattergl) draws them; pan/zoom are plotly's; search works."""
    _, doc = report
    big = copy.deepcopy(doc)
    proto = doc["layers"][0]
    n = 10_000
    big["layers"] = [dict(proto, name=f"block{i // 10}.layer{i % 10}",
                          cycles=dict(proto["cycles"], total=1 + (i * 7919) % 100_000))
                     for i in range(n)]
    big["graph"] = {"nodes": list(range(n)),
                    "edges": [[i, i + 1] for i in range(n - 1)]
                    + [[i, i + 3] for i in range(0, n - 3, 10)]}
    big.pop("comparison")
    big.pop("misses")
    html = tmp_path / "big.html"
    start = time.perf_counter()
    html.write_text(render_html(big))
    render_seconds = time.perf_counter() - start
    b, page = _open(tmp_path, html)
    with b:
        assert _wait_for_plots(page, 4, timeout=120) == 4
        assert page.evaluate("document.getElementById('irflow-graph').data[1].x.length") == n
        page.evaluate("irflowSearch('block999.layer9')")
        assert page.evaluate("document.getElementById('irflow-graph').data[2].x.length") == 1
        rng = page.evaluate("document.getElementById('irflow-graph').layout.xaxis.range")
        assert rng[1] - rng[0] < 10  # zoomed in on the match
        assert page.errors == []
    print(f"10,000-node page: rendered in {render_seconds:.2f} s")
