"""`lower-to-accel`: rewrite the nn graph into the `accel` program the simulator runs.

Per op, in program order:
- `nn.constant` -> `accel.weight` at its planned address (weight region);
- `nn.reshape` / `nn.flatten`, and a transpose that only moves size-1 axes -> `accel.view`
  (a dense row-major buffer reshapes in place);
- `nn.split` -> one `accel.layer` copy (`nn.slice`) per piece;
- `nn.topk` -> one vector layer per result (`<label>.values`, `<label>.indices`: params
  `result = 0 / 1`, `dialects/accel_vector.py`);
- every other nn op -> one `accel.layer` carrying the op's kind and properties, the
  address of its result, its compute unit and its tile loop nest (from `tile`, or the
  default rule for `machine` when the op was not tiled); conv2d/matmul/linear run on
  the PE array, elementwise/activations/math/logic/batchnorm/pooling/softmax/layernorm/
  reductions/scans on the vector unit, transpose/slice/concat/gather are DMA copies (the
  n-D spatial and data-movement kinds — conv_transpose, einsum, pool, resize, pad, ...:
  their spaces in `dialects/accel_spatial.py`);
- `quant.qcast` / `quant.dcast` / `quant.scast` / `irq.requantize` -> a vector-unit
  `accel.layer` of that kind (a per-axis cast keeps its quantized axis whole per tile);
  nn ops on `!quant.uniform` tensors lower like float ones (the types say the rest);
- function arguments -> `accel.input` at their planned addresses.

A compressed sparse weight (`plan-memory` decided, per the machine) keeps its
`accel.format` and `accel.stored_bits` on the `accel.weight`.

Addresses come from `plan-memory` (run first; if it was not, the plan is made here).

    %w = nn.constant #nn.weight<"fc.weight"> : tensor<10x64xf32>
    %y = nn.linear %x, %w : (tensor<1x64xf32>, tensor<10x64xf32>) -> tensor<1x10xf32>
becomes
    %x1 = accel.input %x at 2560 : tensor<1x64xf32>
    %w = accel.weight #nn.weight<"fc.weight"> at 0 : tensor<10x64xf32>
    %y = accel.layer "linear_0" "nn.linear"(%x1, %w) at 2816 on "pe"
           tiles <b = 1, m = 1, n = 10, k = 64> params {} : (...) -> tensor<1x10xf32>

An op with no accel form (another dialect, an unregistered op) raises `LoweringError`
naming it. The pass does not fuse, reorder or change numerics.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    DenseArrayBase,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    TensorType,
    i64,
)
from xdsl.ir import Attribute, Operation
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.utils.exceptions import VerifyException

from irflow.diagnostics import LoweringError, PassError
from irflow.dialects import accel, accel_vector, nn
from irflow.passes import plan_memory as pm
from irflow.passes.tile import (
    NEST_ATTR,
    WARNING_ATTR,
    cache_of,
    choose_tiling,
    elem_bytes,
    is_layer,
    layer_labels,
    tile_op,
)


def op_name(op: Operation) -> str:
    """The op's name as written (an unregistered op's own name, not its class's)."""
    name = getattr(op, "op_name", None)
    return name.data if isinstance(name, StringAttr) else op.name


def _addrs(op: Operation) -> list[int]:
    attr = op.attributes.get(pm.ADDR_ATTR)
    if not isinstance(attr, DenseArrayBase):
        raise LoweringError(f"{op.name} has no {pm.ADDR_ATTR} (run plan-memory first)", op)
    return [int(v) for v in attr.get_values()]


def _nest(op: Operation, space: accel.Space,
          cache: tuple[int, int]) -> tuple[accel.NestAttr, list[str]]:
    nest = op.attributes.get(NEST_ATTR)
    notes = []
    warning = op.attributes.get(WARNING_ATTR)
    if warning is not None:
        notes.append(warning.data)  # type: ignore[attr-defined]
    if nest is None:
        tiling = tile_op(op, space, cache[0], line_bytes=cache[1])
        return tiling.nest(space), notes + ([tiling.warning] if tiling.warning else [])
    if not isinstance(nest, accel.NestAttr):
        raise LoweringError(f"{NEST_ATTR} expects #accel.nest<...>, got {nest}", op)
    if sorted(nest.order) != sorted(space.dims) or any(
            space.extents[d] != e for d, e in nest.extent.items()):
        raise LoweringError(
            f"{NEST_ATTR} on {op.name} expects loops "
            f"{ {d: space.extents[d] for d in space.dims} }, got {nest.extent}", op)
    return nest, notes


def lower_function(fn: func.FuncOp, cache: tuple[int, int],
                   sparse: pm.SparseSupport | None = None) -> None:
    """Lower one nn-level function in place (module docstring); `sparse` is the
    machine's sparse-storage support if memory is planned here."""
    block = fn.body.blocks[0]
    if pm.ARG_ADDRS_ATTR not in fn.attributes:
        pm.annotate(fn, pm.plan(fn, cache[1], sparse))
    labels = layer_labels(fn)
    rewriter = Rewriter()
    arg_addrs = [int(v) for v in fn.attributes[pm.ARG_ADDRS_ATTR].get_values()]  # type: ignore[attr-defined]
    first = block.first_op
    for arg, addr in zip(block.args, arg_addrs):
        placed = accel.InputOp(arg, addr)
        if first is None:
            block.add_op(placed)
        else:
            rewriter.insert_op(placed, InsertPoint.before(first))
        if arg.name_hint:
            placed.output.name_hint = arg.name_hint
        arg.replace_uses_with_if(placed.output, lambda use, p=placed: use.operation is not p)
    for op in list(block.ops):
        if isinstance(op, accel.InputOp | func.ReturnOp):
            continue
        new = _lower_op(op, labels, cache)
        for n in new:
            n.location = op.location
            rewriter.insert_op(n, InsertPoint.before(op))
        for old, n in zip(op.results, new):
            n.results[0].name_hint = old.name_hint
            old.replace_all_uses_with(n.results[0])
        rewriter.erase_op(op)
    for key in (pm.ARG_ADDRS_ATTR,):
        fn.attributes.pop(key, None)


