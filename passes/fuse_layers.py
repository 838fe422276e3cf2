"""`fuse-layers`: group chains of layers into `accel.fused` groups run depth-first.

On the lowered `accel` program (after `lower-to-accel` and `fuse-epilogue`), a chain
is a run of `accel.layer` ops where each result has one use, by the next layer, as its
first operand, all of one family: conv2d layers (a conv→conv chain, MobileNetV2's
expand 1×1 → depthwise 3×3 → project 1×1), or matmul / linear / row-wise vector layers
(attention's matmul → softmax → matmul; linear → (gelu epilogue) → linear). The pass
splits each chain into groups and fuses a group only when its estimate beats running
its layers one after another under `objective` (`latency`, `energy`, `edp`, `dram`;
`always` fuses every group that fits):

- **layer by layer**, per PE layer the tile search's estimate of the tiling it carries
  (`tile_search.estimate`: cycles, DRAM bytes, energy of the layer alone on a cold
  cache); per vector layer its element work against its compulsory bytes;
- **fused** with band `B` (rows of the last layer per band; `nb` bands), per layer i
  with MAC factor `f_i` (rows computed ÷ rows: 1 with `overlap=cache`, more with
  `recompute`): DRAM `D'_i = D_i − (bytes of the intermediates it writes and reads,
  unless one spills: its rings plus its consumer's whole operands overflow the cache)
  + (nb − 1) · W_i` when the group's whole operands `ΣW` and ring buffers exceed ¾ of
  the cache (each band re-fetches them) + for the first layer the halo rows of its
  input every band reads again, cycles
  `max(P_i·f_i, C_i − (D_i − D'_i)/bw + P_i·(f_i − 1)) + (nb − 1)·(latency + rows + cols)`
  (a restart per band), energy `E_i − (D_i − D'_i)·dram_pJ + MACs_i·(f_i − 1)·mac_pJ`.

A dynamic program over each chain picks the partition into groups (a layer alone is
unfused) and, per group, the band (the divisors of the last layer's rows and the
powers of two) with the least objective; only bands whose ring buffers
(`accel_fused.footprint`) fit `budget` × the cache are considered. `layers="a,b,c;d,e"`
fuses exactly those groups (labels in order) or raises a `PassError` naming the layer
and why. After fusing, each intermediate layer's `at` is its ring buffer's offset in
the on-chip scratch.

    // before
    %e = accel.layer "b2.expand" "nn.conv2d"(%x, %w1, %b1) at 0 on "pe" tiles <...>
           params {act = "relu6", ...} : (...) -> tensor<1x96x56x56xf32>
    %d = accel.layer "b2.dw" "nn.conv2d"(%e, %w2, %b2) at 1204224 on "pe" tiles <...>
           params {groups = 96 : i64, pads = array<i64: 1, 1, 1, 1>, act = "relu6", ...}
           : (...) -> tensor<1x96x56x56xf32>
    %p = accel.layer "b2.project" "nn.conv2d"(%d, %w3, %b3) at 2408448 on "pe" ...
           : (...) -> tensor<1x24x56x56xf32>
    // after
    %p = accel.fused "b2.expand" band "oh" = 8 overlap "cache" (%x, %w1, %b1, %w2, %b2,
           %w3, %b3) : (...) -> tensor<1x24x56x56xf32> {
    ^bb0(%a: ..., ...):
      %e = accel.layer "b2.expand" "nn.conv2d"(%a, %p1, %p2) at 0 on "pe" ...
      %d = accel.layer "b2.dw" "nn.conv2d"(%e, %p3, %p4) at 215040 on "pe" ...
      %q = accel.layer "b2.project" "nn.conv2d"(%d, %p5, %p6) at 2408448 on "pe" ...
      accel.yield %q : tensor<1x24x56x56xf32>
    }
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Block, SSAValue
from xdsl.passes import ModulePass

from irflow.backends.sim.executor import VECTOR_KIND, layer_dtype
from irflow.backends.sim.machine import Machine, load_machine
from irflow.backends.sim.mapping import map_space
from irflow.diagnostics import PassError
from irflow.dialects import accel
from irflow.dialects import accel_epilogue as ep
from irflow.dialects import accel_fused as af
from irflow.dialects.accel_side import sides_of
from irflow.passes import tile as tl
from irflow.passes import tile_search as ts
from irflow.passes.fuse_epilogue import replan
from irflow.passes.lower_to_accel import lowered_functions

OBJECTIVES = ("latency", "energy", "edp", "dram", "always")


@dataclass(frozen=True)
class Estimate:
    """Estimated cycles, DRAM bytes and energy (pJ) of a layer or a group."""

    cycles: float
    dram_bytes: float
    energy_pj: float

    def __add__(self, o: Estimate) -> Estimate:
        return Estimate(self.cycles + o.cycles, self.dram_bytes + o.dram_bytes,
                        self.energy_pj + o.energy_pj)

    def score(self, objective: str) -> float:
        return {"latency": self.cycles, "energy": self.energy_pj,
                "edp": self.cycles * self.energy_pj, "dram": self.dram_bytes,
                "always": 0.0}[objective]


ZERO = Estimate(0.0, 0.0, 0.0)


@dataclass
class _Layer:
    """A layer's own estimate and what the fused estimate needs of it."""

    op: accel.LayerOp
    est: Estimate
    pe_cycles: float
    macs: int
    weight_bytes: int  # operands each band reads whole again (weights, a matmul's B)
    dtype: str


