"""Small PyTorch 2.13 models exported to ONNX (issue 11): a transformer classifier, a U-Net,
a where/pad/amax block, a ResNet, a MobileNetV2, a ViT block and a BERT block, each by the
dynamo exporter (asked for opset 17), the TorchScript exporter (`_ts`, opset 17) and, for
the last four, the dynamo exporter at its default opset (`_default`, 20);
`bench/export_torch_models.py` made the files in tests/data/. Every one imports, the
reference executor reproduces torch's own outputs (1e-5) and onnxruntime's (1e-4
relative), exporting the imported module again gives a model onnxruntime agrees with, and
the simulator runs it and matches the reference executor — or, where
`lower-to-accel` has no accel form for one of its ops yet, an expected failure naming
that op (strict: it flips to a failure once the lowering lands)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")

from irflow.backends.reference import run  # noqa: E402
from irflow.diagnostics import IrflowError  # noqa: E402
from irflow.frontends.onnx import import_onnx  # noqa: E402

DATA = Path(__file__).parent / "data"
LEGACY = ("transformer", "unet", "where_pad_amax")
NEW = ("resnet", "mobilenet", "vit_block", "bert_block")
MODELS = [f"torch_{m}{s}" for m in LEGACY for s in ("", "_ts")] + [
    f"torch_{m}{s}" for m in NEW for s in ("", "_ts", "_default")]
# ops the accel dialect has no form for yet: the simulator stops at the first of them,
# naming the node (an entry whose model then simulates XPASSes, strict, and is to be
# removed). Every model simulates now: the U-Net's ConvTranspose/Upsample and the
# where/pad block's Pad lower (dialects/accel_spatial.py), its Greater/Where/ReduceMax
# too (dialects/accel_vector.py).
NOT_SIMULATED: dict[str, tuple[tuple[str, ...], str]] = {}


def _load(name: str) -> tuple[object, dict[str, np.ndarray], np.ndarray]:
    ref = np.load(DATA / f"{name}.ref.npz")
    feeds = {k: ref[k] for k in ref.files if k != "output"}
    return import_onnx(DATA / f"{name}.onnx"), feeds, ref["output"]


@pytest.mark.parametrize("name", MODELS)
def test_matches_torch_and_onnxruntime(name: str) -> None:
    module, feeds, expected = _load(name)
    (y,) = run(module, feeds).values()  # type: ignore[arg-type]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    pytest.importorskip("onnxruntime")
    import onnx
    from onnx_helpers import ort_run

    (theirs,) = ort_run(onnx.load(str(DATA / f"{name}.onnx")), feeds)
    np.testing.assert_allclose(y, theirs, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_exports_back_and_onnxruntime_agrees(name: str) -> None:
    """import -> export (opset 17) -> onnxruntime reproduces the reference executor."""
    pytest.importorskip("onnxruntime")
    from onnx_helpers import ort_run

    from irflow.exporters.onnx import export_onnx

    module, feeds, _ = _load(name)
    (y,) = run(module, feeds).values()  # type: ignore[arg-type]
    (theirs,) = ort_run(export_onnx(module, opset=17), feeds)  # type: ignore[arg-type]
    np.testing.assert_allclose(theirs, y, rtol=1e-4, atol=1e-6)


def _simulate_params() -> list[object]:
    params: list[object] = []
    for name in MODELS:
        stop = NOT_SIMULATED.get(name.removesuffix("_ts").removesuffix("_default"))
        marks = [] if stop is None else [pytest.mark.xfail(
            raises=IrflowError, strict=True,
            reason=f"lower-to-accel stops at {' / '.join(stop[0])}: {stop[1]}")]
        params.append(pytest.param(name, marks=marks))
    return params


@pytest.mark.parametrize("name", _simulate_params())
def test_lowers_and_simulates(name: str) -> None:
    from irflow.backends.sim import simulate

    module, feeds, _ = _load(name)
    reference = run(module, feeds)  # type: ignore[arg-type]
    stop = NOT_SIMULATED.get(name.removesuffix("_ts").removesuffix("_default"))
    try:
        result = simulate(module, feeds, machine="default")  # type: ignore[arg-type]
    except IrflowError as e:  # the expected stop: a located error naming the op
        assert stop is not None and f"{name}.onnx:" in str(e), e
        assert any(op in str(e) for op in stop[0]), e
        raise
    for y, z in zip(result.outputs.values(), reference.values()):
        np.testing.assert_allclose(y, z, rtol=1e-4, atol=1e-5)
