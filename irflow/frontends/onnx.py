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
from typing import Any

import numpy as np
from xdsl.dialects.builtin import (
    FileLineColLoc,
    IntAttr,
    ModuleOp,
    NameLoc,
    StringAttr,
    TensorType,
    UnknownLoc,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.utils.exceptions import VerifyException

from irflow.diagnostics import IrflowError
from irflow.dialects import nn
from irflow.frontends.onnx_model import (  # noqa: F401  (the frontends' modules import these from here)
    MAX_OPSET,
    MIN_OPSET,
    ConstantRequiredError,
    OnnxImportError,
    UnsupportedOperatorError,
    _declared_shape,
    _load_model,
    _node_name,
    _onnx_elem_to_np,
    _opset,
    _resolve_input_shapes,
    _topological_order,
    _upgrade_old_opset,
    check_tensor_types,
    element_type_of,
)
from irflow.graph import GraphBuilder
from irflow.verify import verify_module
from irflow.weights import value_dtype

# Constants that are not initializers are printed inline up to this many elements.
INLINE_MAX_ELEMENTS = 16

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
