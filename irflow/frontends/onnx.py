"""ONNX → `nn` IR: `import_onnx(path_or_model, input_shapes=...)`.

    >>> module = import_onnx("digits_cnn.onnx", input_shapes={"input": [1, 1, 8, 8]})

What it does, in order:

1. loads the file (external data included) and checks the default-domain opset is in
   7–28 (older ones converted to 13), every operator is supported, every node input is
   defined and the graph has no cycle (nodes are visited in topological order, so an
   unsorted file still imports);
2. fixes the input shapes: every dimension must be static, or set by `input_shapes`
   (the CLI's `--input-shape name=1x1x8x8`);
3. converts node by node. A value known at import time (an initializer, a `Constant`
   node, or the result of an op whose operands are all known) stays a *placeholder*:
   it is folded through further ops with the reference executor's kernels
   (`evaluate_op`), and only becomes an `nn.constant` when a runtime op consumes it.
   So `Shape -> Gather -> Unsqueeze -> Concat -> Reshape` chains fold to a static
   reshape, Gemm's `transB=0`/`alpha`/`beta` fold into the weight and bias, and
   nothing unused reaches the IR or the weight store.

Initializers, and constants folded from them, go to the weight store (under their
ONNX names, or the name of the initializer they were folded from); other constants
are inline `dense<...>` when they have at most `INLINE_MAX_ELEMENTS` elements,
weights otherwise. Every op carries `loc("<node name>"("<model file>":<node index>:1))`, the
"line" being the node's 1-based position in the ONNX graph. Input and output names
are the ONNX graph's. The supported operators and attributes are listed in
`docs/onnx.md` and in `SUPPORTED_OPERATORS`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from xdsl.dialects.builtin import (
    FileLineColLoc,
    IntAttr,
    IntegerType,
    ModuleOp,
    NameLoc,
    Signedness,
    StringAttr,
    TensorType,
    UnknownLoc,
    f16,
    f32,
    f64,
    i1,
    i16,
    i32,
    i64,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.utils.exceptions import VerifyException

from irflow import lowp
from irflow.diagnostics import IrflowError, ParseError
from irflow.dialects import nn
from irflow.graph import GraphBuilder
from irflow.verify import verify_module
from irflow.weights import value_dtype

# Opsets of the default domain: 7 (ONNX 1.2) to 28, the newest onnx 1.23 knows. Converters
# read each op's version-dependent form themselves (attribute or input, old semantics).
MIN_OPSET, MAX_OPSET = 7, 28
# Constants that are not initializers are printed inline up to this many elements.
INLINE_MAX_ELEMENTS = 16


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
# The node view handed to converters


@dataclass
class _Node:
    index: int
    op_type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any]
    loc: Attribute

    def label(self) -> str:
        return f"node '{self.name}' ({self.op_type})"


@dataclass
class _Known:
    """A value known at import time, not yet (or never) an op in the IR."""

    array: np.ndarray
    hint: str
    initializer: bool
    real: SSAValue | None = None


Converter = Callable[["_Importer", _Node], Sequence[SSAValue | np.ndarray]]
_CONVERTERS: dict[str, Converter] = {}


def _converter(*op_types: str) -> Callable[[Converter], Converter]:
    def register(fn: Converter) -> Converter:
        for t in op_types:
            _CONVERTERS[t] = fn
        return fn

    return register


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


def _check_operators(model: Any, label: str, opset: int) -> None:
    bad = [
        (i, n) for i, n in enumerate(model.graph.node)
        if n.domain not in ("", "ai.onnx") or n.op_type not in _CONVERTERS
    ]
    if not bad:
        return
    i, node = bad[0]
    domain = f" from domain '{node.domain}'" if node.domain not in ("", "ai.onnx") else ""
    others = sorted({str(n.op_type) for _, n in bad[1:]} - {str(node.op_type)})
    more = (
        f"; {len(bad) - 1} more unsupported node(s)"
        + (f" ({', '.join(others)})" if others else "")
        if len(bad) > 1 else ""
    )
    raise UnsupportedOperatorError(
        f"unsupported ONNX operator '{node.op_type}'{domain} at node "
        f"'{_node_name(node, i)}' (opset {opset}){more}. "
        f"Supported operators: {', '.join(SUPPORTED_OPERATORS)}",
        label,
    )


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


# --------------------------------------------------------------------------------------
# The importer


@dataclass
class _Importer:
    label: str  # the model file (or graph name): error messages and op locations
    opset: int
    g: GraphBuilder = field(default_factory=GraphBuilder)
    env: dict[str, SSAValue] = field(default_factory=dict)
    known: dict[SSAValue, _Known] = field(default_factory=dict)
    node: _Node | None = None

    # ---- values -----------------------------------------------------------------------

    def placeholder(self, array: np.ndarray, hint: str, initializer: bool = False) -> SSAValue:
        """A detached SSA value standing for `array` until a runtime op consumes it."""
        array = np.asarray(array)
        ty = TensorType(element_type_of(array.dtype), list(array.shape))
        value = nn.ConstantOp(nn.WeightAttr(hint), ty).results[0]
        self.known[value] = _Known(array, hint, initializer)
        return value

    def materialize(self, value: SSAValue) -> SSAValue:
        k = self.known.get(value)
        if k is None:
            return value
        if k.real is None:
            ty = value.type
            assert isinstance(ty, TensorType)
            loc = self.node.loc if self.node is not None else None
            if not k.initializer and k.array.size <= INLINE_MAX_ELEMENTS:
                k.real = self.g.inline(k.array, ty.element_type, loc)
            else:
                k.real = self.g.weight(k.hint, k.array, loc, ty.element_type)
        return k.real

    def value(self, i: int) -> SSAValue:
        """Input `i` of the current node (a placeholder if known at import time)."""
        node = self.node
        assert node is not None
        if i >= len(node.inputs) or not node.inputs[i]:
            raise self.error(f"expects input {i}, which is missing")
        return self.env[node.inputs[i]]

    def has(self, i: int) -> bool:
        assert self.node is not None
        return i < len(self.node.inputs) and bool(self.node.inputs[i])

    def const(self, i: int, what: str) -> np.ndarray:
        """Input `i` as an array; it must be known at import time."""
        v = self.value(i)
        k = self.known.get(v)
        if k is None:
            name = self.node.inputs[i]  # type: ignore[union-attr]
            raise ConstantRequiredError(
                f"{what} (input {i}, '{name}') must be a constant known at "
                "import time (an initializer, a Constant node or a foldable shape "
                "computation), got a runtime value",
                self.where(), name,
            )
        return k.array

    def const_scalar(self, i: int, what: str) -> float:
        """Input `i` as one number known at import time (e.g. Clip's min)."""
        array = self.const(i, what)
        if array.size != 1:
            raise self.error(f"{what} (input {i}) must be a single value, got shape "
                             f"{list(array.shape)}")
        return float(array.reshape(-1)[0])

    def emit(self, op: Operation, hint: str | None = None) -> list[SSAValue]:
        """Insert `op`, or fold it when every operand is known at import time."""
        assert self.node is not None
        if op.operands and all(o in self.known for o in op.operands):
            from irflow.backends.reference import evaluate_op

            arrays = [self.known[o].array for o in op.operands]
            try:
                outs = evaluate_op(op, arrays)
            except IrflowError as e:
                raise self.error(f"cannot fold {op.name} at import time: {e.message}") from None
            op.drop_all_references()
            # What is computed from weights is a weight (e.g. Gemm's alpha * B^T), named
            # after the one weight it comes from when there is one.
            sources = [self.known[o].hint for o in op.operands if self.known[o].initializer]
            derived = bool(sources)
            base = hint or (sources[0] if len(set(sources)) == 1 else self.node.outputs[0])
            return [
                self.placeholder(np.asarray(a), base if len(outs) == 1 else f"{base}.{j}",
                                 derived)
                for j, a in enumerate(outs)
            ]
        op.operands = [self.materialize(o) for o in op.operands]
        self.g.add(op, self.node.loc)
        return list(op.results)

    def emit1(self, op: Operation, hint: str | None = None) -> SSAValue:
        return self.emit(op, hint)[0]

    def make(self, cls: type[nn.NNOp], operands: Sequence[SSAValue | None],
             hint: str | None = None, **props: Attribute | None) -> SSAValue:
        return self.emit1(cls.make(list(operands), props), hint)

    def scalar(self, value: float, like: SSAValue) -> SSAValue:
        return self.placeholder(np.asarray(value, value_dtype(like)), "scalar")

    # ---- diagnostics ------------------------------------------------------------------

    def where(self) -> str:
        node = self.node
        if node is None:
            return self.label
        return f"{self.label}: node #{node.index + 1} '{node.name}' ({node.op_type})"

    def error(self, message: str) -> OnnxImportError:
        return OnnxImportError(message, self.where())

    def attr(self, name: str, default: Any = None) -> Any:
        assert self.node is not None
        return self.node.attrs.get(name, default)

    def f64(self, name: str) -> Attribute | None:
        """A float attribute as an f64 property; None (the op's default) when absent."""
        value = self.attr(name)
        return None if value is None else nn.f64(value)

    def ints(self, name: str, default: Sequence[int]) -> list[int]:
        return [int(v) for v in self.attr(name, default)]


# The core converters register first (the family modules wrap some of them), then the
# opset-23 LLM ops, the table-driven families and the old-opset forms.
from irflow.frontends import onnx_core  # noqa: E402, F401, I001
from irflow.frontends import (  # noqa: E402
    onnx_attention,  # noqa: F401
    onnx_compose,  # noqa: F401  (wraps onnx_core's Dropout)
    onnx_llm,  # noqa: F401
    onnx_losses,  # noqa: F401
    onnx_ops,  # noqa: F401
    onnx_quant,  # noqa: F401
    onnx_spatial,  # noqa: F401  (after onnx_ops: it wraps MaxPool/AveragePool)
)

SUPPORTED_OPERATORS: tuple[str, ...] = tuple(sorted(_CONVERTERS))


# --------------------------------------------------------------------------------------
# Entry point


def _only_first_output(im: _Importer, node: _Node, consumed: set[str]) -> None:
    for extra in node.outputs[1:]:
        if extra and extra in consumed:
            raise UnsupportedOperatorError(
                f"only the first output of {node.op_type} is supported, but output "
                f"'{extra}' is used",
                im.where(),
            )


def _schema_checker(opset: int) -> Callable[[Any, int, str], None]:
    """A check of one node against its ONNX schema (attribute types, required
    attributes, input and output counts), so a converter only sees well-formed nodes."""
    from onnx import checker

    ctx = checker.C.CheckerContext()
    ctx.ir_version = 10
    ctx.opset_imports = {"": opset}

    def check(node: Any, index: int, label: str) -> None:
        try:
            checker.check_node(node, ctx)
        except checker.ValidationError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else "invalid node"
            raise OnnxImportError(f"node #{index + 1} '{_node_name(node, index)}' "
                                  f"({node.op_type}): {first}", label) from None

    return check


def _node_view(node: Any, index: int, filename: str) -> _Node:
    from onnx import helper

    attrs: dict[str, Any] = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        attrs[a.name] = v.decode() if isinstance(v, bytes) else v
    name = _node_name(node, index)
    loc = NameLoc(StringAttr(name), FileLineColLoc(StringAttr(filename), IntAttr(index + 1),
                                                   IntAttr(1)) if filename else UnknownLoc())
    return _Node(index, node.op_type, name, list(node.input), list(node.output), attrs, loc)


def import_onnx(
    path_or_model: str | os.PathLike[str] | Any,
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    constant_inputs: Mapping[str, np.ndarray] | None = None,
) -> ModuleOp:
    """Import an ONNX model (a path or an `onnx.ModelProto`) as a verified `nn` module.

    `input_shapes` gives static shapes to inputs with dynamic dimensions, e.g.
    `{"input": [360, 1, 8, 8]}`. `constant_inputs` binds graph inputs to values known
    at import time (they become constants, as if they were initializers; used to
    specialize a model whose shape arguments are inputs). Raises `OnnxImportError` (an
    `IrflowError`) for anything it cannot import, naming the node.
    """
    try:
        from onnx import numpy_helper
    except ImportError:
        raise IrflowError(
            "importing ONNX needs the 'onnx' package: pip install 'irflow[onnx]'"
        ) from None

    model, label = _load_model(path_or_model)
    model = _upgrade_old_opset(model, label)
    graph = model.graph
    opset = _opset(model, label)
    _check_operators(model, label, opset)

    initializers = {t.name: t for t in graph.initializer}
    bound = dict(constant_inputs or {})
    inputs = [vi for vi in graph.input if vi.name not in initializers and vi.name not in bound]
    defined = set(initializers) | {vi.name for vi in inputs} | set(bound)
    order = _topological_order(model, label, defined)
    check_tensor_types(model, label)
    shapes = _resolve_input_shapes(inputs, input_shapes or {}, label)

    im = _Importer(label, opset)
    for vi in inputs:
        elem = element_type_of(_onnx_elem_to_np(vi.type.tensor_type.elem_type))
        im.env[vi.name] = im.g.input(vi.name, shapes[vi.name], elem)
    for name, tensor in initializers.items():
        try:
            array = numpy_helper.to_array(tensor)
        except Exception as e:  # noqa: BLE001 - corrupt tensor payloads raise various errors
            raise OnnxImportError(f"initializer '{name}' cannot be read: {e}", label) from None
        im.env[name] = im.placeholder(array, name, initializer=True)
    for name, array in bound.items():
        im.env[name] = im.placeholder(np.asarray(array), name)

    consumed = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    schema_check = _schema_checker(opset)
    for index in order:
        proto = graph.node[index]
        schema_check(proto, index, label)
        node = _node_view(proto, index, label)
        im.node = node
        try:
            results = _CONVERTERS[node.op_type](im, node)
            if node.op_type in ("BatchNormalization", "MaxPool"):
                _only_first_output(im, node, consumed)
        except VerifyException as e:
            raise im.error(str(e)) from None
        for name, value in zip(node.outputs, results):
            if name:
                im.env[name] = (im.placeholder(value, name) if isinstance(value, np.ndarray)
                                else value)
        if len(results) < len([o for o in node.outputs if o in consumed]):
            raise im.error(f"produces {len(results)} output(s), but more are used")
    im.node = None

    for o in graph.output:
        if o.name not in im.env:
            raise OnnxImportError(f"graph output '{o.name}' is not produced by any node, "
                                  "initializer or graph input", label)
    outputs = [im.materialize(im.env[o.name]) for o in graph.output]
    _check_output_shapes(graph.output, outputs, label)
    module = im.g.finish(outputs, [o.name for o in graph.output])
    onnx_quant.drop_dead_storage_casts(module)
    verify_module(module)
    return module


def _check_output_shapes(declared: Sequence[Any], outputs: Sequence[SSAValue], label: str) -> None:
    for vi, value in zip(declared, outputs):
        dims = _declared_shape(vi, label, "output")
        got = nn.shape_of(value)
        if dims is None:
            continue
        if len(dims) != len(got) or any(
            isinstance(d, int) and d != g for d, g in zip(dims, got)
        ):
            raise OnnxImportError(
                f"output '{vi.name}' is declared [{', '.join(map(str, dims))}] but imports as "
                f"{list(got)}",
                label,
            )


__all__ = ["import_onnx", "OnnxImportError", "UnsupportedOperatorError", "SUPPORTED_OPERATORS",
           "element_type_of", "MIN_OPSET", "MAX_OPSET"]
