"""`irflow.compare` and `irflow run --compare`: stages side by side on one machine, each
from a fresh copy of the model, ratios to the first stage."""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import irflow.zoo
from irflow.analysis import model_bytes
from irflow.backends.sim import simulate
from irflow.cli import load_inputs, main
from irflow.compare import (
    METRIC_KEYS,
    METRICS,
    SCHEMA,
    calibration_batches,
    compare,
    fresh_copy,
    parse_stages,
)
from irflow.diagnostics import IrflowError
from irflow.io import print_module
from irflow.pipeline import run_pipeline
from irflow.pipelines import COMPARISONS, PIPELINES
from irflow.weights import weights_of

SMALL = "digits_cnn"  # 1x1x8x8 CNN: a whole comparison simulates in well under a second
FLOAT_STAGES = ("default", "sparse")  # both simulate today (fp32 dense, fp32 2:4)

def _compare(module, stages, inputs, **kw):  # noqa: ANN001, ANN003, ANN202
    return compare(module, stages, inputs, **{"machine": "default", "model": SMALL, **kw})


@pytest.fixture(scope="module")
def small() -> tuple:
    module = irflow.zoo.load(SMALL, seed=0)
    return module, load_inputs(module, None, 0)


@pytest.fixture(scope="module")
def float_comparison(small: tuple):  # noqa: ANN201
    module, inputs = small
    return _compare(module, FLOAT_STAGES, inputs)


# --------------------------------------------------------------------------------------
# The comparison


def test_ratios_are_the_stage_figures_over_the_baseline(float_comparison) -> None:  # noqa: ANN001
    c = float_comparison
    assert [s.name for s in c.stages] == list(FLOAT_STAGES)
    base = c.baseline.figures()
    for s in c.stages:
        f = s.figures()
        t = s.report.total
        # the figures are the report's totals, not a second bookkeeping
        assert f["cycles"] == t.cycles
        assert f["dram_bytes"] == t.dram_bytes_read + t.dram_bytes_written
        assert f["cache_hit_rate"] == t.cache.hit_rate == t.cache.hits / t.cache.accesses
        assert f["energy_pj"] == pytest.approx(
            f["energy_mac_pj"] + f["energy_vector_pj"] + f["energy_cache_pj"]
            + f["energy_dram_pj"], rel=1e-12)
        for key in METRIC_KEYS:
            assert c.ratio(s.name, key) == pytest.approx(f[key] / base[key], rel=1e-12)
    for key in METRIC_KEYS:
        assert c.ratio("default", key) == 1.0


def test_table_shows_each_stage_value_and_its_ratio(float_comparison) -> None:  # noqa: ANN001
    c = float_comparison
    text = c.table()
    assert "ratios to 'default'" in text
    for s in c.stages:
        assert f"  {s.name}: {s.pipeline}" in text
    rows = {re.split(r"\s{2,}", line.strip())[0]: line for line in text.splitlines()}
    for m in METRICS:
        cells = rows[m.label.strip()]
        ratio = c.ratio("sparse", m.key)
        assert f"({ratio:.3f}×)" in cells, (m.key, cells)
        assert m.fmt(c.value("default", m.key)) in cells
    assert "calibration" not in text  # no quantized stage: nothing was calibrated
    # prune's explained skip (conv1 has 1 input channel) is a note of its stage, not lost
    assert any(n.startswith("sparse: prune: conv1.weight") and "left dense" in n
               for n in c.notes), c.notes
    assert text.endswith("\n".join(f"  - {n}" for n in c.notes))


