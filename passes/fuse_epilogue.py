"""`fuse-epilogue`: apply point-wise layers in the output path of the layer before them.

On the lowered `accel` program (after `lower-to-accel`), a PE layer (conv2d, matmul,
linear) whose result has one use, by a point-wise layer — a bias or residual
`nn.add` (any elementwise op), an activation, `nn.batchnorm` in inference form, a
`quant.qcast` / `quant.dcast` / `irq.requantize` — takes that layer into its
`epilogue`, and so on down the chain while each result has one use. The vector unit
then applies the chain to each finished output tile as the PE array produces it
(docs/simulator.md §2.4): the intermediate tensors are never written to memory and
read back; the extra operands (a bias, the residual) are read per output tile. Then
the activations are placed again (`replan`, plan-memory's liveness and best-fit on the
fused program), since the fused layer reads its inputs and writes its result at one
point of the schedule.

    // before
    %m = accel.layer "ff1.mm" "nn.matmul"(%x, %w) at 4096 on "pe" tiles <...> params {}
           : (tensor<1x128x312x!q>, tensor<312x1200x!qw>) -> tensor<1x128x1200x!q1>
    %d = accel.layer "dcast_5" "quant.dcast"(%m) at 157696 on "vector" tiles <...>
           params {} : (tensor<1x128x1200x!q1>) -> tensor<1x128x1200xf32>
    %a = accel.layer "ff1" "nn.add"(%d, %b) at 771072 on "vector" tiles <...> params {}
           : (tensor<1x128x1200xf32>, tensor<1200xf32>) -> tensor<1x128x1200xf32>
    %g = accel.layer "gelu" "nn.gelu"(%a) at 157696 on "vector" tiles <...> params {}
           : (tensor<1x128x1200xf32>) -> tensor<1x128x1200xf32>
    // after
    %g = accel.layer "ff1.mm" "nn.matmul"(%x, %w, %b) at 4096 on "pe" tiles <...>
           params {} epilogue [
             {in = tensor<1x128x1200x!q1>, kind = "quant.dcast", label = "dcast_5",
              operands = array<i64: -1>, out = tensor<1x128x1200xf32>},
             {in = tensor<1x128x1200xf32>, kind = "nn.add", label = "ff1",
              operands = array<i64: -1, 0>, out = tensor<1x128x1200xf32>},
             {in = tensor<1x128x1200xf32>, kind = "nn.gelu", label = "gelu",
              operands = array<i64: -1>, out = tensor<1x128x1200xf32>}]
           : (tensor<1x128x312x!q>, tensor<312x1200x!qw>, tensor<1200xf32>)
             -> tensor<1x128x1200xf32>

A layer on the vector unit that does one operation per output element — layernorm,
softmax, batchnorm, a point-wise op or cast (`accel_epilogue.VECTOR_PRODUCERS`) — takes
its point-wise consumers the same way: the vector unit chains the ops on each tile in
its registers, so the intermediate is not written and re-read; its cycles are the sum
of the chained ops' vector work (the same unit, no pipelining with itself). The
producer's tiles stay its own (softmax's and layernorm's normalized axes whole), which
suits any point-wise consumer: the rules below are the same.

    // before (int8: a LayerNorm feeding an integer MatMul)
    %n = accel.layer "ln" "nn.layernorm"(%a, %g, %b) at 8192 on "vector"
           tiles <d0 = 1, d1 = 128 step 32> params {axis = -1 : i64} : (...)
           -> tensor<1x128x312xf32>
    %q = accel.layer "qcast_7" "quant.qcast"(%n) at 168960 on "vector" tiles <...>
           params {} : (tensor<1x128x312xf32>) -> tensor<1x128x312x!q>
    // after
    %q = accel.layer "ln" "nn.layernorm"(%a, %g, %b) at 8192 on "vector"
           tiles <d0 = 1, d1 = 128 step 32> params {axis = -1 : i64}
           epilogue [{in = tensor<1x128x312xf32>, kind = "quant.qcast", label = "qcast_7",
                      operands = array<i64: -1>, out = tensor<1x128x312x!q>}]
           : (...) -> tensor<1x128x312x!q>

**Softmax and layernorm** (`accel_epilogue.ROWWISE`) join a chain like a point-wise
op when every tile of the producer's result holds the axes they normalize whole (int8
TinyBERT's score matmul tiles `n = 128` whole, so its output path dequantizes, scales,
applies the softmax and requantizes; its output and FFN-down matmuls take the
LayerNorm after the residual add).

**Transposes.** A transpose that takes the chain value (through the `accel.view` that
split the heads) becomes the chain's last entry, a *layout*: the output path stores each
tile through the permutation, so the transpose layer and its round trip through memory
vanish. The one-operand point-wise layers after the transpose (casts, activations:
they commute with a permutation) come along, before the layout:

    // before (int8: the Q projection, its heads split, then quantized for the scores)
    %q = accel.layer "l0.q.mm" "nn.matmul"(%x, %w, %b) ... epilogue [dcast, add]
           : (...) -> tensor<1x128x312xf32>
    %v = accel.view %q : (tensor<1x128x312xf32>) -> tensor<1x128x12x26xf32>
    %t = accel.layer "l0.q.t" "nn.transpose"(%v) at 98304 on "dma" tiles <...>
           params {perm = array<i64: 0, 2, 1, 3>} : (...) -> tensor<1x12x128x26xf32>
    %c = accel.layer "qcast_0" "quant.qcast"(%t) at 8192 on "vector" tiles <...>
           params {} : (tensor<1x12x128x26xf32>) -> tensor<1x12x128x26x!q>
    // after
    %c = accel.layer "l0.q.mm" "nn.matmul"(%x, %w, %b) at 8192 on "pe" tiles <...>
           params {} epilogue [dcast, add,
             {kind = "quant.qcast", label = "qcast_0", operands = array<i64: -1>,
              in = tensor<1x128x312xf32>, out = tensor<1x128x312x!q>},
             {kind = "nn.transpose", label = "l0.q.t", operands = array<i64: -1>,
              in = tensor<1x128x312x!q>, out = tensor<1x12x128x26x!q>,
              params = {perm = array<i64: 0, 2, 1, 3>, shape = array<i64: 1, 128, 12, 26>}}]
           : (...) -> tensor<1x12x128x26x!q>

**Two uses.** A chain value with two uses, one of them a one-operand point-wise layer
(a `quant.qcast` first), ends the chain there, and that layer becomes a *side output*:
its entry carries `side = 0`, and an `accel.side` op (dialects/accel_side.py) names the
result the output path stores beside the layer's own:

    // before (int8: the LayerNorm after the attention output feeds the FFN's integer
    // matmul through a qcast, and the FFN's residual add in float)
    %o = accel.layer "l0.o.mm" "nn.matmul"(...) ... epilogue [dcast, add, add]
    %n = accel.layer "l0.ln1" "nn.layernorm"(%o, %g, %be) ... -> tensor<1x128x312xf32>
    %q = accel.layer "qcast_4" "quant.qcast"(%n) ... -> tensor<1x128x312x!q>
    // after
    %n = accel.layer "l0.o.mm" "nn.matmul"(..., %g, %be) ... epilogue [dcast, add, add,
           {kind = "nn.layernorm", label = "l0.ln1", ...},
           {kind = "quant.qcast", label = "qcast_4", operands = array<i64: -1>,
            in = tensor<1x128x312xf32>, out = tensor<1x128x312x!q>, side = 0 : i64}]
           : (...) -> tensor<1x128x312xf32>
    %q = accel.side %n, 0 at 163840 : (tensor<1x128x312xf32>) -> tensor<1x128x312x!q>

An accelerator's output path writes two formats of a tile it holds (a multi-output
fusion) rather than storing one and re-reading it for a cast; the alternative,
repeating the cast in each consumer's input path, would read the float tensor once per
consumer (three Q/K/V matmuls after each LayerNorm).

Does not fuse: a result with another use (or returned), other than the side output
above; a consumer that is not point-wise (pooling, a copy), or a softmax/layernorm
whose axes the producer's tiles cut, or one that broadcasts the chain value to a larger
shape; a producer that is neither (pooling, reductions, copies); through an
`accel.view` other than before a layout's transpose; a per-axis quantized cast (its
scales follow the channel, which the producer's tiles cut) or a per-axis value through
a layout; an extra operand that broadcasts across axes the layer's tile view merges; a
batchnorm whose channels are not the result's axis 1. Numerics are the unfused
program's, bit for bit (the same reference kernels, per output tile). The tiles stay
those `tile` chose for the producer alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import DenseArrayBase, IntegerAttr, ModuleOp, TensorType, i64
from xdsl.ir import Attribute, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.utils.exceptions import VerifyException

from irflow.diagnostics import PassError
from irflow.dialects import accel, nn
from irflow.dialects import accel_epilogue as ep
from irflow.dialects.accel_side import SideOp
from irflow.passes import plan_memory as pm
from irflow.passes.lower_to_accel import lowered_functions


@dataclass
class _Chain:
    stages: list[ep.Stage]
    extras: list[SSAValue]
    ops: list[accel.LayerOp | accel.ViewOp]
    sides: list[accel.LayerOp] = field(default_factory=list)


def _chain(layer: accel.LayerOp, only: frozenset[str], layouts: bool = True,
           sides: bool = True) -> _Chain:
    """The point-wise layers after `layer` that its output path can take (module doc)."""
    chain = _Chain([], [], [])
    v: SSAValue = layer.output
    shape = nn.shape_of(v)
    core = accel.space_of_op(layer)
    while True:
        if not v.has_one_use():
            side = _side(v, only, shape) if sides else None
            if side is not None:  # a second use by a cast: a side output, the chain ends
                chain.stages.append(ep.Stage(side.kind.data, side.label.data, (ep.CHAIN,),
                                             v.type, side.output.type,
                                             dict(side.params.data), 0))
                chain.sides.append(side)
            break
        user = v.get_user_of_unique_use()
        if not (isinstance(user, accel.LayerOp) and user.kind.data in ep.KINDS
                and user.kind.data in only and user.epilogue is None):
            break
        operands = list(user.inputs)
        kind = user.kind.data
        if (operands.count(v) != 1 or len(operands) != ep.arity(kind)
                or nn.shape_of(user.output) != shape
                or (kind in ep.FIRST and operands[0] is not v)
                or any(ep.per_axis(o.type) for o in operands if o is not v)):
            break
        extras = list(chain.extras)
        idx = []
        try:
            ep.check_per_axis(kind, user.label.data, v.type, user.output.type, core.result,
                              shape)
            ep.check_rows(kind, user.label.data, user.params.data, core.result, shape,
                          layer.tiles)
            for o in operands:
                if o is v:
                    idx.append(ep.CHAIN)
                    continue
                ep.extra_access(core.result, shape,
                                ep.aligned_shape(kind, nn.shape_of(o), shape))
                if o not in extras:
                    extras.append(o)
                idx.append(extras.index(o))
        except VerifyException:
            break
        chain.extras = extras
        chain.stages.append(ep.Stage(kind, user.label.data, tuple(idx), v.type,
                                     user.output.type, dict(user.params.data)))
        chain.ops.append(user)
        v = user.output
    if layouts:
        _fold_layout(chain, v, shape, only)
    return chain


def _side(v: SSAValue, only: frozenset[str], shape: tuple[int, ...]) -> accel.LayerOp | None:
    """Of a chain value with two uses, the one-operand point-wise layer (a cast first)
    that can be a side output (dialects/accel_side.py), if any."""
    users = {u.operation for u in v.uses}
    if len(users) != 2 or len(list(v.uses)) != 2:
        return None
    fits = [u for u in users if isinstance(u, accel.LayerOp) and u.kind.data in ep.KINDS
            and u.kind.data not in ep.ROWWISE and u.kind.data in only
            and ep.arity(u.kind.data) == 1 and u.epilogue is None and len(u.inputs) == 1
            and nn.shape_of(u.output) == shape and not ep.per_axis(u.output.type)
            and not ep.per_axis(v.type)]
    if not fits or len(fits) == 2 and fits[0].kind.data == fits[1].kind.data:
        return None
    return min(fits, key=lambda u: u.kind.data != "quant.qcast")


def _fold_layout(chain: _Chain, v: SSAValue, shape: tuple[int, ...],
                 only: frozenset[str]) -> None:
    """A transpose (through an `accel.view`) that takes the chain value `v` as its only
    input becomes the chain's layout stage, and the one-operand point-wise layers after
    it (casts, activations: they commute with a permutation) its stages before that,
    with the layer's own shape (module docstring)."""
    if not v.has_one_use() or ep.per_axis(v.type):
        return
    user = v.get_user_of_unique_use()
    views: list[accel.ViewOp] = []
    if isinstance(user, accel.ViewOp) and user.output.has_one_use():
        views.append(user)
        user = user.output.get_user_of_unique_use()
    if not (isinstance(user, accel.LayerOp) and user.kind.data == ep.LAYOUT
            and user.epilogue is None and len(user.inputs) == 1):
        return
    perm = user.params.data.get("perm")
    seen = nn.shape_of(user.inputs[0])
    if not isinstance(perm, DenseArrayBase):
        return
    stages: list[ep.Stage] = []
    ops: list[accel.LayerOp] = []
    t = v.type
    w: SSAValue = user.output
    while w.has_one_use():
        u = w.get_user_of_unique_use()
        if not (isinstance(u, accel.LayerOp) and u.kind.data in ep.KINDS
                and u.kind.data in only and u.epilogue is None and len(u.inputs) == 1
                and ep.arity(u.kind.data) == 1 and nn.shape_of(u.output) == nn.shape_of(w)
                and not ep.per_axis(u.output.type)):
            break
        out = TensorType(u.output.type.element_type, shape)  # type: ignore[attr-defined]
        stages.append(ep.Stage(u.kind.data, u.label.data, (ep.CHAIN,), t, out,
                               dict(u.params.data)))
        ops.append(u)
        t, w = out, u.output
    params: dict[str, Attribute] = {"perm": perm}
    if seen != shape:
        params["shape"] = DenseArrayBase.from_list(i64, list(seen))
    chain.stages += [*stages, ep.Stage(ep.LAYOUT, user.label.data, (ep.CHAIN,), t, w.type,
                                       params)]
    chain.ops += [*views, user, *ops]


