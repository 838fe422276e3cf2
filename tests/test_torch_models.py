"""Three small PyTorch 2.13 models exported to ONNX at opset 17 (issue 11's new-user check),
each by the dynamo and the TorchScript exporter (`bench/export_torch_models.py` made the
files in tests/data/): every one imports, the reference executor reproduces torch's own
outputs and onnxruntime's, and the simulator runs it or stops at a located error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")

from irflow.backends.reference import run  # noqa: E402
from irflow.diagnostics import IrflowError  # noqa: E402
from irflow.frontends.onnx import import_onnx  # noqa: E402

DATA = Path(__file__).parent / "data"
MODELS = [f"torch_{m}{s}" for m in ("transformer", "unet", "where_pad_amax")
          for s in ("", "_ts")]
# ops the accel dialect has no form for yet: the simulator stops there, naming the node
NOT_SIMULATED = {"torch_unet": "nn.conv_transpose", "torch_where_pad_amax": "nn.pad"}


def _load(name: str) -> tuple[object, np.ndarray, np.ndarray]:
    ref = np.load(DATA / f"{name}.ref.npz")
    return import_onnx(DATA / f"{name}.onnx"), ref["input"], ref["output"]


@pytest.mark.parametrize("name", MODELS)
def test_matches_torch_and_onnxruntime(name: str) -> None:
    module, x, expected = _load(name)
    (y,) = run(module, {"input": x}).values()  # type: ignore[arg-type]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    pytest.importorskip("onnxruntime")
    import onnx
    from onnx_helpers import ort_run

    (theirs,) = ort_run(onnx.load(str(DATA / f"{name}.onnx")), {"input": x})
    np.testing.assert_allclose(y, theirs, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_simulates_or_stops_at_a_located_error(name: str) -> None:
    from irflow.backends.sim import simulate

    module, x, expected = _load(name)
    kind = NOT_SIMULATED.get(name.removesuffix("_ts"))
    if kind is None:
        result = simulate(module, {"input": x}, machine="default")  # type: ignore[arg-type]
        (y,) = result.outputs.values()
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
        return
    with pytest.raises(IrflowError, match=rf"{name}\.onnx:\d+:1\): error: .*no tiled form "
                       rf"for kind '{kind}'"):
        simulate(module, {"input": x}, machine="default")  # type: ignore[arg-type]