def test_2_4_halves_the_pe_cycles_and_compresses_the_weights(float_comparison) -> None:  # noqa: ANN001
    """What 2:4 buys on the default machine (structured = ["2:4"], factor 0.5): conv2's
    weight (32x16x3x3) is 2:4, so its compute cycles halve; the model is smaller."""
    dense, sparse = (float_comparison.stage(n) for n in FLOAT_STAGES)
    conv = [i for i, s in enumerate(dense.report.layers) if s.macs == 32 * 16 * 9 * 64]
    assert len(conv) == 1
    d, s = dense.report.layers[conv[0]], sparse.report.layers[conv[0]]
    assert s.macs == d.macs
    assert s.compute_cycles < 0.6 * d.compute_cycles
    assert float_comparison.ratio("sparse", "cycles") < 1.0
    assert float_comparison.ratio("sparse", "model_bytes") < 0.7


def test_each_stage_starts_from_a_fresh_copy(small: tuple, float_comparison) -> None:  # noqa: ANN001
    module, inputs = small
    fresh = irflow.zoo.load(SMALL, seed=0)
    # the original module and its weights are untouched ...
    assert print_module(module) == print_module(fresh)
    assert weights_of(module).keys() == weights_of(fresh).keys()
    for k, v in weights_of(fresh).items():
        assert np.array_equal(weights_of(module)[k], v)
    # ... and a stage equals running its pipeline alone on a newly loaded model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_pipeline(fresh, "sparse")
    alone = simulate(fresh, inputs, machine="default")
    got = float_comparison.stage("sparse")
    assert got.report.total == alone.report.total
    assert got.model_bytes == model_bytes(fresh)
    for k, v in alone.outputs.items():
        assert np.array_equal(got.result.outputs[k], v)


def test_fresh_copy_owns_its_weights(small: tuple) -> None:
    module, _ = small
    copy = fresh_copy(module)
    key = next(iter(weights_of(copy)))
    weights_of(copy)[key][...] = 0  # a pass writing in place must not reach the original
    assert np.any(weights_of(module)[key] != 0)
    assert print_module(copy) == print_module(module)


def test_json_lists_stages_figures_and_ratios(float_comparison) -> None:  # noqa: ANN001
    d = json.loads(json.dumps(float_comparison.to_dict()))
    assert d["schema"] == SCHEMA and d["baseline"] == "default" and d["model"] == SMALL
    assert [s["name"] for s in d["stages"]] == list(FLOAT_STAGES)
    for s in d["stages"]:
        assert list(s["figures"]) == list(METRIC_KEYS) == list(s["ratio"])
        for key in METRIC_KEYS:
            assert s["ratio"][key] == pytest.approx(
                s["figures"][key] / d["stages"][0]["figures"][key], rel=1e-12)


def test_every_comparison_json_key_is_documented(float_comparison) -> None:  # noqa: ANN001
    doc = (Path(__file__).resolve().parents[1] / "docs" / "simulator.md").read_text()
    section = doc[doc.index(f"`{SCHEMA}`"):]
    d = float_comparison.to_dict()
    keys = [*d, *d["stages"][0], *d["stages"][0]["seconds"], *METRIC_KEYS]
    missing = [k for k in keys if f"`{k}`" not in section and f'"{k}"' not in section]
    assert not missing, f"undocumented comparison keys: {missing}"


def test_model_bytes_counts_2_4_weights_compressed() -> None:
    """A 2:4 f32 weight of 8x16 = 32 runs of 4, each 2 values (32 bits) + 2 indices
    (2 bits): 32 · 68 bits = 272 bytes; dense it is 8 · 16 · 4 = 512 bytes."""
    from irflow.dialects import nn
    from irflow.graph import GraphBuilder
    from irflow.sparsity import set_sparsity

    g = GraphBuilder()
    x = g.input("x", [1, 16])
    w = g.weight("w", np.ones((8, 16), np.float32))
    y = g.add(nn.LinearOp.make([x, w], {})).results[0]
    module = g.finish([y])
    assert model_bytes(module) == 512
    set_sparsity(w.owner, nn.SparsityAttr.nm(2, 4, axis=1))
    assert model_bytes(module) == 272
    assert model_bytes(module, "micro") == 512  # no sparse datapath: stored dense


