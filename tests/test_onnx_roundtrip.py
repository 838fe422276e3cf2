"""Every operator that imports also exports (issue 11, must show 5): each of ONNX's own node
test cases that irflow imports (every case of onnx 1.23.2 but `EXPECTED_FAILURES` of
tests/test_onnx_backend.py) is imported, exported again with `export_onnx` at the case's
opset (clamped to the exporter's 13–26) and run by onnxruntime, which must reproduce what
it computes on the original model — or, where onnxruntime cannot run the original (no
kernel for the type, an opset it does not know), the case's expected outputs. Floats within
the case's own tolerance (rtol 1e-3, atol 1e-7 unless the case says otherwise), integers
and booleans exactly: quantized models (QuantizeLinear, DequantizeLinear, QLinearConv,
QLinearMatMul, ConvInteger, MatMulInteger) round-trip bit for bit.

The exported model runs in onnx's reference evaluator instead where onnxruntime has no
kernel for it (bfloat16, float8, uint16 BitShift, ...). Then `test_every_importer_operator
_has_an_export_path` checks the round trips cover every operator in the importer's
converter table (`SUPPORTED_OPERATORS`): an importer added without an exporter fails here.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from onnx.backend.test.loader import load_node_model_tests  # noqa: E402
from onnx.backend.test.runner import _normalize_tensor  # noqa: E402
from test_onnx_backend import EXPECTED_FAILURES  # noqa: E402

from irflow.exporters.onnx import MAX_OPSET, MIN_OPSET, export_onnx  # noqa: E402
from irflow.frontends.onnx import SUPPORTED_OPERATORS  # noqa: E402
from irflow.lowp import is_low_precision  # noqa: E402
from irflow.onnx_backend import IrflowBackend  # noqa: E402

# Operators the importer accepts that no case of onnx 1.23 exercises as irflow imports it
# (GlobalLpPool has no node test; NonZero's imports only of a constant, its cases have
# run-time inputs): a case each, made here, with onnxruntime's outputs as the expected ones.
NO_NODE_CASE: dict[str, str] = {}


@dataclass
class _Case:
    name: str
    model: Any
    data_sets: list[Any]
    rtol: float = 1e-3
    atol: float = 1e-7


def _extra_cases() -> list[_Case]:
    from onnx import helper
    from onnx_helpers import model, single

    x = np.random.default_rng(0).standard_normal((1, 3, 4, 5)).astype(np.float32)
    lp = single("GlobalLpPool", {"x": x}, p=3)
    mask = np.array([[1, 0, 2], [0, 3, 0]], np.float32)
    nonzero = model([helper.make_node("NonZero", ["m"], ["idx"]),
                     helper.make_node("Cast", ["idx"], ["idx_f"], to=1),
                     helper.make_node("ReduceSum", ["idx_f"], ["s"], keepdims=1),
                     helper.make_node("Mul", ["x", "s"], ["y0"])],
                    {"x": np.ones((1, 1), np.float32)}, ["y0"], {"m": mask})
    out = []
    for name, m, feeds in (("extra_global_lp_pool", lp, {"x": x}),
                           ("extra_nonzero_of_a_constant", nonzero,
                            {"x": np.ones((1, 1), np.float32)})):
        want = _ort_or_reference(m, feeds)
        out.append(_Case(name, m, [(list(feeds.values()), want)]))
    return out


def _expected_failure(name: str) -> bool:
    return any(re.search(p, f"{name}_cpu") for ps in EXPECTED_FAILURES.values() for p in ps)


def _cases() -> list[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = [c for c in load_node_model_tests() if not _expected_failure(c.name)]
    return cases + _extra_cases()


def _ort_or_reference(model: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray] | None:
    """onnxruntime's outputs, or None when it has no kernel for this model."""
    import onnxruntime as ort
    from onnxruntime.capi.onnxruntime_pybind11_state import (
        Fail,
        InvalidArgument,
        InvalidGraph,
        RuntimeException,
    )
    from onnxruntime.capi.onnxruntime_pybind11_state import NotImplemented as OrtMissing

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 4  # fatal only: the cases provoke warnings on purpose
    try:
        sess = ort.InferenceSession(model.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
        return sess.run(None, feeds)
    except (OrtMissing, RuntimeException, Fail, InvalidGraph, InvalidArgument, RuntimeError):
        # RuntimeError: onnxruntime's Python binding has no numpy type for bfloat16/float8
        return None


def _reference_evaluator(model: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    return list(ReferenceEvaluator(model).run(None, feeds))


def _compare(got: list[np.ndarray], want: list[np.ndarray], rtol: float, atol: float) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want):
        a, b = np.asarray(a), np.asarray(b)
        if is_low_precision(b.dtype) and a.dtype != b.dtype:
            a = a.view(b.dtype)  # onnx's reference evaluator gives float8 as raw bits
        assert a.shape == b.shape, (a.shape, b.shape)
        if b.dtype.kind in "biu" or is_low_precision(b.dtype) and b.dtype.itemsize == 1:
            np.testing.assert_array_equal(a.astype(b.dtype), b)
        else:
            assert a.dtype == b.dtype, (a.dtype, b.dtype)
            np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), rtol=rtol,
                                       atol=atol, equal_nan=True)


