"""Every ONNX operator the table-driven nn families import also exports: each of ONNX's own
single-node test cases for those operators that irflow passes is imported, exported again
and run by onnxruntime (onnx's reference evaluator where onnxruntime has no kernel for the
type), which must reproduce irflow's outputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from onnx.backend.test.loader import load_node_model_tests  # noqa: E402
from onnx.backend.test.runner import _normalize_tensor  # noqa: E402
from onnx_helpers import ort_run  # noqa: E402

from irflow.dialects.nn.logic import BINARIES, COMPARISONS  # noqa: E402
from irflow.dialects.nn.math import PARAM_ACTIVATIONS, UNARY_MATH  # noqa: E402
from irflow.dialects.nn.reductions import (  # noqa: E402
    ARG_REDUCTIONS,
    AXIS_MAPS,
    REDUCTIONS,
    SCANS,
)
from irflow.exporters.onnx import MAX_OPSET, export_onnx  # noqa: E402
from irflow.frontends.onnx import OnnxImportError  # noqa: E402
from irflow.lowp import is_low_precision  # noqa: E402
from irflow.onnx_backend import IrflowBackend  # noqa: E402

FAMILY_ONNX_OPS = {
    *(o for o, _ in UNARY_MATH.values()), *(o for o, _, _ in PARAM_ACTIVATIONS.values()),
    *COMPARISONS.values(), *BINARIES.values(), *(o for o, _ in REDUCTIONS.values()),
    *ARG_REDUCTIONS.values(), *AXIS_MAPS.values(), *SCANS.values(),
    "IsNaN", "IsInf", "Cast", "CastLike", "Where", "TopK", "Expand", "Tile", "Pad", "Trilu",
    "DepthToSpace", "SpaceToDepth", "GatherElements", "GatherND", "ScatterElements",
    "ScatterND", "OneHot",
}
# Operators whose ONNX form is newer than the exporter's newest opset.
NEWER_THAN_EXPORTER = {"CumProd"}


def _run_exported(model, feeds: dict[str, np.ndarray], newer: bool) -> list[np.ndarray]:
    """onnxruntime; onnx's own reference evaluator where onnxruntime's kernel refuses (no
    kernel for the type, as BitShift on uint16; ReduceMax of an empty bool set) and, for a
    case from an opset above the exporter's (`newer`), where the export opset's schema does
    not allow it yet (int8 BitShift). A model onnxruntime finds malformed at an opset the
    exporter claims is a failure."""
    from onnxruntime.capi.onnxruntime_pybind11_state import (
        Fail,
        InvalidGraph,
        RuntimeException,
    )
    from onnxruntime.capi.onnxruntime_pybind11_state import NotImplemented as OrtMissing

    try:
        return ort_run(model, feeds)
    except (OrtMissing, RuntimeException, Fail, InvalidGraph, RuntimeError) as e:
        # RuntimeError: onnxruntime's Python binding has no numpy type for bfloat16/float8
        if isinstance(e, InvalidGraph) and not newer:
            raise
        from onnx.reference import ReferenceEvaluator

        return ReferenceEvaluator(model).run(None, feeds)


def _cases() -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = load_node_model_tests()
    return [c for c in cases if len(c.model.graph.node) == 1
            and c.model.graph.node[0].op_type in FAMILY_ONNX_OPS - NEWER_THAN_EXPORTER]


CASES = _cases()


def test_every_family_operator_has_cases() -> None:
    covered = {c.model.graph.node[0].op_type for c in CASES}
    assert FAMILY_ONNX_OPS - NEWER_THAN_EXPORTER - covered == set()


@pytest.mark.slow
def test_import_export_onnxruntime_round_trip() -> None:
    exported: set[str] = set()
    for case in CASES:
        try:
            rep = IrflowBackend.prepare(case.model)
            inputs = [_normalize_tensor(x) for x in case.data_sets[0][0]]
            with np.errstate(all="ignore"):
                ours = rep.run(inputs)
        except OnnxImportError:
            continue  # an expected failure of tests/test_onnx_backend.py
        assert rep.module is not None
        version = case.model.opset_import[0].version
        opset = min(max(version, 13), MAX_OPSET)
        model = export_onnx(rep.module, opset=opset)
        feeds = {n: np.asarray(x) for n, x in zip(rep.input_names, inputs)
                 if n not in rep.bound}
        theirs = _run_exported(model, feeds, version > MAX_OPSET)
        for a, b in zip(ours, theirs):
            if is_low_precision(a.dtype) and b.dtype != a.dtype:
                b = b.view(a.dtype)  # onnx's reference evaluator gives float8 as raw bits
            assert a.dtype == b.dtype and a.shape == b.shape, case.name
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, equal_nan=True,
                                       err_msg=case.name)
        exported.add(case.model.graph.node[0].op_type)
    missing = FAMILY_ONNX_OPS - NEWER_THAN_EXPORTER - exported
    assert not missing, f"no case of {sorted(missing)} round-tripped"
