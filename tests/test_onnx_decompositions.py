"""ONNX operators imported as compositions of existing nn ops (1-D conv/pool as 2-D,
GlobalMaxPool, InstanceNormalization, GroupNormalization, opset-7 Softmax and attribute
forms) match onnxruntime, and export back to a model onnxruntime also agrees with."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from onnx_helpers import ort_run, single  # noqa: E402

from irflow.backends.reference import run  # noqa: E402
from irflow.exporters.onnx import export_onnx  # noqa: E402
from irflow.frontends.onnx import import_onnx  # noqa: E402

RNG = np.random.default_rng(0)
X3 = RNG.standard_normal((2, 4, 9)).astype(np.float32)
X4 = RNG.standard_normal((2, 4, 5, 6)).astype(np.float32)

CASES = {
    "conv1d": single("Conv", {"x": X3}, {"w": RNG.standard_normal((6, 2, 3)).astype(np.float32),
                                          "b": np.arange(6, dtype=np.float32)},
                     group=2, pads=[1, 2], strides=[2], dilations=[1]),
    "maxpool1d": single("MaxPool", {"x": X3}, kernel_shape=[3], strides=[2], pads=[1, 1]),
    "avgpool1d_same": single("AveragePool", {"x": X3}, kernel_shape=[4], auto_pad="SAME_UPPER"),
    "global_max_pool": single("GlobalMaxPool", {"x": X4}),
    "instance_norm": single("InstanceNormalization", {"x": X4},
                            {"s": RNG.standard_normal(4).astype(np.float32),
                             "b": RNG.standard_normal(4).astype(np.float32)}, epsilon=1e-3),
    "group_norm": single("GroupNormalization", {"x": X4},
                         {"s": RNG.standard_normal(4).astype(np.float32),
                          "b": RNG.standard_normal(4).astype(np.float32)},
                         opset=21, num_groups=2),
    "softmax_opset7_axis1": single("Softmax", {"x": X4}, opset=7),
    "squeeze_opset11_axes_attr": single("Squeeze", {"x": X4[:, :1]}, opset=11, axes=[1]),
    "reduce_max_opset13_axes_attr": single("ReduceMax", {"x": X4}, opset=13, axes=[1, 3],
                                           keepdims=0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_onnxruntime_and_exports(name: str) -> None:
    model = CASES[name]
    feeds = {vi.name: (X3 if vi.name == "x" and "1d" in name else X4)
             for vi in model.graph.input}
    if name.startswith("squeeze"):
        feeds = {"x": X4[:, :1]}
    expected = ort_run(model, feeds)[0]
    module = import_onnx(model)
    ours = next(iter(run(module, feeds).values()))
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)
    back = ort_run(export_onnx(module, opset=21), feeds)[0]
    np.testing.assert_allclose(back, ours, rtol=1e-5, atol=1e-5)