def fuse_function(fn: func.FuncOp, align: int = 64,
                  only: frozenset[str] = ep.KINDS, layouts: bool = True,
                  sides: bool = True) -> int:
    """Fuse every chain of `fn` (module docstring) and re-place its activations;
    returns how many layers (point-wise and transposes) were fused."""
    block = fn.body.blocks[0]
    rewriter = Rewriter()
    fused = 0
    for op in list(block.ops):
        if not (isinstance(op, accel.LayerOp) and op.parent is block
                and op.kind.data in ep.PRODUCERS and op.epilogue is None):
            continue
        chain = _chain(op, only, layouts, sides)
        layers = [c for c in chain.ops if isinstance(c, accel.LayerOp)]
        if not layers and not chain.sides:
            continue
        last = layers[-1] if layers else op
        notes = op.notes + [n for c in layers for n in c.notes]
        new = accel.LayerOp(op.label.data, op.kind.data, [*op.inputs, *chain.extras],
                            last.output.type, last.addr.value.data, op.unit.data, op.tiles,
                            dict(op.params.data), notes)
        new.properties["epilogue"] = ep.make_attr(chain.stages)
        for k, a in op.attributes.items():
            new.attributes.setdefault(k, a)
        new.location = op.location
        rewriter.insert_op(new, InsertPoint.before(last))
        new.output.name_hint = last.output.name_hint
        last.output.replace_all_uses_with(new.output)
        where = new
        for k, side in enumerate(chain.sides):
            out = SideOp(new.output, k, side.output.type, side.addr.value.data)
            rewriter.insert_op(out, InsertPoint.after(where))
            out.output.name_hint = side.output.name_hint
            side.output.replace_all_uses_with(out.output)
            where = out
        for dead in [*chain.sides, *reversed([op, *chain.ops])]:
            rewriter.erase_op(dead)
        fused += len(layers) + len(chain.sides)
    if fused:
        replan(fn, align)
    return fused


