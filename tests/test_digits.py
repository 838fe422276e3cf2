"""The three trained digits models on their 360 test images vs stored onnxruntime logits.

Data: tests/data (see its README), images from scikit-learn. The batch dimension is
dynamic (`N`) and is set to 360 with `input_shapes`. Bound: max abs error <= 1e-5 (two correct fp32
implementations differ by about 4-8e-6 on these logits) and identical top-1.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")

from datasets import DIGITS as DATA
from datasets import reference

from irflow.backends.reference import run  # noqa: E402
from irflow.frontends.onnx import OnnxImportError, import_onnx  # noqa: E402

MODELS = ["digits_mlp", "digits_cnn", "digits_cnn_bn"]


@pytest.mark.parametrize("name", MODELS)
def test_digits_model_matches_stored_onnxruntime_logits(name: str) -> None:
    ref = reference(name)
    x, logits = ref["input"], ref["logits"]
    assert x.shape[0] == 360
    module = import_onnx(DATA / f"{name}.onnx", input_shapes={"input": x.shape})
    out = run(module, {"input": x})["logits"]
    assert out.shape == logits.shape == (360, 10)
    err = float(np.abs(out - logits).max())
    assert err <= 1e-5, f"{name}: max abs error {err:.3g}"
    np.testing.assert_array_equal(out.argmax(axis=1), logits.argmax(axis=1))


def test_digits_without_input_shape_names_the_dynamic_input() -> None:
    with pytest.raises(OnnxImportError) as info:
        import_onnx(DATA / "digits_cnn.onnx")
    msg = str(info.value)
    assert "'input' [N, 1, 8, 8]" in msg and "--input-shape input=1x1x8x8" in msg
