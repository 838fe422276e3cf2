"""The KV cache updated in place: a decode step writes the new key/value rows only.

A decoder's decode entry (`irflow.zoo.decoder`) takes the cache as inputs `past.i.key`
[B, H, L, D] and returns `present.i.key` [B, H, L + 1, D] = `concat(past, new, axis=2)`.
As a graph that is a copy of L rows; no decoder runs it so. llama.cpp, vLLM and
TensorRT-LLM keep one buffer of the model's maximum length per layer, the step writes
row L of each head and attention reads rows 0 … L of the same buffer; `present` *is*
`past` with one more row, and the next step's `past`.

`kv_appends` finds that concat — an `nn.concat` whose first operand is the graph input
`past.*` and whose result is the graph output `present.*` (through views) — and
`in_place` rewrites its trace to the in-place access pattern: the loads of the first
operand (the L copied rows) and the stores of the copied region are dropped; the new
rows' loads (an earlier layer's output, on chip) and their stores stay. The simulator
keeps `present` and `past` in separate buffers for the numbers (the outputs are the
reference executor's), so `present`'s first L rows stand for the shared buffer: the
attention that reads them misses in the cache and fetches them from DRAM, exactly the
"KV bytes read" of an in-place cache, and only the new rows are ever dirty.

The decode limit (`decode_bound.py`) counts the same: KV bytes read = the past rows,
KV bytes written = the appended rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from xdsl.dialects import func
from xdsl.ir import SSAValue

from irflow.backends.sim.trace import LayerTrace, Role
from irflow.dialects import accel, nn
from irflow.graph import input_names, output_names


def _returned_as(v: SSAValue, names: dict[SSAValue, str]) -> str | None:
    """The output name `v` is returned as (through views), if any."""
    if v in names:
        return names[v]
    for use in v.uses:
        if isinstance(use.operation, accel.ViewOp):
            got = _returned_as(use.operation.output, names)
            if got is not None:
                return got
    return None


def kv_appends(fn: func.FuncOp) -> set[accel.LayerOp]:
    """The `nn.concat` layers of a lowered `@main` that append rows to a KV cache: the
    first operand is the graph input `past.*`, the result the graph output `present.*`
    (the decoder family's names, which `decode_bound` reads too)."""
    block = fn.body.blocks[0]
    ret = block.last_op
    outs: dict[SSAValue, str] = {}
    if isinstance(ret, func.ReturnOp):
        outs = {v: n for n, v in zip(output_names(fn), ret.operands)}
    ins = dict(zip(block.args, input_names(fn)))
    found = set()
    for op in block.ops:
        if not (isinstance(op, accel.LayerOp) and op.kind.data == "nn.concat"
                and len(op.inputs) == 2):
            continue
        src = accel.view_source(op.inputs[0]).owner
        if not isinstance(src, accel.InputOp) or not ins.get(src.source, "").startswith(
                "past."):
            continue
        if (_returned_as(op.output, outs) or "").startswith("present."):
            found.add(op)
    return found


def in_place(trace: LayerTrace, layer: accel.LayerOp, cache_lines: np.ndarray,
             out_addr: int, itemsize: float, line_bytes: int) -> tuple[LayerTrace, np.ndarray]:
    """`trace` of a `kv_appends` concat as the in-place update runs it — no loads of the
    first operand's lines (`cache_lines`), stores only of the lines holding the rows
    past the first operand's extent on the concat axis — and the lines of the result
    that hold the past rows (no layer writes them: prefetchable)."""
    from irflow.backends.sim.executor import slice_lines

    out_shape: Sequence[int] = layer.output.type.get_shape()  # type: ignore[attr-defined]
    axis = nn.prop_int(layer.params.data, "axis", 0) % len(out_shape)
    past = layer.inputs[0].type.get_shape()[axis]  # type: ignore[attr-defined]
    ranges = [(0, s, 1) for s in out_shape]
    ranges[axis] = (past, out_shape[axis], 1)
    new_rows = slice_lines(out_addr, out_shape, itemsize, ranges, line_bytes)
    new_rows_bytes = itemsize * np.prod(out_shape) * (out_shape[axis] - past) / out_shape[axis]
    past_rows = np.setdiff1d(slice_lines(out_addr, out_shape, itemsize,
                                         [(0, n, 1) for n in out_shape], line_bytes), new_rows)
    keep = np.where(trace.write, np.isin(trace.line, new_rows),
                    ~((trace.role == int(Role.INPUT)) & np.isin(trace.line, cache_lines)))
    return replace(trace, line=trace.line[keep], write=trace.write[keep],
                   role=trace.role[keep], step=trace.step[keep],
                   ready=None if trace.ready is None else trace.ready[keep],
                   compulsory_bytes=2 * int(np.ceil(new_rows_bytes)),
                   notes=[*trace.notes, "KV cache updated in place: the new rows only"]
                   ), past_rows
