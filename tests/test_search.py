"""irflow search: the space file, a point's pipeline, the strategies, Dask execution,
resuming, the front and its report, and bad input (docs/search.md)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from irflow.cli import main
from irflow.pipeline import parse_pipeline
from irflow.search import SpaceError, load_space
from irflow.search.evaluate import evaluate_point
from irflow.search.finetune import FinetuneSpec
from irflow.search.front import pareto
from irflow.search.recipe import pipeline_text
from irflow.search.runner import SearchError, connect, run_search
from irflow.search.space import Objective, point_key
from irflow.search.strategies import HAQ, NSGA2, Random, uniform_point

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "search"
ONNX = EXAMPLES / "digits_cnn.onnx"

SMALL = f"""
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
a_bits = [8]
sparsity = ["dense"]

[objectives]
minimize = ["cycles"]
maximize = ["accuracy"]

[search]
strategy = "grid"
"""


def _space(tmp_path: Path, text: str = SMALL, name: str = "space.toml"):
    p = tmp_path / name
    p.write_text(text)
    return load_space(p)


@pytest.fixture(scope="module")
def client():
    """An in-process Dask cluster (threads): real tasks, no process start-up per test."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                           dashboard_address=":0")
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


# ------------------------------------------------------------------------------ space


def test_examples_load_and_knobs_are_per_unit():
    space = load_space(EXAMPLES / "digits_mixed.toml")
    assert space.layers == ("conv1", "conv2", "fc")
    assert [k.name for k in space.knobs][:3] == ["w_bits.conv1", "a_bits.conv1",
                                                 "sparsity.conv1"]
    assert space.size == 2 ** 9
    groups = load_space(EXAMPLES / "digits_groups.toml")
    assert groups.unit_layers("convs") == ("conv1", "conv2")
    assert "machine.dram.bytes_per_cycle" in [k.name for k in groups.knobs]
    family = load_space(EXAMPLES / "family_arch.toml")
    assert family.template and family.knob("arch.width").values == (50, 100, 150)
    tuned = load_space(EXAMPLES / "digits_finetune.toml")
    assert tuned.finetune == FinetuneSpec(epochs=1, lr=5e-4, optimizer="adam", batch=32,
                                          samples=512)
    post = load_space(EXAMPLES / "digits_posttrain.toml")
    assert post.finetune is None and post.knobs == tuned.knobs