def replan(fn: func.FuncOp, align: int = 64) -> int:
    """Place the activations of a lowered function again (plan-memory's liveness and
    greedy best fit; weights keep their addresses); returns the activation span. A side
    output is live from its layer on (written while the layer runs); a fused group
    (`fuse-layers`) reads all its inputs and writes its result (its last layer's `at`)
    at one point of the schedule."""
    block = fn.body.blocks[0]
    ops = list(block.ops)
    position = {op: i for i, op in enumerate(ops)}
    root: dict[SSAValue, SSAValue] = {}
    buffers: dict[SSAValue, pm.Buffer] = {}
    placed: dict[SSAValue, accel.InputOp | accel.LayerOp | SideOp] = {}
    base = 0
    for i, op in enumerate(ops):
        if isinstance(op, accel.WeightOp):
            base = max(base, op.addr.value.data + accel.stored_nbytes(op))
        elif isinstance(op, accel.ViewOp):
            root[op.output] = root.get(op.source, op.source)
        elif isinstance(op, accel.InputOp | accel.LayerOp | SideOp | accel.FusedOp):
            at = op.layers[-1] if isinstance(op, accel.FusedOp) else op
            size = pm.align_up(accel.stored_nbytes(at), align)
            start = (-1 if isinstance(op, accel.InputOp)
                     else position[op.source.owner] if isinstance(op, SideOp) else i)
            buffers[op.output] = pm.Buffer(op.output, size, start, i)
            placed[op.output] = at
    for op in ops:
        for v in op.operands:
            b = buffers.get(root.get(v, v))
            if b is not None:
                b.end = max(b.end, len(ops) if isinstance(op, func.ReturnOp) else position[op])
    base = pm.align_up(base, align)
    span = pm.assign_offsets(buffers.values())
    for v, b in buffers.items():
        placed[v].properties["addr"] = accel.addr_attr(base + b.offset)
    if pm.PEAK_ATTR in fn.attributes:
        fn.attributes[pm.PEAK_ATTR] = IntegerAttr(span, i64)
    return span


