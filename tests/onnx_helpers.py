"""Small builders shared by the ONNX tests: one-node models and an ORT comparison."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

IR_VERSION = 10


def model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Mapping[str, np.ndarray],
    outputs: Sequence[str],
    inits: Mapping[str, np.ndarray] | None = None,
    opset: int = 17,
    dynamic: Mapping[str, Sequence[int | str]] | None = None,
) -> onnx.ModelProto:
    """A model over `nodes`; graph inputs typed after the arrays in `inputs`."""
    dynamic = dynamic or {}
    graph_inputs = [
        helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(a.dtype), dynamic.get(name, list(a.shape))
        )
        for name, a in inputs.items()
    ]
    graph_outputs = [onnx.ValueInfoProto(name=o) for o in outputs]  # typed by ORT's inference
    initializers = [numpy_helper.from_array(np.asarray(a), name)
                    for name, a in (inits or {}).items()]
    graph = helper.make_graph(list(nodes), "test", graph_inputs, graph_outputs, initializers)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = IR_VERSION
    return m


def single(op_type: str, inputs: Mapping[str, np.ndarray], inits: Mapping[str, Any] | None = None,
           order: Sequence[str] | None = None, n_out: int = 1, opset: int = 17,
           **attrs: Any) -> onnx.ModelProto:
    """One `op_type` node reading `order` (default: inputs then initializers; '' = absent)."""
    inits = {k: np.asarray(v) for k, v in (inits or {}).items()}
    names = list(order) if order is not None else [*inputs, *inits]
    outs = [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op_type, names, outs, name=f"the_{op_type}", **attrs)
    return model([node], inputs, outs, inits, opset)


def ort_run(m: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, dict(feeds))


def assert_close(ours: np.ndarray, ref: np.ndarray, rtol: float = 1e-5, what: str = "") -> None:
    """Max abs error <= rtol * max(1, max |ref|), shapes and dtypes equal."""
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != {ref.shape}"
    assert ours.dtype == ref.dtype, f"{what}: dtype {ours.dtype} != {ref.dtype}"
    if ref.size == 0:
        return
    if not np.issubdtype(ref.dtype, np.floating):
        np.testing.assert_array_equal(ours, ref, err_msg=what)
        return
    scale = max(1.0, float(np.abs(ref).max()))
    err = float(np.abs(ours.astype(np.float64) - ref.astype(np.float64)).max())
    assert err <= rtol * scale, f"{what}: max abs error {err:.3g} > {rtol * scale:.3g}"
