"""`plan-memory`: place every tensor in DRAM, reusing the space of dead ones.

Liveness is computed on the dataflow graph (networkx): each buffer is live from the
op that defines it to its last use, where a use of a view (reshape/flatten share
their source's bytes) counts as a use of the source; function inputs are live from
the start, results to the end. Activations are then packed greedily, largest first,
each into the best-fitting gap (smallest that holds it) among the buffers whose
live ranges overlap its own (the "greedy by size" planner of TFLite/XLA). Every
buffer starts on an `align`-byte boundary (a cache line). Weights get their own
region at address 0, never reused; activations start after it.

    %y = nn.relu %x : tensor<1x64x56x56xf32>
becomes
    %y = nn.relu %x {accel.addr = array<i64: 1806336>} : tensor<1x64x56x56xf32>

and the function gets `accel.arg_addrs`, `accel.weight_bytes`, `accel.activation_base`
and `accel.peak_bytes` (the span of the activation region: the peak footprint).
`lower-to-accel` reads these; `plan(fn)` returns the same plan as a `MemoryPlan` and
`peak_footprint(module)` reports the peak. The pass moves nothing and creates no ops.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import networkx as nx
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import DenseArrayBase, IntegerAttr, ModuleOp, i64
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass

from irflow.diagnostics import PassError
from irflow.dialects import accel, nn

ADDR_ATTR = "accel.addr"
ARG_ADDRS_ATTR = "accel.arg_addrs"
PEAK_ATTR = "accel.peak_bytes"
WEIGHT_BYTES_ATTR = "accel.weight_bytes"
ACT_BASE_ATTR = "accel.activation_base"


def align_up(n: int, align: int) -> int:
    return -(-n // align) * align


@dataclass
class Buffer:
    """A run of DRAM bytes holding one tensor (and every view of it)."""

    value: SSAValue
    size: int  # bytes, aligned
    start: int  # schedule position of the definition (-1: function input)
    end: int  # schedule position of the last use (inclusive)
    offset: int = -1  # within its region

    def overlaps(self, other: Buffer) -> bool:
        return self.start <= other.end and other.start <= self.end


@dataclass
class MemoryPlan:
    """Addresses of every tensor of a function, and the footprint they add up to."""

    addresses: dict[SSAValue, int] = field(default_factory=dict)
    buffers: list[Buffer] = field(default_factory=list)  # activations (weights excluded)
    weight_bytes: int = 0
    activation_base: int = 0
    peak_bytes: int = 0  # span of the activation region
    live_peak_bytes: int = 0  # max over time of the live activation bytes (a lower bound)

    @property
    def total_bytes(self) -> int:
        return self.activation_base + self.peak_bytes


def _is_view(op: Operation) -> bool:
    return isinstance(op, accel.ViewOp) or (op.name.startswith("nn.")
                                             and accel.is_view(op))  # type: ignore[arg-type]


def _is_weight(op: Operation) -> bool:
    return isinstance(op, nn.ConstantOp | accel.WeightOp)


def dataflow_graph(fn: func.FuncOp) -> nx.DiGraph:
    """Values as nodes, an edge from each operand to each result of an op; node
    attribute `pos` is the schedule position of the defining op (-1 for inputs)."""
    g = nx.DiGraph()
    block = fn.body.blocks[0]
    for arg in block.args:
        g.add_node(arg, pos=-1)
    for pos, op in enumerate(block.ops):
        for r in op.results:
            g.add_node(r, pos=pos)
        for o in op.operands:
            for r in op.results:
                g.add_edge(o, r)
    return g


def plan(fn: func.FuncOp, align: int = 64) -> MemoryPlan:
    """Liveness + greedy best-fit placement of `fn`'s tensors (module docstring)."""
    block = fn.body.blocks[0]
    ops = list(block.ops)
    position = {op: i for i, op in enumerate(ops)}
    end_pos = len(ops)
    graph = dataflow_graph(fn)
    # Views alias their source: one buffer per connected component of view edges.
    alias = nx.Graph()
    alias.add_nodes_from(graph.nodes)
    for op in ops:
        if _is_view(op):
            alias.add_edge(op.operands[0], op.results[0])
    result = MemoryPlan()
    weights: list[SSAValue] = []
    buffers: list[Buffer] = []
    root_of: dict[SSAValue, SSAValue] = {}
    for component in nx.connected_components(alias):
        root = min(component, key=lambda v: graph.nodes[v]["pos"])
        for v in component:
            root_of[v] = root
        owner = root.owner
        if isinstance(owner, Operation) and _is_weight(owner):
            weights.append(root)
            continue
        last = graph.nodes[root]["pos"]
        for v in component:
            for use in v.uses:
                user = use.operation
                if isinstance(user, func.ReturnOp):
                    last = end_pos
                elif user in position:  # a view op counts too (conservative: it names the bytes)
                    last = max(last, position[user])
        size = align_up(accel.nbytes(root.type), align)
        buffers.append(Buffer(root, size, graph.nodes[root]["pos"], last))
    # Weights: their own region from address 0, in program order.
    offset = 0
    for w in sorted(weights, key=lambda v: graph.nodes[v]["pos"]):
        result.addresses[w] = offset
        offset += align_up(accel.nbytes(w.type), align)
    result.weight_bytes = offset
    result.activation_base = align_up(offset, align)
    result.peak_bytes = assign_offsets(buffers)
    result.live_peak_bytes = live_peak(buffers)
    result.buffers = buffers
    for b in buffers:
        result.addresses[b.value] = result.activation_base + b.offset
    for v, root in root_of.items():
        result.addresses[v] = result.addresses[root]
    return result


