"""The `quant` dialect: uniformly quantized element types and the casts between levels.

A quantized tensor holds *storage* integers `q`; the real value it stands for is
`scale · (q − zero_point)` (MLIR `quant`, ONNX QuantizeLinear, TFLite). The element
type says how to read the integers, with MLIR's `!quant.uniform` syntax:

    !quant.uniform<i8:f32, 0.0125:-3>                   per-tensor, zero point -3
    !quant.uniform<i8:f32, 0.5>                         zero point omitted = 0
    !quant.uniform<u8:f32, 0.02:128>                    unsigned storage
    !quant.uniform<i8<-127:127>:f32, 0.01>              narrow storage range
    !quant.uniform<i4<-7:7>:f32:0, {0.1,0.25:1}>        per-axis (axis 0), int4 storage
    !quant.uniform<i32:f32:1, {1.0e-4,2.5e-4}>          int32 accumulator (bias, conv result)
    !quant.uniform<i4<-7:7>:f16:{1:32}>                 group-wise: blocks of 32 along axis 1

A group-wise (block) type is MLIR's sub-channel syntax `{axis:block}` without the inline
scale tensor: a weight [N, K] with one scale per group of 32 along K has N·K/32 scales
(34 M for a 1 B model), so they are a tensor operand of the op that reads the weight
(`irq.block_linear`, `dialects/quant_block.py`), stored in the weight store beside the
integers.

and nn ops simply carry such types on their operands and results
(`tensor<1x16x8x8x!quant.uniform<i8:f32, 0.05:-128>>`): a conv whose operands are
quantized runs in integers (`irflow.intmath` is the arithmetic, written down once).

Printing follows MLIR's quant dialect (storage range printed only when narrower
than the storage type's, zero point only when non-zero, per-axis parameters
comma-separated without spaces), with one difference of spelling: MLIR prints a scale
with `%e` when 6 digits round-trip and with 17 digits otherwise (`0.0039215688593685627`);
irflow prints the shortest decimal that round-trips the float64. Both are exact, so
integer programs stay bit-exact through a save/load and through `mlir-opt`.

Ops. The casts use MLIR's own spelling, so every quantized dump parses (and verifies)
in `mlir-opt`: `quant.qcast` (float → quantized) and `quant.dcast` (quantized → float)
are upstream's ops with upstream's semantics. Requantization (quantized → quantized with
other parameters, in integers) has no upstream `quant` op — MLIR's `quant` dialect is
registered and rejects unknown op names — so it lives in irflow's own one-op dialect
`irq` ("irflow quant"): `irq.requantize` (TOSA's `rescale` plays that role upstream).
MLIR's `quant.scast` (storage ↔ quantized reinterpretation) is not needed: a value of
quantized type *is* its storage integers to irflow's executors. See docs/quantization.md.

    %q = quant.qcast %x : tensor<1x64xf32> to tensor<1x64x!quant.uniform<i8:f32, 0.02:-5>>
    %y = quant.dcast %q : tensor<1x64x!quant.uniform<i8:f32, 0.02:-5>> to tensor<1x64xf32>
    %r = irq.requantize %q : tensor<1x64x!quant.uniform<i8:f32, 0.02:-5>> to tensor<1x64x!quant.uniform<i8:f32, 0.05>>
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from xdsl.dialects.builtin import (
    BytesAttr,
    DenseArrayBase,
    Float16Type,
    Float32Type,
    Float64Type,
    IntAttr,
    IntegerType,
    NoneAttr,
    Signedness,
    TensorType,
    f32,
    f64,
    i64,
)
from xdsl.ir import Attribute, Dialect, ParametrizedAttribute, SSAValue, TypeAttribute
from xdsl.irdl import (
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    result_def,
    traits_def,
)
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

_STORAGE = re.compile(r"([iu])([1-9][0-9]*)")
MAX_STORAGE_BITS = 32


def storage_bounds(bits: int, signed: bool) -> tuple[int, int]:
    """The full range of a `bits`-wide storage integer: i8 → (-128, 127), u8 → (0, 255)."""
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def format_float(value: float) -> str:
    """Shortest round-tripping decimal that MLIR's lexer reads as a float (has a '.')."""
    text = repr(float(value))
    if "." not in text and "e" in text:
        mantissa, exp = text.split("e")
        text = f"{mantissa}.0e{exp}"
    elif "." not in text:
        text += ".0"
    return text


