"""ONNX's own backend node tests on the simulator (issue 11 item 3): every case that passes
on the reference executor also lowers (`lower-to-accel`) and runs on the simulated machine
with the case's expected outputs (its rtol/atol), or stops with a located error naming the
op, listed in `LOCATED` below. No case may crash (a Python exception, bare or wrapped by
the simulator) or mismatch. The per-operator table: `bench/bench_onnx_conformance.py
--simulate` (the same `simulate_case`)."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import pytest

pytest.importorskip("onnx")

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the cases' inf/nan inputs
REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "bench_onnx_conformance", REPO / "bench" / "bench_onnx_conformance.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_onnx_conformance"] = bench
_spec.loader.exec_module(bench)  # type: ignore[union-attr]

# case -> what its located error names: what the accelerator cannot run yet.
LOCATED: dict[str, str] = {
    # nn.matmul whose batch dims broadcast partly ([3, 1] against [3, 2]): `tile` lowers
    # broadcasting of all batch dims at once only
    "test_matmul_bcast": "nn.matmul batch broadcasting",
}


def _cases(names: set[str] | None = None) -> list[object]:
    from onnx.backend.test.loader import load_node_model_tests

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [c for c in load_node_model_tests() if names is None or c.name in names]


# One case per bug the sweep found (each crashed or mismatched before its fix).
FIXED = {
    "test_einsum_scalar": "a 0-d result: its tile was a numpy scalar, not a view",
    "test_sce_mean": "a 0-d (mean) loss: the same",
    "test_bitcast_scalar_float32_to_int32": "a 0-d bitcast: the same",
    "test_identity": "a graph input returned as it is: no accel op defines it",
    "test_einsum_batch_matmul_bfloat16": "np.einsum cannot take bf16 (ml_dtypes) tiles",
    "test_einsum_sum_bfloat16": "the same, on the vector unit",
    "test_causal_conv_with_state_silu_fp16": "fp16 conv summed in fp16, 2 ulp off",
    "test_dequantizelinear_axis": "a per-axis cast fused into a vector producer lost its "
                                  "axis loop (the space read the chain's float result)",
}


@pytest.mark.parametrize("name", sorted(FIXED))
def test_fixed_case_simulates(name: str) -> None:
    (case,) = _cases({name})
    assert bench.classify(case)[0] == "pass"
    assert bench.simulate_case(case) == ("sim-pass", ""), FIXED[name]


@pytest.mark.slow
def test_every_passing_case_simulates_or_stops_located() -> None:
    bad: list[str] = []
    simulated = 0
    for case in _cases():
        if bench.classify(case)[0] != "pass":
            continue
        outcome, message = bench.simulate_case(case)
        name = case.name  # type: ignore[attr-defined]
        if outcome == "sim-pass":
            simulated += 1
        elif not (outcome == "sim-located" and name in LOCATED
                  and LOCATED[name] in message and f"({name}:" in message):
            bad.append(f"{outcome} {name}: {message}")
    assert not bad, "\n".join(bad)
    assert simulated >= 1501 - len(LOCATED)
