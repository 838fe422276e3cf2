"""ONNX operators imported as compositions of nn ops (irflow/frontends/onnx_compose.py)
against onnxruntime: CenterCropPad, LpNormalization, MeanVarianceNormalization, and a
float16 convolution accumulating in float32."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx_helpers import ort_run, single  # noqa: E402

from irflow.backends.reference import run  # noqa: E402
from irflow.frontends.onnx import import_onnx  # noqa: E402

RNG = np.random.default_rng(5)


def _check(m, feeds, rtol: float = 1e-5) -> None:  # type: ignore[no-untyped-def]
    (ours,) = run(import_onnx(m), feeds).values()
    (theirs,) = ort_run(m, feeds)
    assert ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours.astype(np.float32), theirs.astype(np.float32), rtol=rtol,
                               atol=rtol)


def test_center_crop_pad() -> None:
    x = RNG.standard_normal((5, 8, 3)).astype(np.float32)
    m = single("CenterCropPad", {"x": x}, {"shape": np.asarray([8, 5], np.int64)},
               opset=18, axes=[0, 1])
    _check(m, {"x": x})


@pytest.mark.parametrize("p", [1, 2])
def test_lp_normalization(p: int) -> None:
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    x[0, 0] = 0.0  # a zero norm gives 0, not NaN
    _check(single("LpNormalization", {"x": x}, axis=1, p=p), {"x": x})


def test_mean_variance_normalization() -> None:
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    _check(single("MeanVarianceNormalization", {"x": x}), {"x": x})


def test_float16_conv_rounds_once() -> None:
    x = RNG.standard_normal((1, 4, 6, 6)).astype(np.float16)
    w = RNG.standard_normal((4, 1, 3, 3)).astype(np.float16)
    _check(single("Conv", {"x": x}, {"w": w}, group=4), {"x": x}, rtol=1e-3)


def test_bitcast_and_swiglu() -> None:
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    (y,) = run(import_onnx(single("BitCast", {"x": x}, opset=26, to=6)), {"x": x}).values()
    np.testing.assert_array_equal(y, x.view(np.int32))
    b = RNG.standard_normal((2, 3)).astype(np.float32)
    m = single("SwiGLU", {"a": x, "b": b}, opset=28, alpha=0.5)
    (y,) = run(import_onnx(m), {"a": x, "b": b}).values()
    np.testing.assert_allclose(y, x / (1 + np.exp(-0.5 * x)) * b, rtol=1e-6)


@pytest.mark.parametrize("align", [0, 1])
def test_affine_grid(align: int) -> None:
    theta = RNG.standard_normal((2, 2, 3)).astype(np.float32)
    m = single("AffineGrid", {"theta": theta}, {"size": np.asarray([2, 1, 4, 5], np.int64)},
               opset=20, align_corners=align)
    _check(m, {"theta": theta})
