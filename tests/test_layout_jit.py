"""The numba channels-last → channels-first copy (`layout_jit`) equals numpy's transpose."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from irflow.backends.reference import layout_jit  # noqa: E402


@pytest.mark.parametrize("pixels, channels", [(196, 384), (64, 13), (100, 7), (49, 40)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_channels_first_is_the_transpose(pixels: int, channels: int, dtype: type) -> None:
    src = np.random.default_rng(0).standard_normal((pixels, channels)).astype(dtype)
    dst = np.empty((channels, pixels), dtype)
    layout_jit.to_channels_first(src, dst)
    np.testing.assert_array_equal(dst, src.T)


@pytest.mark.parametrize("act", [0, 1, 2])
@pytest.mark.parametrize("channels", [24, 13])
def test_to_channels_first_add_is_add_then_activation(act: int, channels: int) -> None:
    from irflow.backends.reference.activations import relu, relu6

    rng = np.random.default_rng(1)
    src = rng.standard_normal((70, channels)).astype(np.float32) * 4
    r = rng.standard_normal((channels, 70)).astype(np.float32) * 4
    dst = np.empty((channels, 70), np.float32)
    layout_jit.to_channels_first_add(src, r, act, dst)
    expected = np.add(src.T, r)
    expected = {0: expected, 1: relu(expected), 2: relu6(expected)}[act]
    np.testing.assert_array_equal(dst, expected)
