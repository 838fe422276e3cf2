"""`tile`: choose tile sizes and a loop order for every layer of the graph.

Annotates each nn op that becomes an `accel.layer` (everything but constants and
reshape/flatten views) with its symbolic loop nest; `lower-to-accel` copies it onto
the layer. Nothing is unrolled: the nest stays `extent step tile` per loop.

    %y = nn.conv2d %x, %w {pads = array<i64: 1, 1, 1, 1>} : (...) -> tensor<1x64x56x56xf32>
becomes
    %y = nn.conv2d %x, %w {pads = array<i64: 1, 1, 1, 1>,
           accel.nest = #accel.nest<n = 1, g = 1, f = 64 step 16, oh = 56 step 28, ow = 56,
                                    c = 64 step 4>}
           : (...) -> tensor<1x64x56x56xf32>

Where the sizes come from, first match wins:
1. the op's own attributes `accel.tile = {f = 16 : i64, ...}` and `accel.order = "f,oh,ow,c"`;
2. the `layers` option, per layer label: `layers="conv_0:f=16,oh=8;fc:n=256"`;
3. the `sizes` / `order` options for every op that has those loops: `sizes="f=16,oh=14"`;
4. for every loop not fixed above, the mapping search `search=balanced` (the default;
   passes/tile_search.py, docs/tiling.md), whose incumbent is the halving rule that
   `search=none` keeps (and non-PE layers get) — start from the whole layer and
   halve the loop whose halving costs least (estimated DRAM traffic of the loop
   order + a per-step overhead) until one step's working set — operand slices +
   result slice, double-buffered — fits the cache of `machine`. Several loop orders
   (output-, input- and weight-stationary) are scored; the cheapest wins.

A size that does not divide its extent leaves a smaller remainder tile (handled by
the executor). A layer none of whose tiles fits the cache double-buffered takes the
cheapest tile that fits once, else its smallest tile (every loop 1), and gets an
`accel.warning` (the report shows it). Loop names per op kind are in `accel.layer_space`. The pass
does not change the computation; it creates no ops. The halving rule and its analytic
cost live in passes/tile_rule.py (its names are importable from here too).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    IntegerAttr,
    ModuleOp,
    NameLoc,
    StringAttr,
)
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import VerifyException

from irflow.diagnostics import PassError
from irflow.dialects import accel, nn
from irflow.passes import plan_memory as pm
from irflow.passes.tile_rule import (
    PE_ORDERS,
    PE_ROUNDED,
    STEP_OVERHEAD_BYTES,
    Tiling,
    candidate_sizes,
    choose_tiling,
    elem_bytes,
    traffic,
    working_set,
)

NEST_ATTR = "accel.nest"
TILE_ATTR = "accel.tile"
ORDER_ATTR = "accel.order"
WARNING_ATTR = "accel.warning"


# --------------------------------------------------------------------------------------
# Which ops are layers, and their names


def is_layer(op: Operation) -> bool:
    """An nn op or `quant` cast that becomes one `accel.layer` (constants, views and
    splits do not)."""
    if op.name in accel.QUANT_LAYERS:
        return True
    return (op.name.startswith("nn.") and not isinstance(op, nn.ConstantOp)
            and not accel.is_view(op) and not isinstance(op, nn.SplitOp))  # type: ignore[arg-type]


def _weight_layer_name(op: Operation) -> str | None:
    """`layer1.0.conv1` for an op whose weight is `#nn.weight<"layer1.0.conv1.weight...">`
    (the model's own layer name, as the DSL and torchvision-style ONNX name weights)."""
    for operand in op.operands:
        const = nn.defining_constant(operand)
        if const is not None and isinstance(const.value, nn.WeightAttr):
            prefix, sep, _ = const.value.key.rpartition(".weight")
            if sep and prefix:
                return prefix
    return None


def layer_labels(fn: func.FuncOp) -> dict[Operation, str]:
    """A unique readable label per layer op: its location name (ONNX node), the layer name
    its weight carries (`layer1.0.conv1`), or `<kind>_<i>`."""
    labels: dict[Operation, str] = {}
    counts: dict[str, int] = {}
    used: set[str] = set()
    for op in fn.body.walk():
        if not (op.name.startswith("nn.") or op.name in accel.QUANT_LAYERS) or isinstance(
                op, nn.ConstantOp):
            continue
        short = op.name.split(".", 1)[1]
        loc = op.location
        named = _weight_layer_name(op)
        if isinstance(loc, NameLoc) and loc.desc.data and loc.desc.data not in used:
            label = loc.desc.data
        elif named is not None and named not in used:
            label = named
        else:
            while True:
                i = counts.get(short, 0)
                counts[short] = i + 1
                label = f"{short}_{i}"
                if label not in used:
                    break
        used.add(label)
        labels[op] = label
    return labels


# --------------------------------------------------------------------------------------
# Options


# Every loop name of `accel.layer_space`: conv/pool/matmul loops, `d<i>` of elementwise ops.
LOOP_NAME = re.compile(r"n|g|f|od|oh|ow|c|k|m|b|d\d+")


def parse_sizes(text: str, where: str) -> dict[str, int]:
    """`"f=16,oh=14"` -> {"f": 16, "oh": 14}."""
    out: dict[str, int] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, eq, value = item.partition("=")
        if not eq or not value.strip().lstrip("-").isdigit():
            raise PassError(f"tile: {where} expects 'loop=size' items, got '{item}'")
        size = int(value)
        if size < 1:
            raise PassError(f"tile: {where} expects sizes >= 1, got {name.strip()}={size}")
        out[name.strip()] = size
    return out


def parse_layers(text: str) -> dict[str, dict[str, int]]:
    """`"conv_0:f=16,oh=8;fc:n=256"` -> per-label sizes."""
    out: dict[str, dict[str, int]] = {}
    for item in filter(None, (t.strip() for t in text.split(";"))):
        label, colon, sizes = item.partition(":")
        if not colon:
            raise PassError(f"tile: layers expects 'label:loop=size,...' items, got '{item}'")
        out[label.strip()] = parse_sizes(sizes, f"layers entry '{label.strip()}'")
    return out


def _op_overrides(op: Operation, space: accel.Space) -> tuple[dict[str, int], list[str] | None]:
    sizes: dict[str, int] = {}
    attr = op.attributes.get(TILE_ATTR)
    if attr is not None:
        if not isinstance(attr, DictionaryAttr):
            raise PassError(f"{TILE_ATTR} expects a dictionary {{loop = size}}, got {attr}", op)
        for k, v in attr.data.items():
            if not isinstance(v, IntegerAttr) or v.value.data < 1:
                raise PassError(f"{TILE_ATTR} expects integer sizes >= 1, got {k} = {v}", op)
            sizes[k] = v.value.data
        _check_dims(sizes, space, op, TILE_ATTR)
    order = None
    oattr = op.attributes.get(ORDER_ATTR)
    if oattr is not None:
        if isinstance(oattr, StringAttr):
            order = [s.strip() for s in oattr.data.split(",") if s.strip()]
        elif isinstance(oattr, ArrayAttr):
            order = [s.data for s in oattr.data]  # type: ignore[union-attr]
        else:
            raise PassError(f"{ORDER_ATTR} expects \"loop,loop,...\", got {oattr}", op)
        _check_dims(dict.fromkeys(order, 1), space, op, ORDER_ATTR)
    return sizes, order


def _check_dims(names: Mapping[str, int], space: accel.Space, op: Operation, what: str) -> None:
    unknown = [d for d in names if d not in space.extents]
    if unknown:
        raise PassError(
            f"{what} on {op.name} expects loops from {list(space.dims)}, got {unknown}", op)


def full_order(space: accel.Space, order: Sequence[str] | None) -> tuple[str, ...] | None:
    """`order` restricted to the space's loops, the others appended in canonical order."""
    if not order:
        return None
    named = [d for d in order if d in space.extents]
    return tuple(named + [d for d in space.dims if d not in named])


def cache_of(machine: str, cache_bytes: int = 0, line_bytes: int = 0) -> tuple[int, int]:
    """(capacity, line size) in bytes of the cache of a machine preset or TOML file;
    non-zero arguments override the machine's values."""
    if cache_bytes and line_bytes:
        return cache_bytes, line_bytes
    # The machine description lives with the simulator; this lazy import is the one
    # place a pass reads it (a pass option names the target, as MLIR's target triple).
    from irflow.backends.sim.machine import load_machine

    cache = load_machine(machine or None).cache
    return cache_bytes or int(cache.size_bytes), line_bytes or int(cache.line_bytes)


def tile_op(op: Operation, space: accel.Space, cache_bytes: int,
            sizes: Mapping[str, int] | None = None, order: Sequence[str] | None = None,
            layer: Mapping[str, int] | None = None, line_bytes: int = 64,
            sparse: pm.SparseSupport | None = None) -> Tiling:
    """The tiling of one op: its own attributes, then per-layer, then global options.
    With `sparse`, a weight stored compressed counts at its average stored bytes per
    element."""
    fixed, order, itemsizes = tile_request(op, space, cache_bytes, sizes, order, layer,
                                           sparse)
    return choose_tiling(space, itemsizes, cache_bytes, fixed, order, line_bytes)


def tile_request(op: Operation, space: accel.Space, cache_bytes: int,
                 sizes: Mapping[str, int] | None = None, order: Sequence[str] | None = None,
                 layer: Mapping[str, int] | None = None,
                 sparse: pm.SparseSupport | None = None, label: str = ""
                 ) -> tuple[dict[str, int], tuple[str, ...] | None, list[float]]:
    """What the user fixed for one op (sizes, full loop order) and its operands' and
    result's bytes per element. A size fixed on this layer (its attribute or `layers`
    entry) larger than the loop, or whose working set cannot fit the cache with every
    other loop at 1, is an error naming the layer, the loop and the limit."""
    own_sizes, own_order = _op_overrides(op, space)
    if layer:
        _check_dims(layer, space, op, "tile{layers}")
    fixed = {d: s for d, s in (sizes or {}).items() if d in space.extents}
    fixed.update(layer or {})
    fixed.update(own_sizes)
    itemsizes = [elem_bytes(v.type) for v in (*op.operands, op.results[0])]
    if sparse is not None:
        for i, v in enumerate(op.operands):
            stored = (pm.weight_storage(v.owner, sparse)
                      if isinstance(v.owner, nn.ConstantOp) else None)
            if stored is not None:
                itemsizes[i] = stored[1] / 8 / max(1, math.prod(nn.shape_of(v)))
    _check_fixed({**(layer or {}), **own_sizes}, space, itemsizes, cache_bytes,
                 label or op.name, op)
    return fixed, full_order(space, own_order or order), itemsizes


def _check_fixed(own: Mapping[str, int], space: accel.Space, itemsizes: Sequence[float],
                 cache_bytes: int, label: str, op: Operation) -> None:
    for d, s in own.items():
        if s > space.extents[d]:
            raise PassError(f"tile: layer '{label}': loop {d} = {s} exceeds the loop's "
                            f"extent {space.extents[d]}", op)
    if not own:
        return
    least = {d: own.get(d, 1) for d in space.dims}
    need = math.ceil(2 * working_set(space, least, itemsizes))  # type: ignore[arg-type]
    if need > cache_bytes and 2 * working_set(space, dict.fromkeys(space.dims, 1),
                                              itemsizes) <= cache_bytes:  # type: ignore[arg-type]
        d = max(own, key=lambda k: own[k] / max(1, space.extents[k]))
        raise PassError(f"tile: layer '{label}': loop {d} = {own[d]} needs {need} bytes "
                        f"double-buffered (with every other loop at 1), the cache holds "
                        f"{cache_bytes}", op)


@dataclass(frozen=True)
class TilePass(ModulePass):
    """Choose tile sizes and loop order per layer (see the module docstring)."""

    name = "tile"

    machine: str = "default"
    sizes: str = ""
    order: str = ""
    layers: str = ""
    cache_bytes: int = 0  # override the machine's cache capacity (bytes); 0 = the machine's
    line_bytes: int = 0  # override the machine's cache line (bytes); 0 = the machine's
    # override the machine's sparse-weight storage (as plan-memory's options of the same names)
    structured: str = ""
    unstructured_format: str = ""
    # the mapping search (passes/tile_search.py; `tile_search.DEFAULT`, balanced); none:
    # the halving rule above
    search: str = "balanced"
    explain: str = ""  # a layer label: print its top candidates (stderr)
    # candidates within this fraction of the best are tied (0: strict); unset: 5 % for
    # balanced (the rule's tiling is replaced only for more), 1 % for the others
    tie: float | None = None

    def apply(self, ctx: Context, module: ModuleOp) -> None:
        self.tile_module(module)

    def tile_module(self, module: ModuleOp, machine: object | None = None) -> None:
        """Tile every layer of `module`; `machine` (a `Machine`): search for that machine
        instead of the `machine` option's (the simulator's `lower` passes its own)."""
        from irflow.passes import tile_explain

        if machine is not None:
            line = int(machine.cache.line_bytes)  # type: ignore[attr-defined]
            cache = self.cache_bytes or int(machine.cache.size_bytes)  # type: ignore[attr-defined]
            line = self.line_bytes or line
        else:
            cache, line = cache_of(self.machine, self.cache_bytes, self.line_bytes)
        request = tile_explain.current() if not self.explain else None
        searcher = self._searcher(cache, line, request.layer if request else "", machine)
        sparse = pm.SparseSupport.of(self.machine, self.structured, self.unstructured_format)
        sizes = parse_sizes(self.sizes, "sizes")
        order = [s.strip() for s in self.order.split(",") if s.strip()] or None
        per_layer = parse_layers(self.layers)
        seen: set[str] = set()
        loops: set[str] = set()  # every loop name of every layer, to check the options
        for fn in module.ops:
            if not isinstance(fn, func.FuncOp):
                continue
            if searcher is not None:
                searcher.begin()  # a fresh prefetch window per function
            labels = layer_labels(fn)
            for op, label in labels.items():
                if not is_layer(op):
                    continue
                try:
                    space = accel.space_of_op(op)  # type: ignore[arg-type]
                except VerifyException as e:
                    raise PassError(f"tile: {e}", op) from None
                seen.add(label)
                loops.update(space.dims)
                fixed, op_order, itemsizes = tile_request(
                    op, space, cache, sizes, order, per_layer.get(label), sparse, label)
                tiling = choose_tiling(space, itemsizes, cache, fixed, op_order, line)
                if searcher is not None:
                    tiling = searcher.layer(op, label, space, itemsizes, fixed, op_order,
                                            tiling)
                op.attributes[NEST_ATTR] = tiling.nest(space)
                if tiling.warning:
                    op.attributes[WARNING_ATTR] = StringAttr(tiling.warning)
                elif WARNING_ATTR in op.attributes:
                    del op.attributes[WARNING_ATTR]
        if self.explain and self.explain not in seen:
            raise PassError(f"tile: explain names unknown layer '{self.explain}'")
        if request is not None:  # `--explain-tiling`: an unknown name fails here, at once
            request.seen(seen)
            request.check()
        missing = sorted(set(per_layer) - seen)
        if missing:
            raise PassError(f"tile: layers names unknown layer(s) {missing}")
        for option, names in (("sizes", sizes), ("order", order or ())):
            # a loop some other model's layers have (`d3` of a 4-D add) is fine; a name no
            # layer kind has is a typo
            unknown = sorted(n for n in set(names) - loops if not LOOP_NAME.fullmatch(n))
            if unknown:
                raise PassError(f"tile: {option} names loop(s) {unknown} that no layer has "
                                f"(this model's loops: {', '.join(sorted(loops))})")

    def _searcher(self, cache: int, line: int, requested: str = "",
                  machine: object | None = None) -> _Searcher | None:
        """The per-layer search of `search=...` (None for the halving rule).
        `requested`: the layer `--explain-tiling` asks for (with `search=none`, that
        layer is scored by the default search to explain it; the rule's tiling stays)."""
        from irflow.passes import tile_search as ts

        if self.search not in ts.OBJECTIVES:
            raise PassError(f"tile: search expects one of {', '.join(ts.OBJECTIVES)}, "
                            f"got '{self.search}'")
        if self.tie is not None and not 0 <= self.tie < 1:
            raise PassError(f"tile: tie expects a fraction in [0, 1), got {self.tie}")
        if self.search == "none":
            if self.explain:
                raise PassError("tile: explain needs a search (search=latency|energy|edp|balanced)")
            if not requested:
                return None
        import dataclasses

        from irflow.backends.sim.machine import Machine, load_machine

        m = machine if isinstance(machine, Machine) else load_machine(self.machine or None)
        m = dataclasses.replace(m, cache=dataclasses.replace(
            m.cache, size_bytes=cache, line_bytes=line))
        objective = self.search if self.search != "none" else ts.DEFAULT
        tie = ts.default_tie(objective) if self.tie is None else self.tie
        return _Searcher(m, objective, tie, self.explain or requested,
                         keep_rule=self.search == "none")


def ts_memo(machine: object) -> dict:
    """The scores memo of `machine` (`tile_search.memo_for`)."""
    from irflow.passes import tile_search as ts

    return ts.memo_for(machine)  # type: ignore[arg-type]


class _Searcher:
    """The search of one `tile` run, layer by layer in program order: identical layers
    are scored once (`tile_search.score_layer`), and each candidate's cycles are scored
    net of what the layers before leave of the DRAM channel for its first weight fetch
    (`tile_window.Window`). `keep_rule`: `search=none` with `--explain-tiling` (score,
    explain, keep the rule's tiling)."""

    def __init__(self, machine: object, objective: str, tie: float, explain: str,
                 keep_rule: bool) -> None:
        from irflow.passes.tile_window import Window

        self.machine, self.objective, self.tie = machine, objective, tie
        self.explain, self.keep_rule = explain, keep_rule
        self.memo = ts_memo(machine)
        self.window = Window(machine)  # type: ignore[arg-type]

    def begin(self) -> None:
        from irflow.passes.tile_window import Window

        self.window = Window(self.machine)  # type: ignore[arg-type]

    def layer(self, op: Operation, label: str, space: accel.Space, itemsizes: list[float],
              fixed: dict[str, int], order: tuple[str, ...] | None, rule: Tiling) -> Tiling:
        import sys

        from irflow.passes import tile_search as ts
        from irflow.passes.tile_window import constant_operands

        weights = constant_operands(op)
        choice = ts.search_layer(space, itemsizes, self.machine, ts.pe_dtype(op),  # type: ignore[arg-type]
                                 self.objective, fixed, order, rule, tie=self.tie,
                                 weights=weights, credit=self.window.credit, memo=self.memo)
        if label == self.explain:
            print(ts.explain(label, choice, self.objective, tie=self.tie), file=sys.stderr)
            if self.keep_rule:
                print(f"  search=none: the rule's tiling is kept: order "
                      f"{','.join(rule.order)} / "
                      + ",".join(f"{d}={v}" for d, v in rule.sizes.items()),
                      file=sys.stderr)
        sc = choice.scores
        kept = choice.rule if self.keep_rule else choice.best
        if sc is None or kept is None:
            self._spend(space, itemsizes, rule, weights)
            return rule
        hidden = float(sc.hidden[kept]) if sc.hidden is not None else 0.0
        self.window.advance(float(sc.cycles[kept]) + hidden, float(sc.dram_bytes[kept]),
                            hidden)
        return rule if self.keep_rule else choice.tiling

    def _spend(self, space: accel.Space, itemsizes: list[float], rule: Tiling,
               weights: list[bool]) -> None:
        from irflow.passes.tile_window import first_weight_cycles

        if any(weights) and space.dims:
            sizes = np.array([[rule.sizes[d] for d in space.dims]])
            self.window.spend(float(first_weight_cycles(space, itemsizes, self.machine,  # type: ignore[arg-type]
                                                        sizes, weights)[0]))


__all__ = ["NEST_ATTR", "TILE_ATTR", "ORDER_ATTR", "WARNING_ATTR", "LOOP_NAME", "TilePass",
           "is_layer", "layer_labels", "parse_sizes", "parse_layers", "full_order",
           "cache_of", "tile_op", "tile_request", "ts_memo",
           # the halving rule (passes/tile_rule.py), importable from here as before
           "STEP_OVERHEAD_BYTES", "PE_ORDERS", "PE_ROUNDED", "Tiling", "elem_bytes",
           "working_set", "traffic", "candidate_sizes", "choose_tiling"]
