"""calibrate: streaming histograms, range methods, the npz data path and the pass."""

from __future__ import annotations

import numpy as np
import pytest

from irflow import zoo
from irflow.diagnostics import IrflowError, PassError
from irflow.io import parse_mlir, print_module
from irflow.passes.calibrate import (
    Calibration,
    StreamingHistogram,
    calibrate,
    calibration_from_npz,
    recorded_range,
    select_range,
    set_calibration_data,
)
from irflow.pipeline import parse_pipeline, run_pipeline


def _batches(seed: int, n: int) -> list[np.ndarray]:
    """Batches whose range grows in both directions (forces re-binning several times)."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(1000) * (1 + 3 * i) + (i - n / 2) for i in range(n)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_histogram_equals_one_shot(seed):
    batches = _batches(seed, 12)
    streamed = StreamingHistogram(256)
    for b in batches:
        streamed.update(b)
    once = StreamingHistogram(256)
    once.update(np.concatenate(batches))
    w1, s1, c1 = streamed.dense()
    w2, s2, c2 = once.dense()
    assert (w1, s1) == (w2, s2)
    assert np.array_equal(c1, c2)
    assert c1.sum() == 12000 == streamed.count
    assert (streamed.min, streamed.max) == (once.min, once.max)
    # and it is the histogram numpy computes on the same power-of-two bin edges
    edges = (s1 + np.arange(len(c1) + 1)) * w1
    ref, _ = np.histogram(np.concatenate(batches), bins=edges)
    ref[-1] -= int((np.concatenate(batches) == edges[-1]).sum())  # numpy's last bin is closed
    assert np.array_equal(c1, ref)


def test_streaming_histogram_memory_independent_of_batches():
    few, many = StreamingHistogram(), StreamingHistogram()
    for b in _batches(0, 2):
        few.update(b)
    for b in _batches(0, 50):
        many.update(b)
    assert few.nbytes == many.nbytes == 2048 * 8
    assert many.count == 50_000


def test_histogram_edge_cases():
    h = StreamingHistogram(64)
    h.update(np.zeros(10))
    h.update(np.array([], np.float32))
    assert h.count == 10 and h.dense()[2].tolist() == [10]
    h.update(np.array([3.0, -5.0]))
    assert (h.min, h.max) == (-5.0, 3.0) and h.dense()[2].sum() == 12
    with pytest.raises(ValueError, match="non-finite"):
        h.update(np.array([1.0, np.inf]))


def _quant_mse(x: np.ndarray, lo: float, hi: float, levels: int = 255) -> float:
    """The real mean squared error of uniform quantization with range [lo, hi]."""
    step = (hi - lo) / levels
    q = np.clip(np.round((x - lo) / step), 0, levels) * step + lo
    return float(np.mean((x - q) ** 2))


def test_range_methods():
    rng = np.random.default_rng(0)
    h = StreamingHistogram()
    data = np.concatenate([rng.standard_normal(100_000), [40.0]])  # one outlier
    h.update(data)
    assert select_range(h, "minmax") == (data.min(), 40.0)
    lo, hi = select_range(h, "percentile", percentile=99.9)
    assert 3.0 < hi < 3.6 and lo == pytest.approx(-hi)
    # entropy (KL) clips the lone outlier away, keeps the bulk
    lo, hi = select_range(h, "entropy")
    assert 3.0 < hi < 8.0 and lo == pytest.approx(-hi)
    # MSE minimizes the expected squared error: its range beats min-max and the 99.9th
    # percentile on the real quantization error of this data
    mse = _quant_mse(data, *select_range(h, "mse"))
    assert mse <= _quant_mse(data, data.min(), 40.0)
    assert mse <= _quant_mse(data, -3.3, 3.3)
    relu = StreamingHistogram()
    relu.update(np.maximum(data, 0))
    assert select_range(relu, "entropy")[0] == 0.0
    with pytest.raises(ValueError, match="unknown calibration method"):
        select_range(h, "median")


def _digits_module():
    module = zoo.load("digits_cnn")
    run_pipeline(module, "default")
    return module


def test_calibrate_records_ranges_on_the_ir():
    module = _digits_module()
    rng = np.random.default_rng(0)
    x = [rng.uniform(0, 1, (1, 1, 8, 8)).astype(np.float32) for _ in range(3)]
    cal = calibrate(module, [{"input": a} for a in x])
    assert isinstance(cal, Calibration) and cal.batches == 3
    f = list(module.ops)[0]
    arg = f.body.blocks[0].args[0]
    lo, hi = recorded_range(arg)
    assert lo == pytest.approx(min(a.min() for a in x)) and hi == pytest.approx(
        max(a.max() for a in x))
    text = print_module(module)
    assert text.count("quant.range") == len(cal.histograms)
    # the recorded ranges survive printing and parsing
    reparsed = parse_mlir(text)
    arg2 = list(reparsed.ops)[0].body.blocks[0].args[0]
    assert recorded_range(arg2) == pytest.approx((lo, hi), rel=1e-6)
    # every op result with data has a range; ranges for another method on demand
    assert set(cal.ranges("percentile")) == set(cal.ranges())


def test_calibration_npz(tmp_path):
    module = _digits_module()
    good = tmp_path / "calib.npz"
    np.savez(good, input=np.zeros((5, 1, 8, 8), np.float32))
    batches = calibration_from_npz(module, good)
    assert len(batches) == 5 and batches[0]["input"].shape == (1, 1, 8, 8)
    bad_shape = tmp_path / "bad.npz"
    np.savez(bad_shape, input=np.zeros((5, 64), np.float32))
    with pytest.raises(PassError, match=r"input 'input' expects samples of shape \[1, 8, 8\].*"
                                        r"got \[5, 64\]"):
        calibration_from_npz(module, bad_shape)
    missing = tmp_path / "missing.npz"
    np.savez(missing, y=np.zeros((5, 1, 8, 8), np.float32))
    with pytest.raises(PassError, match="array 'y' is not an input of @main"):
        calibration_from_npz(module, missing)
    np.savez(missing, other=np.zeros(1))
    with pytest.raises(PassError, match="'other' is not an input"):
        calibration_from_npz(module, missing)
    with pytest.raises(PassError, match="cannot read calibration data"):
        calibration_from_npz(module, tmp_path / "nothing.npz")


def test_calibrate_pass_sources(tmp_path, capsys):
    module = _digits_module()
    path = tmp_path / "calib.npz"
    np.savez(path, input=np.full((4, 1, 8, 8), 0.5, np.float32))
    run_pipeline(module, f'calibrate{{data="{path}"}}')
    arg = list(module.ops)[0].body.blocks[0].args[0]
    assert recorded_range(arg) == (0.5, 0.5)
    set_calibration_data(module, [{"input": np.full((1, 1, 8, 8), 2.0, np.float32)}])
    run_pipeline(module, "calibrate{method=percentile}")
    assert recorded_range(arg) == (2.0, 2.0)
    fresh = _digits_module()
    run_pipeline(fresh, "calibrate{samples=2}")
    assert "seeded random inputs" in capsys.readouterr().err
    assert recorded_range(list(fresh.ops)[0].body.blocks[0].args[0]) is not None


@pytest.mark.parametrize("spec, message", [
    ("calibrate{method=median}", "unknown method 'median'"),
    ("calibrate{percentile=0.0}", "percentile must be in (0, 100]"),
    ("calibrate{bits=3}", "bits must be 4 or 8"),
])
def test_bad_options_rejected_when_parsed(spec, message):
    with pytest.raises(IrflowError) as err:
        parse_pipeline(spec)
    assert message in str(err.value)


def test_inputs_keep_minmax_unless_clip_inputs():
    module = _digits_module()
    rng = np.random.default_rng(0)
    x = [{"input": np.where(rng.uniform(size=(1, 1, 8, 8)) < 0.02, 1.0,
                            rng.uniform(0, 0.5, (1, 1, 8, 8))).astype(np.float32)}
         for _ in range(8)]
    arg = list(module.ops)[0].body.blocks[0].args[0]
    kept = calibrate(module, x, method="percentile", percentile=90.0)
    assert kept.range(arg) == (kept.histograms[arg].min, 1.0)
    clipped = calibrate(module, x, method="percentile", percentile=90.0, clip_inputs=True)
    assert clipped.range(arg)[1] < 0.6