@pytest.mark.parametrize("text, message", [
    (SMALL.replace("sparsity = [", "sparsiti = ["),
     r"space.toml:15:1: error: unknown knob 'sparsiti' in \[compression\] \(did you mean "
     r"'sparsity'\?\)"),
    (SMALL + '\n[machine]\n"pe_array.rowz" = [8, 16]\n',
     r"space.toml:25:1: error: unknown knob 'pe_array.rowz' in \[machine\] \(did you mean "
     r"'pe_array.rows'\?\)"),
    (SMALL + "\n[hardware]\nx = 1\n", r"unknown section \[hardware\]"),
    (SMALL.replace("w_bits = [4, 8]", "w_bits = []"),
     r"space.toml:13:1: error: \[compression\] w_bits = \[\]: a knob needs at least one value"),
    (SMALL.replace("w_bits = [4, 8]", "w_bits = [8]"), r"the space is empty"),
    (SMALL.replace("w_bits = [4, 8]", "w_bits = [3, 8]"),
     r"w_bits = 3: expected one of \[4, 8, 32\]"),
    (SMALL.replace('maximize = ["accuracy"]', 'maximize = ["acuracy"]'),
     r"unknown objective 'acuracy' \(did you mean 'accuracy'\?\)"),
    (SMALL.replace('strategy = "grid"', 'strategy = "nsga3"'),
     r"strategy = 'nsga3': expected one of grid, random, nsga2, haq"),
    (SMALL.replace('per = "layer"', 'per = "group"'), r"per = 'group' needs groups"),
    (SMALL + '\n[finetune]\nepochs = 1\noptimizer = "adma"\n',
     r"space.toml:26:1: error: \[finetune\] optimizer = 'adma': expected one of sgd, adam, "
     r"adamw \(did you mean 'adam'\?\)"),
    (SMALL + "\n[finetune]\nepochs = 0\n",
     r"space.toml:25:1: error: \[finetune\] epochs must be an integer >= 1, got 0"),
    (SMALL + "\n[finetune]\nlr = -1\n", r"\[finetune\] lr must be a number in \(0, 10\)"),
    (SMALL + "\n[finetune]\nsteps = 3\n", r"unknown .*'steps'.* \[finetune\]"),
    (SMALL.replace('kind = "digits"', 'kind = "random"').replace(
        'maximize = ["accuracy"]', 'maximize = ["sqnr_db"]') + "\n[finetune]\nepochs = 1\n",
     r"\[finetune\] needs labelled data"),
])
def test_bad_spaces_are_one_line_errors(tmp_path, capsys, text, message):
    (tmp_path / "space.toml").write_text(text)
    with pytest.raises(SpaceError, match=message):
        load_space(tmp_path / "space.toml")
    assert main(["search", str(tmp_path / "space.toml"), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing written for a bad space


# ------------------------------------------------------------------------------ a point


def test_point_pipeline_text_parses_and_says_each_setting(tmp_path):
    space = load_space(EXAMPLES / "digits_mixed.toml")
    point = uniform_point(space, 8, 8)
    point.update({"w_bits.conv2": 4, "a_bits.conv2": 4, "sparsity.conv1": "2:4",
                  "sparsity.fc": "2:4"})
    text = pipeline_text(space, point)
    assert text == ('prune{mode=nm n=2 m=4 exclude="conv2"},default,calibrate,'
                    'quantize{bits=8 layers="conv2:bits=4,act-bits=4"}')
    parse_pipeline(text)
    point["w_bits.fc"] = 32
    assert 'fc:skip=true' in pipeline_text(space, point)


def test_whole_model_calibration_and_weight_clip_knobs(tmp_path):
    space = _space(tmp_path, SMALL.replace('sparsity = ["dense"]', 'sparsity = ["dense"]\n'
                                           'calibration = ["minmax", "percentile"]\n'
                                           'weight_clip = ["mse"]'))
    assert space.knob("calibration").values == ("minmax", "percentile")
    point = {**uniform_point(space, 8, 8), "calibration": "percentile", "w_bits.conv1": 4}
    text = pipeline_text(space, point)
    assert text == ('default,calibrate{method=percentile},quantize{bits=8 weight-clip=mse '
                    'layers="conv1:bits=4"}')
    parse_pipeline(text)
    base = uniform_point(space, 8, 8, baseline=True)  # irflow's own int8: min-max, minmax
    assert pipeline_text(space, base) == "default,calibrate,quantize{bits=8}"
    with pytest.raises(SpaceError, match=r"calibration = 'kl': expected one of minmax, "):
        _space(tmp_path, SMALL.replace('sparsity = ["dense"]', 'calibration = ["kl"]'))


def test_a_point_reproduces_with_irflow_run(tmp_path, capsys):
    """The front table's command gives the cycles the search measured."""
    space = load_space(EXAMPLES / "digits_groups.toml")
    point = {k.name: k.values[-1] for k in space.knobs}
    row = evaluate_point(space, point)
    assert row["status"] == "ok", row.get("error")
    (tmp_path / "m.toml").write_text(row["machine"])
    from irflow.search.evaluate import model_context

    ctx = model_context(space, ())
    np.savez(tmp_path / "calib.npz", input=np.concatenate([b["input"] for b in
                                                          ctx.data.calibration]))
    assert main(["run", str(ONNX), "--input-shape", "input=1x1x8x8", "-p", row["pipeline"],
                 "--hw", str(tmp_path / "m.toml"), "--calib", str(tmp_path / "calib.npz"),
                 "--no-compare", "--report", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total"]["cycles"]["total"] == row["cycles"]
    assert report["machine"]["pe_array"]["rows"] == point["machine.pe_array.rows"]


FINETUNE_SPACE = SMALL.replace("calibration = 20\nevaluation = 60",
                               "calibration = 20\nevaluation = 120").replace(
    'w_bits = [4, 8]', 'w_bits = [8]').replace('sparsity = ["dense"]',
                                               'sparsity = ["dense", "2:4"]').replace(
    'per = "layer"', 'per = "model"')


@pytest.mark.slow
def test_finetune_recovers_a_pruned_point_and_the_row_says_so(tmp_path):
    """[finetune]: the 2:4-pruned int8 point is fine-tuned (masks kept, QAT w8a8) before
    lowering; its accuracy is at least the post-training one, and the row records it."""
    post = _space(tmp_path, FINETUNE_SPACE, "post.toml")
    tuned = _space(tmp_path, FINETUNE_SPACE + "\n[finetune]\nepochs = 1\nlr = 5e-4\n"
                   'optimizer = "adam"\nbatch = 32\nsamples = 320\n', "tuned.toml")
    assert post.finetune is None and tuned.finetune is not None
    point = {"sparsity": "2:4"}
    before = evaluate_point(post, point)
    after = evaluate_point(tuned, point)
    again = evaluate_point(tuned, point)
    for row in (before, after):
        assert row["status"] == "ok", row.get("error")
    assert before["finetune"] == ""
    assert after["finetune"] == "adam lr=0.0005 1 epoch batch 32 320 samples, qat w8a8"
    assert after["accuracy"] >= before["accuracy"]
    assert after["sqnr_db"] != before["sqnr_db"]  # the weights did change
    assert again["accuracy"] == after["accuracy"] and again["sqnr_db"] == after["sqnr_db"]
    assert after["pipeline"] == before["pipeline"]  # same lowering, other weights


# ------------------------------------------------------------------------------ strategies


def _fake_row(space, p):
    rng = np.random.default_rng(int(point_key(p)[:8], 16))
    return {"status": "ok", "cycles": float(rng.integers(100, 1000)),
            "accuracy": float(rng.uniform(90, 99)), "accuracy_drop": 0.0,
            "sqnr_db": float(rng.uniform(10, 40))}


def test_nsga2_and_random_are_deterministic_for_a_seed():
    space = load_space(EXAMPLES / "digits_mixed.toml")

    def nsga_run():
        s = NSGA2(space)
        asked = []
        while batch := s.ask():
            asked.append(batch)
            s.tell(batch, [_fake_row(space, p) for p in batch])
        return asked

    first, second = nsga_run(), nsga_run()
    assert first == second and sum(map(len, first)) == space.trials
    assert len(first) == space.trials // space.population
    assert Random(space).ask() == Random(space).ask()


def test_haq_ilp_is_the_exact_optimum(tmp_path):
    """The ILP's choice equals a brute-force search over every assignment."""
    space = _space(tmp_path, SMALL.replace('strategy = "grid"', 'strategy = "haq"\n'
                                           "budgets = [0.85, 0.95]")
                   .replace("a_bits = [8]", "a_bits = [4, 8]"))
    haq = HAQ(space)
    sens = haq.ask()
    assert len(sens) == 1 + 3 * 3  # uniform w8a8 + 3 layers x 3 other settings
    rows = [_fake_row(space, p) for p in sens]
    rows[0]["cycles"] = 1000.0
    haq.tell(sens, rows)
    solutions = haq.ask()
    options = [(8, 8), *haq.settings]
    by_key = {point_key(p): r for p, r in zip(sens, rows)}
    base = rows[0]

    def cost(layer, s):
        r = base if s == (8, 8) else by_key[point_key(uniform_point(space, *s, only=layer))]
        return 10 ** (-r["sqnr_db"] / 10), r["cycles"] - base["cycles"]

    for budget, got in zip(space.budgets, solutions):
        best = min((c for c in itertools.product(options, repeat=3)
                    if sum(cost(layer, s)[1] for layer, s in zip(space.layers, c))
                    <= (budget - 1) * 1000),
                   key=lambda c: sum(cost(layer, s)[0] for layer, s in zip(space.layers, c)))
        assert [(got[f"w_bits.{n}"], got[f"a_bits.{n}"]) for n in space.layers] == list(best)
    assert haq.ask() == []


def test_pareto_front_matches_brute_force(tmp_path):
    space = _space(tmp_path)
    rng = np.random.default_rng(3)
    rows = [{"status": "ok", "cycles": float(c), "accuracy": float(a), "accuracy_drop": 0.0}
            for c, a in zip(rng.integers(1, 20, 60), rng.integers(80, 99, 60))]
    front = pareto(space, rows)

    def dominated(r):
        return any(o["cycles"] <= r["cycles"] and o["accuracy"] >= r["accuracy"]
                   and (o["cycles"] < r["cycles"] or o["accuracy"] > r["accuracy"])
                   for o in rows)

    assert sorted(map(id, front)) == sorted(id(r) for r in rows if not dominated(r))
    assert space.objectives == (Objective("cycles", "minimize"),
                                Objective("accuracy", "maximize"))


# ------------------------------------------------------------------------------ Dask


def test_search_on_dask_streams_resumes_and_reports(tmp_path, client):
    space = _space(tmp_path)
    out = tmp_path / "out"
    seen = []

    def stop_after_three(key, row):
        seen.append(key)
        if len(seen) == 3:
            raise KeyboardInterrupt  # the driver is killed mid-run

    with pytest.raises(KeyboardInterrupt):
        run_search(space, out, client=client, progress=False, on_result=stop_after_three)
    db = sqlite3.connect(out / "results.sqlite")
    assert db.execute("SELECT COUNT(*) FROM points").fetchone()[0] == 3  # valid, whole rows
    db.close()
    result = run_search(space, out, client=client, progress=False)
    assert result.evaluated == 2 + 8 - 3  # baselines + grid, minus what finished before
    keys = [r["key"] for r in result.rows]
    assert len(keys) == len(set(keys)) == 2 + 8
    assert {r["run"] for r in result.rows if r["key"] in seen} == {1}
    assert all(r["status"] == "ok" for r in result.rows)
    again = run_search(space, out, client=client, progress=False)
    assert again.evaluated == 0
    assert result.front and all(r["accuracy"] is not None for r in result.front)
    for name in ("front.md", "front.csv", "pareto.png", "pareto.html", "calib.npz"):
        assert (out / name).stat().st_size > 0
    md = (out / "front.md").read_text()
    assert f'-p {result.front[0]["pipeline"]}' in md.replace("'", "")
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_haq_on_dask_measures_sensitivity_once_and_solves_budgets(tmp_path, client):
    space = _space(tmp_path, SMALL.replace('strategy = "grid"', 'strategy = "haq"\n'
                                           "budgets = [0.9, 0.97, 1.0]"))
    result = run_search(space, tmp_path / "out", client=client, progress=False)
    lines = (tmp_path / "out" / "sensitivity.csv").read_text().splitlines()
    assert lines[0].startswith("layer,w_bits,a_bits,sqnr_db") and len(lines) == 1 + 3
    int8 = result.baselines["int8"]
    solved = [r for r in result.rows if r["role"] == "haq" and "bits=4" in r["pipeline"]]
    assert solved and min(r["cycles"] for r in solved) < int8["cycles"]
    again = run_search(space, tmp_path / "out", client=client, progress=False)
    assert again.evaluated == 0  # the sensitivity is not measured twice


def test_constraint_no_point_meets_keeps_the_table(tmp_path, client, capsys):
    space = _space(tmp_path, SMALL + "\n[constraints]\nmax_cycles = 10\n")
    with pytest.raises(SearchError, match=r"no point meets the constraints: max_cycles = 10 "
                                          r"\(closest: off by"):
        run_search(space, tmp_path / "out", client=client, progress=False)
    db = sqlite3.connect(tmp_path / "out" / "results.sqlite")
    assert db.execute("SELECT COUNT(*) FROM points WHERE status = 'ok'").fetchone()[0] == 10
    db.close()


def test_another_space_cannot_mix_into_a_table(tmp_path, client):
    run_search(_space(tmp_path), tmp_path / "out", client=client, progress=False)
    other = _space(tmp_path, SMALL.replace("evaluation = 60", "evaluation = 40"), "b.toml")
    with pytest.raises(SpaceError, match="holds the results of another search space"):
        run_search(other, tmp_path / "out", client=client, progress=False)


def test_unreachable_scheduler_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("irflow.search.runner.CONNECT_TIMEOUT", "1s")
    with pytest.raises(SearchError, match=r"cannot reach the Dask scheduler at "
                                          r"tcp://127.0.0.1:9"):
        connect("tcp://127.0.0.1:9")
    (tmp_path / "s.toml").write_text(SMALL)
    assert main(["search", str(tmp_path / "s.toml"), "--scheduler", "tcp://127.0.0.1:9",
                 "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot reach the Dask scheduler" in err


@pytest.mark.slow
def test_worker_killed_mid_run_loses_nothing(tmp_path):
    """A real LocalCluster with two worker processes; one is killed (SIGKILL) while it
    evaluates a point. The point is retried elsewhere: every point is in the table once."""
    from distributed import Client, LocalCluster

    space = _space(tmp_path)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=":0")
    c = Client(cluster)
    killed: list[int] = []

    def kill_one(key, row):
        if killed:
            return
        processing = {w: ks for w, ks in c.processing().items() if ks}
        if processing:
            victim = next(iter(processing))
            pid = c.run(os.getpid, workers=[victim])[victim]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    try:
        result = run_search(space, tmp_path / "out", client=c, progress=False,
                            on_result=kill_one)
    finally:
        c.close()
        cluster.close()
    assert killed
    keys = [r["key"] for r in result.rows]
    assert len(keys) == len(set(keys)) == 2 + 8
    assert all(r["status"] == "ok" for r in result.rows)  # the lost point was retried
