"""The n-D spatial ops (`dialects/nn/spatial.py`) from ONNX: the reference kernels against
onnxruntime on shapes the backend node tests do not cover (groups, dilations, 3-D,
downsampling with antialias), and lower-to-accel's located error for them."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx_helpers import ort_run, single  # noqa: E402

from irflow.backends.reference import run  # noqa: E402
from irflow.frontends.onnx import import_onnx  # noqa: E402

RNG = np.random.default_rng(7)


def _f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _check(m, feeds, rtol: float = 1e-5) -> None:  # type: ignore[no-untyped-def]
    ours = run(import_onnx(m), feeds)
    theirs = ort_run(m, feeds)
    for got, want in zip(ours.values(), theirs):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("attrs, x, w", [
    ({"strides": [2, 2], "pads": [1, 0, 1, 0], "group": 2, "output_padding": [1, 1],
      "dilations": [1, 2]}, (1, 4, 5, 6), (4, 3, 3, 3)),
    ({"strides": [2, 1, 2]}, (2, 2, 3, 3, 3), (2, 3, 2, 2, 2)),
    ({"strides": [3], "output_shape": [12], "auto_pad": "SAME_LOWER"}, (1, 2, 4), (2, 1, 3)),
])
def test_conv_transpose_matches_onnxruntime(attrs: dict, x: tuple, w: tuple) -> None:
    m = single("ConvTranspose", {"x": _f32(*x)}, {"w": _f32(*w), "b": _f32(w[1] * attrs.get(
        "group", 1))}, **attrs)
    _check(m, {"x": _f32(*x)})


@pytest.mark.parametrize("mode, coord, scales", [
    ("nearest", "asymmetric", [1, 1, 2.0, 3.0]),
    ("linear", "half_pixel", [1, 1, 0.6, 1.7]),
    ("cubic", "pytorch_half_pixel", [1, 1, 1.5, 0.5]),
    ("linear", "align_corners", [1, 1, 2.0, 3.0]),  # integral scale · in (see _coordinates)
])
def test_resize_matches_onnxruntime(mode: str, coord: str, scales: list[float]) -> None:
    x = _f32(1, 2, 6, 7)
    m = single("Resize", {"x": x}, {"roi": np.zeros(0, np.float32),
                                    "scales": np.asarray(scales, np.float32)},
               mode=mode, coordinate_transformation_mode=coord)
    _check(m, {"x": x}, rtol=1e-4)


def test_dilated_3d_pool_matches_onnxruntime() -> None:
    x = _f32(1, 2, 7, 7, 7)
    m = single("MaxPool", {"x": x}, kernel_shape=[2, 3, 2], dilations=[2, 1, 2],
               pads=[1, 1, 0, 0, 1, 1], strides=[2, 2, 1], ceil_mode=1)
    _check(m, {"x": x})


def test_a_3d_conv_transpose_simulates_like_onnxruntime() -> None:
    """The ONNX node lowers to one PE layer (docs/accel.md §1) and the simulator's
    output matches onnxruntime's."""
    from irflow.backends.sim import simulate

    feeds = {"x": _f32(1, 2, 3, 4, 3)}
    m = single("ConvTranspose", feeds, {"w": _f32(2, 3, 2, 2, 2)}, strides=[2, 2, 1],
               pads=[1, 0, 0, 0, 1, 1])
    result = simulate(import_onnx(m), feeds, machine="default")
    assert [s.op for s in result.report.layers[:1]] == ["nn.conv_transpose"]
    np.testing.assert_allclose(next(iter(result.outputs.values())), ort_run(m, feeds)[0],
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("equation, shapes", [
    ("...ij,...jk", [(2, 3, 4), (2, 4, 5)]),  # implicit output, broadcast batch
    ("ii->i", [(4, 4)]),  # diagonal
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
])
def test_einsum_matches_onnxruntime(equation: str, shapes: list[tuple[int, ...]]) -> None:
    feeds = {f"x{i}": _f32(*s) for i, s in enumerate(shapes)}
    _check(single("Einsum", feeds, equation=equation), feeds, rtol=1e-5)


@pytest.mark.parametrize("attrs, x, w", [
    ({"strides": [2, 1, 2], "pads": [1, 0, 1, 0, 1, 1], "dilations": [2, 1, 1]},
     (1, 3, 7, 5, 6), (4, 3, 3, 2, 3)),
    ({"group": 2, "auto_pad": "SAME_UPPER", "strides": [1, 2, 1]}, (2, 4, 4, 5, 4),
     (6, 2, 2, 3, 3)),
])
def test_3d_conv_imports_simulates_and_matches_onnxruntime(attrs, x, w) -> None:  # type: ignore[no-untyped-def]
    """Conv on a rank-5 input imports as one 2-D conv over the stacked depth taps
    (irflow/frontends/onnx_conv3d.py); reference and simulator match onnxruntime."""
    from irflow.backends.sim import simulate

    feeds = {"x": _f32(*x)}
    m = single("Conv", feeds, {"w": _f32(*w), "b": _f32(w[0])}, **attrs)
    _check(m, feeds, rtol=1e-4)
    result = simulate(import_onnx(m), feeds, machine="default")
    np.testing.assert_allclose(next(iter(result.outputs.values())), ort_run(m, feeds)[0],
                               rtol=1e-4, atol=1e-4)
