"""The banded im2col conv (`backends/reference/im2col_jit.py`) against the whole-image
im2col path: strided, dilated, asymmetric padding, a last band shorter than the others."""

from __future__ import annotations

import numpy as np
import pytest

from irflow.backends.reference import conv
from irflow.dialects import nn

CASES = {  # name: (x shape, w shape, strides, pads, dilations, act)
    "stem-7x7-s2": ((1, 3, 29, 23), (8, 3, 7, 7), (2, 2), (3, 3, 3, 3), (1, 1), "relu"),
    "3x3-dil-asym": ((2, 4, 13, 11), (5, 4, 3, 3), (1, 2), (2, 0, 1, 3), (2, 1), None),
    "5x5-s3-relu6": ((1, 6, 17, 16), (7, 6, 5, 5), (3, 3), (1, 2, 2, 1), (1, 1), "relu6"),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_bands_match_the_whole_image_path(name: str, dtype: type, bias: bool,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    if not conv.jit_available():
        pytest.skip("numba not installed")
    xs, ws, strides, pads, dil, act = CASES[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype) if bias else None
    monkeypatch.setenv("IRFLOW_REFERENCE_JIT", "on")
    monkeypatch.setattr(conv, "BAND_MIN_COLUMN_BYTES", 0)
    oh = nn.window_out(xs[2], ws[2], strides[0], pads[0], pads[2], dil[0])
    ow = nn.window_out(xs[3], ws[3], strides[1], pads[1], pads[3], dil[1])
    # bands of 7 output rows: several, the last one shorter
    monkeypatch.setattr(conv._im2col_jit(), "BAND_BYTES", 7 * w[0].size * ow * x.itemsize)
    assert conv._use_bands(x, w, b, 1, (oh, ow))
    got = conv.conv2d(x, w, b, strides, pads, dil, 1, act, conv.WeightCache())
    whole = conv.conv2d(x, w, b, strides, pads, dil, 1, act)  # no cache: never banded
    assert got.shape == whole.shape and got.dtype == whole.dtype
    np.testing.assert_allclose(got, whole, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-5 if dtype == np.float32 else 1e-12)