def assign_offsets(buffers: Iterable[Buffer]) -> int:
    """Greedy by size with best fit; sets `offset` on each buffer, returns the span."""
    placed: list[Buffer] = []
    span = 0
    for b in sorted(buffers, key=lambda b: (-b.size, b.start, b.end)):
        best, best_gap, prev_end = -1, None, 0
        for p in sorted((p for p in placed if p.overlaps(b)), key=lambda p: p.offset):
            gap = p.offset - prev_end
            if gap >= b.size and (best_gap is None or gap < best_gap):
                best, best_gap = prev_end, gap
            prev_end = max(prev_end, p.offset + p.size)
        b.offset = best if best >= 0 else prev_end
        placed.append(b)
        span = max(span, b.offset + b.size)
    return span


def live_peak(buffers: Iterable[Buffer]) -> int:
    """The most activation bytes live at any one schedule position."""
    events: dict[int, int] = {}
    for b in buffers:
        events[b.start] = events.get(b.start, 0) + b.size
        events[b.end + 1] = events.get(b.end + 1, 0) - b.size
    live = peak = 0
    for pos in sorted(events):
        live += events[pos]
        peak = max(peak, live)
    return peak


def annotate(fn: func.FuncOp, memory: MemoryPlan) -> None:
    """Write the plan onto the IR (the attributes `lower-to-accel` reads)."""
    block = fn.body.blocks[0]
    fn.attributes[ARG_ADDRS_ATTR] = DenseArrayBase.from_list(
        i64, [memory.addresses[a] for a in block.args])
    for op in block.ops:
        if op.results and not isinstance(op, func.ReturnOp):
            op.attributes[ADDR_ATTR] = DenseArrayBase.from_list(
                i64, [memory.addresses[r] for r in op.results])
    fn.attributes[WEIGHT_BYTES_ATTR] = IntegerAttr(memory.weight_bytes, i64)
    fn.attributes[ACT_BASE_ATTR] = IntegerAttr(memory.activation_base, i64)
    fn.attributes[PEAK_ATTR] = IntegerAttr(memory.peak_bytes, i64)


def peak_footprint(module: ModuleOp, align: int = 64) -> int:
    """Peak activation footprint in bytes of the module's functions (planned if needed)."""
    peak = 0
    for fn in module.ops:
        if isinstance(fn, func.FuncOp):
            attr = fn.attributes.get(PEAK_ATTR)
            peak = max(peak, attr.value.data if isinstance(attr, IntegerAttr)
                       else plan(fn, align).peak_bytes)
    return peak


@dataclass(frozen=True)
class PlanMemoryPass(ModulePass):
    """Assign DRAM addresses with liveness-based reuse (see the module docstring)."""

    name = "plan-memory"

    align: int = 64  # bytes; a cache line of the default machine

    def apply(self, ctx: Context, module: ModuleOp) -> None:
        if self.align < 1 or self.align & (self.align - 1):
            raise PassError(f"plan-memory expects align to be a power of two, got {self.align}")
        for fn in module.ops:
            if not isinstance(fn, func.FuncOp) or not fn.body.blocks:
                continue
            if any(op.name.startswith("accel.") for op in fn.body.blocks[0].ops):
                continue  # already lowered: its tensors carry their addresses
            annotate(fn, plan(fn, self.align))
