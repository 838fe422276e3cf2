"""irflow as an ONNX backend (`onnx.backend.base.Backend`): import, then the reference
executor.

    >>> import irflow.onnx_backend as backend
    >>> rep = backend.prepare(model)               # import_onnx + compile_function
    >>> (y,) = rep.run([x])                        # outputs in the graph's order
    >>> backend.run_model(model, [x])              # the same, in one call

This is the interface `onnx.backend.test.BackendTest` drives (tests/test_onnx_backend.py).

irflow compiles static shapes. A graph input that the importer must know to fix a shape
(a Reshape's `shape`, a Slice's `starts`, a TopK's `k`, ...) cannot be a run-time value;
in ONNX's node tests such values are graph inputs. `prepare` records which inputs those
are (the importer names them: `ConstantRequiredError.value_name`), and `run` imports the
model *specialized* to the values given for them — bound as import-time constants, the
way a static-shape compiler specializes a model to its shape arguments — then runs the
remaining inputs through the compiled program. A specialization is cached per distinct
value of the bound inputs. Everything else (every float tensor, indices, ...) stays a
run-time input of the compiled program.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from irflow.backends.reference.executor import Program, compile_function
from irflow.diagnostics import IrflowError
from irflow.frontends.onnx import ConstantRequiredError, check_tensor_types, import_onnx

try:
    from onnx.backend.base import Backend, BackendRep
except ImportError as e:  # pragma: no cover - onnx is the optional extra irflow[onnx]
    raise IrflowError("irflow.onnx_backend needs the 'onnx' package: pip install "
                      "'irflow[onnx]'") from e

# Bound inputs are small (shapes, axes, counts): more than this many elements is not a
# shape argument, and binding it would fold real computation into the import.
MAX_BOUND_ELEMENTS = 64


class IrflowBackendRep(BackendRep):
    """A prepared model: `run(inputs)` returns the outputs in the graph's output order."""

    def __init__(self, model: Any, device: str = "CPU") -> None:
        self.model = model
        self.device = device
        check_tensor_types(model, model.graph.name or "<onnx model>")
        initializers = {t.name for t in model.graph.initializer}
        self.input_names = [vi.name for vi in model.graph.input if vi.name not in initializers]
        self.output_names = [vo.name for vo in model.graph.output]
        # inputs that must be import-time constants: those the importer asks for, and
        # empty ones (irflow has no empty tensors; an empty axes list is a constant)
        self.bound: list[str] = [vi.name for vi in model.graph.input
                                 if vi.name in self.input_names and _has_zero_dim(vi)]
        # inputs with a dynamic dimension: their shapes are fixed by the first run's arrays
        self.dynamic = [vi.name for vi in model.graph.input if vi.name in self.input_names
                        and not _static(vi)]
        self._programs: dict[bytes, Program] = {}
        self._modules: dict[bytes, ModuleOp] = {}  # the imported module of each program
        self._why: dict[str, ConstantRequiredError] = {}  # why each input is bound
        self.module: ModuleOp | None = None
        self._compile({})  # import now; learns `bound` (and raises for what cannot import)

    def _compile(self, values: Mapping[str, np.ndarray]) -> Program | None:
        """The program specialized to `values` of the bound inputs (and to the shapes of
        dynamic inputs); None while `values` lacks one of them (at prepare time)."""
        while True:
            if any(n not in values for n in (*self.bound, *self.dynamic)):
                return None
            bound = {n: np.asarray(values[n]) for n in self.bound}
            shapes = {n: np.shape(values[n]) for n in self.dynamic if n not in bound}
            key = repr(shapes).encode() + b"".join(
                n.encode() + a.dtype.str.encode() + repr(a.shape).encode() + a.tobytes()
                for n, a in bound.items())
            if key in self._programs:
                return self._programs[key]
            try:
                module = import_onnx(self.model, constant_inputs=bound, input_shapes=shapes)
            except ConstantRequiredError as e:
                if (e.value_name not in self.input_names or e.value_name in self.bound):
                    raise
                self.bound.append(e.value_name)
                self._why[e.value_name] = e
                continue
            program = compile_function(module)
            self._programs[key] = program
            self._modules[key] = module
            self.module = module  # the last specialization (tests export it)
            return program

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        program, feeds = self._program_for(inputs)
        outs = program.run(feeds)
        return tuple(outs[n] for n in self.output_names)

    def specialize(self, inputs: Any) -> tuple[ModuleOp, dict[str, np.ndarray]]:
        """The imported module `run(inputs)` executes and its feeds (the inputs that are not
        bound at import): what another executor (the simulator) runs for these inputs."""
        program, feeds = self._program_for(inputs)
        module = next(m for k, m in self._modules.items() if self._programs[k] is program)
        return module, feeds

    def _program_for(self, inputs: Any) -> tuple[Program, dict[str, np.ndarray]]:
        if isinstance(inputs, Mapping):
            values = {k: np.asarray(v) for k, v in inputs.items()}
        else:
            arrays = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
            if len(arrays) != len(self.input_names):
                raise IrflowError(f"expected {len(self.input_names)} inputs "
                                  f"({', '.join(self.input_names)}), got {len(arrays)}")
            values = {n: np.asarray(a) for n, a in zip(self.input_names, arrays)}
        for name in self.bound:
            if values[name].size > MAX_BOUND_ELEMENTS and name in self._why:
                raise self._why[name]  # not a shape argument: the op's requirement stands
        program = self._compile(values)
        assert program is not None
        feeds = {n: v for n, v in values.items() if n not in self.bound}
        return program, feeds


def _has_zero_dim(value_info: Any) -> bool:
    tt = value_info.type.tensor_type
    return any(d.HasField("dim_value") and d.dim_value == 0 for d in tt.shape.dim)


def _static(value_info: Any) -> bool:
    if value_info.type.WhichOneof("value") != "tensor_type":
        return True  # not a tensor: the import says so at prepare time
    tt = value_info.type.tensor_type
    return tt.HasField("shape") and all(d.HasField("dim_value") for d in tt.shape.dim)


class IrflowBackend(Backend):
    """`onnx.backend.base.Backend` on irflow's importer and reference executor (CPU)."""

    @classmethod
    def is_compatible(cls, model: Any, device: str = "CPU", **kwargs: Any) -> bool:
        return True

    @classmethod
    def prepare(cls, model: Any, device: str = "CPU", **kwargs: Any) -> IrflowBackendRep:
        return IrflowBackendRep(model, device)

    @classmethod
    def run_model(cls, model: Any, inputs: Any, device: str = "CPU",
                  **kwargs: Any) -> tuple[np.ndarray, ...]:
        return cls.prepare(model, device).run(inputs)

    @classmethod
    def run_node(cls, node: Any, inputs: Any, device: str = "CPU",
                 outputs_info: Sequence[Any] | None = None, **kwargs: Any) -> Any:
        raise IrflowError("irflow runs whole models: use prepare/run_model")

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"


prepare = IrflowBackend.prepare
run_model = IrflowBackend.run_model
run_node = IrflowBackend.run_node
supports_device = IrflowBackend.supports_device
is_compatible = IrflowBackend.is_compatible

__all__ = ["IrflowBackend", "IrflowBackendRep", "prepare", "run_model", "run_node",
           "supports_device", "is_compatible", "MAX_BOUND_ELEMENTS"]