@irdl_attr_definition
class UniformQuantizedType(ParametrizedAttribute, TypeAttribute):
    """`!quant.uniform<...>`: per-tensor (axis = none) or per-axis uniform quantization.

    One xDSL class covers MLIR's `UniformQuantizedType` and
    `UniformQuantizedPerAxisType` (they share the mnemonic). Build with
    `UniformQuantizedType.make(8, 0.05, -3)` or `.make(8, [0.1, 0.2], axis=0)`.
    """

    name = "quant.uniform"

    storage: IntegerType  # si<N> or ui<N>: MLIR's `i<N>` / `u<N>` storage spec
    storage_min: IntAttr
    storage_max: IntAttr
    expressed: Attribute  # f32 (the float type the values approximate)
    axis: IntAttr | NoneAttr
    scales: DenseArrayBase  # f64, one per tensor or per slice along `axis` (none if block)
    zero_points: DenseArrayBase  # i64, same length
    block: IntAttr  # 0, or the group size along `axis` (scales are then a tensor operand)

    @staticmethod
    def make(
        bits: int,
        scale: float | Sequence[float] | np.ndarray,
        zero_point: int | Sequence[int] | np.ndarray = 0,
        *,
        signed: bool = True,
        axis: int | None = None,
        storage_range: tuple[int, int] | None = None,
        expressed: Attribute = f32,
        block: int = 0,
    ) -> UniformQuantizedType:
        """With `block` > 0, a group-wise type: groups of `block` along `axis`, no inline
        scales (`scale` and `zero_point` are ignored: pass `()`)."""
        scales = [float(s) for s in np.atleast_1d(np.asarray(scale, np.float64))]
        zps = np.atleast_1d(np.asarray(zero_point, np.int64))
        if zps.size == 1 and len(scales) > 1:
            zps = np.repeat(zps, len(scales))
        if block:
            scales, zps = [], np.zeros(0, np.int64)
        lo, hi = storage_range or storage_bounds(bits, signed)
        storage = IntegerType(bits, Signedness.SIGNED if signed else Signedness.UNSIGNED)
        return UniformQuantizedType(
            storage, IntAttr(int(lo)), IntAttr(int(hi)), expressed,
            NoneAttr() if axis is None else IntAttr(int(axis)),
            DenseArrayBase.from_list(f64, scales),
            # i64 bytes straight from numpy: `from_list` normalizes every value in Python
            # (~20 µs each; a per-channel model has 10^5 of them)
            DenseArrayBase(i64, BytesAttr(np.asarray(zps, "<i8").tobytes())),
            IntAttr(int(block)),
        )

    # ---- convenient views -----------------------------------------------------------

    @property
    def bits(self) -> int:
        return self.storage.width.data

    @property
    def signed(self) -> bool:
        return self.storage.signedness.data != Signedness.UNSIGNED

    @property
    def qmin(self) -> int:
        return self.storage_min.data

    @property
    def qmax(self) -> int:
        return self.storage_max.data

    @property
    def is_per_axis(self) -> bool:
        return isinstance(self.axis, IntAttr) and not self.block.data

    @property
    def block_size(self) -> int:
        """The group size of a group-wise type (0 otherwise)."""
        return self.block.data

    @property
    def quantized_axis(self) -> int | None:
        return self.axis.data if isinstance(self.axis, IntAttr) and not self.block.data else None

    @property
    def block_axis(self) -> int | None:
        """The axis a group-wise type's blocks run along."""
        return self.axis.data if self.block.data and isinstance(self.axis, IntAttr) else None

    def scale_values(self) -> np.ndarray:
        """Scales as a float64 array (length 1 for per-tensor)."""
        if isinstance(self.scales.elt_type, Float64Type):  # the stored bytes, unparsed
            return np.frombuffer(self.scales.data.data, "<f8").astype(np.float64)
        return np.asarray(self.scales.get_values(), np.float64)

    def zero_point_values(self) -> np.ndarray:
        ty = self.zero_points.elt_type
        if isinstance(ty, IntegerType) and ty.width.data == 64:  # the stored bytes ("<q")
            return np.frombuffer(self.zero_points.data.data, "<i8").astype(np.int64)
        return np.asarray(self.zero_points.get_values(), np.int64)

    @property
    def scale(self) -> float:
        """The scale of a per-tensor type."""
        if self.is_per_axis:
            raise ValueError(f"{self} is per-axis: it has one scale per slice")
        return float(self.scale_values()[0])

    @property
    def zero_point(self) -> int:
        if self.is_per_axis:
            raise ValueError(f"{self} is per-axis: it has one zero point per slice")
        return int(self.zero_point_values()[0])

    def broadcast_shape(self, rank: int) -> tuple[int, ...]:
        """Shape the scale/zero-point arrays take to broadcast against a rank-`rank` tensor."""
        ax = self.quantized_axis
        if ax is None:
            return (1,) * rank
        return tuple(-1 if d == ax else 1 for d in range(rank))

    # ---- syntax -----------------------------------------------------------------------

    def print_parameters(self, printer: Printer) -> None:
        bits, signed = self.bits, self.signed
        text = f"{'i' if signed else 'u'}{bits}"
        if (self.qmin, self.qmax) != storage_bounds(bits, signed):
            text += f"<{self.qmin}:{self.qmax}>"
        printer.print_string(f"<{text}:")
        printer.print_attribute(self.expressed)
        if self.block.data:
            printer.print_string(f":{{{self.block_axis}:{self.block.data}}}>")
        elif self.is_per_axis:
            printer.print_string(f":{self.quantized_axis}, {{")
            printer.print_string(",".join(
                _param(s, z) for s, z in zip(self.scale_values(), self.zero_point_values())
            ))
            printer.print_string("}>")
        else:
            printer.print_string(f", {_param(self.scale_values()[0], self.zero_point_values()[0])}>")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            spec = parser.parse_identifier(" (storage type such as i8, u8, i4)")
            m = _STORAGE.fullmatch(spec)
            if m is None:
                parser.raise_error(f"expected a storage type like i8, u8 or i4, got '{spec}'")
            signed, bits = m.group(1) == "i", int(m.group(2))
            if bits > MAX_STORAGE_BITS:
                parser.raise_error(
                    f"expected a storage width of at most {MAX_STORAGE_BITS} bits, got {bits}"
                )
            lo, hi = storage_bounds(bits, signed)
            if parser.parse_optional_punctuation("<") is not None:
                lo = parser.parse_integer(allow_boolean=False)
                parser.parse_punctuation(":")
                hi = parser.parse_integer(allow_boolean=False)
                parser.parse_punctuation(">")
            parser.parse_punctuation(":")
            expressed = parser.parse_type()
            axis: int | None = None
            block = 0
            pairs: list[tuple[float, int]] = []
            if parser.parse_optional_punctuation(":") is not None:
                if parser.parse_optional_punctuation("{") is not None:
                    axis = parser.parse_integer(allow_boolean=False)
                    parser.parse_punctuation(":")
                    block = parser.parse_integer(allow_boolean=False)
                    parser.parse_punctuation("}")
                else:
                    axis = parser.parse_integer(allow_boolean=False)
            if block:
                pass
            elif parser.parse_punctuation(",") and axis is not None:
                pairs = parser.parse_comma_separated_list(
                    parser.Delimiter.BRACES, lambda: _parse_param(parser)
                )
            else:
                pairs = [_parse_param(parser)]
        storage = IntegerType(bits, Signedness.SIGNED if signed else Signedness.UNSIGNED)
        return (
            storage, IntAttr(lo), IntAttr(hi), expressed,
            NoneAttr() if axis is None else IntAttr(axis),
            DenseArrayBase.from_list(f64, [float(s) for s, _ in pairs]),
            DenseArrayBase.from_list(i64, [int(z) for _, z in pairs]),
            IntAttr(block),
        )

    def verify(self) -> None:
        name = "!quant.uniform"
        bits, signed = self.bits, self.signed
        if not 1 < bits <= MAX_STORAGE_BITS:
            raise VerifyException(
                f"{name} expects a storage width in [2, {MAX_STORAGE_BITS}], got {bits}"
            )
        lo, hi = storage_bounds(bits, signed)
        if not lo <= self.qmin < self.qmax <= hi:
            raise VerifyException(
                f"{name} expects a storage range within [{lo}, {hi}] with min < max, "
                f"got [{self.qmin}, {self.qmax}]"
            )
        if not isinstance(self.expressed, Float16Type | Float32Type | Float64Type):
            raise VerifyException(f"{name} expects a float expressed type, got {self.expressed}")
        if self.scales.elt_type != f64 or self.zero_points.elt_type != i64:
            raise VerifyException(f"{name} expects f64 scales and i64 zero points")
        scales, zps = self.scale_values(), self.zero_point_values()
        if self.block.data:
            if self.block.data < 1 or not isinstance(self.axis, IntAttr) or self.axis.data < 0:
                raise VerifyException(f"{name} group-wise expects a block size >= 1 along a "
                                      f"non-negative axis, got {{{self.axis}:{self.block.data}}}")
            if len(scales) or len(zps):
                raise VerifyException(f"{name} group-wise expects no inline scales (they are "
                                      "a tensor operand)")
            return
        if len(scales) != len(zps) or len(scales) == 0:
            raise VerifyException(
                f"{name} expects as many zero points as scales (at least one), "
                f"got {len(scales)} scales and {len(zps)} zero points"
            )
        if not self.is_per_axis and len(scales) != 1:
            raise VerifyException(f"{name} per-tensor expects one scale, got {len(scales)}")
        if self.is_per_axis and self.quantized_axis < 0:  # type: ignore[operator]
            raise VerifyException(
                f"{name} expects a non-negative quantized axis, got {self.quantized_axis}"
            )
        bad = [float(s) for s in scales if not (math.isfinite(s) and s > 0)]
        if bad:
            raise VerifyException(f"{name} expects positive finite scales, got {bad[0]}")
        outside = [int(z) for z in zps if not self.qmin <= z <= self.qmax]
        if outside:
            raise VerifyException(
                f"{name} expects zero points in the storage range [{self.qmin}, {self.qmax}], "
                f"got {outside[0]}"
            )