def _lower_op(op: Operation, labels: dict[Operation, str],
              cache: tuple[int, int]) -> list[Operation]:
    if isinstance(op, nn.ConstantOp):
        ty = op.output.type
        assert isinstance(ty, TensorType)
        placed = accel.WeightOp(op.value, _addrs(op)[0], ty)
        for k, v in op.attributes.items():  # e.g. nn.sparsity, which the cost model reads
            if k != pm.ADDR_ATTR:
                placed.attributes[k] = v
        return [placed]
    if op.name.startswith("nn.") and accel.is_view(op):  # type: ignore[arg-type]
        ty = op.results[0].type
        assert isinstance(ty, TensorType)
        return [accel.ViewOp(op.operands[0], ty)]
    if isinstance(op, nn.SplitOp):
        return _lower_split(op, labels[op], cache)
    if not is_layer(op):
        raise LoweringError(f"cannot lower '{op_name(op)}' to accel: no accel form for this op",
                            op)
    try:
        space = accel.space_of_op(op)  # type: ignore[arg-type]
    except VerifyException as e:
        raise LoweringError(f"cannot lower '{op.name}' to accel: {e}", op) from None
    nest, notes = _nest(op, space, cache)
    if op.name in accel_vector.PER_RESULT:  # nn.topk: one layer per result, same nest
        names = [n for n, _ in type(op).get_irdl_definition().results]  # type: ignore[attr-defined]
        return [accel.LayerOp(f"{labels[op]}.{name}", op.name, op.operands, r.type, addr,
                              space.unit, nest, {**op.properties,
                              accel_vector.RESULT_PARAM: IntegerAttr(i, i64)}, notes)
                for i, (name, r, addr) in enumerate(zip(names, op.results, _addrs(op)))]
    ty = op.results[0].type
    assert isinstance(ty, TensorType)
    return [accel.LayerOp(labels[op], op.name, op.operands, ty, _addrs(op)[0], space.unit,
                          nest, dict(op.properties), notes)]


def _lower_split(op: nn.SplitOp, label: str, cache: tuple[int, int]) -> list[Operation]:
    axis = op.axis.value.data % len(nn.shape_of(op.input))
    addrs = _addrs(op)
    out: list[Operation] = []
    start = 0
    for i, (res, size) in enumerate(zip(op.results, op.sizes.get_values())):
        params: dict[str, Attribute] = {
            "starts": nn.int_array([start]), "ends": nn.int_array([start + size]),
            "axes": nn.int_array([axis]),
        }
        start += size
        shape = nn.shape_of(res)
        space = accel.layer_space("nn.slice", [nn.shape_of(op.input)], shape, params)
        itemsizes = [elem_bytes(op.input.type), elem_bytes(res.type)]
        tiling = choose_tiling(space, itemsizes, cache[0], line_bytes=cache[1])
        ty = res.type
        assert isinstance(ty, TensorType)
        out.append(accel.LayerOp(f"{label}.{i}", "nn.slice", [op.input], ty, addrs[i], "dma",
                                 tiling.nest(space), params,
                                 [tiling.warning] if tiling.warning else []))
    return out


def check_lowered(module: ModuleOp) -> None:
    """Raise `LoweringError` naming the first op that is not accel-level."""
    for op in module.walk():
        if isinstance(op, ModuleOp | func.FuncOp | func.ReturnOp) or op.name.startswith("accel."):
            continue
        raise LoweringError(f"'{op_name(op)}' is not lowered to accel (run lower-to-accel)", op)


def lowered_functions(module: ModuleOp, pass_name: str) -> list[func.FuncOp]:
    """The functions of a lowered module, for a pass that runs on the accel program;
    `PassError` naming the first op of a function still at the nn level."""
    out = []
    for fn in module.ops:
        if not isinstance(fn, func.FuncOp) or not fn.body.blocks:
            continue
        stray = next((op for op in fn.body.blocks[0].ops
                      if op.name.startswith(("nn.", "quant.", "irq."))), None)
        if stray is not None:
            raise PassError(f"{pass_name} runs on the accel program: run it after "
                            f"lower-to-accel (found '{stray.name}')")
        out.append(fn)
    return out


@dataclass(frozen=True)
class LowerToAccelPass(ModulePass):
    """Lower nn to accel (see the module docstring)."""

    name = "lower-to-accel"

    machine: str = "default"  # cache size for layers the `tile` pass did not annotate
    cache_bytes: int = 0  # override the machine's cache capacity (bytes); 0 = the machine's
    line_bytes: int = 0  # override the machine's cache line (bytes); 0 = the machine's

    def apply(self, ctx: Context, module: ModuleOp) -> None:
        cache = cache_of(self.machine, self.cache_bytes, self.line_bytes)
        sparse = pm.SparseSupport.of(self.machine)
        for fn in module.ops:
            if isinstance(fn, func.FuncOp) and fn.body.blocks:
                lower_function(fn, cache, sparse)
        check_lowered(module)