@dataclass
class Decision:
    """One group the pass considered: its layers, band, both estimates, and the verdict."""

    labels: list[str]
    band: int
    fused: Estimate
    unfused: Estimate
    chosen: bool
    footprint: int
    why: str = ""
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        u, f = self.unfused, self.fused
        verdict = "fuse" if self.chosen else "keep"
        return (f"{verdict} {'+'.join(self.labels)} band {self.band}: cycles "
                f"{u.cycles:,.0f} -> {f.cycles:,.0f}, DRAM {u.dram_bytes:,.0f} -> "
                f"{f.dram_bytes:,.0f} B, energy {u.energy_pj / 1e6:.2f} -> "
                f"{f.energy_pj / 1e6:.2f} uJ, rings {self.footprint:,} B{self.why}")


def _bytes(v: SSAValue) -> int:
    ty = v.type
    assert isinstance(ty, TensorType)
    return -(-math.prod(ty.get_shape()) * accel.element_bits(ty.element_type) // 8)


def layer_estimate(op: accel.LayerOp, machine: Machine) -> _Layer:
    """The layer-by-layer estimate of one layer (module docstring)."""
    space = accel.space_of_op(op)
    core = op.core_inputs
    # what every band reads whole again: the operands after the row-banded first one
    # (weights and bias, a matmul's second matrix: attention's K and V)
    weights = sum(_bytes(v) for v in core[1:])
    macs = math.prod(space.extents.values()) * space.macs_per_point
    if map_space(space) is not None:
        dtype = ts.pe_dtype(op)
        itemsizes = [tl.elem_bytes(v.type) for v in core] + [tl.elem_bytes(ep.core_type(op))]
        nest = op.tiles
        sizes = np.array([[nest.tile[d] for d in space.dims]])
        sc = ts.estimate(space, itemsizes, machine, dtype, sizes, [tuple(nest.order)])
        return _Layer(op, Estimate(float(sc.cycles[0]), float(sc.dram_bytes[0]),
                                   float(sc.energy_pj[0])), float(sc.pe_cycles[0]), macs,
                      weights, dtype)
    elems = math.prod(af.accel_shape(op.output))
    cpe = machine.vector_cycles_per_element(VECTOR_KIND.get(op.kind.data, "add"))
    work = elems * cpe / machine.vector.lanes
    moved = sum(_bytes(v) for v in op.inputs) + _bytes(op.output)
    cycles = max(work, moved / machine.dram.bytes_per_cycle) + machine.dram.latency_cycles
    dt = layer_dtype(op, "vector")
    energy = (elems * cpe * getattr(machine.energy.vector_op_pj, dt)
              + moved * machine.dram_pj_per_byte)
    return _Layer(op, Estimate(cycles, float(moved), energy), work, 0, weights, dt)


def fused_estimate(members: Sequence[_Layer], band: int, overlap: str,
                   machine: Machine) -> tuple[Estimate, int]:
    """The fused estimate of `members` at `band` rows (module docstring) and its ring
    buffers' bytes."""
    ops = [m.op for m in members]
    extent = af.rows_shape(ops[-1])[-2]
    nb = -(-extent // band)
    rings = af.footprint(ops, band)
    computed = [0] * len(ops)
    done = [0] * len(ops)
    read = 0  # rows of the group's input the first layer reads, halos again in every band
    windows = [af.window(nxt) for nxt in ops[1:]]
    for lo in range(0, extent, band):
        for i, (a, b) in enumerate(af.band_rows(ops, lo, min(lo + band, extent), windows)):
            a = a if overlap == "recompute" else max(a, done[i])
            computed[i] += max(b - a, 0)
            done[i] = max(done[i], b)
            if i == 0 and b > a:
                lo_in, hi_in = af.window(ops[0]).need(a, b)
                read += hi_in - lo_in
    # the halo rows bands share are taken to miss again (the streamed weights between
    # two bands evict them)
    halo = (read / af.accel_shape(ops[0].inputs[0])[-2] - 1) * _bytes(ops[0].inputs[0])
    weights = sum(m.weight_bytes for m in members)
    refetch = weights + rings > 0.75 * machine.cache.size_bytes  # room for the streamed tiles
    bw = machine.dram.bytes_per_cycle
    restart = machine.pe_array.rows + machine.pe_array.cols  # a band's fill and drain
    # an intermediate whose ring and its consumer's whole operands overflow the cache
    # spills between bands (written back and read again): no saving
    spill = [nb > 1 and rings + members[i + 1].weight_bytes > machine.cache.size_bytes
             for i in range(len(members) - 1)]
    total = ZERO
    for i, m in enumerate(members):
        f = computed[i] / af.rows_shape(m.op)[-2]
        saved = 0.0
        if i > 0 and not spill[i - 1]:
            saved += _bytes(m.op.inputs[0])
        if i < len(members) - 1 and not spill[i]:
            saved += _bytes(m.op.output)
        saved = min(saved, m.est.dram_bytes)
        extra = (nb - 1) * m.weight_bytes if refetch else 0
        if i == 0:
            extra += halo
        d = m.est.dram_bytes - saved + extra
        cyc = max(m.pe_cycles * f, m.est.cycles - (saved - extra) / bw
                  + m.pe_cycles * (f - 1)) + (nb - 1) * restart
        mac_pj = getattr(machine.energy.mac_pj, m.dtype) if m.macs else 0.0
        e = (m.est.energy_pj - (saved - extra) * machine.dram_pj_per_byte
             + m.macs * (f - 1) * mac_pj)
        total = total + Estimate(cyc, d, e)
    return total, rings


def bands(extent: int) -> list[int]:
    """Band candidates: divisors of the rows and powers of two, largest first."""
    cand = set(ts.divisors(extent)) | {1 << k for k in range(extent.bit_length())}
    return sorted((b for b in cand if b <= extent), reverse=True)


def best_band(members: Sequence[_Layer], overlap: str, machine: Machine, budget: int,
              objective: str, band: int = 0) -> tuple[int, Estimate, int] | None:
    """The band with the least objective whose rings fit `budget` (`band` > 0: that one,
    if it fits); None if none fits."""
    ops = [m.op for m in members]
    extent = af.rows_shape(ops[-1])[-2]
    best = None
    for b in ([band] if band else bands(extent)):
        if af.footprint(ops, min(b, extent)) > budget:
            continue
        est, rings = fused_estimate(members, min(b, extent), overlap, machine)
        key = est.score(objective) if objective != "always" else -b
        if best is None or key < best[0]:
            best = (key, min(b, extent), est, rings)
    return None if best is None else best[1:]


def chains(block: Block) -> list[list[accel.LayerOp]]:
    """Maximal chains of the block (module docstring), in program order."""
    out: list[list[accel.LayerOp]] = []
    taken: set[accel.LayerOp] = set()
    for op in block.ops:
        if not isinstance(op, accel.LayerOp) or op in taken or af.row_loop(op) is None:
            continue
        chain = [op]
        while True:
            nxt = link(chain[-1])
            if isinstance(nxt, str):
                break
            chain.append(nxt)
        taken.update(chain)
        if len(chain) > 1:
            out.append(chain)
    return out


def link(op: accel.LayerOp) -> accel.LayerOp | str:
    """The layer `op`'s result chains into, or why it does not."""
    v = op.output
    if not v.has_one_use():
        return f"its result has {len(list(v.uses))} uses (a group keeps one, by the next layer)"
    user = v.get_user_of_unique_use()
    if not isinstance(user, accel.LayerOp):
        return f"its result is used by {user.name if user else 'nothing'}, not a layer"
    if user.inputs[0] is not v or user.parent is not op.parent:
        return f"layer '{user.label.data}' does not read it as its first operand"
    if af.row_loop(user) is None:
        return (f"layer '{user.label.data}' ({user.kind.data}) cannot be banded by rows "
                f"(its kind, or it normalizes over the rows)")
    if af.family(user.kind.data) != af.family(op.kind.data):
        return f"layer '{user.label.data}' ({user.kind.data}) is of another family"
    if ep.layout(op) is not None:  # the ring buffers hold rows in the natural layout
        return f"layer '{op.label.data}' stores its result through a layout (a permutation)"
    if sides_of(user):  # a group runs its layers without their side outputs
        return f"layer '{user.label.data}' writes a side output (accel.side)"
    return user


def fuse_group(ops: Sequence[accel.LayerOp], band: int, overlap: str) -> accel.FusedOp:
    """Replace the chain `ops` (in one block) by an `accel.fused` group."""
    inside = {op.output for op in ops[:-1]}
    inputs: list[SSAValue] = []
    for op in ops:
        for v in op.inputs:
            if v not in inside and v not in inputs:
                inputs.append(v)
    last = ops[-1]
    block = last.parent
    assert block is not None
    uses = [(u.operation, u.index) for u in list(last.output.uses)]
    offset = 0
    for op, rows in zip(ops[:-1], af.ring_rows(ops, band)):
        op.properties["addr"] = accel.addr_attr(offset)
        offset += -(-rows * af.row_bytes(op.output) // 64) * 64
    nxt = last.next_op
    for op in ops:
        op.detach()
    group = accel.FusedOp(ops[0].label.data, inputs, list(ops), band, overlap)
    group.location = ops[0].location
    if nxt is None:
        block.add_op(group)
    else:
        block.insert_op_before(group, nxt)
    group.output.name_hint = last.output.name_hint
    for user, idx in uses:
        user.operands[idx] = group.output
    return group


def plan_chain(chain: Sequence[accel.LayerOp], machine: Machine, objective: str,
               overlap: str, budget: int, band: int = 0) -> list[Decision]:
    """The partition of `chain` into groups with the least objective (a dynamic program
    over split points): the groups considered, each with its verdict."""
    members = [layer_estimate(op, machine) for op in chain]
    n = len(chain)
    best: list[tuple[float, list[Decision]]] = [(0.0, [])]
    for j in range(1, n + 1):
        # layer j-1 alone
        alone = best[j - 1][0] + members[j - 1].est.score(objective)
        cand = (alone, best[j - 1][1])
        for i in range(j - 2, -1, -1):
            seg = members[i:j]
            got = best_band(seg, overlap, machine, budget, objective, band)
            if got is None:
                continue
            b, est, rings = got
            unf = sum((m.est for m in seg), ZERO)
            pays = objective == "always" or est.score(objective) < unf.score(objective)
            d = Decision([m.op.label.data for m in seg], b, est, unf, pays, rings)
            if not pays:
                continue
            score = best[i][0] + (est.score(objective) if objective != "always"
                                  else -float(j - i))
            if score < cand[0]:
                cand = (score, [*best[i][1], d])
        best.append(cand)
    chosen = best[n][1]
    # also report the best group that did not pay (for explain / the bench)
    if not chosen and n >= 2:
        got = best_band(members, overlap, machine, budget, objective, band)
        if got is not None:
            b, est, rings = got
            chosen = [Decision([m.op.label.data for m in members], b, est,
                               sum((m.est for m in members), ZERO), False, rings,
                               f" (does not pay under {objective})")]
    return chosen


def explicit_groups(block: Block, spec: str) -> list[list[accel.LayerOp]]:
    """The groups `layers="a,b,c;d,e"` names, checked (PassError naming the layer)."""
    by_label = {op.label.data: op for op in block.ops if isinstance(op, accel.LayerOp)}
    out = []
    for text in spec.split(";"):
        labels = [s.strip() for s in text.split(",") if s.strip()]
        if len(labels) < 2:
            raise PassError(f"fuse-layers: a group needs two or more layers, got '{text}'")
        ops = []
        for lab in labels:
            if lab not in by_label:
                raise PassError(f"fuse-layers: no layer '{lab}' in the lowered program "
                                f"(labels are the accel.layer names; fused groups and epilogue "
                                f"ops cannot be named)")
            ops.append(by_label[lab])
        for op, nxt in zip(ops, ops[1:]):
            if af.row_loop(op) is None:
                raise PassError(f"fuse-layers: layer '{op.label.data}' ({op.kind.data}) cannot "
                                f"be banded by rows")
            got = link(op)
            if isinstance(got, str):
                raise PassError(f"fuse-layers: cannot fuse layer '{op.label.data}' into "
                                f"'{nxt.label.data}': {got}")
            if got is not nxt:
                raise PassError(f"fuse-layers: cannot fuse layer '{op.label.data}' into "
                                f"'{nxt.label.data}': its result goes to layer "
                                f"'{got.label.data}'")
        out.append(ops)
    return out


def fuse_function(fn: func.FuncOp, machine: Machine, objective: str = "latency",
                  overlap: str = "cache", budget: float = 0.5, band: int = 0,
                  layers: str = "") -> list[Decision]:
    """Fuse the chains of `fn` (module docstring); returns the decisions."""
    block = fn.body.blocks[0]
    cap = int(budget * machine.cache.size_bytes)
    decisions: list[Decision] = []
    if layers:
        for ops in explicit_groups(block, layers):
            members = [layer_estimate(op, machine) for op in ops]
            got = best_band(members, overlap, machine, cap, "always", band)
            if got is None:
                need = af.footprint(ops, band or 1)
                raise PassError(f"fuse-layers: layer '{ops[0].label.data}' cannot be fused "
                                f"with {', '.join(repr(o.label.data) for o in ops[1:])}: its "
                                f"ring buffers need {need:,} B at band {band or 1}, the budget "
                                f"is {cap:,} B ({budget:g} of the cache)")
            b, est, rings = got
            unf = sum((m.est for m in members), ZERO)
            decisions.append(Decision([o.label.data for o in ops], b, est, unf, True, rings,
                                      " (requested)"))
            fuse_group(ops, b, overlap)
        replan(fn, machine.cache.line_bytes)
        return decisions
    for chain in chains(block):
        for d in plan_chain(chain, machine, objective, overlap, cap, band):
            decisions.append(d)
    by_label = {op.label.data: op for op in block.ops if isinstance(op, accel.LayerOp)}
    for d in decisions:
        if d.chosen:
            fuse_group([by_label[lab] for lab in d.labels], d.band, overlap)
    if any(d.chosen for d in decisions):
        replan(fn, machine.cache.line_bytes)
    return decisions


@dataclass(frozen=True)
class FuseLayersPass(ModulePass):
    """Fuse chains of layers into `accel.fused` groups run depth-first (module docstring).

    Runs on the lowered program, after `lower-to-accel` and `fuse-epilogue`:
    `-p 'default,tile,plan-memory,lower-to-accel,fuse-epilogue,fuse-layers{objective=dram}'`.
    """

    name = "fuse-layers"

    objective: str = "latency"
    """latency | energy | edp | dram: fuse a group only when its estimate is better;
    always: every group whose ring buffers fit."""
    layers: str = ""
    """Fuse exactly these groups: `layers="a,b,c;d,e"` (labels in chain order)."""
    band: int = 0
    """Rows of the last layer per band (0: the best the estimate finds)."""
    overlap: str = "cache"
    """cache: a window's rows shared with the previous band stay in the line buffer;
    recompute: computed again (halo recompute)."""
    budget: float = 0.5
    """Fraction of the cache the group's ring buffers may take."""
    machine: str = "default"
    """The machine (preset or TOML path) whose cache and costs decide."""
    explain: bool = False
    """Print each group considered, with both estimates, to stderr."""

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise PassError(f"fuse-layers expects objective in {list(OBJECTIVES)}, got "
                            f"'{self.objective}'")
        if self.overlap not in af.OVERLAPS:
            raise PassError(f"fuse-layers expects overlap in {list(af.OVERLAPS)}, got "
                            f"'{self.overlap}'")
        if not 0 < self.budget <= 1:
            raise PassError(f"fuse-layers expects 0 < budget <= 1, got {self.budget}")
        if self.band < 0:
            raise PassError(f"fuse-layers expects band >= 0, got {self.band}")

    def apply(self, ctx: Context, module: ModuleOp) -> None:
        self.fuse(module, load_machine(self.machine))

    def fuse(self, module: ModuleOp, machine: Machine) -> list[Decision]:
        """Fuse every function of `module` for `machine`; returns the decisions."""
        import sys

        out: list[Decision] = []
        for fn in lowered_functions(module, "fuse-layers"):
            out += fuse_function(fn, machine, self.objective, self.overlap, self.budget,
                                 self.band, self.layers)
        if self.explain:
            for d in out:
                print(f"fuse-layers: {d.line()}", file=sys.stderr)
        return out


__all__ = ["FuseLayersPass", "fuse_function", "plan_chain", "chains", "Decision",
           "Estimate", "layer_estimate", "fused_estimate"]