def _param(scale: float, zero_point: int) -> str:
    return format_float(scale) + (f":{int(zero_point)}" if zero_point else "")


def _parse_param(parser: AttrParser) -> tuple[float, int]:
    scale = float(parser.parse_number(context_msg=" (a scale)"))
    zp = 0
    if parser.parse_optional_punctuation(":") is not None:
        zp = parser.parse_integer(allow_boolean=False)
    return scale, zp


# --------------------------------------------------------------------------------------
# Helpers on tensor types


def quant_type(value: SSAValue | Attribute) -> UniformQuantizedType | None:
    """The quantized element type of a tensor value/type, or None if it is not quantized."""
    ty = value.type if isinstance(value, SSAValue) else value
    if isinstance(ty, TensorType) and isinstance(ty.element_type, UniformQuantizedType):
        return ty.element_type
    return None


def is_quantized(value: SSAValue | Attribute) -> bool:
    return quant_type(value) is not None


def verify_quantized_tensor(op_name: str, role: str, ty: Attribute) -> None:
    """A per-axis element type must index an existing axis whose size = number of scales."""
    q = quant_type(ty)
    if q is not None and q.block_size:
        assert isinstance(ty, TensorType)
        shape, ax = ty.get_shape(), q.block_axis
        assert ax is not None
        if ax >= len(shape) or shape[ax] % q.block_size:
            raise VerifyException(
                f"{op_name} expects the {role}'s blocked axis {ax} to exist and be a multiple "
                f"of the group size {q.block_size}, got {ty}")
        return
    if q is None or not q.is_per_axis:
        return
    assert isinstance(ty, TensorType)
    shape = ty.get_shape()
    ax = q.quantized_axis
    assert ax is not None
    if ax >= len(shape):
        raise VerifyException(
            f"{op_name} expects the {role}'s quantized axis {ax} < rank {len(shape)}, "
            f"got {ty}"
        )
    if shape[ax] != len(q.scale_values()):
        raise VerifyException(
            f"{op_name} expects {shape[ax]} scales for the {role}'s axis {ax}, "
            f"got {len(q.scale_values())}"
        )


