"""irflow search, the measured outcome's machinery: which points beat the uniform baselines
(issue 13's definitions), the same table whatever the number of workers, the `mapping`
knob (the PE-array mapping search per point) and zoo models at a smaller input
(docs/search.md §6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from irflow.search import SpaceError, load_space
from irflow.search.front import baseline_claims
from irflow.search.recipe import load_float_model, pipeline_text
from irflow.search.runner import run_search
from irflow.search.strategies import uniform_point

ONNX = Path(__file__).resolve().parent.parent / "examples" / "search" / "digits_cnn.onnx"

TINY = f"""
[model]
source = "{ONNX}"
input_shape = "input=1x1x8x8"

[data]
kind = "digits"
calibration = 20
evaluation = 60

[compression]
per = "layer"
w_bits = [4, 8]
a_bits = [4, 8]

[objectives]
minimize = ["cycles"]
maximize = ["accuracy"]

[search]
strategy = "haq"
budgets = [0.8, 0.9, 0.97]
"""


def _space(tmp_path: Path, text: str = TINY):
    p = tmp_path / "space.toml"
    p.write_text(text)
    return load_space(p)


def _row(key: str, cycles: float, q: float) -> dict:
    return {"key": key, "status": "ok", "cycles": cycles, "sqnr_db": q}


def test_beating_a_baseline_is_the_issues_definition():
    """vs int8: strictly fewer cycles at equal or better quality; vs w4a8: strictly
    better quality at equal or fewer cycles. Ties on the other axis count, equal points
    do not; error rows never count."""
    int8, w4a8 = _row("int8", 100, 40.0), _row("w4a8", 98, 20.0)
    rows = [int8, w4a8,
            _row("a", 90, 40.0),     # fewer cycles, same quality: beats int8 (and w4a8)
            _row("b", 100, 41.0),    # same cycles, better: not fewer cycles than int8
            _row("c", 90, 39.99),    # fewer cycles, worse: beats w4a8 only
            _row("d", 98, 20.0),     # w4a8's own figures: beats nothing
            _row("e", 99, 30.0),     # better than w4a8 but more cycles
            {"key": "f", "status": "error", "cycles": 1, "sqnr_db": 99}]
    claims = baseline_claims(rows, {"int8": int8, "w4a8": w4a8}, "sqnr_db")
    assert [r["key"] for r in claims["int8"]] == ["a"]
    assert [r["key"] for r in claims["w4a8"]] == ["a", "c"]
    failed = {"status": "error"}
    assert baseline_claims(rows, {"int8": failed}, "sqnr_db") == {}


@pytest.mark.slow
def test_claims_on_a_tiny_search_match_the_definitions(tmp_path):
    """A real (in-process) search on digits_cnn: the claims are exactly the rows that meet
    the definitions, and the front's points that beat int8 are among them."""
    from distributed import Client, LocalCluster

    space = _space(tmp_path)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as c:
        result = run_search(space, tmp_path / "out", client=c, progress=False)
    b = result.baselines
    ok = [r for r in result.rows if r["status"] == "ok"]
    assert {r["key"] for r in result.claims["int8"]} == {
        r["key"] for r in ok
        if r["cycles"] < b["int8"]["cycles"] and r["accuracy"] >= b["int8"]["accuracy"]}
    assert {r["key"] for r in result.claims["w4a8"]} == {
        r["key"] for r in ok
        if r["accuracy"] > b["w4a8"]["accuracy"] and r["cycles"] <= b["w4a8"]["cycles"]}
    assert result.claims["int8"]  # conv2 at w4a4: fewer cycles, accuracy kept (docs §2)


def test_one_and_two_workers_evaluate_the_same_points(tmp_path):
    """Seeded strategies ask for points by batch, never by completion order: one and two
    workers give the same table (keys and figures). Workers are threads of this process
    here (they finish in any order, and share the per-process caches); the bench compares
    1 and 2 worker processes on the big models (docs/search.md §6)."""
    from distributed import Client, LocalCluster

    space = _space(tmp_path, TINY.replace("budgets", 'settings = ["w4a4", "w4a8"]\nbudgets'))
    tables = []
    for n in (1, 2):
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=False,
                          dashboard_address=":0") as cluster, Client(cluster) as c:
            result = run_search(space, tmp_path / f"out{n}", client=c, progress=False)
        assert result.workers == n
        tables.append({r["key"]: (r["pipeline"], r["cycles"], r["energy_pj"], r["accuracy"],
                                  r["sqnr_db"]) for r in result.rows})
    assert tables[0] == tables[1]
    haq = [p for p, *_ in tables[0].values() if "layers=" in p]
    assert len(haq) >= 3 * 2  # the sensitivity: 3 layers x the 2 settings asked for
    assert not any("bits=8,act-bits=4" in p for p in haq)  # w8a4 was not asked for


def test_mapping_knob_tiles_each_point_by_the_mapping_search(tmp_path):
    """`mapping = "latency"` appends tile{search=latency} after quantize: the numerics are
    the same, the cycles the mapping search's; the baselines keep irflow's int8/w4a8."""
    from irflow.search.evaluate import evaluate_point

    space = _space(tmp_path, TINY.replace('a_bits = [4, 8]', 'a_bits = [8]\n'
                                          'mapping = ["default", "latency"]')
                   .replace('"haq"', '"grid"'))
    point = {**uniform_point(space, 8, 8), "mapping": "latency"}
    assert pipeline_text(space, point).endswith("quantize{bits=8},tile{search=latency}")
    assert "tile" not in pipeline_text(space, uniform_point(space, 8, 8, baseline=True))
    tiled = evaluate_point(space, point)
    plain = evaluate_point(space, {**point, "mapping": "default"})
    assert tiled["status"] == plain["status"] == "ok"
    assert tiled["accuracy"] == plain["accuracy"] and tiled["sqnr_db"] == plain["sqnr_db"]
    assert tiled["cycles"] <= plain["cycles"]
    with pytest.raises(SpaceError, match="mapping = 'latency'.*machine"):
        _space(tmp_path, TINY.replace('a_bits = [4, 8]', 'mapping = "latency"')
               + '[machine]\n"pe_array.rows" = [8, 16]\n')


def test_zoo_model_at_a_smaller_input():
    """`input_shape` on a zoo model redeclares its input: the same layers (and seeded
    weights) on a smaller image."""
    from irflow.graph import main_func
    from irflow.search.recipe import contraction_layers

    small = load_float_model("resnet18", "x=1x3x32x32", "", {})
    assert main_func(small).body.blocks[0].args[0].type.get_shape() == (1, 3, 32, 32)
    assert len(contraction_layers(small)) == 21
    with pytest.raises(SpaceError, match="input_shape"):
        load_float_model("resnet18", "nope=1x3x32x32", "", {})
