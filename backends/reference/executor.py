"""Compile `@main` once into a slot program and run it on numpy arrays.

    >>> prog = compile_function(module)
    >>> outs = prog.run({"x": np.zeros((1, 3, 224, 224), np.float32)})
    >>> outs["logits"].shape
    (1, 1000)

Compilation walks the function's block once: every SSA value gets a slot index,
every op becomes a `Step` (kernel, operand slots, result slots, slots to free),
and ops without operands (`nn.constant`) are evaluated right there, so weights are
read from the store once. `run` is then a plain loop in the spirit of JAX's
`eval_jaxpr`: fetch operands, call the kernel, store results, drop every value
whose last use was this step — so peak memory is the live set, not the whole graph
(xDSL's `Interpreter` keeps every value alive; see notes/xdsl-0.74.md §4).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation, SSAValue

from irflow.alloc import check_alloc
from irflow.backends.reference import residual
from irflow.backends.reference.kernels import Kernel, as_results, make_kernel
from irflow.diagnostics import ExecutionError, IrflowError
from irflow.dialects import nn
from irflow.graph import input_names, main_func, output_names
from irflow.weights import numpy_dtype

ArrayInputs = Mapping[str, np.ndarray] | Sequence[np.ndarray] | np.ndarray
Observer = Callable[[Operation, list[np.ndarray]], None]


@dataclass(frozen=True)
class ValueSpec:
    """The declared type of a value: shape and numpy dtype (None if not numpy-typed)."""

    shape: tuple[int, ...]
    dtype: np.dtype | None

    @staticmethod
    def of(value: SSAValue) -> ValueSpec:
        ty = value.type
        if not isinstance(ty, TensorType):
            where = value.owner if isinstance(value.owner, Operation) else None
            raise ExecutionError(f"the reference executor needs tensor values, got {ty}", where)
        try:
            dtype: np.dtype | None = numpy_dtype(ty.element_type)
        except IrflowError:
            dtype = None  # e.g. a quantized element type: its dialect's kernels decide
        return ValueSpec(tuple(int(d) for d in ty.get_shape()), dtype)

    def describe(self) -> str:
        dims = nn.format_shape(self.shape)
        return f"{dims} {self.dtype}" if self.dtype is not None else dims


@dataclass(frozen=True)
class Step:
    """One op of the compiled program."""

    op: Operation
    kernel: Kernel
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    free: tuple[int, ...]  # slots whose value is dead after this step
    specs: tuple[ValueSpec, ...]  # declared result types, for `check=True`


@dataclass
class Program:
    """A function compiled to a slot list; `run` may be called any number of times."""

    input_names: list[str]
    output_names: list[str]
    input_specs: list[ValueSpec]
    input_slots: list[int]
    output_slots: list[int]
    steps: list[Step]
    initial: list[Any]  # constants pre-evaluated at compile time, None elsewhere
    fused_steps: list[Step] | None = None  # residual adds fused into convs (residual.py)

    @property
    def num_slots(self) -> int:
        return len(self.initial)

    def run(self, inputs: ArrayInputs, *, check: bool = False,
            timings: dict[Operation, float] | None = None,
            stats: dict[str, int] | None = None,
            observe: Observer | None = None) -> dict[str, np.ndarray]:
        """Execute on `inputs` (by name, by position, or one bare array for a one-input
        function); outputs keyed by output name.

        `check` asserts every produced value matches its IR type; `timings` receives
        seconds per op; `stats` receives `peak_live` (most live non-constant values)
        and `peak_bytes` (their largest total size); `observe(op, results)` is called
        after every op with its result arrays, before any is freed (calibration).
        """
        slots = list(self.initial)
        for slot, array in zip(self.input_slots, self._validate(inputs)):
            slots[slot] = array
        observed = check or timings is not None or stats is not None or observe is not None
        if not observed:
            for step in self.fused_steps or self.steps:
                try:
                    result = step.kernel(*[slots[i] for i in step.inputs])
                except IrflowError:
                    raise
                except Exception as e:
                    raise _failure(step.op, e) from e
                if len(step.outputs) == 1 and not isinstance(result, tuple | list):
                    slots[step.outputs[0]] = result
                else:  # several results, or one in a tuple (a one-piece nn.split)
                    for i, r in zip(step.outputs, result):
                        slots[i] = r
                for i in step.free:
                    slots[i] = None
        else:
            self._run_observed(slots, check, timings, stats, observe)
        return {name: _materialize(slots[i], i, self) for name, i in
                zip(self.output_names, self.output_slots)}

    def _run_observed(self, slots: list[Any], check: bool,
                      timings: dict[Operation, float] | None,
                      stats: dict[str, int] | None, observe: Observer | None = None) -> None:
        constant = {i for i, v in enumerate(self.initial) if v is not None}
        live: dict[int, int] = {i: slots[i].nbytes for i in self.input_slots}
        peak_live, peak_bytes = len(live), sum(live.values())
        op_by_op = check or observe is not None  # they look at every op's result
        for step in self.steps if op_by_op else self.fused_steps or self.steps:
            start = time.perf_counter()
            try:
                results = as_results(step.kernel(*[slots[i] for i in step.inputs]))
            except IrflowError as e:
                if e.where is None:  # say which op (e.g. a quantize of NaN)
                    e.where = step.op
                raise
            except Exception as e:
                raise _failure(step.op, e) from e
            if timings is not None:
                timings[step.op] = timings.get(step.op, 0.0) + time.perf_counter() - start
            if check:
                _check(step.op, results, step.specs)
            if observe is not None:
                observe(step.op, results)
            for i, r in zip(step.outputs, results):
                slots[i] = r
                if i not in constant:
                    live[i] = r.nbytes
            peak_live = max(peak_live, len(live))
            peak_bytes = max(peak_bytes, sum(live.values()))
            for i in step.free:
                slots[i] = None
                live.pop(i, None)
        if stats is not None:
            stats["peak_live"] = peak_live
            stats["peak_bytes"] = peak_bytes

    def _validate(self, inputs: ArrayInputs) -> list[np.ndarray]:
        if isinstance(inputs, Mapping):
            unexpected = [k for k in inputs if k not in self.input_names]
            if unexpected:
                raise ExecutionError(
                    f"unexpected input '{unexpected[0]}' (inputs: {', '.join(self.input_names)})"
                )
            missing = [n for n in self.input_names if n not in inputs]
            if missing:
                raise ExecutionError(
                    f"missing input '{missing[0]}' (expected "
                    f"{self.input_specs[self.input_names.index(missing[0])].describe()})"
                )
            given = [inputs[n] for n in self.input_names]
        else:
            if isinstance(inputs, np.ndarray):  # a bare array: the only input
                if len(self.input_names) != 1:
                    raise ExecutionError(
                        f"got one array, expected {len(self.input_names)} inputs "
                        f"({', '.join(self.input_names)}) as a list or a dict by name"
                    )
                inputs = [inputs]
            given = list(inputs)
            if len(given) != len(self.input_names):
                raise ExecutionError(
                    f"expected {len(self.input_names)} inputs "
                    f"({', '.join(self.input_names)}), got {len(given)}"
                )
        return [_coerce(name, spec, value)
                for name, spec, value in zip(self.input_names, self.input_specs, given)]


def _coerce(name: str, spec: ValueSpec, value: Any) -> np.ndarray:
    """Check one input's shape and dtype; floats (e.g. float64) are cast to the declared
    float type, integers to the declared integer type; other kinds are an error."""
    array = np.asarray(value)
    if tuple(array.shape) != spec.shape:
        raise ExecutionError(
            f"input '{name}' expects shape {list(spec.shape)}, got {list(array.shape)}"
        )
    if spec.dtype is None or array.dtype == spec.dtype:
        return array
    kinds = {array.dtype.kind, spec.dtype.kind}
    if len(kinds) == 1 or kinds == {"i", "u"}:
        return array.astype(spec.dtype)
    raise ExecutionError(f"input '{name}' expects dtype {spec.dtype}, got {array.dtype}")


def _failure(op: Operation, error: Exception) -> ExecutionError:
    return ExecutionError(f"while executing {_op_label(op)}: {type(error).__name__}: {error}", op)


def _op_label(op: Operation) -> str:
    names = [r.name_hint for r in op.results if r.name_hint]
    return f"%{names[0]} = {op.name}" if names else op.name


def _check(op: Operation, results: list[np.ndarray], specs: list[ValueSpec]) -> None:
    if len(results) != len(specs):
        raise ExecutionError(
            f"{_op_label(op)} produced {len(results)} values, its IR declares {len(specs)}", op
        )
    for i, (r, spec) in enumerate(zip(results, specs)):
        if not isinstance(r, np.ndarray) or tuple(r.shape) != spec.shape or (
            spec.dtype is not None and r.dtype != spec.dtype
        ):
            got = (f"{nn.format_shape(r.shape)} {r.dtype}"
                   if isinstance(r, np.ndarray) else type(r).__name__)
            raise ExecutionError(
                f"{_op_label(op)} result {i} expects {spec.describe()}, got {got}", op
            )


def _materialize(value: Any, slot: int, prog: Program) -> np.ndarray:
    """An output the caller owns: constants and inputs returned as-is are copied, and so
    is any view (reshape, transpose and slice kernels return views, which may be of a
    weight-store array or of the caller's input)."""
    array = np.asarray(value)
    if (prog.initial[slot] is not None or slot in prog.input_slots
            or not array.flags.owndata or not array.flags.writeable):
        return np.array(array)
    return array


def compile_function(module: ModuleOp | func.FuncOp, name: str = "main") -> Program:
    """Compile a module's `@main` (or a given `func.func`) into a `Program`."""
    f = main_func(module, name) if isinstance(module, ModuleOp) else module
    block = f.body.blocks[0]
    slot_of: dict[SSAValue, int] = {}
    initial: list[Any] = []

    def new_slot(value: SSAValue) -> int:
        slot_of[value] = len(initial)
        initial.append(None)
        return slot_of[value]

    input_slots = [new_slot(a) for a in block.args]
    pending: list[tuple[Operation, Kernel, tuple[int, ...], tuple[int, ...]]] = []
    output_slots: list[int] = []
    for op in block.ops:
        if isinstance(op, func.ReturnOp):
            output_slots = [slot_of[v] for v in op.operands]
            break
        for r in op.results:  # refuse a value too big for the machine before running
            spec = ValueSpec.of(r)
            what = (f"weight '{op.value.key}'" if isinstance(op, nn.ConstantOp)
                    and isinstance(op.value, nn.WeightAttr) else f"result of {_op_label(op)}")
            check_alloc(spec.shape, spec.dtype or np.int64, what, op)
        kernel = make_kernel(op)
        ins = tuple(slot_of[v] for v in op.operands)
        outs = tuple(new_slot(r) for r in op.results)
        if not ins:  # a constant: evaluate once, now
            try:
                values = as_results(kernel())
            except IrflowError:
                raise
            except Exception as e:
                raise _failure(op, e) from e
            for i, v in zip(outs, values):
                initial[i] = v
            continue
        pending.append((op, kernel, ins, outs))
    else:
        raise ExecutionError(f"@{f.sym_name.data} has no func.return", f)

    keep = set(output_slots) | {i for i, v in enumerate(initial) if v is not None}
    steps = _with_frees(pending, keep, input_slots)
    fused = residual.fuse(pending, output_slots, keep | set(input_slots))
    return Program(
        input_names=input_names(f),
        output_names=output_names(f),
        input_specs=[ValueSpec.of(a) for a in block.args],
        input_slots=input_slots,
        output_slots=output_slots,
        steps=steps,
        initial=initial,
        fused_steps=_with_frees(fused, keep, input_slots) if len(fused) < len(pending) else None,
    )


def _with_frees(pending: list[Any], keep: set[int], input_slots: list[int]) -> list[Step]:
    """The steps, each with the slots whose last use it is (outputs and constants, in
    `keep`, are never freed)."""
    last: dict[int, int] = {}
    for k, (_, _, ins, outs) in enumerate(pending):
        for i in (*ins, *outs):
            last[i] = k
    for i in input_slots:
        last.setdefault(i, -1)
    free_at: dict[int, list[int]] = {}
    for i, k in last.items():
        if i not in keep:
            free_at.setdefault(k, []).append(i)
    return [Step(op, kernel, ins, outs, tuple(free_at.get(k, ())),
                 tuple(ValueSpec.of(r) for r in op.results))
            for k, (op, kernel, ins, outs) in enumerate(pending)]


def run(module: ModuleOp | func.FuncOp, inputs: ArrayInputs, **kwargs: Any
        ) -> dict[str, np.ndarray]:
    """Compile and run once: `run(module, {"x": x})` -> outputs by name."""
    return compile_function(module).run(inputs, **kwargs)
