"""ONNX's own backend node tests (`onnx.backend.test.BackendTest`) against `irflow.onnx_backend`.

Every node test case of onnx 1.23.2 runs (generated in memory, no downloads; the real-model
tests, which download, are excluded). The only way a case may fail is to be listed in
`EXPECTED_FAILURES` below, grouped by reason; listed cases run as `unittest.expectedFailure`,
so a listed case that starts passing is reported as an unexpected success (a failure of
this suite) and must be removed from the list.

Counts per operator: `bench/bench_onnx_conformance.py`.
"""

from __future__ import annotations

import re
import warnings

import pytest

pytest.importorskip("onnx")

import onnx.backend.test  # noqa: E402

import irflow.onnx_backend  # noqa: E402


def _op(prefix: str) -> str:
    """The cases of one operator, except its `_expanded` twins (the function body in
    ONNX primitives, which irflow imports op by op)."""
    return rf"^test_{prefix}(?!.*_expanded)"


# reason -> regular expressions over test names (`re.search`).
EXPECTED_FAILURES: dict[str, list[str]] = {
    # Training: optimizers, dropout and batch norm in training mode.
    "training ops": [
        r"^test_(adagrad|adam|momentum|nesterov_momentum)", r"^test_training_dropout",
        r"^test_batchnorm_.*_training_mode",
    ],
    # Sequence, optional and map values (irflow's values are tensors).
    "sequences and optionals": [
        r"^test_sequence_", r"^test_split_to_sequence", r"^test_optional_",
        r"^test_identity_(sequence|opt)",
        r"^test_(if|loop13|loop16)_(seq|opt)",
    ],
    # Control flow with subgraphs.
    "control flow (If/Loop/Scan)": [
        r"^test_if_cpu$", r"^test_loop11", r"^test_scan9?_", r"^test_range_.*_expanded_cpu$",
    ],
    # Strings and string processing.
    "strings": [
        r"^test_string", r"^test_strnorm", r"^test_regex_", r"^test_equal_string",
        r"^test_tfidfvectorizer",
    ],
    # Sub-byte integers (int4/uint4, int2/uint2: irflow holds i4 in int8, as quant storage)
    # and float8 e8m0 (its casts round up, `round_mode`); bf16, float8 and float4 import
    # (irflow/lowp.py). Quantization to or from a float8/float4/sub-byte type is not
    # expressible as a `!quant.uniform` integer storage.
    "low-precision element types": [
        r"(INT4|int4|INT2|int2|e8m0)", r"^test_(de)?quantizelinear_(e4m3fn|e5m2|float4e2m1)",
    ],
    # The ai.onnx.ml domain and randomness.
    "ai.onnx.ml and random ops": [r"^test_ai_onnx_ml_", r"^test_bernoulli"],
    # Outputs whose shape depends on input values (static shapes only).
    "value-dependent shapes": [
        r"^test_nonzero", r"^test_unique_", r"^test_compress_", r"^test_nonmaxsuppression_",
        r"^test_center_crop_pad_.*_expanded",  # its pads come from the run-time shape input
        r"^test_(blackman|hann|hamming)window",
    ],
    # Empty tensors: irflow has none (a zero dimension is an import error), so an empty
    # result, or a zero-size split piece, cannot be expressed.
    "empty tensors": [
        r"^test_split_zero_size", r"^test_(tril|triu)_zero_cpu$",
        r"^test_constantofshape_int_shape_zero", r"^test_reduce_sum_empty_set_non_reduced",
        r"^test_reshape_allowzero_reordered", r"^test_shape_start_greater_than_end",
        r"^test_slice_start_out_of_bounds", r"^test_causal_conv_with_state_kernel_size_one",
        r"^test_rotary_embedding_(3d_input_|interleaved_|no_position_ids_"
        r"|no_position_ids_interleaved_)?expanded_cpu$",
    ],
    # Operators not implemented yet (the coverage list continues here).
    # Attention imports every opset-23/24 form (irflow/frontends/onnx_attention.py) but
    # the opset-25 sliding windows (RotaryEmbedding: every form); the other LLM ops.
    "not implemented: attention windows and other LLM ops": [
        r"^test_attention_(3d_)?(local|bidirectional)_window(?!_default)(?!.*_expanded)",
        _op("flexattention"),
        r"^test_linear_attention", r"^test_tensorscatter",
    ],
    "not implemented: spatial ops": [
        r"^test_gridsample",
        r"^test_affine_grid_.*_expanded",  # its body branches with If
        r"^test_roialign", r"^test_deform_conv", r"^test_basic_deform",
        r"^test_col2im", r"^test_maxunpool",
        r"^test_maxpool_with_argmax",
        r"^test_image_decoder", r"^test_det_",
    ],
    "not implemented: signal, recurrent and quantized ops": [
        r"^test_(dft|stft)", r"^test_melweightmatrix", r"^test_(simple_rnn|rnn_seq|lstm_|gru_)",
        r"^test_reversesequence",
    ],
    # Quantization parameters are `!quant.uniform` type parameters, known at import time:
    # DynamicQuantizeLinear computes them at run time. Blocked scales (block_size) would
    # be a tensor operand of the casts, which `quant.qcast`/`quant.dcast` do not take.
    "quantization: run-time or blocked scales": [
        r"^test_dynamicquantizelinear", r"^test_(de)?quantizelinear_blocked",
    ],
}

warnings.simplefilter("ignore", RuntimeWarning)  # the case generators overflow on purpose
backend_test = onnx.backend.test.BackendTest(irflow.onnx_backend.IrflowBackend, __name__)
backend_test.include(r"_cpu$")  # CUDA variants are skipped by supports_device anyway
for _patterns in EXPECTED_FAILURES.values():
    for _pattern in _patterns:
        backend_test.xfail(_pattern)

# Node tests only: the other categories download real models.
_cases = backend_test.test_cases
OnnxBackendNodeModelTest = pytest.mark.slow(_cases["OnnxBackendNodeModelTest"])


def test_every_pattern_names_a_case() -> None:
    """A pattern that matches nothing is stale: remove it."""
    names = [n for n in dir(OnnxBackendNodeModelTest) if n.startswith("test_")]
    for reason, patterns in EXPECTED_FAILURES.items():
        for pattern in patterns:
            assert any(re.search(pattern, n) for n in names), (reason, pattern)
