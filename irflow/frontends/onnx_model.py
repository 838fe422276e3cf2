"""Loading an ONNX model and checking it before conversion: `irflow.frontends.onnx`'s first steps.

Reads the file (external data included), checks the default-domain opset (older ones
are converted to 13), that every node input is defined and the graph has no cycle
(`_topological_order`), the declared element types, and fixes the input shapes. Also
the importer's error classes and the numpy ↔ MLIR element-type map.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from xdsl.dialects.builtin import (
    IntegerType,
    Signedness,
    f16,
    f32,
    f64,
    i1,
    i16,
    i32,
    i64,
)
from xdsl.ir import Attribute

from irflow import lowp
from irflow.diagnostics import ParseError

# Opsets of the default domain: 7 (ONNX 1.2) to 28, the newest onnx 1.23 knows. Converters
# read each op's version-dependent form themselves (attribute or input, old semantics).
MIN_OPSET, MAX_OPSET = 7, 28


class OnnxImportError(ParseError):
    """An ONNX model irflow cannot import (malformed, unsupported, inconsistent)."""


class UnsupportedOperatorError(OnnxImportError):
    """A node whose operator (or attribute value) irflow does not import."""


class ConstantRequiredError(UnsupportedOperatorError):
    """A node input that fixes a shape (a Reshape's shape, ...) is a run-time value.

    `value_name` is the ONNX value; when it is a graph input, binding it with
    `import_onnx(..., constant_inputs={name: array})` makes the model importable.
    """

    def __init__(self, message: str, where: Any, value_name: str):
        super().__init__(message, where)
        self.value_name = value_name


# --------------------------------------------------------------------------------------
# Element types


_NP_TO_ELEMENT: dict[np.dtype, Attribute] = {
    np.dtype(np.float32): f32,
    np.dtype(np.float64): f64,
    np.dtype(np.float16): f16,
    np.dtype(np.int64): i64,
    np.dtype(np.int32): i32,
    np.dtype(np.int16): i16,
    np.dtype(np.int8): IntegerType(8),
    np.dtype(np.uint8): IntegerType(8, Signedness.UNSIGNED),
    np.dtype(np.uint16): IntegerType(16, Signedness.UNSIGNED),
    np.dtype(np.uint32): IntegerType(32, Signedness.UNSIGNED),
    np.dtype(np.uint64): IntegerType(64, Signedness.UNSIGNED),
    np.dtype(np.bool_): i1,
}


def element_type_of(dtype: np.dtype | type) -> Attribute:
    """The MLIR element type holding numpy `dtype` (inverse of `weights.numpy_dtype`)."""
    try:
        return _NP_TO_ELEMENT[np.dtype(dtype)]
    except KeyError:
        low = lowp.element_type_of_dtype(np.dtype(dtype))  # bf16, f8*, f4 (ml_dtypes)
        if low is not None:
            return low
        raise OnnxImportError(f"unsupported element type {np.dtype(dtype)}") from None


def _onnx_elem_to_np(elem: int) -> np.dtype:
    from onnx import helper

    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem))
    except (KeyError, TypeError, ValueError):
        raise OnnxImportError(f"unsupported ONNX element type {elem}") from None




# --------------------------------------------------------------------------------------
# Loading and graph checks


def _load_model(path_or_model: Any) -> tuple[Any, str]:
    import onnx
    from google.protobuf.message import DecodeError

    if isinstance(path_or_model, onnx.ModelProto):
        return path_or_model, path_or_model.graph.name or "<onnx model>"
    path = Path(path_or_model)
    label = str(path)
    if not path.exists():
        raise OnnxImportError("no such file", label)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeWarning, ValueError) as e:
        raise OnnxImportError(
            f"not a valid ONNX model (malformed or truncated protobuf: {e})", label
        ) from None
    except OSError as e:
        raise OnnxImportError(f"cannot read: {e}", label) from None
    _load_external_data(model, path.parent, label)
    return model, label


def _load_external_data(model: Any, base_dir: Path, label: str) -> None:
    from onnx.external_data_helper import (
        ExternalDataInfo,
        _get_all_tensors,
        load_external_data_for_tensor,
        uses_external_data,
    )

    for tensor in _get_all_tensors(model):
        if not uses_external_data(tensor):
            continue
        info = ExternalDataInfo(tensor)
        where = base_dir / info.location
        if not where.is_file():
            raise OnnxImportError(
                f"tensor '{tensor.name}' keeps its data in the external file "
                f"'{info.location}', which does not exist (looked in {base_dir}/)",
                label,
            )
        try:
            load_external_data_for_tensor(tensor, str(base_dir))
        except Exception as e:  # noqa: BLE001 - onnx raises several kinds here
            raise OnnxImportError(
                f"cannot read external data of tensor '{tensor.name}' from "
                f"'{info.location}': {e}",
                label,
            ) from None
        tensor.data_location = 0  # DEFAULT: the data is in raw_data now
        del tensor.external_data[:]


def _opset(model: Any, label: str) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        if not model.graph.node and not model.graph.input:
            raise OnnxImportError("not an ONNX model (empty or no graph)", label)
        raise OnnxImportError("the model declares no opset for the default domain", label)
    v = versions[0]
    if not MIN_OPSET <= v <= MAX_OPSET:
        raise OnnxImportError(
            f"opset {v} is not supported (irflow imports opsets "
            f"{MIN_OPSET}-{MAX_OPSET}); convert the model with onnx.version_converter",
            label,
        )
    return v


def _upgrade_old_opset(model: Any, label: str) -> Any:
    """A model below opset 7 converted to opset 13 by `onnx.version_converter` (its
    adapters are exact for these ancient versions); the converter's refusal names the op."""
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions or versions[0] >= MIN_OPSET:
        return model
    from onnx import version_converter

    try:
        return version_converter.convert_version(model, 13)
    except Exception as e:  # noqa: BLE001 - the converter raises RuntimeError/ValueError/...
        first = " ".join(str(e).split())[:200]
        raise OnnxImportError(
            f"opset {versions[0]} is not supported (irflow imports opsets {MIN_OPSET}-"
            f"{MAX_OPSET}) and onnx.version_converter cannot convert it to 13: {first}",
            label,
        ) from None


def _node_name(node: Any, index: int) -> str:
    return node.name or (node.output[0] if node.output else f"{node.op_type}_{index}")


def _topological_order(model: Any, label: str, defined: set[str]) -> list[int]:
    """Node indices in a topological order (the file's order when it already is one)."""
    nodes = model.graph.node
    producer: dict[str, int] = {}
    for i, n in enumerate(nodes):
        for o in n.output:
            if o in producer:  # single assignment: a second writer would silently win
                j = producer[o]
                raise OnnxImportError(
                    f"tensor '{o}' is written by two nodes: '{_node_name(nodes[j], j)}' "
                    f"({nodes[j].op_type}) and '{_node_name(n, i)}' ({n.op_type})", label)
            if o in defined:
                raise OnnxImportError(
                    f"node '{_node_name(n, i)}' ({n.op_type}) writes '{o}', which is already "
                    "a graph input or an initializer", label)
            if o:
                producer[o] = i
    for i, n in enumerate(nodes):
        for name in n.input:
            if name and name not in producer and name not in defined:
                raise OnnxImportError(
                    f"node '{_node_name(n, i)}' ({n.op_type}) reads '{name}', which no node, "
                    "initializer or graph input defines",
                    label,
                )
    seen: set[str] = set(defined)
    in_order = True
    for n in nodes:
        if any(name and name not in seen for name in n.input):
            in_order = False
            break
        seen.update(n.output)
    if in_order:
        return list(range(len(nodes)))

    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(nodes)))
    for i, n in enumerate(nodes):
        for name in n.input:
            if name in producer:
                graph.add_edge(producer[name], i)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return list(nx.lexicographical_topological_sort(graph))
    path = [cycle[0][0]] + [v for _, v in cycle]
    names = " -> ".join(f"'{_node_name(nodes[i], i)}' ({nodes[i].op_type})" for i in path)
    raise OnnxImportError(f"the graph has a cycle: {names}", label)


