"""The trace producer: runs an `accel` program tile by tile (STYLE §9).

DRAM is one byte array; every placed tensor is a numpy view into it at its
address, so a planner that overlaps two live tensors corrupts the numbers. For each
`accel.layer` the executor walks the loop nest (`#accel.nest`, outermost loop
first, remainder tiles clipped) and, per tile step:

1. loads each operand slice the step needs — only when a loop it depends on stepped
   since the previous step (a slice that did not change stays in the stream buffer:
   weight- or input-stationary reuse falls out of the loop order);
   partial sums of an output tile revisited by an outer reduction loop are reloaded;
2. computes the tile with numpy on those slices (conv/matmul partial sums over the
   reduction loop accumulate in the output; bias and fused activation are applied
   after the last reduction step; vector and copy kinds call the reference kernels on
   the slice), so a wrong slice gives wrong numbers;
3. stores the result slice when the next step moves to another output tile — as
   partial sums (`psum_bits` wide, role PSUM, in a scratch area after the program's
   last tensor) when that output tile's reduction is not finished yet; the step that
   resumes it reads them back.

Each load/store is recorded as the cache lines its rectangular slice covers at the
real DRAM addresses (built with numpy broadcasting over the slice's rows, memoized
per slice), giving one `LayerTrace` per layer.

    >>> result = execute(lowered_module, {"x": x}, line_bytes=64)
    >>> result.outputs["logits"], result.traces[0].line[:4]
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    BFloat16Type,
    Float16Type,
    Float32Type,
    IntegerType,
    ModuleOp,
)
from xdsl.ir import Attribute, Block, SSAValue

from irflow import intmath
from irflow.alloc import check_bytes
from irflow.backends.sim.kv_inplace import in_place, kv_appends
from irflow.backends.sim.mapping import MapSpace, map_space, tile_matrix

# Placement and the tile kernels are re-exported: the tile families and the fused
# epilogue read them as `executor.X`.
from irflow.backends.sim.placement import (
    _BESIDE,
    _place,
    _PsumArea,
    _read_only,
    _Tensor,
    _write_input,
)
from irflow.backends.sim.tile_kernels import (
    NN_OPS,  # noqa: F401
    TILE_KERNELS,
    Step,
    TileKernel,
    _accumulate,  # noqa: F401
    _detached,  # noqa: F401
    _is_quantized,
    _reference_kernel,
)
from irflow.backends.sim.trace import LayerTrace, Role, Unit
from irflow.blas import single_threaded_blas
from irflow.diagnostics import IrflowError, SimulationError, location_string
from irflow.dialects import accel, nn
from irflow.dialects.accel_side import SideOp, sides_of
from irflow.graph import input_names, main_func, output_names
from irflow.passes.lower_to_accel import check_lowered
from irflow.weights import WeightStore, constant_value, weights_of

UNIT = {"pe": Unit.PE_ARRAY, "vector": Unit.VECTOR, "dma": Unit.DMA}

VECTOR_KIND: dict[str, str] = {
    "nn.add": "add", "nn.sub": "add",
    "nn.mul": "mul", "nn.div": "mul", "nn.pow": "mul",
    "nn.relu": "relu", "nn.relu6": "relu", "nn.clip": "relu", "nn.neg": "relu",
    "nn.sigmoid": "sigmoid", "nn.tanh": "sigmoid", "nn.silu": "sigmoid",
    "nn.hardsigmoid": "sigmoid", "nn.hardswish": "sigmoid", "nn.exp": "sigmoid",
    "nn.sqrt": "sigmoid", "nn.erf": "sigmoid",
    "nn.gelu": "gelu",
    "nn.maxpool": "maxpool",
    "nn.avgpool": "avgpool", "nn.global_avg_pool": "avgpool", "nn.reduce_mean": "avgpool",
    "nn.softmax": "softmax", "nn.layernorm": "layernorm", "nn.batchnorm": "batchnorm",
}
"""nn kind -> the cost class of the machine's vector-unit table (per-element cost);
PE-array layers use "add" (bias/activation on write-back), copies use "copy"."""
VECTOR_KIND.update(dict.fromkeys(accel.QUANT_CASTS, "quantize"))
VECTOR_KIND.update({"nn.rms_norm": "layernorm", "nn.rotary": "mul"})


@dataclass
class Execution:
    """What running an accel program produced."""

    outputs: dict[str, np.ndarray]
    traces: list[LayerTrace] = field(default_factory=list)
    dram_bytes: int = 0


def dtype_name(element_type: Attribute) -> str:
    """The compute data type name the machine's rate table uses."""
    if isinstance(element_type, Float32Type):
        return "fp32"
    if isinstance(element_type, Float16Type):
        return "fp16"
    if isinstance(element_type, BFloat16Type):
        return "bf16"
    if isinstance(element_type, IntegerType):
        return "int4" if 1 < element_type.width.data <= 4 else "int8"  # i1: a byte
    storage = getattr(element_type, "storage", None)  # !quant.uniform: its storage integers
    return dtype_name(storage) if storage is not None else "fp32"


