"""The reference conv paths (backends/reference/conv.py) against a direct formula.

The formula pads x, takes every window and contracts it with the weight in float64 (or
exactly, for integers): the definition of ONNX Conv. Each path — pointwise (strided too),
im2col (padded, strided, dilated, grouped), depthwise in numpy and in numba — must match
it; the numba depthwise kernel must match the numpy one bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from irflow.backends.reference import conv
from irflow.dialects import nn


def direct_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: Sequence[int],
                pads: Sequence[int], dil: Sequence[int], groups: int) -> np.ndarray:
    """y[n, f, r, q] = b[f] + sum_{c, i, j} x_pad[n, g·C/G + c, r·sh + i·dh, q·sw + j·dw]
    · w[f, c, i, j], g = f // (F/G); in float64 for floats, int64 for integers."""
    acc = np.float64 if x.dtype.kind == "f" else np.int64
    n, _, h, wd = x.shape
    f, cg, kh, kw = w.shape
    oh = nn.window_out(h, kh, strides[0], pads[0], pads[2], dil[0])
    ow = nn.window_out(wd, kw, strides[1], pads[1], pads[3], dil[1])
    xp = np.pad(x.astype(acc), ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    span = (dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1)
    win = sliding_window_view(xp, span, axis=(2, 3))[
        :, :, : (oh - 1) * strides[0] + 1: strides[0], : (ow - 1) * strides[1] + 1: strides[1],
        :: dil[0], :: dil[1]]  # N, C, OH, OW, KH, KW
    fg = f // groups
    y = np.empty((n, f, oh, ow), acc)
    for g in range(groups):
        y[:, g * fg:(g + 1) * fg] = np.einsum(
            "ncrqij,fcij->nfrq", win[:, g * cg:(g + 1) * cg], w[g * fg:(g + 1) * fg].astype(acc))
    if b is not None:
        y += b.astype(acc).reshape(1, f, 1, 1)
    return y


CASES = {  # name: (x shape, w shape, strides, pads, dilations, groups)
    "pointwise": ((2, 6, 5, 7), (4, 6, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    "pointwise-s2": ((1, 6, 9, 8), (5, 6, 1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1),
    "pointwise-grouped-s(2,3)": ((1, 6, 7, 9), (4, 3, 1, 1), (2, 3), (0, 0, 0, 0), (1, 1), 2),
    "3x3-pad1": ((2, 5, 8, 9), (7, 5, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    "7x7-s2-pad3": ((1, 3, 17, 15), (4, 3, 7, 7), (2, 2), (3, 3, 3, 3), (1, 1), 1),
    "asym-pad-s(2,1)": ((1, 4, 9, 8), (3, 4, 3, 2), (2, 1), (0, 2, 1, 0), (1, 1), 1),
    "dilated": ((1, 4, 11, 10), (6, 4, 3, 3), (1, 1), (2, 1, 2, 1), (2, 3), 1),
    "grouped-s2": ((2, 8, 9, 9), (6, 4, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 2),
    "pad-larger-than-reach": ((1, 2, 3, 3), (3, 2, 3, 3), (1, 1), (3, 3, 3, 3), (1, 1), 1),
    "pointwise-padded": ((1, 3, 4, 4), (2, 3, 1, 1), (1, 1), (1, 0, 0, 1), (1, 1), 1),
    "depthwise": ((2, 12, 9, 9), (12, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 12),
    "depthwise-s2": ((1, 12, 10, 11), (12, 1, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 12),
    "depthwise-nhwc": ((2, 40, 7, 7), (40, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 40),
    "depthwise-mult-dil": ((1, 4, 9, 9), (8, 1, 3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 4),
    "depthwise-5x5-asym": ((1, 6, 12, 9), (6, 1, 5, 5), (2, 1), (2, 0, 1, 3), (1, 1), 6),
    "depthwise-pad-beyond-reach": ((1, 4, 3, 3), (4, 1, 3, 3), (1, 1), (3, 2, 3, 4), (2, 2), 4),
    "depthwise-s3-even-width": ((2, 5, 13, 12), (5, 1, 3, 3), (3, 3), (1, 1, 0, 2), (1, 1), 5),
    # rows of <= 8 outputs and >= 16x as many channels: the channels-last numba kernel
    "depthwise-nhwc-jit": ((2, 80, 5, 5), (80, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 80),
    "depthwise-nhwc-jit-s2-dil": ((1, 96, 9, 8), (96, 1, 3, 3), (2, 2), (2, 1, 1, 2), (2, 1),
                                  96),
    "depthwise-nhwc-jit-14": ((2, 112, 14, 13), (112, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1),
                              112),
}


def _inputs(xs: tuple[int, ...], ws: tuple[int, ...], dtype: type, seed: int = 0
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return (rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype),
                rng.standard_normal(ws[0]).astype(dtype))
    return (rng.integers(-50, 50, xs).astype(dtype), rng.integers(-50, 50, ws).astype(dtype),
            rng.integers(-1000, 1000, ws[0]).astype(dtype))


@pytest.mark.parametrize("jit", ["off", "on"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("name", list(CASES))
def test_conv2d_matches_the_direct_formula(name: str, dtype: type, jit: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    xs, ws, strides, pads, dil, groups = CASES[name]
    if jit == "on" and (ws[1] != 1 or not conv.jit_available()):
        pytest.skip("the numba kernel serves depthwise float layers (numba installed)")
    monkeypatch.setenv("IRFLOW_REFERENCE_JIT", jit)
    x, w, b = _inputs(xs, ws, dtype)
    for bias, act in ((None, None), (b, None), (b, "relu"), (None, "relu6")):
        got = conv.conv2d(x, w, bias, strides, pads, dil, groups, act)
        want = direct_conv(x, w, bias, strides, pads, dil, groups)
        want = want if act is None else np.clip(want, 0, None if act == "relu" else 6)
        assert got.dtype == dtype and got.shape == want.shape
        if np.dtype(dtype).kind == "f":
            tol = 1e-4 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
        else:
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", [k for k in CASES if k.startswith("depthwise")])
def test_numba_depthwise_is_bit_identical_to_numpy(name: str, dtype: type,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    if not conv.jit_available():
        pytest.skip("numba is not installed (the `fast` extra)")
    xs, ws, strides, pads, dil, groups = CASES[name]
    x, w, b = _inputs(xs, ws, dtype, seed=3)
    x.flat[::7] *= 1e3  # some outputs above 6, for relu6
    x.flat[5] = np.nan
    outs = {}
    for mode in ("off", "on"):
        monkeypatch.setenv("IRFLOW_REFERENCE_JIT", mode)
        outs[mode] = [conv.conv2d(x, w, bias, strides, pads, dil, groups, act)
                      for bias in (None, b) for act in (None, "relu", "relu6")]
    for a, c in zip(outs["off"], outs["on"], strict=True):
        np.testing.assert_array_equal(a, c)  # NaN where NaN, the same bits elsewhere


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numba_epilogue_is_bit_identical_to_numpy(dtype: type,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    if not conv.jit_available():
        pytest.skip("numba is not installed (the `fast` extra)")
    rng = np.random.default_rng(4)
    y0 = (rng.standard_normal((2, 5, 3, 4)) * 8).astype(dtype)
    y0[0, 1, 2, 3], y0[1, 0, 0, 0] = np.nan, -np.inf
    b = rng.standard_normal(5).astype(dtype)
    for bias in (None, b):
        for act in (None, "relu", "relu6"):
            got = {}
            for mode in ("off", "on"):
                monkeypatch.setenv("IRFLOW_REFERENCE_JIT", mode)
                got[mode] = conv.epilogue(y0.copy(), bias, act)
            np.testing.assert_array_equal(got["off"], got["on"])
            assert not np.signbit(got["on"][got["on"] == 0]).any() or act is None


def test_auto_mode_keeps_small_layers_on_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRFLOW_REFERENCE_JIT", "auto")
    x = np.zeros((1, 4, 8, 8), np.float32)
    assert not conv._use_jit(x, np.zeros((4, 9), np.float32), None, 4 * 64 * 9)
    monkeypatch.setenv("IRFLOW_REFERENCE_JIT", "off")
    assert not conv._use_jit(x, np.zeros((4, 9), np.float32), None, conv.JIT_MIN_MACS)


def test_im2col_zeroes_exactly_the_padding() -> None:
    x = np.arange(1, 1 + 2 * 5 * 4, dtype=np.float32).reshape(1, 2, 5, 4)
    cols = conv.im2col(x, (3, 3), (2, 1), (1, 2, 0, 1), (1, 2), (2, 2))
    xp = np.pad(x, ((0, 0), (0, 0), (1, 0), (2, 1)))
    win = sliding_window_view(xp, (3, 5), axis=(2, 3))[:, :, ::2, :, :, ::2][:, :, :2, :2]
    np.testing.assert_array_equal(cols, win.transpose(0, 1, 4, 5, 2, 3))


@pytest.mark.parametrize("act", ["relu", "relu6"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numba_add_act_is_bit_identical_to_numpy(monkeypatch: pytest.MonkeyPatch, act: str,
                                                 dtype: type) -> None:
    """A residual add with its fused relu/relu6 in one numba pass (`conv.add_act`) gives
    np.add then the activation's bits, NaN and -0.0 included."""
    if not conv.jit_available():
        pytest.skip("numba not installed")
    from irflow.backends.reference.activations import relu, relu6

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((2, 8, 5, 7)).astype(dtype) * 4 for _ in range(2))
    a.reshape(-1)[:3] = [np.nan, -0.0, 0.0]
    b.reshape(-1)[:3] = [1.0, -0.0, -0.0]
    monkeypatch.setenv("IRFLOW_REFERENCE_JIT", "on")
    got = conv.add_act(a, b, act)
    assert got is not None
    expected = (relu if act == "relu" else relu6)(np.add(a, b))
    assert np.array_equal(got, expected, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(expected))
    assert conv.add_act(a, b[:, :1], act) is None  # broadcasting: numpy's path