@dataclass
class RoundTrips:
    passed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    covered: set[str] = field(default_factory=set)  # operators of round-tripped cases


def _round_trip(case: Any) -> None:
    rep = IrflowBackend.prepare(case.model)
    inputs = [_normalize_tensor(x) for x in case.data_sets[0][0]]
    with np.errstate(all="ignore"):
        rep.run(inputs)  # imports the specialization the case's bound inputs select
    assert rep.module is not None
    version = case.model.opset_import[0].version
    model = export_onnx(rep.module, opset=min(max(version, MIN_OPSET), MAX_OPSET))
    feeds = {n: np.asarray(x) for n, x in zip(rep.input_names, inputs) if n not in rep.bound}
    with np.errstate(all="ignore"):
        ours = _ort_or_reference(model, feeds) or _reference_evaluator(model, feeds)
        original = _ort_or_reference(case.model, dict(zip(rep.input_names, inputs)))
    expected = [_normalize_tensor(x) for x in case.data_sets[0][1]]
    try:
        _compare(ours, original if original is not None else expected, case.rtol, case.atol)
    except AssertionError:
        if original is None:
            raise
        # onnxruntime departs from ONNX's reference on a few cases (Attention's qk_matmul
        # output with a causal bias): then the export must match the reference's outputs
        _compare(ours, expected, case.rtol, case.atol)


@pytest.fixture(scope="module")
def round_trips() -> RoundTrips:
    out = RoundTrips()
    for case in _cases():
        try:
            _round_trip(case)
        except Exception as e:  # noqa: BLE001 - every failure is reported, by case
            out.failed[case.name] = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
            continue
        out.passed.append(case.name)
        out.covered.update(n.op_type for n in case.model.graph.node)
    return out


@pytest.mark.slow
def test_every_imported_case_round_trips_through_onnxruntime(round_trips: RoundTrips) -> None:
    assert not round_trips.failed, "\n".join(f"{k}: {v}" for k, v in round_trips.failed.items())
    assert len(round_trips.passed) > 1400


@pytest.mark.slow
def test_every_importer_operator_has_an_export_path(round_trips: RoundTrips) -> None:
    missing = set(SUPPORTED_OPERATORS) - round_trips.covered - set(NO_NODE_CASE)
    assert not missing, f"operators that import but never round-trip: {sorted(missing)}"
    stale = set(NO_NODE_CASE) & round_trips.covered
    assert not stale, f"round-tripped now, remove from NO_NODE_CASE: {sorted(stale)}"


def _qdq_conv_model() -> tuple[Any, dict[str, np.ndarray]]:
    """ORT's QDQ format: QuantizeLinear/DequantizeLinear pairs around a float Conv whose
    per-channel int8 weight is read through DequantizeLinear."""
    from onnx import helper
    from onnx_helpers import model

    rng = np.random.default_rng(5)
    x = rng.uniform(-2, 2, (1, 3, 8, 8)).astype(np.float32)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s_x", "z_x"], ["xq"], name="q_x"),
        helper.make_node("DequantizeLinear", ["xq", "s_x", "z_x"], ["xd"], name="dq_x"),
        helper.make_node("DequantizeLinear", ["w", "s_w", "z_w"], ["wd"], name="dq_w", axis=0),
        helper.make_node("Conv", ["xd", "wd"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("QuantizeLinear", ["r", "s_y", "z_y"], ["yq"], name="q_y"),
        helper.make_node("DequantizeLinear", ["yq", "s_y", "z_y"], ["y"], name="dq_y"),
    ]
    inits = {"s_x": np.float32(0.02), "z_x": np.uint8(128),
             "w": rng.integers(-100, 100, (4, 3, 3, 3)).astype(np.int8),
             "s_w": np.asarray([0.01, 0.02, 0.015, 0.03], np.float32),
             "z_w": np.zeros(4, np.int8), "s_y": np.float32(0.05), "z_y": np.uint8(0)}
    return model(nodes, {"x": x}, ["y"], inits, opset=13), {"x": x}


def _qoperator_models() -> list[Any]:
    from test_onnx_quant import _qlinear_conv_model, _qlinear_matmul_model

    return [_qlinear_conv_model, _qlinear_matmul_model, _qdq_conv_model]


@pytest.mark.parametrize("build", _qoperator_models())
def test_quantized_model_round_trips_bit_exactly(build: Any) -> None:
    """QOperator (QLinearConv, QLinearMatMul) and QDQ models: onnxruntime computes the
    exported model bit for bit as the original (larger data than the node tests, where
    irflow's own fixed-point requantization is only within one step of onnxruntime's)."""
    from irflow.frontends.onnx import import_onnx

    m, feeds = build()
    exported = export_onnx(import_onnx(m), opset=13)
    ops = {n.op_type for n in exported.graph.node}
    assert ops & {"QLinearConv", "QLinearMatMul", "QuantizeLinear"}, ops
    ours, theirs = _ort_or_reference(exported, feeds), _ort_or_reference(m, feeds)
    assert ours is not None and theirs is not None
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)
