"""Running a layer with a fused epilogue (`fuse-epilogue`, dialects/accel_epilogue.py).

The layer's own computation runs as before (`run_layer` on the layer without its
epilogue), its output tiles held in a buffer beside DRAM — the PE array's output
registers, or for a vector-unit layer (layernorm, softmax, a point-wise op) the vector
unit's own registers, never stored — and on each step that finishes an output tile the epilogue
runs on that tile, in the layer's result view: each op's reference kernel (per-axis
`quant` casts and batchnorm with their per-channel parameters cut to the tile), then
the final values are written to the layer's result in DRAM. The trace records:

- the extra operands' slices (bias, residual, batchnorm vectors), loaded on the step
  that finishes an output tile, when their slice changed since the last one;
- the result's stores at the fused result's address and element size (the
  intermediate tensors are neither stored nor re-read);
- vector work: per output element one operation per epilogue op (and one for the
  layer's own bias/activation/requantization, if any; a vector layer's own operation,
  one per output element, always), with their cost classes in `LayerTrace.epilogue`
  (docs/simulator.md §2.4).

A layout stage (`accel_epilogue.LAYOUT`, the epilogue's last entry) stores each finished
tile through its permutation: the tile's store covers the lines its elements occupy in
the transposed result (`layout_lines`: a row of the tile that lands in short runs
touches more lines, each partly, than a contiguous row does), and no vector work. The
values are the unfused transpose's: the chain's results, permuted.

Numerics equal the unfused program's bit for bit: the same kernels on the same values,
an element at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from xdsl.dialects.builtin import IntegerAttr, TensorType, i64
from xdsl.ir import Attribute, Block

from irflow import intmath
from irflow.alloc import check_alloc
from irflow.backends.reference.kernels import make_kernel
from irflow.backends.sim import executor as ex
from irflow.backends.sim.trace import LayerTrace, Role
from irflow.dialects import accel, nn
from irflow.dialects import accel_epilogue as ep
from irflow.dialects.quant import UniformQuantizedType, quant_type
from irflow.weights import numpy_dtype

StageFn = Callable[[dict[str, tuple[int, int]], list[np.ndarray]], np.ndarray]


def core_layer(layer: accel.LayerOp) -> accel.LayerOp:
    """The layer without its epilogue: its own operands and result type (detached)."""
    block = Block(arg_types=[v.type for v in layer.core_inputs])
    ty = ep.core_type(layer)
    assert isinstance(ty, TensorType)
    core = accel.LayerOp(layer.label.data, layer.kind.data, block.args, ty,
                         layer.addr.value.data, layer.unit.data, layer.tiles,
                         dict(layer.params.data), layer.notes)
    core.location = layer.location  # the report's and the Chrome trace's `loc`
    return core


class _Params:
    """A per-channel parameter vector laid out like the layer's result view and cut to
    each tile (axis `axis` of the result)."""

    def __init__(self, values: np.ndarray, axis: int, result: accel.Access,
                 shape: tuple[int, ...]):
        aligned = tuple(values.size if d == axis else 1 for d in range(len(shape)))
        self.access = ep.extra_access(result, shape, aligned)
        self.view = np.asarray(values).reshape(self.access.view)

    def tile(self, tile: dict[str, tuple[int, int]]) -> np.ndarray:
        ranges, _ = self.access.slice(tile)
        return self.view[ex._index(ranges)]


def layout_lines(stage: ep.Stage, result: accel.Access, out: ex._Tensor, line_bytes: int,
                 ranges: Sequence[tuple[int, int, int]]) -> np.ndarray:
    """The cache lines a finished tile (`ranges` in the layer's result view) covers when
    stored through the layout `stage` into `out` (the permuted result), in address order."""
    shape = ep.layout_shape(stage)
    perm = ep.perm_of(stage)
    flat = np.ravel_multi_index(np.ix_(*(np.arange(*r, dtype=np.int64) for r in ranges)),
                                result.view).ravel()
    src = np.unravel_index(flat, shape)
    dest = np.ravel_multi_index(tuple(src[p] for p in perm), tuple(shape[p] for p in perm))
    num, den = out.bits
    if not dest.size:
        return np.empty(0, np.int64)
    size = num // 8 if den == 1 and num % 8 == 0 else 0
    if size and out.addr % size == 0 and line_bytes % size == 0:
        # whole-byte elements aligned to their size: each lies in one line
        first = last = (out.addr + dest * size) // line_bytes
    else:
        line_bits = 8 * line_bytes
        first = (8 * out.addr + dest * num // den) // line_bits
        last = (8 * out.addr - (-(dest + 1) * num // den) - 1) // line_bits
    # the sorted distinct lines, by marking them in the span they cover (no sort)
    lo = int(first.min())
    mark = np.zeros(int(last.max()) - lo + 1, bool)
    mark[first - lo] = True
    mark[last - lo] = True
    return np.flatnonzero(mark).astype(np.int64) + lo


class _Fused:
    """The epilogue hook `run_layer` calls (module docstring)."""

    def __init__(self, layer: accel.LayerOp, space: accel.Space, extras: Sequence[ex._Tensor],
                 out: ex._Tensor, scratch: np.ndarray, line_bytes: int, numerics: bool,
                 sides: Mapping[int, ex._Tensor]):
        self.stages = ep.compute_stages(layer)
        self.sides = dict(sides)
        self.layout = ep.layout(layer)
        self.shape = ep.core_shape(layer)
        self.result = space.result
        self.extras = list(extras)
        kinds = {i: s.kind for s in self.stages for i in s.operands if i >= 0}
        self.access = [ep.extra_access(space.result, self.shape, ep.aligned_shape(
            kinds[i], nn.shape_of(v), self.shape)) for i, v in enumerate(
                list(layer.inputs)[len(layer.inputs) - len(extras):])]
        self.line_bytes = line_bytes
        self.numerics = numerics
        self.prev: list[tuple | None] = [None] * len(extras)
        self.memo: list[dict[tuple, np.ndarray]] = [{} for _ in extras]
        self.done: dict[int, int] = {}  # step -> output elements finished there
        if numerics:
            self.views = [t.array.reshape(a.view) for t, a in zip(self.extras, self.access)]
            self.scratch = scratch.reshape(space.result.view)
            if self.layout is not None:  # the chain's results, permuted at the end
                ty = self.layout.in_type
                assert isinstance(ty, TensorType)
                check_alloc(self.shape, numpy_dtype(ty.element_type),
                            f"the result tiles of layer '{layer.label.data}'")
                self.final = np.zeros(self.shape, numpy_dtype(ty.element_type))
                self.out = self.final.reshape(space.result.view)
            else:
                self.out = out.array.reshape(space.result.view)
            types = [v.type for v in list(layer.inputs)[len(layer.inputs) - len(extras):]]
            self.fns = [self._stage_fn(s, types) for s in self.stages]

    def __call__(self, step: int, tile: dict[str, tuple[int, int]], index: tuple,
                 record: Callable[..., None]) -> None:
        for i, (t, acc) in enumerate(zip(self.extras, self.access)):
            ranges, _ = acc.slice(tile)
            key = tuple(ranges)
            if key != self.prev[i]:
                got = self.memo[i].get(key)
                if got is None:
                    got = self.memo[i][key] = ex.slice_lines(
                        t.addr, acc.view, t.itemsize, ranges, self.line_bytes, t.bits)
                record(got, False, int(ex._operand_role(t)), step)
                self.prev[i] = key
        # the tile's result elements (a vector layer's whole axes, e.g. softmax's, too)
        self.done[step] = self.result.tile_elems({d: hi - lo for d, (lo, hi) in tile.items()})
        if self.sides:  # side outputs: stored with the tile, in the result's layout
            ranges, _ = self.result.slice(tile)
            for t in self.sides.values():
                record(ex.slice_lines(t.addr, self.result.view, t.itemsize, ranges,
                                      self.line_bytes, t.bits), True, int(Role.OUTPUT), step)
        if not self.numerics:
            return
        y = np.array(self.scratch[index])
        tiles = [v[ex._index(a.slice(tile)[0])] for v, a in zip(self.views, self.access)]
        for s, fn in zip(self.stages, self.fns):
            got = fn(tile, [y if o == ep.CHAIN else tiles[o] for o in s.operands])
            if s.side < 0:
                y = got
            elif s.side in self.sides:
                self.sides[s.side].array.reshape(self.result.view)[index] = got
        self.out[index] = y

    def _stage_fn(self, s: ep.Stage, extra_types: Sequence[Attribute]) -> StageFn:
        types = [s.in_type if o == ep.CHAIN else extra_types[o] for o in s.operands]
        if s.kind == ep.BATCHNORM:
            eps = nn.prop_float(s.params, "epsilon", 1e-5)

            def batchnorm(tile: dict, a: list[np.ndarray]) -> np.ndarray:
                # the reference kernel's arithmetic, per channel of the tile
                x, scale, bias, mean, var = a
                k = scale / np.sqrt(var + var.dtype.type(eps))
                y = x * k
                y += bias - mean * k
                return y

            return batchnorm
        q_in, q_out = quant_type(s.in_type), quant_type(s.out_type)
        if s.kind in accel.QUANT_CASTS and any(
                q is not None and q.is_per_axis for q in (q_in, q_out)):
            return self._per_axis_cast(s.kind, q_in, q_out)
        cls = ex.NN_OPS[s.kind]
        params, out_type = dict(s.params), s.out_type
        if s.kind in ep.ROWWISE:  # on tiles of the result view, whose last axes are the
            # normalized ones (`check_rows`): the axis counted from the end
            rank = len(self.shape)
            params["axis"] = IntegerAttr(nn.prop_int(s.params, "axis", -1) % rank - rank, i64)
            types = [TensorType(t.element_type, self.result.view)  # type: ignore[attr-defined]
                     if o == ep.CHAIN else t for o, t in zip(s.operands, types)]
            out_type = TensorType(s.out_type.element_type, self.result.view)  # type: ignore[attr-defined]
        block = Block(arg_types=types)
        kernel = make_kernel(cls.create(operands=list(block.args), result_types=[out_type],
                                        properties=params))
        return lambda tile, a: np.asarray(kernel(*a))

    def _per_axis_cast(self, kind: str, a: UniformQuantizedType | None,
                       b: UniformQuantizedType | None) -> StageFn:
        """quant_kernels' cast with its per-channel scales and zero points cut to the tile."""

        def params(q: UniformQuantizedType, values: np.ndarray) -> Callable[[dict], np.ndarray]:
            if not q.is_per_axis:
                return lambda tile: values.reshape((1,) * len(self.result.view))
            p = _Params(values, q.quantized_axis % len(self.shape), self.result,  # type: ignore[operator]
                        self.shape)
            return p.tile

        if kind == "quant.dcast":
            assert a is not None
            sc, zp = params(a, a.scale_values()), params(a, a.zero_point_values())
            return lambda tile, x: intmath.dequantize(x[0], sc(tile), zp(tile))
        if kind == "quant.qcast":
            assert b is not None
            sc, zp = params(b, b.scale_values()), params(b, b.zero_point_values())
            dtype = numpy_dtype(b)
            return lambda tile, x: intmath.quantize(x[0], sc(tile), zp(tile), b.qmin, b.qmax,
                                                    dtype)
        assert a is not None and b is not None  # irq.requantize (a per-tensor result)
        mult = intmath.quantize_multiplier(a.scale_values() / b.scale)
        m0, shift = params(a, mult.m0), params(a, mult.shift)
        za = params(a, a.zero_point_values())
        dtype = numpy_dtype(b)
        return lambda tile, x: intmath.requantize(
            intmath.centered(x[0], za(tile)), intmath.Multiplier(m0(tile), shift(tile)),
            b.zero_point,
            b.qmin, b.qmax, dtype)


def run_fused(layer: accel.LayerOp, operands: Sequence[ex._Tensor], out: ex._Tensor,
              line_bytes: int, psum: ex._PsumArea, numerics: bool,
              rows: Mapping[str, tuple[int, int]] | None = None,
              sides: Mapping[int, ex._Tensor] | None = None) -> LayerTrace:
    """`run_layer` for a layer with an epilogue (module docstring)."""
    core = core_layer(layer)
    n_core = len(core.inputs)
    space = accel.space_of_op(core)
    ty = core.output.type
    assert isinstance(ty, TensorType)
    dtype = numpy_dtype(ty.element_type)
    shape = tuple(ty.get_shape())
    if numerics:
        check_alloc(shape, dtype, f"the output tiles of layer '{layer.label.data}'")
        scratch = np.zeros(shape, dtype)
    else:
        scratch = np.broadcast_to(np.zeros((), dtype), shape)
    held = ex._Tensor(scratch, out.addr, Role.OUTPUT, bits=out.bits)
    hook = _Fused(layer, space, operands[n_core:], out, scratch, line_bytes, numerics,
                  sides or {})
    lay = hook.layout
    if lay is not None and numerics and rows:  # a band of a fused group: keep the other rows
        inverse = np.argsort(ep.perm_of(lay))
        hook.final[...] = out.array.transpose(inverse).reshape(hook.final.shape)
    store = None if lay is None else (
        lambda ranges: layout_lines(lay, space.result, out, line_bytes, ranges))
    trace = ex.run_layer(core, operands[:n_core], held, line_bytes, psum, numerics, hook,
                         rows, store)
    if lay is not None and numerics:
        out.array[...] = hook.final.reshape(ep.layout_shape(lay)).transpose(ep.perm_of(lay))
    own = (trace.vector_kind,) if trace.step_vector_ops.any() else ()
    trace.epilogue = own + tuple(ex.VECTOR_KIND.get(s.kind, "add") for s in hook.stages)
    ops = np.zeros(trace.n_steps, np.int64)
    for step, elems in hook.done.items():
        ops[step] = elems * len(trace.epilogue)
    trace.step_vector_ops = ops
    seen = {id(t) for t in operands[:n_core]}
    trace.compulsory_bytes += sum(t.stored_bytes for t in {
        id(t): t for t in operands[n_core:] if id(t) not in seen}.values())
    trace.compulsory_bytes += sum(t.stored_bytes for t in (sides or {}).values())
    return trace