def _shape(ty: Attribute) -> tuple[int, ...]:
    assert isinstance(ty, TensorType)
    return tuple(ty.get_shape())


# --------------------------------------------------------------------------------------
# Ops


class _CastOp(IRDLOperation):
    """Shared shape of the casts (qcast, dcast, scast, requantize): one tensor in, one tensor
    of the same shape out."""

    input = operand_def(TensorType)
    output = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input) `to` type($output)"

    # (input must be quantized, output must be quantized)
    KINDS: ClassVar[tuple[bool, bool]] = (False, False)

    def __init__(self, input: SSAValue, result_type: Attribute):
        super().__init__(operands=[input], result_types=[result_type])

    def _verify_shape(self) -> tuple[Attribute, Attribute]:
        in_ty, out_ty = self.input.type, self.output.type
        if _shape(in_ty) != _shape(out_ty):
            raise VerifyException(
                f"{self.name} expects the result shape to equal the input shape "
                f"{list(_shape(in_ty))}, got {list(_shape(out_ty))}"
            )
        return in_ty, out_ty

    def verify_(self) -> None:
        in_ty, out_ty = self._verify_shape()
        for role, ty, want_q in (("input", in_ty, self.KINDS[0]),
                                 ("result", out_ty, self.KINDS[1])):
            elem = ty.element_type  # type: ignore[attr-defined]
            if want_q and not isinstance(elem, UniformQuantizedType):
                raise VerifyException(
                    f"{self.name} expects a quantized {role} element type, got {elem}"
                )
            if not want_q and not isinstance(elem, Float16Type | Float32Type | Float64Type):
                raise VerifyException(f"{self.name} expects a float {role} element type, got {elem}")
            verify_quantized_tensor(self.name, role, ty)
        q = quant_type(in_ty) or quant_type(out_ty)
        assert q is not None
        floats = [t.element_type for t in (in_ty, out_ty)  # type: ignore[attr-defined]
                  if not isinstance(t.element_type, UniformQuantizedType)]  # type: ignore[attr-defined]
        if floats and floats[0] != q.expressed:
            raise VerifyException(
                f"{self.name} expects the float side to be the expressed type {q.expressed}, "
                f"got {floats[0]}"
            )