SHORT = {k.split(".", 1)[1]: k for k in ep.KINDS}
"""The `only` option's names: a kind without its dialect (`add` for `nn.add`, `dcast`)."""


@dataclass(frozen=True)
class FuseEpiloguePass(ModulePass):
    """Fuse bias/residual adds, activations, batchnorm, quant casts into the layer before.

    Runs on the lowered `accel` program (after `lower-to-accel`; the simulator's
    default lowering runs it). A conv2d/matmul/linear layer whose result has one use,
    by a point-wise layer, takes it into its `epilogue` (and the next, while each
    result has one use); the vector unit applies it to each output tile on its way
    out, so the intermediate is never stored and re-read. A vector-unit layer
    (layernorm, softmax, batchnorm, a point-wise op or cast) does the same: the unit
    chains the ops on its tile (`%n = layernorm` then `qcast %n` becomes one
    `"nn.layernorm"` layer with `epilogue [{kind = "quant.qcast", ...}]`).

        // before
        %c = accel.layer "conv2" "nn.conv2d"(%x, %w, %b) at 8192 on "pe" tiles <...>
               params {pads = array<i64: 1, 1, 1, 1>} : (...) -> tensor<1x64x56x56xf32>
        %y = accel.layer "add_3" "nn.add"(%c, %skip) at 811008 on "vector" tiles <...>
               params {act = "relu"} : (...) -> tensor<1x64x56x56xf32>
        // after
        %y = accel.layer "conv2" "nn.conv2d"(%x, %w, %b, %skip) at 8192 on "pe"
               tiles <...> params {pads = array<i64: 1, 1, 1, 1>}
               epilogue [{in = tensor<1x64x56x56xf32>, kind = "nn.add", label = "add_3",
                          operands = array<i64: -1, 0>, out = tensor<1x64x56x56xf32>,
                          params = {act = "relu"}}] : (...) -> tensor<1x64x56x56xf32>

    Softmax and layernorm join when the layer's tiles hold their rows whole; a
    transpose after the chain (through a view) becomes the epilogue's last entry, a
    layout the output path stores through; a chain value with two uses stores its cast
    as a side output (`accel.side`). Does not fuse a result with another use, a
    non-point-wise consumer, a consumer that grows the shape, per-axis quantized casts,
    or through other views (see passes/fuse_epilogue.py). Results are bit-identical to
    the unfused program. Activations are placed again afterwards (`align`: the cache
    line).
    """

    name = "fuse-epilogue"

    align: int = 64
    """Byte alignment of the re-placed activations (the machine's cache line)."""
    only: tuple[str, ...] = ()
    """Point-wise kinds to fuse, without their dialect: `only=add,relu,dcast` (default: all)."""
    layouts: bool = True
    """Fold a transpose after the chain into the output path (`layouts=false`: keep it)."""
    sides: bool = True
    """Store a cast of a two-use chain value as a side output (`sides=false`: keep it)."""

    def __post_init__(self) -> None:
        unknown = [k for k in self.only if k not in SHORT]
        if unknown:
            raise PassError(f"option 'only' expects kinds from {sorted(SHORT)}, "
                            f"got '{unknown[0]}'")
        if self.align < 1 or self.align & (self.align - 1):
            raise PassError(f"fuse-epilogue expects align to be a power of two, "
                            f"got {self.align}")

    def apply(self, ctx: Context, module: ModuleOp) -> None:
        only = frozenset(SHORT[k] for k in self.only) if self.only else ep.KINDS
        for fn in lowered_functions(module, "fuse-epilogue"):
            group = next((op for op in fn.body.blocks[0].ops if isinstance(op, accel.FusedOp)),
                         None)
            if group is not None:  # its chains are top-level layers: a group's are not seen
                raise PassError(f"fuse-epilogue runs before fuse-layers (found the fused group "
                                f"'{group.label.data}')")
            fuse_function(fn, self.align, only, self.layouts, self.sides)


__all__ = ["FuseEpiloguePass", "fuse_function", "replan"]
