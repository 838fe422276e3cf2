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

Sizes are the bytes a tensor occupies in DRAM: ceil(elements × element bits / 8)
(int8 1 B, int4 packed two per byte, fp32 4 B). A sparse weight (`nn.sparsity`) is
stored compressed when the target machine can use the format (`weight_storage`):
an N:M pattern the PE array supports as N values + N indices per run of M, any other
sparse weight in the machine's `unstructured_format` (bitmap / csr), sizes from
`irflow.sparsity.storage_bits` — and dense when that is not smaller. Such a constant
gets `accel.format` and `accel.stored_bits`, which `lower-to-accel` copies onto its
`accel.weight`:

    %w = nn.constant #nn.weight<"fc.weight"> {nn.sparsity = #nn.sparsity<"2:4", axis = 1>}
           : tensor<256x64xf32>
becomes (2:4, fp32: 34 bits per kept weight, 8,704 B instead of 65,536)
    %w = nn.constant ... {accel.addr = array<i64: 0>, accel.format = "2:4",
           accel.stored_bits = 278528 : i64, nn.sparsity = ...} : tensor<256x64xf32>
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import networkx as nx
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import DenseArrayBase, IntegerAttr, ModuleOp, StringAttr, TensorType, i64
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass

from irflow.diagnostics import PassError
from irflow.dialects import accel, nn
from irflow.sparsity import sparsity_of, storage_bits

ADDR_ATTR = "accel.addr"
ARG_ADDRS_ATTR = "accel.arg_addrs"
PEAK_ATTR = "accel.peak_bytes"
WEIGHT_BYTES_ATTR = "accel.weight_bytes"
ACT_BASE_ATTR = "accel.activation_base"


def align_up(n: int, align: int) -> int:
    return -(-n // align) * align


@dataclass(frozen=True)
class SparseSupport:
    """What a machine can store compressed: the N:M patterns its PE array decodes and
    the format of other sparse weights ("dense", "bitmap", "csr")."""

    structured: frozenset[str] = frozenset()
    unstructured_format: str = "dense"

    @staticmethod
    def of(machine: str = "default", structured: str = "", unstructured_format: str = ""
           ) -> SparseSupport:
        """A machine preset's (or TOML file's) support; non-empty arguments override it
        (`structured="none"`: no N:M patterns; `"2:4,1:4"`: these)."""
        if not (structured and unstructured_format):
            from irflow.backends.sim.machine import load_machine  # as tile.cache_of

            sp = load_machine(machine or None).sparsity
            structured = structured or ",".join(sp.structured) or "none"
            unstructured_format = unstructured_format or sp.unstructured_format
        patterns = frozenset(p.strip() for p in structured.split(",")
                             if p.strip() and p.strip() != "none")
        if unstructured_format not in ("dense", "bitmap", "csr"):
            raise PassError(f"plan-memory expects unstructured-format dense, bitmap or csr, "
                            f"got '{unstructured_format}'")
        return SparseSupport(patterns, unstructured_format)


def weight_storage(op: Operation, support: SparseSupport) -> tuple[str, int] | None:
    """(format, bits) of a sparse weight constant stored compressed, or None (dense)."""
    attr = sparsity_of(op)
    ty = op.results[0].type
    if attr is None or not isinstance(ty, TensorType):
        return None
    shape, bits = tuple(ty.get_shape()), accel.element_bits(ty.element_type)
    if attr.is_nm and attr.pattern.data in support.structured:
        fmt, stored = attr.pattern.data, storage_bits(shape, bits, attr)
    elif support.unstructured_format == "dense":
        return None
    else:
        if attr.is_nm:  # a pattern the PE array cannot use: stored like any sparse weight
            n, m = attr.n_m
            attr = nn.SparsityAttr.unstructured(n / m)
        fmt = support.unstructured_format
        stored = storage_bits(shape, bits, attr, fmt)
    return (fmt, stored) if stored < math.prod(shape) * bits else None


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
    stored: dict[SSAValue, tuple[str, int]] = field(default_factory=dict)
    # compressed weights: (format, bits)

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


def plan(fn: func.FuncOp, align: int = 64, sparse: SparseSupport | None = None) -> MemoryPlan:
    """Liveness + greedy best-fit placement of `fn`'s tensors (module docstring);
    sparse weights compressed as `sparse` allows (None: the default machine)."""
    if sparse is None:
        sparse = SparseSupport.of()
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
        nbytes = accel.nbytes(w.type)
        if isinstance(w.owner, nn.ConstantOp):
            stored = weight_storage(w.owner, sparse)
            if stored is not None:
                result.stored[w] = stored
                nbytes = -(-stored[1] // 8)
        elif isinstance(w.owner, accel.WeightOp):
            nbytes = accel.stored_nbytes(w.owner)
        offset += align_up(nbytes, align)
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
    for value, (fmt, bits) in memory.stored.items():
        owner = value.owner
        assert isinstance(owner, Operation)
        owner.attributes[accel.FORMAT_ATTR] = StringAttr(fmt)
        owner.attributes[accel.STORED_BITS_ATTR] = IntegerAttr(bits, i64)
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
    machine: str = "default"  # whose sparsity support decides compressed weight storage
    structured: str = ""  # override the machine's N:M patterns ("2:4,1:4", or "none")
    unstructured_format: str = ""  # override the machine's format: dense, bitmap, csr

    def apply(self, ctx: Context, module: ModuleOp) -> None:
        if self.align < 1 or self.align & (self.align - 1):
            raise PassError(f"plan-memory expects align to be a power of two, got {self.align}")
        sparse = SparseSupport.of(self.machine, self.structured, self.unstructured_format)
        for fn in module.ops:
            if not isinstance(fn, func.FuncOp) or not fn.body.blocks:
                continue
            if any(op.name.startswith("accel.") for op in fn.body.blocks[0].ops):
                continue  # already lowered: its tensors carry their addresses
            annotate(fn, plan(fn, self.align, sparse))