@pytest.mark.parametrize("hw", ["default", "micro"])
def test_model_bytes_are_the_weight_bytes_the_simulator_stores(small: tuple, hw: str) -> None:
    """Each stage's model bytes equal the packed bytes of the lowered program's
    `accel.weight`s (`accel.stored_nbytes`: compressed where the machine allows)."""
    from irflow.dialects import accel

    module, inputs = small
    c = _compare(module, ("default", "int8", "int8-sparse", "w4a8"), inputs, machine=hw)
    for s in c.stages:
        stored = {op.value.key: accel.stored_nbytes(op) for op in s.result.module.walk()
                  if isinstance(op, accel.WeightOp)}
        assert s.model_bytes == sum(stored.values()), s.name
    int8, sparse = c.stage("int8").model_bytes, c.stage("int8-sparse").model_bytes
    if hw == "default":  # 2:4 int8: 2 × (8 + 2) bits per 4 weights instead of 32
        assert sparse < int8
    else:  # micro has no sparse datapath and stores unstructured weights dense
        assert sparse == int8


# --------------------------------------------------------------------------------------
# Stage lists and names


def test_comparisons_name_pipelines_and_start_from_fp32() -> None:
    assert set(COMPARISONS) == {"int8", "w4a8", "int8-sparse"}
    for name, stages in COMPARISONS.items():
        assert parse_stages(stages) == stages
        assert stages[0] == "default" and name in stages
    assert COMPARISONS["int8-sparse"] == ("default", "int8", "int8-sparse", "int8-channel50")
    assert "fold=bias" in PIPELINES["int8-channel50"][0]


@pytest.mark.parametrize(("text", "message"), [
    ("default,int9", "unknown stage 'int9' (did you mean 'int8'?)"),
    ("defualt", "did you mean 'default'?"),
    ("default,quantize{bits=8}", "unknown stage 'quantize{bits=8}'"),
    (" , ", "expects comma-separated pipeline names"),
    ("int8,int8", "names a stage twice"),
])
def test_bad_stage_names_are_clear_errors(text: str, message: str) -> None:
    with pytest.raises(IrflowError, match=re.escape(message)):
        parse_stages(text)


def test_random_calibration_is_seeded_and_said(small: tuple) -> None:
    module, _ = small
    a, note = calibration_batches(module, None, seed=3)
    b, _ = calibration_batches(module, None, seed=3)
    assert "seeded random inputs (seed 3)" in note and "--calib" in note
    assert len(a) == 4 and all(np.array_equal(x["input"], y["input"]) for x, y in zip(a, b))


def test_calibration_npz_is_used_and_named(small: tuple, tmp_path: Path) -> None:
    module, _ = small
    path = tmp_path / "calib.npz"
    np.savez(path, input=np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32))
    batches, note = calibration_batches(module, str(path))
    assert len(batches) == 5 and str(path) in note and "random" not in note


# --------------------------------------------------------------------------------------
# Command line


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_prints_report_then_comparison(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "run", SMALL, "-p", "sparse", "--compare", "default,sparse")
    assert code == 0, err
    report_at = out.index(f"irflow sim: {SMALL}")
    compare_at = out.index(f"irflow compare: {SMALL} on machine 'default', 2 stages")
    assert report_at < compare_at
    assert re.search(r"^cycles +\S+ +\S+ \(\d\.\d{3}×\)$", out, re.M)
    assert "model bytes" in out and "cache hit rate" in out
    # the requested stage is the main run, reused: only 'default' ran again
    assert "stage 1/2 'default'" in err and "'sparse' (" not in err


