"""`quantize`: post-training quantization to integer nn ops (int8/int4 weights, int8 activations).

Uses the activation ranges `calibrate` recorded (`quant.range`) and the weights'
own values. Contractions (conv2d, linear, matmul) become the same nn ops on
`!quant.uniform` tensors, executed in integers (`irflow.intmath`); integer values
flow through the ops that have integer kernels (add, relu/relu6/clip, max/avg/global
pooling, reshape/flatten/transpose/slice/split); `quant.qcast` /
`quant.dcast` appear only at the graph edges and around ops that stay float
(softmax, layernorm, gelu, sigmoid, …); concat requantizes its inputs to its own
calibrated parameters (`irq.requantize`).

Before (after `calibrate`):

    %y = nn.conv2d %x, %w, %b {act = "relu", quant.range = array<f64: 0.0, 3.5>} : (...)
    %z = nn.linear %f, %w2, %b2 {quant.range = array<f64: -12.8, 12.9>} : (...) -> tensor<1x10xf32>

After `quantize{bits=8 granularity=per-channel}` (per-axis scale lists shortened):

    %0 = quant.qcast %x : tensor<20x1x8x8xf32>
         to tensor<20x1x8x8x!quant.uniform<u8:f32, 0.003921568859368563>>
    %1 = nn.constant #nn.weight<"conv1.weight.q8">
         : tensor<16x1x3x3x!quant.uniform<i8<-127:127>:f32:0, {0.0158,...}>>
    %2 = nn.constant #nn.weight<"conv1.bias.q32">
         : tensor<16x!quant.uniform<i32:f32:0, {6.21e-05,...}>>
    %3 = nn.conv2d %0, %1, %2 {act = "relu", ...}
         : (...) -> tensor<20x16x8x8x!quant.uniform<u8:f32, 0.013852009549736977>>
    ...
    %11 = nn.linear %8, %9, %10 : (...) -> tensor<20x10x!quant.uniform<i32:f32:1, {...}>>
    %12 = quant.dcast %11 : tensor<20x10x!quant.uniform<i32:f32:1, {...}>>
          to tensor<20x10xf32>

Choices (see docs/quantization.md):
- weights: symmetric (zero point 0), narrow range (int8 [−127, 127], int4 [−7, 7]),
  per output channel or per tensor; scale = clip / qmax, clip = max |w| (`minmax`)
  (`weight-clip=minmax`, the default) or the clip minimizing the weights' squared
  error (`mse`: better weight SQNR, but on the digits models not better accuracy);
- activations: int8 per tensor; `symmetric=true` gives zero point 0 (u8 storage for
  non-negative tensors such as post-ReLU ones, i8 otherwise), `symmetric=false` an
  i8 zero point fitted to [min(lo, 0), max(hi, 0)]; fused relu/relu6 become clamps;
- a contraction whose result feeds only float ops (or the graph output) keeps its
  int32 accumulator (scale s_x · s_w) and is dequantized from it — no final int8
  rounding on the logits;
- bias: int32 at scale s_x · s_w; all scales are float32-representable;
- `weight-only=true`: weights stored quantized, dequantized in front of the float op
  (no calibration needed);
- per-layer overrides: `first-last-bits=8` (the first and last contraction keep
  8-bit weights), `config=file.json|toml` with `[layers."pattern"]` tables
  (`bits`, `act_bits`, `granularity`, `skip`), or the same inline:
  `layers="conv1:bits=4,act-bits=4;fc:bits=8"` — patterns matched (fnmatch) against
  layer names: the weight's name without `.weight` (e.g. `conv1`, `fc`);
- activation bits (`act-bits`, 8 or 4) are those of the tensors the PE array
  multiplies: a layer's `act_bits` sets the type of its *input* activation (traced
  back through max-pool, reshape, relu, ...), so `bits=4,act-bits=4` makes the layer an
  int4 x int4 contraction; a tensor feeding several layers takes the widest request.

What it does not do: run ops with non-integer fused activations (sigmoid, silu, …) in
integers (those stay float).

This module plans and rewrites; the per-layer settings (config files, the `layers`
option, layer names) are `quantize_config.py` and the scale formulas
`quantize_scales.py`, both importable from here as before.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, NameLoc, TensorType, f32
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.passes import ModulePass

from irflow import intmath
from irflow.diagnostics import PassError
from irflow.dialects import nn, quant
from irflow.dialects.quant import UniformQuantizedType
from irflow.graph import main_func
from irflow.passes.calibrate import RANGE_ATTR, recorded_range, value_label
from irflow.passes.quantize_config import (
    ACT_BITS,
    GRANULARITIES,
    LAYER_KEYS,
    WEIGHT_BITS,
    LayerSettings,
    check_bits,
    check_granularity,
    layer_name,
    load_layer_config,
    parse_layers,
)
from irflow.passes.quantize_scales import (
    WEIGHT_CLIPS,
    activation_type,
    weight_axis,
    weight_scales,
)
from irflow.weights import WeightStore, constant_value, weights_of

# Contractions: ops whose weight operand (index 1) is quantized with a per-axis scale on
# `weight_axis(op)`; the rest of the graph follows the sets below.
CONTRACTIONS: tuple[type[Operation], ...] = (nn.Conv2dOp, nn.LinearOp, nn.MatmulOp)
# Ops that move storage integers unchanged: the result takes the input's type.
TRANSPARENT: tuple[type[Operation], ...] = (
    nn.MaxPoolOp, nn.ReshapeOp, nn.FlattenOp, nn.TransposeOp, nn.SliceOp, nn.SplitOp,
    nn.ReluOp, nn.Relu6Op, nn.ClipOp,
)
# Ops with an integer kernel and their own calibrated output range.
REQUANTIZING: tuple[type[Operation], ...] = (nn.AddOp, nn.GlobalAvgPoolOp, nn.AvgPoolOp)


def unnamed(loc: Attribute) -> Attribute:
    """`loc` without an ONNX node's name: a cast placed before a layer points at its
    source line but must not take its name (layer labels come from location names)."""
    return loc.location if isinstance(loc, NameLoc) else loc


# --------------------------------------------------------------------------------------
# The pass


@dataclass(frozen=True)
class QuantizePass(ModulePass):
    """Quantize conv/linear/matmul to integer execution from calibrated ranges.

    Options: `bits` (weights: 4 or 8), `act-bits` (8), `granularity` (per-channel |
    per-tensor, for weights), `symmetric` (activations), `weight-only`, `method`
    (re-derive ranges from this process's calibration histograms with another method;
    default: the recorded `quant.range`), `weight-clip` (minmax | mse),
    `first-last-bits` (0 = no override), `config` (per-layer overrides file), `layers`
    (the same overrides inline, `"conv1:bits=4,act-bits=4;fc:bits=8"`; after `config`).
    """

    name = "quantize"

    bits: int = 8
    act_bits: int = 8
    granularity: str = "per-channel"
    symmetric: bool = True
    weight_only: bool = False
    method: str | None = None
    weight_clip: str = "minmax"
    first_last_bits: int = 0
    config: str | None = None
    layers: str = ""

    def __post_init__(self) -> None:
        check_bits(self.bits, "option bits")
        if self.act_bits not in ACT_BITS:
            raise PassError(f"option act-bits must be one of {list(ACT_BITS)}, "
                            f"got {self.act_bits}")
        check_granularity(self.granularity, "option granularity")
        if self.weight_clip not in WEIGHT_CLIPS:
            raise PassError(f"option weight-clip must be one of {list(WEIGHT_CLIPS)}, "
                            f"got '{self.weight_clip}'")
        if self.first_last_bits:
            check_bits(self.first_last_bits, "option first-last-bits")
        from irflow.passes.calibrate import METHODS

        if self.method is not None and self.method not in METHODS:
            raise PassError(f"option method must be one of {list(METHODS)}, "
                            f"got '{self.method}'")
        if self.config is not None:
            load_layer_config(self.config)
        parse_layers(self.layers)

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        _Quantizer(self, op).run()


@dataclass
class _Quantizer:
    options: QuantizePass
    module: ModuleOp
    store: WeightStore = field(init=False)
    layers: dict[str, dict[str, Any]] = field(init=False)
    qvalue: dict[SSAValue, SSAValue] = field(default_factory=dict)  # float value -> int
    fvalue: dict[SSAValue, SSAValue] = field(default_factory=dict)  # int value -> float
    range_of: Callable[[SSAValue], tuple[float, float] | None] = field(init=False)
    int_ops: set[Operation] = field(default_factory=set)
    act_bits: dict[SSAValue, int] = field(default_factory=dict)  # per-layer input requests

    def __post_init__(self) -> None:
        self.store = weights_of(self.module)
        self.layers = load_layer_config(self.options.config) if self.options.config else {}
        self.layers.update(parse_layers(self.options.layers))
        self.range_of = recorded_range
        if self.options.method is not None:
            from irflow.passes.calibrate import calibration_of

            cal = calibration_of(self.module)
            if cal is None:
                raise PassError(
                    f"quantize: method={self.options.method} re-derives ranges from the "
                    "calibration histograms of this process; run `calibrate` in the same "
                    "pipeline (or drop `method` to use the recorded quant.range)"
                )
            method = self.options.method

            def from_hist(v: SSAValue) -> tuple[float, float] | None:
                return cal.range(v, method) if v in cal.histograms else None

            self.range_of = from_hist

    # ---- planning ---------------------------------------------------------------------

    def settings(self, op: Operation, first_last: set[Operation]) -> LayerSettings:
        o = self.options
        bits = o.first_last_bits if (o.first_last_bits and op in first_last) else o.bits
        s = LayerSettings(bits, o.granularity)
        name = layer_name(op)
        for pattern, entry in self.layers.items():
            if fnmatch.fnmatchcase(name, pattern):
                s = LayerSettings(entry.get("bits", s.bits),
                                  entry.get("granularity", s.granularity),
                                  entry.get("skip", s.skip),
                                  entry.get("act_bits", s.act_bits))
        return s

    def contraction_ok(self, op: Operation) -> bool:
        act = nn.fused_act(op)
        if act is not None and act not in intmath.INTEGER_ACTIVATIONS:
            return False  # e.g. a fused sigmoid: stays float
        if not all(_is_f32(v) for v in (*op.operands, *op.results)):
            return False
        return isinstance(op.operands[1].owner, nn.ConstantOp) or isinstance(op, nn.MatmulOp)

    def plan(self, block: Block) -> tuple[dict[Operation, str], dict[Operation, LayerSettings]]:
        """op -> "int" | "weight-only" | "float", and the settings of each contraction."""
        plan: dict[Operation, str] = {}
        settings: dict[Operation, LayerSettings] = {}
        contractions = [op for op in block.ops
                        if isinstance(op, CONTRACTIONS) and self.contraction_ok(op)]
        first_last = {contractions[0], contractions[-1]} if contractions else set()
        is_int: set[SSAValue] = set()
        for op in block.ops:
            kind = "float"
            if op in contractions:
                s = self.settings(op, first_last)
                settings[op] = s
                has_weight = isinstance(op.operands[1].owner, nn.ConstantOp)
                if s.skip:
                    kind = "float"
                elif self.options.weight_only:
                    kind = "weight-only" if has_weight else "float"
                else:
                    kind = "int"
            elif self.options.weight_only:
                kind = "float"
            elif (isinstance(op, REQUANTIZING) and _activation_operands(op)
                  and any(v in is_int for v in op.operands)):
                kind = "int" if self._pool_ok(op) else "float"
            elif isinstance(op, TRANSPARENT) and op.operands and op.operands[0] in is_int:
                kind = "int"
            elif (isinstance(op, nn.ConcatOp) and _activation_operands(op)
                  and any(v in is_int for v in op.operands)):
                kind = "int"
            plan[op] = kind
            if kind == "int":
                is_int.update(op.results)
        for op, s in settings.items():
            if plan[op] == "int":
                self._request_act_bits(op.operands[0], s.act_bits or self.options.act_bits)
        return plan, settings

    def _request_act_bits(self, value: SSAValue, bits: int) -> None:
        """A layer asks for `bits`-bit input: the value, and the values it passes through
        unchanged (storage-transparent producers), get the widest bits requested."""
        while True:
            self.act_bits[value] = max(self.act_bits.get(value, 0), bits)
            owner = value.owner
            if not (isinstance(owner, TRANSPARENT) and owner.operands):
                return
            value = owner.operands[0]

    @staticmethod
    def _pool_ok(op: Operation) -> bool:
        if isinstance(op, nn.AvgPoolOp):
            pool = nn.pool2d_params(op)
            return not any(pool.pads) and not pool.ceil_mode
        if isinstance(op, nn.AddOp):
            act = nn.fused_act(op)
            return act is None or act in intmath.INTEGER_ACTIVATIONS
        return True

    # ---- rewriting --------------------------------------------------------------------

    def run(self) -> None:
        f = main_func(self.module)
        block = f.body.blocks[0]
        plan, settings = self.plan(block)
        self.int_ops = {op for op, kind in plan.items() if kind == "int"}
        int_users = self._int_users(block, plan)
        for op in list(block.ops):
            kind = plan.get(op, "float")
            if kind == "int":
                self._rewrite_int(op, block, settings.get(op), int_users)
            elif kind == "weight-only":
                self._rewrite_weight_only(op, block, settings[op])
        # Drop the float ops replaced by integer ones (now without uses), latest first.
        for op in reversed(list(block.ops)):
            if plan.get(op) == "int" and all(not r.uses for r in op.results):
                block.erase_op(op)
        for op in reversed(list(block.ops)):
            if isinstance(op, nn.ConstantOp) and not op.results[0].uses:
                block.erase_op(op)

    def _int_users(self, block: Block, plan: dict[Operation, str]) -> set[SSAValue]:
        """Values read by at least one op that will run in integers."""
        out: set[SSAValue] = set()
        for op in block.ops:
            if plan.get(op) == "int":
                out.update(op.operands)
        return out

    def _range(self, value: SSAValue) -> tuple[float, float]:
        r = self.range_of(value)
        if r is None:
            raise PassError(
                f"quantize: no calibration statistics for {value_label(value)}; run "
                "`calibrate` first (e.g. -p 'calibrate,quantize' with --calib data.npz), "
                "or use weight-only=true"
            )
        return r

    def _act_type(self, value: SSAValue) -> UniformQuantizedType:
        lo, hi = self._range(value)
        bits = self.act_bits.get(value, self.options.act_bits)
        return activation_type(lo, hi, self.options.symmetric, bits)

    def _as_int(self, value: SSAValue, before: Operation, block: Block) -> SSAValue:
        """The integer version of a float activation (a shared `quant.qcast`)."""
        if value in self.qvalue:
            return self.qvalue[value]
        ty = value.type
        assert isinstance(ty, TensorType)
        q = quant.QuantizeOp(value, TensorType(self._act_type(value), ty.get_shape()))
        q.location = (value.owner.location if isinstance(value.owner, Operation)
                      else unnamed(before.location))
        block.insert_op_before(q, before)
        self.qvalue[value] = q.output
        return q.output

    @staticmethod
    def _requantized(value: SSAValue, qt: UniformQuantizedType, before: Operation,
                     block: Block) -> SSAValue:
        """`value` as type `qt` (a `irq.requantize` unless it already is)."""
        if nn.value_element_type(value) == qt:
            return value
        r = quant.RequantizeOp(value, TensorType(qt, nn.shape_of(value)))
        r.location = unnamed(before.location)
        block.insert_op_before(r, before)
        return r.output

    def _as_float(self, value: SSAValue, block: Block, after: Operation) -> SSAValue:
        ty = value.type
        assert isinstance(ty, TensorType)
        d = quant.DequantizeOp(value, TensorType(f32, ty.get_shape()))
        d.location = after.location
        block.insert_op_after(d, after)
        return d.output

    def _quantized_weight(self, op: Operation, s: LayerSettings, block: Block
                          ) -> tuple[SSAValue, np.ndarray]:
        const = op.operands[1].owner
        assert isinstance(const, nn.ConstantOp)
        w = np.asarray(constant_value(const, self.store), np.float32)
        axis = weight_axis(op) if s.granularity == "per-channel" else None
        scales = weight_scales(w, s.bits, axis, self.options.weight_clip)
        qmax = (1 << (s.bits - 1)) - 1
        shape = [1] * w.ndim
        if axis is not None:
            shape[axis] = -1
        wq = intmath.quantize(w, scales.reshape(shape), 0, -qmax, qmax, np.int8)
        qt = UniformQuantizedType.make(s.bits, scales, 0, axis=axis,
                                       storage_range=(-qmax, qmax))
        new = self._constant(const, wq, qt, f".q{s.bits}", op, block)
        new.attributes.update(const.attributes)  # e.g. nn.sparsity: zeros stay zeros
        return new.output, scales

    def _constant(self, like: nn.ConstantOp, array: np.ndarray, qt: UniformQuantizedType,
                  suffix: str, before: Operation, block: Block) -> nn.ConstantOp:
        """A quantized constant holding storage integers, always in the weight store (an
        inline `dense<>` carries its own element type, which cannot be quantized): named
        `<weight name><suffix>`, or `<op kind>.<role><suffix>` for an inline original."""
        if isinstance(like.value, nn.WeightAttr):
            hint = like.value.key
        else:
            role = "bias" if suffix == ".q32" else "weight"
            hint = f"{before.name.removeprefix('nn.')}.{role}"
        new = nn.ConstantOp(nn.WeightAttr(self.store.add(hint + suffix, array)),
                            TensorType(qt, array.shape))
        new.location = like.location
        block.insert_op_before(new, before)
        return new

    def _rewrite_weight_only(self, op: Operation, block: Block, s: LayerSettings) -> None:
        wq, _ = self._quantized_weight(op, s, block)
        d = quant.DequantizeOp(wq, TensorType(f32, nn.shape_of(wq)))
        d.location = op.location
        block.insert_op_before(d, op)
        op.operands[1] = d.output

    def _rewrite_int(self, op: Operation, block: Block, s: LayerSettings | None,
                     int_users: set[SSAValue]) -> None:
        result_types: list[Attribute]
        if isinstance(op, CONTRACTIONS):
            assert s is not None
            operands, result_types = self._contraction(op, block, s, int_users)
        elif isinstance(op, TRANSPARENT):
            x = self._as_int(op.operands[0], op, block)
            operands = [x]
            elem = nn.value_element_type(x)
            result_types = [TensorType(elem, nn.shape_of(r)) for r in op.results]
        elif isinstance(op, nn.ConcatOp):  # inputs requantized to the result's parameters
            out_t = self._act_type(op.results[0])
            operands = [self._requantized(self._as_int(v, op, block), out_t, op, block)
                        for v in op.operands]
            result_types = [TensorType(out_t, nn.shape_of(op.results[0]))]
        else:  # REQUANTIZING
            operands = [self._as_int(v, op, block) for v in op.operands]
            result_types = [TensorType(self._act_type(r), nn.shape_of(r)) for r in op.results]
        attributes = {k: v for k, v in op.attributes.items() if k != RANGE_ATTR}  # in the type now
        new = op.create(operands=operands, result_types=result_types,
                        properties=dict(op.properties), attributes=attributes)
        new.location = op.location
        block.insert_op_before(new, op)
        for old, res in zip(op.results, new.results):
            res.name_hint = old.name_hint
            self.qvalue[old] = res
            float_uses = [u for u in list(old.uses) if not self._consumes_int(u.operation)]
            if float_uses:
                f = self._as_float(res, block, new)
                self.fvalue[old] = f
                for u in float_uses:
                    u.operation.operands[u.index] = f

    def _consumes_int(self, user: Operation) -> bool:
        """Whether `user` (an op not yet rewritten) will read the integer version."""
        return user in self.int_ops

    def _contraction(self, op: Operation, block: Block, s: LayerSettings,
                     int_users: set[SSAValue]) -> tuple[list[SSAValue], list[Attribute]]:
        x = self._as_int(op.operands[0], op, block)
        qx = nn.value_element_type(x)
        assert isinstance(qx, UniformQuantizedType)
        if isinstance(op.operands[1].owner, nn.ConstantOp):
            w, s_w = self._quantized_weight(op, s, block)
        else:  # matmul of two activations
            w = self._as_int(op.operands[1], op, block)
            qw = nn.value_element_type(w)
            assert isinstance(qw, UniformQuantizedType)
            s_w = qw.scale_values()
        s_acc = qx.scale * np.asarray(s_w, np.float64)
        per_axis = len(s_acc) > 1
        out_shape = nn.shape_of(op.results[0])
        channel_axis = len(out_shape) - 1 if not isinstance(op, nn.Conv2dOp) else 1
        operands = [x, w]
        if len(op.operands) > 2:
            b = op.operands[2].owner
            if not isinstance(b, nn.ConstantOp):
                raise PassError(f"quantize: {op.name} expects a constant bias", op)
            bias = np.asarray(constant_value(b, self.store), np.float64)
            bq = intmath.bias_to_int32(bias, qx.scale, s_w)
            bt = UniformQuantizedType.make(32, s_acc, 0, axis=0 if per_axis else None)
            operands.append(self._constant(b, bq, bt, ".q32", op, block).output)
        result = op.results[0]
        if result in int_users:
            out_t: UniformQuantizedType = self._act_type(result)
        else:  # only float consumers: keep the exact int32 accumulator
            out_t = UniformQuantizedType.make(32, s_acc, 0,
                                              axis=channel_axis if per_axis else None)
        return operands, [TensorType(out_t, out_shape)]


def _is_f32(value: SSAValue) -> bool:
    ty = value.type
    return isinstance(ty, TensorType) and ty.element_type == f32


def _activation_operands(op: Operation) -> bool:
    """Every operand is an f32 activation (not a constant): the integer add needs both
    operands quantized per tensor from calibrated ranges."""
    return all(not isinstance(v.owner, nn.ConstantOp) and _is_f32(v) for v in op.operands)


__all__ = ["QuantizePass", "activation_type", "weight_scales", "weight_axis", "layer_name",
           "load_layer_config", "parse_layers", "LayerSettings", "LAYER_KEYS", "WEIGHT_BITS",
           "ACT_BITS", "GRANULARITIES", "WEIGHT_CLIPS", "CONTRACTIONS", "TRANSPARENT",
           "REQUANTIZING"]