@irdl_op_definition
class QuantizeOp(_CastOp):
    """float → quantized: `q = clamp(round_half_even(x / scale) + zero_point)` (ONNX QuantizeLinear).

        %q = quant.qcast %x : tensor<4xf32> to tensor<4x!quant.uniform<i8:f32, 0.1>>
    """

    name = "quant.qcast"
    KINDS: ClassVar[tuple[bool, bool]] = (False, True)


@irdl_op_definition
class DequantizeOp(_CastOp):
    """quantized → float: `x = (q − zero_point) · scale` (ONNX DequantizeLinear).

        %x = quant.dcast %q : tensor<4x!quant.uniform<i8:f32, 0.1>> to tensor<4xf32>
    """

    name = "quant.dcast"
    KINDS: ClassVar[tuple[bool, bool]] = (True, False)


@irdl_op_definition
class RequantizeOp(_CastOp):
    """quantized → quantized with other parameters, in integers (`intmath.requantize`).

        %r = irq.requantize %q : tensor<4x!quant.uniform<i8:f32, 0.1:3>> to tensor<4x!quant.uniform<i8:f32, 0.05>>
    """

    name = "irq.requantize"
    KINDS: ClassVar[tuple[bool, bool]] = (True, True)

    def verify_(self) -> None:
        super().verify_()
        a, b = quant_type(self.input), quant_type(self.output)
        assert a is not None and b is not None
        if a.expressed != b.expressed:
            raise VerifyException(
                f"{self.name} expects the same expressed type, got {a.expressed} and {b.expressed}"
            )
        if b.is_per_axis:
            raise VerifyException(f"{self.name} expects a per-tensor result type, got {b}")


@irdl_op_definition
class StorageCastOp(_CastOp):
    """quantized ↔ its storage integers, a reinterpretation (upstream MLIR's `quant.scast`):
    an integer tensor from outside (an ONNX uint8 input) becomes a quantized value, or back.

        %q = quant.scast %i : tensor<4xi8> to tensor<4x!quant.uniform<u8:f32, 0.1:128>>
    """

    name = "quant.scast"

    def verify_(self) -> None:
        in_ty, out_ty = self._verify_shape()
        q = quant_type(in_ty) or quant_type(out_ty)
        other = (out_ty if quant_type(in_ty) else in_ty).element_type  # type: ignore[attr-defined]
        # upstream's storage type is signless (i8 for u8 storage); irflow also accepts the
        # integer type of the storage's own signedness (ONNX's uint8 is ui8)
        if q is None or not isinstance(other, IntegerType) or (
                other.width.data != q.storage.width.data) or (
                other.signedness.data not in (Signedness.SIGNLESS, q.storage.signedness.data)):
            raise VerifyException(
                f"{self.name} expects a quantized type and its storage integer type, got "
                f"{in_ty} and {out_ty}")
        verify_quantized_tensor(self.name, "quantized side", in_ty if quant_type(in_ty)
                                else out_ty)


from irflow.dialects.quant_block import BlockLinearOp  # noqa: E402  (uses the types above)

QUANT = Dialect("quant", [QuantizeOp, DequantizeOp, StorageCastOp], [UniformQuantizedType])
"""MLIR's `quant` namespace: the uniform types and upstream's casts (qcast, dcast, scast)."""

IRQ = Dialect("irq", [RequantizeOp, BlockLinearOp], [])
"""irflow's own namespace for the quantized ops upstream lacks (`irq.requantize`,
`irq.block_linear`)."""

__all__ = [
    "QUANT", "IRQ", "UniformQuantizedType", "QuantizeOp", "DequantizeOp", "RequantizeOp",
    "StorageCastOp",
    "BlockLinearOp",
    "quant_type", "is_quantized", "storage_bounds", "format_float", "verify_quantized_tensor",
]
