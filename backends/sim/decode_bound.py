"""The physical limit of a decoder's decode step: every weight and the whole KV cache
cross the DRAM interface once per token.

    bytes  = weight bytes (as stored) + KV bytes read (the `past.*` inputs)
             + KV bytes written (the rows `present.*` adds to `past.*`)

The cache is updated in place, as decoders run it (`kv_inplace.py`): a step writes the
new rows only; `present` is `past` plus those rows in the same buffer.

A table read only through `nn.gather` (an untied embedding) counts the rows the step
gathers, not the whole table.
    cycles = bytes / DRAM bytes per cycle

docs/llm.md works an example through; the simulator's cycles for a batch-1 decode
step are compared against this number (they cannot be lower on a cold cache that is
smaller than the weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.dialects.builtin import ModuleOp, TensorType

from irflow.analysis import model_bytes
from irflow.backends.sim.machine import Machine, load_machine
from irflow.dialects import nn
from irflow.graph import input_names, main_func, output_names
from irflow.weights import numpy_dtype


@dataclass(frozen=True)
class DecodeBound:
    weight_bytes: int
    kv_read_bytes: int
    kv_written_bytes: int
    bytes_per_cycle: float

    @property
    def total_bytes(self) -> int:
        return self.weight_bytes + self.kv_read_bytes + self.kv_written_bytes

    @property
    def cycles(self) -> float:
        return self.total_bytes / self.bytes_per_cycle


def _nbytes(ty: object) -> int:
    assert isinstance(ty, TensorType)
    return math.prod(ty.get_shape()) * numpy_dtype(ty.element_type).itemsize


def decode_bound(module: ModuleOp, machine: Machine | str | None = None) -> DecodeBound:
    """The limit of one decode step of a decoder-family module (`irflow.zoo.decoder`)."""
    m = machine if isinstance(machine, Machine) else load_machine(machine)
    fn = main_func(module)
    ftype = fn.function_type
    kv_in = sum(_nbytes(t) for n, t in zip(input_names(fn), ftype.inputs.data)
                if n.startswith("past."))
    kv_out = sum(_nbytes(t) for n, t in zip(output_names(fn), ftype.outputs.data)
                 if n.startswith("present.")) - kv_in  # the appended rows (in place)
    weights = model_bytes(module, m)
    for const in fn.body.walk():
        if not isinstance(const, nn.ConstantOp):
            continue
        uses = [u.operation for u in const.output.uses]
        if uses and all(isinstance(u, nn.GatherOp) and u.data == const.output for u in uses):
            weights += sum(_nbytes(u.output.type) for u in uses) - _nbytes(const.output.type)
    return DecodeBound(weights, kv_in, kv_out, m.dram.bytes_per_cycle)