DTYPE_WIDTH = {"int4": 4, "int8": 8, "fp16": 16, "bf16": 16, "fp32": 32}


def layer_dtype(layer: accel.LayerOp, unit: str) -> str:
    """The data type a layer computes in: on the PE array the wider of its two
    multiplied operands (w4a8 multiplies int8 activations: int8 rate; int4 only when
    both are 4-bit), elsewhere its first operand's (a where's first value operand's)."""
    first = 1 if layer.kind.data == "nn.where" else 0  # a where's first operand is its mask
    types = [v.type.element_type  # type: ignore[attr-defined]
             for v in layer.inputs[first: first + (2 if unit == "pe" else 1)]]
    return max((dtype_name(t) for t in types), key=DTYPE_WIDTH.__getitem__)


# --------------------------------------------------------------------------------------
# Cache lines of a slice


def slice_lines(base: int, shape: Sequence[int], itemsize: float,
                ranges: Sequence[tuple[int, int, int]], line_bytes: int,
                bits: tuple[int, int] | None = None) -> np.ndarray:
    """Cache lines (address // line_bytes) covered by a rectangular slice of a dense
    row-major tensor at byte address `base`, each line once (in address order when
    every step is positive; a negative-step slice lists its lines in slice order).

    Element `i` (row-major) occupies the bits from `floor(i · num / den)` on, with
    `(num, den) = bits` (default `(8 · itemsize, 1)`): int4 is `(4, 1)`, a compressed
    weight of B stored bits and E elements `(B, E)` (its average bits per element).
    The trailing axes the slice covers contiguously are merged into rows; the row
    start addresses come from broadcasting the outer index ranges.
    """
    num, den = bits if bits is not None else (round(8 * itemsize), 1)
    rank = len(shape)
    strides = [1] * rank
    for d in range(rank - 2, -1, -1):
        strides[d] = strides[d + 1] * shape[d + 1]
    counts = [len(range(*r)) for r in ranges]
    if 0 in counts:
        return np.empty(0, np.int64)
    run = 1
    inner_start = 0
    k = rank
    while k > 0:
        s, _, st = ranges[k - 1]
        c = counts[k - 1]
        if c != 1 and st != 1:
            break
        run *= c
        inner_start += s * strides[k - 1]
        k -= 1
        if c != shape[k]:
            break
    off = np.zeros(1, np.int64)
    for d in range(k):
        s, e, st = ranges[d]
        off = (off[:, None] + np.arange(s, e, st, dtype=np.int64) * strides[d]).ravel()
    e0 = off + inner_start
    line_bits = 8 * line_bytes
    first = (8 * base + e0 * num // den) // line_bits
    last = (8 * base - (-(e0 + run) * num // den) - 1) // line_bits
    n = last - first + 1
    if n.min() == n.max():
        lines = (first[:, None] + np.arange(int(n[0]), dtype=np.int64)).ravel()
    else:
        total = int(n.sum())
        shift = np.repeat(first - (np.cumsum(n) - n), n)
        lines = shift + np.arange(total, dtype=np.int64)
    if lines.size > 1:
        keep = np.empty(lines.size, bool)
        keep[0] = True
        np.not_equal(lines[1:], lines[:-1], out=keep[1:])
        lines = lines[keep]
    return lines


# --------------------------------------------------------------------------------------
# The executor


PSUM_BITS = dict.fromkeys(DTYPE_WIDTH, 32)
"""Partial-sum width per operand type when the caller gives none (the machine's
`pe_array.psum_bits`)."""


def execute(module: ModuleOp, inputs: Mapping[str, np.ndarray], *,
            line_bytes: int = 64, psum_bits: Mapping[str, int] | None = None,
            numerics: bool = True, progress: Callable[[], None] | None = None) -> Execution:
    """Run the lowered `@main` on `inputs` (by input name); outputs by output name.

    `psum_bits`: width of a spilled partial sum per operand data type (default 32).
    `numerics=False` records the same traces without computing any value (no weights
    loaded, no tile kernels; `outputs` is empty): the cache lines, steps and work of a
    layer depend only on addresses, shapes and the loop nest. An `nn.gather` layer's
    lines follow its run-time indices: when they are a graph input (a decoder's
    `input_ids`), the inputs are written and the gather's lines come from them; when a
    layer computes them, the program runs with numerics. Either way the counts are
    exact. `progress` is called once per layer executed."""
    check_lowered(module)
    fn = main_func(module)
    block = fn.body.blocks[0]
    size = 0
    for op in block.ops:
        if isinstance(op, accel.FusedOp):  # its result is its last layer's
            op = op.layers[-1]
        if isinstance(op, accel.InputOp | accel.WeightOp | accel.LayerOp | SideOp):
            size = max(size, op.addr.value.data + accel.stored_nbytes(op))
    check_bytes(size + line_bytes, "the simulated memory (inputs, weights and layer "
                "results, placed by plan-memory)", where=fn)
    dram = np.zeros(size + line_bytes, np.uint8)
    values: dict[SSAValue, _Tensor] = {}
    names = input_names(fn)
    arg_index = {arg: i for i, arg in enumerate(block.args)}
    missing = [n for n in names if n not in inputs]
    if missing:
        raise SimulationError(f"missing input(s) {missing} (the model takes {names})")
    store = weights_of(module)
    result = Execution({}, [], size)
    write_inputs = numerics
    if not numerics:  # data-dependent lines: the counts need the real indices
        gathers = [op for op in block.ops
                   if isinstance(op, accel.LayerOp) and op.kind.data == "nn.gather"]
        write_inputs = bool(gathers)
        numerics = not all(_is_input(op.inputs[1]) for op in gathers)
    psum = _PsumArea(-(-size // line_bytes) * line_bytes, {**PSUM_BITS, **(psum_bits or {})})
    with single_threaded_blas():
        _run_block(block, values, inputs, names, arg_index, store, dram, fn, result, line_bytes,
                   psum, numerics, progress, write_inputs)
    return result


def _reads_of(trace: LayerTrace, lines: np.ndarray) -> np.ndarray:
    """Per access of `trace`: a load of one of the sorted `lines` (the range test first
    leaves the weight region, below every activation, out of the search)."""
    out = (trace.line >= lines[0]) & (trace.line <= lines[-1]) & ~trace.write
    idx = np.flatnonzero(out)
    out[idx] = np.isin(trace.line[idx], lines, assume_unique=False)
    return out


def _is_input(v: SSAValue) -> bool:
    """`v` is a graph input's tensor (through views): known before anything runs."""
    return isinstance(accel.view_source(v).owner, accel.InputOp)


def _run_block(block: Block, values: dict[SSAValue, _Tensor], inputs: Mapping[str, np.ndarray],
               names: list[str], arg_index: dict[SSAValue, int], store: WeightStore,
               dram: np.ndarray, fn: func.FuncOp, result: Execution, line_bytes: int,
               psum: _PsumArea, numerics: bool = True,
               progress: Callable[[], None] | None = None,
               write_inputs: bool = True) -> None:
    appends = kv_appends(fn)
    ready = np.empty(0, np.int64)  # lines of KV rows no layer writes (kv_inplace.py)
    for op in block.ops:
        try:
            if isinstance(op, accel.InputOp):
                name = names[arg_index[op.source]]  # type: ignore[index]
                t = _place(dram, op.addr.value.data, op.output.type, Role.INPUT)
                if numerics or write_inputs:
                    _write_input(t.array, inputs[name], name)
                values[op.output] = t
            elif isinstance(op, accel.WeightOp):
                t = _place(dram, op.addr.value.data, op.output.type, Role.WEIGHT, op,
                           values_later=numerics)
                if numerics and t.array is _BESIDE:  # int4 / compressed: the store's
                    # array itself, read-only (weights are never written; no copy)
                    t.array = _read_only(constant_value(op, store), op.output.type)  # type: ignore[arg-type]
                elif numerics:
                    t.array[...] = constant_value(op, store)  # type: ignore[arg-type]
                if numerics and t.bits == (4, 1):  # the packed bytes, for whoever reads DRAM
                    packed = intmath.pack_int4(t.array)
                    dram[t.addr: t.addr + packed.size] = packed
                values[op.output] = t
            elif isinstance(op, accel.ViewOp):
                src = values[op.source]
                shape = tuple(op.output.type.get_shape())  # type: ignore[attr-defined]
                values[op.output] = _Tensor(src.array.reshape(shape), src.addr, src.role,
                                            src.weight_op, src.bits)
            elif isinstance(op, accel.LayerOp):
                out = _place(dram, op.addr.value.data, op.output.type, Role.OUTPUT, op)
                values[op.output] = out
                operands = [values[v] for v in op.inputs]
                sides = {}  # the epilogue's side outputs (`accel.side`), written by the layer
                for side in sides_of(op):
                    sides[side.index.value.data] = values[side.output] = _place(
                        dram, side.addr.value.data, side.output.type, Role.OUTPUT, side)
                trace = run_layer(op, operands, out, line_bytes, psum, numerics, sides=sides)
                if ready.size:  # reads of KV rows written before the step
                    trace = replace(trace, ready=_reads_of(trace, ready))
                if op in appends:  # the KV cache updated in place (kv_inplace.py)
                    past = operands[0]
                    trace, rows = in_place(trace, op, slice_lines(
                        past.addr, past.array.shape, past.itemsize,
                        [(0, n, 1) for n in past.array.shape], line_bytes, past.bits),
                        out.addr, out.itemsize, line_bytes)
                    ready = np.union1d(ready, rows)
                result.traces.append(trace)
                if progress is not None:
                    progress()
            elif isinstance(op, accel.FusedOp):  # layers run depth-first (fused_group.py)
                from irflow.backends.sim.fused_group import run_group

                values[op.output], traces = run_group(op, [values[v] for v in op.inputs],
                                                      dram, line_bytes, psum, numerics)
                result.traces.extend(traces)
                if progress is not None:
                    progress()
            elif isinstance(op, func.ReturnOp) and numerics:
                for name, v in zip(output_names(fn), op.operands):
                    if v in arg_index:  # a graph input returned as it is (an Identity
                        # graph): no layer moves it, the output is the input's value
                        result.outputs[name] = np.array(inputs[names[arg_index[v]]])
                        continue
                    result.outputs[name] = values[v].array.copy()
        except IrflowError as e:
            if e.where is None:  # say which op (e.g. a quantize of NaN)
                e.where = op
            raise
        except Exception as e:
            raise SimulationError(f"while executing {op.name}: {type(e).__name__}: {e}",
                                  op) from e


EpilogueHook = Callable[[int, dict[str, tuple[int, int]], tuple, Callable[..., None]], None]
"""Called on each step that finishes an output tile with (step, tile, the tile's numpy
index into the result view, `record(lines, write, role, step)`): a fused epilogue
(`backends/sim/epilogue.py`)."""


def run_layer(layer: accel.LayerOp, operands: Sequence[_Tensor], out: _Tensor,
              line_bytes: int, psum: _PsumArea | None = None,
              numerics: bool = True, epilogue: EpilogueHook | None = None,
              rows: Mapping[str, tuple[int, int]] | None = None,
              store_lines: Callable[[Sequence[tuple[int, int, int]]], np.ndarray] | None = None,
              sides: Mapping[int, _Tensor] | None = None,
              line_memo: dict[tuple, np.ndarray] | None = None) -> LayerTrace:
    """Execute one layer tile by tile; return its trace (module docstring). With
    `numerics=False` the tile kernels are not called (the trace is the same). `rows`
    restricts loops to index ranges (a band of a fused group, `fused_group.py`): the
    tiles start at the range's start and are clipped to its end.
    `store_lines`: the lines a finished output tile's store covers, from its ranges in
    the result view (a fused layout stores through a permutation; default: the box).
    `sides`: the placed side outputs of the layer's epilogue, by index (`accel.side`).
    `line_memo`: slice lines by (tensor address, shape, bits, ranges), shared by calls
    (the bands of a fused group load the same weight tiles; the arrays are not
    modified)."""
    if psum is None:
        psum = _PsumArea(out.addr, PSUM_BITS)
    if layer.epilogue is not None:
        from irflow.backends.sim.epilogue import run_fused

        return run_fused(layer, operands, out, line_bytes, psum, numerics, rows, sides or {})
    space = accel.space_of_op(layer)
    nest = layer.tiles
    order = nest.order
    extent, tile = nest.extent, nest.tile
    kind = layer.kind.data
    kernel = TILE_KERNELS.get(kind, _reference_kernel)(layer, space) if numerics else None
    views = [t.array.reshape(a.view) for t, a in zip(operands, space.operands)]
    out_view = out.array.reshape(space.result.view)
    red = [d for d in order if d in space.reduction]
    chunks: list[np.ndarray] = []
    chunk_write: list[bool] = []
    chunk_role: list[int] = []
    chunk_step: list[int] = []
    memo: list[dict[tuple, np.ndarray]] = [{} for _ in range(len(operands) + 2)]
    dtype = layer_dtype(layer, space.unit)
    psum_tensor = _Tensor(np.empty(0), psum.addr, Role.PSUM, bits=(psum.bits[dtype], 1))

    def lines(i: int, key: tuple, t: _Tensor, shape: Sequence[int],
              ranges: Sequence[tuple[int, int, int]]) -> np.ndarray:
        got = memo[i].get(key)
        if got is None and line_memo is not None:
            full = (t.addr, tuple(shape), t.itemsize, t.bits, tuple(ranges))
            got = line_memo.get(full)
            if got is None:
                got = line_memo[full] = slice_lines(t.addr, shape, t.itemsize, ranges,
                                                    line_bytes, t.bits)
            memo[i][key] = got
        elif got is None:
            got = memo[i][key] = slice_lines(t.addr, shape, t.itemsize, ranges, line_bytes,
                                             t.bits)
        return got

    def record(arr: np.ndarray, write: bool, role: int, step: int) -> None:
        if arr.size:
            chunks.append(arr)
            chunk_write.append(write)
            chunk_role.append(role)
            chunk_step.append(step)

    if kind == "nn.gather":
        return _run_gather(layer, operands, out, kernel, line_bytes)
    span = {d: (rows or {}).get(d, (0, extent[d])) for d in order}
    bounds = [[(lo, min(lo + tile[d], span[d][1])) for lo in range(*span[d], tile[d])]
              for d in order]
    trips = [len(b) for b in bounds]
    pos = {d: i for i, d in enumerate(order)}
    tables = [_axis_tables(acc, bounds, pos) for acc in (*space.operands, space.result)]
    dep = [tuple(pos[d] for d in sorted(acc.dims)) for acc in (*space.operands, space.result)]
    red_pos = [pos[d] for d in red]
    n_out = len(operands)
    prev_keys: list[tuple | None] = [None] * len(operands)
    prev_out: tuple | None = None
    pending_store: tuple[np.ndarray, int, int] | None = None
    visited: set[tuple] = set()
    last_steps: list[bool] = []
    for s, idx in enumerate(itertools.product(*(range(n) for n in trips))):
        t = {d: bounds[i][idx[i]] for i, d in enumerate(order)}
        out_cells = [tab[idx[p]] if p >= 0 else tab[0] for p, tab in tables[n_out]]
        okey = tuple(idx[p] for p in dep[n_out])
        if okey != prev_out and pending_store is not None:
            record(pending_store[0], True, pending_store[2], pending_store[1])
        slices = []
        pads = []
        for i, opnd in enumerate(operands):
            cells = [tab[idx[p]] if p >= 0 else tab[0] for p, tab in tables[i]]
            key = tuple(idx[p] for p in dep[i])
            if key != prev_keys[i]:
                record(lines(i, key, opnd, space.operands[i].view, [c[0] for c in cells]),
                       False, int(_operand_role(opnd)), s)
                prev_keys[i] = key
            if kernel is not None:
                # `...`: a 0-d tensor's tile stays an array (a view), not a scalar
                slices.append(views[i][(*(c[2] for c in cells), ...)])
                pads.append([c[1] for c in cells])
        first = all(idx[p] == 0 for p in red_pos)
        last = all(idx[p] == trips[p] - 1 for p in red_pos)
        out_ranges = [c[0] for c in out_cells]
        if okey != prev_out:
            if okey in visited:  # partial sums revisited by an outer reduction loop
                record(lines(n_out + 1, okey, psum_tensor, space.result.view, out_ranges),
                       False, int(Role.PSUM), s)
            visited.add(okey)
            prev_out = okey
        if last and store_lines is not None:
            got = memo[n_out].get(okey)
            if got is None:
                got = memo[n_out][okey] = store_lines(out_ranges)
            pending_store = (got, s, int(Role.OUTPUT))
        elif last:
            pending_store = (lines(n_out, okey, out, space.result.view, out_ranges), s,
                             int(Role.OUTPUT))
        else:  # the reduction goes on in a later step: spill partial sums
            pending_store = (lines(n_out + 1, okey, psum_tensor, space.result.view,
                                   out_ranges), s, int(Role.PSUM))
        last_steps.append(last)
        # `...`: a 0-d tensor's tile stays an array (a view), not a scalar
        out_index = (*(c[2] for c in out_cells), ...)
        if kernel is not None:
            kernel(Step(t, slices, pads, out_view[out_index], first, last))
        if epilogue is not None and last:
            epilogue(s, t, out_index, record)
    if pending_store is not None:
        record(pending_store[0], True, pending_store[2], pending_store[1])
    # Work per step: the product of the tile sizes, in the nest's iteration order.
    sizes = [np.array([hi - lo for lo, hi in b], np.int64) for b in bounds]
    if trips:
        step_idx = np.indices(trips).reshape(len(trips), -1)
        step_sizes = np.stack([sz[i] for sz, i in zip(sizes, step_idx)], axis=-1)
    else:
        step_sizes = np.ones((1, 0), np.int64)
    points = np.prod(step_sizes, axis=-1)
    ms = map_space(space)
    if ms is None:
        return _trace(layer, space, operands, out, chunks, chunk_write, chunk_role, chunk_step,
                      space.macs_per_point * points, space.ops_per_point * points,
                      tuple(zip(order, trips)))
    # The write-back of a finished output tile (bias, fused activation, requantization)
    # runs on the vector unit, one element operation per output element.
    out_elems = np.prod([step_sizes[:, pos[d]] for d in order if d in space.result.dims],
                        axis=0) if step_sizes.size else np.ones(len(points), np.int64)
    post = len(layer.inputs) > 2 or _is_quantized(layer) or nn.fused_act(
        layer.params.data) is not None
    ops = out_elems * np.array(last_steps, bool) if post else np.zeros_like(points)
    return _trace(layer, space, operands, out, chunks, chunk_write, chunk_role, chunk_step,
                  space.macs_per_point * points, ops.astype(np.int64),
                  tuple(zip(order, trips)), ms, tile_matrix(ms, order, step_sizes))


def _operand_role(t: _Tensor) -> Role:
    """A layer's operand is a weight or an input (an earlier layer's output read here)."""
    return Role.WEIGHT if t.role == Role.WEIGHT else Role.INPUT


Cell = tuple[tuple[int, int, int], tuple[int, int], slice]


def _axis_tables(acc: accel.Access, bounds: Sequence[Sequence[tuple[int, int]]],
                 pos: Mapping[str, int]) -> list[tuple[int, list[Cell]]]:
    """Per view axis: the loop position it follows (-1: none) and, per tile index of
    that loop, the axis's (range, padding, numpy index) — computed once per layer."""
    out: list[tuple[int, list[Cell]]] = []
    for size, ax in zip(acc.view, acc.axes):
        p = pos[ax.dim] if ax.dim else -1
        cells = []
        for lo, hi in (bounds[p] if p >= 0 else [(0, 0)]):
            r, pad = ax.range(size, lo, hi)
            cells.append((r, pad, _index([r])[0]))
        out.append((p, cells))
    return out


def _index(ranges: Sequence[tuple[int, int, int]]) -> tuple[slice, ...]:
    """Numpy indices of (start, stop, step) ranges (a negative stop runs to the front)."""
    return tuple(slice(a, b if b >= 0 else None, c) for a, b, c in ranges)


def _run_gather(layer: accel.LayerOp, operands: Sequence[_Tensor], out: _Tensor,
                kernel: TileKernel | None, line_bytes: int) -> LayerTrace:
    """One step; the data lines are the rows the run-time indices select (`kernel`
    None: the lines only, from indices that are a graph input)."""
    data, idx = operands[0], operands[1]
    shape = tuple(data.array.shape) if data.array.ndim else tuple(
        layer.inputs[0].type.get_shape())  # type: ignore[attr-defined]
    axis = nn.prop_int(layer.params.data, "axis", 0) % len(shape)
    if kernel is not None:
        kernel(Step({}, [data.array, idx.array], [], out.array, True, True))
    # the element numbers np.take(arange(size).reshape(shape), idx, axis) would pick,
    # without the table (an embedding's is its full size in int64)
    outer, inner = math.prod(shape[:axis]), math.prod(shape[axis + 1:])
    rows = np.asarray(idx.array, np.int64).ravel() % max(shape[axis], 1)
    picked = ((np.arange(outer, dtype=np.int64)[:, None, None] * shape[axis]
               + rows[None, :, None]) * inner
              + np.arange(inner, dtype=np.int64)[None, None, :]).ravel()
    num, den = data.bits
    data_lines = np.unique((8 * data.addr + picked * num // den) // (8 * line_bytes))
    full = [(0, s, 1) for s in idx.array.shape]
    idx_lines = slice_lines(idx.addr, idx.array.shape, idx.itemsize, full, line_bytes,
                            idx.bits)
    out_full = [(0, s, 1) for s in out.array.shape]
    out_lines = slice_lines(out.addr, out.array.shape, out.itemsize, out_full, line_bytes,
                            out.bits)
    space = accel.space_of_op(layer)
    return _trace(layer, space, operands, out, [data_lines, idx_lines, out_lines],
                  [False, False, True],
                  [int(_operand_role(data)), int(_operand_role(idx)), int(Role.OUTPUT)],
                  [0, 0, 0], np.zeros(1, np.int64), np.array([out.array.size], np.int64))


def _trace(layer: accel.LayerOp, space: accel.Space, operands: Sequence[_Tensor],
           out: _Tensor, chunks: list[np.ndarray], writes: list[bool], roles: list[int],
           steps: list[int], step_macs: np.ndarray, step_ops: np.ndarray,
           loops: tuple[tuple[str, int], ...] = (), ms: MapSpace | None = None,
           step_tiles: np.ndarray | None = None) -> LayerTrace:
    lengths = np.array([c.size for c in chunks], np.int64)
    line = np.concatenate(chunks) if chunks else np.empty(0, np.int64)
    compulsory = sum(t.stored_bytes for t in {id(t): t for t in operands}.values())
    sparsity = None
    for t in operands:
        attr = t.weight_op.attributes.get("nn.sparsity") if t.weight_op is not None else None
        if isinstance(attr, nn.SparsityAttr) and attr.is_nm:
            sparsity = attr.pattern.data
    return LayerTrace(
        name=layer.label.data,
        op=layer.kind.data,
        unit=UNIT[layer.unit.data],
        dtype=layer_dtype(layer, space.unit),
        line=line,
        write=np.repeat(np.array(writes, bool), lengths),
        role=np.repeat(np.array(roles, np.int8), lengths),
        step=np.repeat(np.array(steps, np.int32), lengths),
        step_macs=step_macs,
        step_vector_ops=step_ops,
        vector_kind=VECTOR_KIND.get(layer.kind.data, "copy" if space.unit == "dma" else (
            "quantize" if space.unit == "pe" and _is_quantized(layer) else "add")),
        compulsory_bytes=int(compulsory + out.stored_bytes),
        sparsity=sparsity,
        notes=list(layer.notes),
        loops=loops,
        loc=location_string(layer.location) or "",
        map_space=ms,
        step_tiles=step_tiles,
        operand_bytes=_operand_bytes(layer, operands, ms),
    )


def _operand_bytes(layer: accel.LayerOp, operands: Sequence[_Tensor],
                   ms: MapSpace | None) -> tuple[float, float] | None:
    """Stored bytes per input and weight value as the PE array's load path carries them:
    a block linear's weight values are its map space's n × k (groups + their scales)."""
    if ms is None or len(operands) < 2:
        return None
    if layer.kind.data == accel.BLOCK_LINEAR:
        values = ms.extents["n"] * ms.extents["k"]
        return operands[0].itemsize, sum(t.stored_bytes for t in operands[1:]) / values
    return operands[0].itemsize, operands[1].itemsize


from irflow.backends.sim import (  # noqa: E402, F401  (register tile kernels)
    block_tiles,
    llm_tiles,
    spatial_tiles,
    vector_tiles,
)
