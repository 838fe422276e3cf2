"""Jupyter display (irflow/notebook.py) and the progress helper (irflow/progress.py)."""

import io
import sys

from irflow import zoo
from irflow.backends.sim import simulate
from irflow.cli import load_inputs, main
from irflow.compare import compare
from irflow.progress import Progress, enabled, set_quiet, track


def test_module_shows_its_ir_coloured():
    m = zoo.load("lenet5")
    html = m._repr_html_()
    assert "conv2d" in html and "<span" in html and "color" in html  # inline colours
    assert "&lt;" in html  # tensor<...> escaped


def test_report_and_result_show_tables(tmp_path):
    m = zoo.load("lenet5")
    r = simulate(m, load_inputs(m, None, 0), misses=True)
    html = r._repr_html_()
    assert html == r.report._repr_html_()
    assert html.count("<tr>") >= len(r.report.layers) + 9  # summary rows + one per layer
    assert r.report.misses.headline().split(" (")[0] in html


def test_comparison_shows_ratios():
    m = zoo.load("lenet5")
    c = compare(m, ("default", "int8"), load_inputs(m, None, 0))
    html = c._repr_html_()
    assert "int8" in html and f"({c.ratio('int8', 'cycles'):.3f}×)" in html


def test_progress_is_off_unless_a_terminal_and_not_quiet(monkeypatch):
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # not a terminal
    assert not enabled()
    assert enabled(True) and not enabled(False)

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdout", Tty())
    assert enabled()
    set_quiet()
    try:
        assert not enabled()
    finally:
        set_quiet(False)


def test_progress_counts_and_draws_on_stderr(capsys):
    assert list(track(range(3), "x", enabled=True)) == [0, 1, 2]
    with Progress(2, "y", enabled=False) as bar:
        bar.advance()
        bar.advance()
    assert bar.count == 2
    assert "x" in capsys.readouterr().err


def test_quiet_flag_on_the_command_and_after_it(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    seen = []
    monkeypatch.setattr("irflow.cli.cmd_zoo", lambda args: seen.append(enabled()) or 0)
    monkeypatch.setattr(sys, "stdout", Tty())
    for argv in (["-q", "zoo"], ["zoo", "--quiet"], ["zoo"]):
        assert main(argv) == 0
    assert seen == [False, False, True] and enabled()  # quiet ends with the command
