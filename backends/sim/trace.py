"""What the accelerator executor hands to the memory and cost models.

The simulator is three pieces (STYLE §9): the *trace producer*
(`backends/sim/executor.py`) walks the lowered `accel` program tile by tile,
computing the real numbers with numpy and recording, per layer, which cache lines
each tile step touches and how much work each step does; the *memory model*
(`backends/sim/cache.py`) services those accesses; the *cost model*
(`backends/sim/cost.py`) turns accesses, cache outcomes and work into cycles and
energy. `LayerTrace` is the contract between them.

Everything is arrays, one entry per line access (in program order) or per tile
step, so the models never loop per access in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from irflow.backends.sim.mapping import MapSpace


class Role(IntEnum):
    """Which tensor of a layer an access belongs to (stats are split by role)."""

    INPUT = 0
    WEIGHT = 1
    OUTPUT = 2  # stores of the result
    PSUM = 3  # partial sums (psum_bits wide) of a reduction split across tile steps


class Unit(IntEnum):
    """Which compute unit runs a layer's tile steps."""

    PE_ARRAY = 0
    VECTOR = 1
    DMA = 2  # pure data movement (copies for layout changes)


@dataclass
class LayerTrace:
    """One lowered layer (one `accel` layer op) as executed, tile by tile.

    Access arrays have one entry per cache-line access, in program order:
    `line[i]` is the byte address // line size, `write[i]` is a store,
    `role[i]` a `Role`, `step[i]` the tile step (0-based) the access belongs to.
    A tile step loads its operand slices (role INPUT/WEIGHT), computes, and
    stores its result slice (role OUTPUT).

    Step arrays have one entry per tile step: `step_macs[s]` multiply-accumulates
    on the PE array, `step_vector_ops[s]` element operations on the vector unit.
    A PE layer also carries its loops as the array sees them (`map_space`) and
    `step_tiles[s, i]`, the extent of loop `map_space.dims[i]` in step s, which the
    cost model maps onto the array (`mapping.step_cost`). A step that stores a
    partial output (a reduction loop outside an output loop) writes it as partial
    sums (role PSUM) to a scratch area, and the step that resumes it reads them back.
    """

    name: str  # the layer's name (IR op location or symbol), shown in reports
    op: str  # the IR op it came from, e.g. "nn.conv2d"
    unit: Unit
    dtype: str  # operand data type on the compute unit: "fp32", "fp16", "bf16", "int8", "int4"
    line: np.ndarray  # int64 [n_access]
    write: np.ndarray  # bool [n_access]
    role: np.ndarray  # int8 [n_access]
    step: np.ndarray  # int32 [n_access]
    step_macs: np.ndarray  # int64 [n_steps]
    step_vector_ops: np.ndarray  # int64 [n_steps]
    vector_kind: str = "add"  # cost class for vector ops (see the machine's vector table)
    compulsory_bytes: int = 0  # bytes of distinct operand and result data (roofline bound)
    sparsity: str | None = None  # weight sparsity pattern, e.g. "2:4" (halves PE MAC cycles)
    notes: list[str] = field(default_factory=list)  # warnings shown in the report
    loops: tuple[tuple[str, int], ...] = ()  # the nest: (loop, trip count), outermost first;
    # `step` is the row-major index over these trip counts
    loc: str = ""  # source location of the IR op ("model.irf:12:5"), "" if unknown
    map_space: MapSpace | None = None  # PE layers: loops, extents, operand dependences
    step_tiles: np.ndarray | None = None  # int64 [n_steps, len(map_space.dims)]
    operand_bytes: tuple[float, float] | None = None  # stored bytes per value of the
    # input and the weight as the array loads them (w4a16: packed int4 + scales)
    epilogue: tuple[str, ...] = ()  # a layer with a fused epilogue: the vector cost
    # class of each op applied per output element (its own write-back first), one
    # element operation each (`step_vector_ops` counts them all)
    ready: np.ndarray | None = None  # bool [n_access]: loads of data no layer of this
    # run writes (a KV cache's past rows): prefetchable like weights (prefetch.py)
    group: str = ""  # a band of a layer in a fused group (`accel.fused`): the group's
    # label; the simulator adds the bands of each layer up (backends/sim/fused_group.py)

    @property
    def n_steps(self) -> int:
        return len(self.step_macs)

    @property
    def macs(self) -> int:
        return int(self.step_macs.sum())

    def __post_init__(self) -> None:
        n = len(self.line)
        if not (len(self.write) == len(self.role) == len(self.step) == n) or (
                self.ready is not None and len(self.ready) != n):
            raise ValueError("LayerTrace access arrays must have equal length")
        if len(self.step_vector_ops) != len(self.step_macs):
            raise ValueError("LayerTrace step arrays must have equal length")
        if self.step_tiles is not None and (
                self.map_space is None
                or self.step_tiles.shape != (len(self.step_macs), len(self.map_space.dims))):
            raise ValueError("LayerTrace step_tiles must be [n_steps, len(map_space.dims)]")
