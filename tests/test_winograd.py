"""The Winograd paths of the reference conv (backends/reference/winograd.py).

They compute the convolution with different rounding, so they are checked against the
direct formula in float64 with an error bound (measured: F(4×4, 3×3) ~10× the direct
float32 sum's error, F(2×2, 3×3) about the same), against onnxruntime on a ResNet layer
through the executor, and for which layers take them (float32 3×3 stride-1 only;
integers and the simulator's tiles stay direct).
"""

from __future__ import annotations

import numpy as np
import pytest

from irflow.backends.reference import conv

pytest.importorskip("numba")
from test_conv_kernels import direct_conv  # noqa: E402

from irflow.backends.reference import winograd  # noqa: E402


@pytest.fixture(params=[4, 2])
def always(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> int:
    """Winograd F(m×m, 3×3), m = the param, for any eligible layer, however small."""
    if request.param == 4:
        monkeypatch.setattr(conv, "WINOGRAD_MIN_TILES", 1)
    else:
        monkeypatch.setattr(conv, "WINOGRAD_MIN_TILES", 1 << 30)
        monkeypatch.setattr(conv, "WINOGRAD_MIN_TILES2", 1)
    monkeypatch.setattr(conv, "WINOGRAD_MIN_MACS", 0)
    monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", 1)
    monkeypatch.setenv("IRFLOW_REFERENCE_WINOGRAD", "auto")
    monkeypatch.setenv("IRFLOW_REFERENCE_JIT", "auto")
    return int(request.param)


def _layer(n: int, c: int, k: int, h: int, w: int, seed: int = 0
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((k, c, 3, 3)) * np.sqrt(2 / (9 * c))).astype(np.float32)
    return x, wt, rng.standard_normal(k).astype(np.float32)


@pytest.mark.parametrize("shape,pads,act", [
    ((1, 16, 24, 8, 8), (1, 1, 1, 1), None),          # whole tiles
    ((2, 5, 7, 9, 11), (1, 1, 1, 1), "relu"),         # ragged last tiles, batch 2
    ((1, 6, 4, 10, 7), (0, 2, 1, 0), "relu6"),        # asymmetric padding
    ((1, 3, 5, 6, 6), (0, 0, 0, 0), None),            # no padding (4x4 output: one tile)
    ((1, 4, 3, 3, 5), (3, 2, 4, 1), None),            # padding wider than the kernel
])
def test_winograd_matches_the_direct_formula(always: int, shape: tuple[int, ...],
                                             pads: tuple[int, ...], act: str | None) -> None:
    x, w, b = _layer(*shape)
    ref = direct_conv(x, w, b, (1, 1), pads, (1, 1), 1)
    if act is not None:
        ref = np.clip(ref, 0, 6 if act == "relu6" else np.inf)
    calls = []
    real = winograd.conv3x3
    got = None
    try:
        winograd.conv3x3 = lambda *a: calls.append(a[1].shape[0]) or real(*a)  # type: ignore
        got = conv.conv2d(x, w, b, (1, 1), pads, (1, 1), 1, act, conv.WeightCache())
    finally:
        winograd.conv3x3 = real  # type: ignore[assignment]
    assert calls == [(always + 2) ** 2], "the Winograd path was not taken"
    assert got.dtype == np.float32 and got.shape == ref.shape
    assert np.abs(got - ref).max() <= 1e-5 * max(1.0, float(np.abs(ref).max()))


@pytest.mark.parametrize("c,hw,tile,factor", [(64, 56, 4, 16), (256, 14, 2, 2)])
def test_winograd_error_is_bounded_on_resnet_layers(c: int, hw: int, tile: int,
                                                    factor: int) -> None:
    """ResNet's 56×56×64 layer takes F(4, 3) in auto mode, its 14×14×256 one F(2, 3);
    their error against the float64 sum stays within `factor`× the direct float32
    path's (measured ~10× and ~1×) and 2e-5 of the output scale."""
    x, w, b = _layer(1, c, c, hw, hw)
    if conv.jit_available():
        assert conv.winograd_tile(x, w, b, (1, 1), (1, 1), 1, (hw, hw)) == tile
    ref = direct_conv(x, w, b, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    fast = conv.conv2d(x, w, b, (1, 1), (1, 1, 1, 1), (1, 1), 1, None, conv.WeightCache())
    direct = conv.conv2d(x, w, b, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    err, err_direct = np.abs(fast - ref).max(), np.abs(direct - ref).max()
    assert err <= factor * err_direct
    assert err <= 2e-5 * np.abs(ref).max()


def test_the_transformed_weight_is_cached_per_array(always: int,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    x, w, b = _layer(1, 4, 4, 8, 8)
    count = []
    real = winograd.transform_weight
    monkeypatch.setattr(winograd, "transform_weight",
                        lambda a, tile: count.append(tile) or real(a, tile))
    cache = conv.WeightCache()
    y1 = conv.conv2d(x, w, b, (1, 1), (1, 1, 1, 1), (1, 1), 1, None, cache)
    y2 = conv.conv2d(x, w, b, (1, 1), (1, 1, 1, 1), (1, 1), 1, None, cache)
    assert count == [always] and np.array_equal(y1, y2)
    w2 = w * 2  # another array: transformed again, never the stale one
    y3 = conv.conv2d(x, w2, b, (1, 1), (1, 1, 1, 1), (1, 1), 1, None, cache)
    assert len(count) == 2
    np.testing.assert_allclose(y3 - b[None, :, None, None],
                               2 * (y1 - b[None, :, None, None]), rtol=1e-5, atol=1e-5)


def test_which_layers_take_winograd(always: int, monkeypatch: pytest.MonkeyPatch) -> None:
    x, w, b = _layer(1, 4, 4, 8, 8)

    def use(*args: object) -> bool:
        return conv.winograd_tile(*args) != 0  # type: ignore[arg-type]

    assert use(x, w, b, (1, 1), (1, 1), 1, (8, 8))
    assert not use(x, w, b, (2, 2), (1, 1), 1, (4, 4))  # strided
    assert not use(x, w, b, (1, 1), (2, 2), 1, (6, 6))  # dilated
    assert not use(x, w[:, :2], b, (1, 1), (1, 1), 2, (8, 8))  # grouped
    assert not use(x.astype(np.float64), w.astype(np.float64), None, (1, 1), (1, 1), 1, (8, 8))
    assert not use(x.astype(np.int32), w.astype(np.int32), None, (1, 1), (1, 1), 1, (8, 8))
    monkeypatch.setenv("IRFLOW_REFERENCE_WINOGRAD", "off")
    assert not use(x, w, b, (1, 1), (1, 1), 1, (8, 8))
    monkeypatch.setenv("IRFLOW_REFERENCE_WINOGRAD", "auto")
    monkeypatch.setenv("IRFLOW_REFERENCE_JIT", "off")
    assert not use(x, w, b, (1, 1), (1, 1), 1, (8, 8))
    # without a cache (the simulator's tiles) the direct path runs: the same bits as before
    y = conv.conv2d(x, w, b, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    monkeypatch.setenv("IRFLOW_REFERENCE_WINOGRAD", "off")
    assert np.array_equal(y, conv.conv2d(x, w, b, (1, 1), (1, 1, 1, 1), (1, 1), 1,
                                         None, conv.WeightCache()))


def test_executor_conv_matches_onnxruntime_on_a_resnet_layer() -> None:
    """A 56×56×64 conv+relu through the reference executor (auto mode: Winograd) against
    onnxruntime, at the tolerance tests/test_reference.py uses for convs."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    from irflow.backends.reference import compile_function
    from irflow.frontends.onnx import import_onnx

    x, w, b = _layer(1, 64, 64, 56, 56, seed=3)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["y"])], "layer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64, 56, 56])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    expected = ort.InferenceSession(model.SerializeToString(),
                                    providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    prog = compile_function(import_onnx(model))
    got = prog.run({"x": x})["y"]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert np.array_equal(prog.run({"x": x})["y"], got)  # the cached weight: same bits