def check_tensor_types(model: Any, label: str) -> None:
    """Graph inputs and outputs must be tensors (not sequences, maps or optionals)."""
    for vi in (*model.graph.input, *model.graph.output):
        kind = vi.type.WhichOneof("value")
        if kind not in ("tensor_type", None):
            raise OnnxImportError(
                f"'{vi.name}' is a {kind.removesuffix('_type')}, not a tensor; irflow imports "
                "tensor inputs and outputs only", label)


def _declared_shape(value_info: Any, label: str = "",
                    what: str = "input") -> list[int | str] | None:
    """Dims of a graph input (or output): ints where static, the symbol (or '?') where
    dynamic. A zero or negative dim is an error (irflow has no empty tensors)."""
    tt = value_info.type.tensor_type
    if not tt.HasField("shape"):
        return None
    dims: list[int | str] = []
    for i, d in enumerate(tt.shape.dim):
        if d.HasField("dim_value"):
            if d.dim_value <= 0:
                raise OnnxImportError(
                    f"{what} '{value_info.name}' declares dimension {i} as {d.dim_value}; "
                    "dimensions must be positive (irflow has no empty tensors)", label)
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or "?")
    return dims


def _resolve_input_shapes(
    inputs: Sequence[Any], overrides: Mapping[str, Sequence[int]], label: str
) -> dict[str, tuple[int, ...]]:
    names = [vi.name for vi in inputs]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise OnnxImportError(
            f"--input-shape names {', '.join(repr(u) for u in unknown)}, which the model does "
            f"not have (inputs: {', '.join(repr(n) for n in names)})",
            label,
        )
    shapes: dict[str, tuple[int, ...]] = {}
    missing: list[str] = []
    for vi in inputs:
        declared = _declared_shape(vi, label)
        if vi.name in overrides:
            given = tuple(int(d) for d in overrides[vi.name])
            if min(given, default=1) < 1:
                raise OnnxImportError(
                    f"--input-shape {vi.name}={'x'.join(map(str, given))}: dimensions must be "
                    "positive",
                    label,
                )
            if declared is not None and (
                len(declared) != len(given)
                or any(isinstance(d, int) and d != g for d, g in zip(declared, given))
            ):
                raise OnnxImportError(
                    f"--input-shape {vi.name}={'x'.join(map(str, given))} does not match the "
                    f"declared shape [{', '.join(map(str, declared))}]",
                    label,
                )
            shapes[vi.name] = given
        elif declared is None or any(not isinstance(d, int) for d in declared):
            shown = "unknown rank" if declared is None else f"[{', '.join(map(str, declared))}]"
            example = (
                "x".join(str(d) if isinstance(d, int) else "1" for d in declared)
                if declared is not None else "1x..."
            )
            missing.append(f"'{vi.name}' {shown} (e.g. --input-shape {vi.name}={example})")
        else:
            shapes[vi.name] = tuple(int(d) for d in declared)  # type: ignore[arg-type]
    if missing:
        raise OnnxImportError(
            "the model has inputs with dynamic dimensions; give each a static shape with "
            "--input-shape NAME=D0xD1x... (API: input_shapes={NAME: [D0, D1, ...]}): "
            + "; ".join(missing),
            label,
        )
    return shapes
