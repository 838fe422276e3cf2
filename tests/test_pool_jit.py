"""The numba max pool (backends/reference/pool_jit.py) gives numpy's bits
(`pooling._separable_max` of the -inf-padded input), NaN included."""

from __future__ import annotations

import numpy as np
import pytest

from irflow.backends.reference import pooling
from irflow.dialects import nn

pytest.importorskip("numba")

CASES = [  # x shape, pads (top, left, bottom, right), kernel, strides
    ((1, 4, 17, 17), (1, 1, 1, 1), (3, 3), (2, 2)),    # ResNet's stem pool, small
    ((2, 3, 9, 12), (0, 2, 3, 1), (3, 2), (2, 3)),     # asymmetric, kernel < stride
    ((1, 2, 8, 8), (2, 2, 2, 2), (5, 5), (1, 1)),
    ((1, 2, 7, 7), (0, 0, 1, 1), (2, 2), (2, 2)),      # ceil_mode's extra bottom/right pad
    ((1, 1, 3, 3), (4, 0, 4, 0), (2, 1), (1, 1)),      # rows entirely in the padding
]


@pytest.mark.parametrize("shape,pads,kernel,strides", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numba_max_pool_is_bit_identical_to_numpy(monkeypatch: pytest.MonkeyPatch,
                                                  shape: tuple[int, ...], pads: tuple[int, ...],
                                                  kernel: tuple[int, int],
                                                  strides: tuple[int, int], dtype: type) -> None:
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    x[0, 0, 1, 1] = np.nan
    x.reshape(-1)[-1] = -0.0
    out_hw = (nn.window_out(shape[2], kernel[0], strides[0], pads[0], pads[2], 1),
              nn.window_out(shape[3], kernel[1], strides[1], pads[1], pads[3], 1))
    monkeypatch.setattr(pooling, "MAX_POOL_JIT_MIN", 1)
    monkeypatch.setenv("IRFLOW_REFERENCE_JIT", "off")
    expected = pooling.max_pool(x, pads, kernel, strides, out_hw, -np.inf)
    monkeypatch.setenv("IRFLOW_REFERENCE_JIT", "auto")
    got = pooling.max_pool(x, pads, kernel, strides, out_hw, -np.inf)
    assert got.dtype == expected.dtype
    assert np.array_equal(got, expected, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(expected))