def test_cli_json_carries_the_comparison(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    report_file = tmp_path / "r.json"
    code, out, err = run_cli(capsys, "run", SMALL, "-p", "sparse", "--compare",
                             "default,sparse", "--report", "json", "--report-file",
                             str(report_file))
    assert code == 0, err
    d = json.loads(out)
    assert d["schema"] == "irflow.sim.report/2"  # the report's keys are unchanged
    c = d["comparison"]
    assert c["schema"] == SCHEMA and [s["name"] for s in c["stages"]] == ["default", "sparse"]
    assert c["stages"][1]["figures"]["cycles"] == d["total"]["cycles"]["total"]
    assert json.loads(report_file.read_text()) == d


def test_cli_no_compare_and_plain_pipelines_print_only_the_report(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "run", SMALL, "-p", "sparse")
    assert code == 0 and "irflow compare" not in out and "irflow sim" in out
    with pytest.raises(SystemExit) as exit_:  # argparse: the two flags exclude each other
        main(["run", SMALL, "--compare", "default,sparse", "--no-compare"])
    assert exit_.value.code == 2
    code, out, _ = run_cli(capsys, "run", SMALL, "-p", "int8", "--no-compare", "--backend",
                           "reference")
    assert code == 0 and "irflow compare" not in out


@pytest.mark.parametrize(("argv", "message"), [
    (("--compare", "default,int9"), "unknown stage 'int9' (did you mean 'int8'?)"),
    (("--compare", "default", "--backend", "reference"), "needs the simulator backend"),
])
def test_cli_bad_compare_is_one_line(capsys: pytest.CaptureFixture[str], argv: tuple,
                                     message: str) -> None:
    code, out, err = run_cli(capsys, "run", SMALL, *argv)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


# --------------------------------------------------------------------------------------
# Quantized and pruned stages


@pytest.mark.parametrize("pipeline", sorted(COMPARISONS))
def test_cli_pipeline_prints_its_comparison(capsys: pytest.CaptureFixture[str],
                                            pipeline: str) -> None:
    code, out, err = run_cli(capsys, "run", SMALL, "-p", pipeline, "--report", "json")
    assert code == 0, err
    c = json.loads(out)["comparison"]
    stages = COMPARISONS[pipeline]
    assert [s["name"] for s in c["stages"]] == list(stages)
    assert "seeded random inputs" in c["calibration"]
    q = {s["name"]: s for s in c["stages"]}[pipeline]
    # integer weights: at most a quarter of fp32's bytes (biases stay int32)
    assert q["ratio"]["model_bytes"] < 0.3
    assert q["ratio"]["energy_pj"] < 1.0


def test_int8_sparse_stages_on_the_small_model(small: tuple) -> None:
    module, inputs = small
    c = _compare(module, COMPARISONS["int8-sparse"], inputs)
    by = {s.name: s for s in c.stages}
    assert by["int8"].model_bytes < c.baseline.model_bytes / 3
    assert by["int8-sparse"].model_bytes < by["int8"].model_bytes
    assert by["int8-channel50"].model_bytes < by["int8"].model_bytes
    assert by["int8-sparse"].report.total.cycles < by["int8"].report.total.cycles
    assert by["int8-channel50"].report.total.macs < by["int8"].report.total.macs
    assert "seeded random inputs" in c.calibration
    for s in c.stages:
        assert all(np.isfinite(v) for v in s.figures().values())
        assert not math.isnan(c.ratio(s.name, "cycles"))


def test_cli_calibrates_every_quantized_stage_on_calib(capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path) -> None:
    path = tmp_path / "calib.npz"
    np.savez(path, input=np.random.default_rng(1).random((8, 1, 8, 8), dtype=np.float32))
    code, out, err = run_cli(capsys, "run", SMALL, "-p", "int8", "--calib", str(path),
                             "--report", "json")
    assert code == 0, err
    c = json.loads(out)["comparison"]
    assert c["calibration"] == f"{path} (8 batches)"
    assert "no calibration data" not in err  # the calibrate pass got the data, not random
    # the requested int8 run is the int8 stage: same cycles as the report's total
    assert c["stages"][1]["figures"]["cycles"] == json.loads(out)["total"]["cycles"]["total"]
