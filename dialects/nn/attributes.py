"""The nn attributes — `#nn.weight<"name">` (a weight-store reference) and
`#nn.sparsity<...>` (a weight's pruning pattern) — and the property builders
`int_array`, `f64`, `i64_attr` with their constraints `IntArray`, `F64`."""

from __future__ import annotations

import re
from collections.abc import Sequence

from xdsl.dialects.builtin import (
    I64,
    DenseArrayBase,
    Float64Type,
    FloatAttr,
    IntegerAttr,
    StringAttr,
    i64,
)
from xdsl.ir import ParametrizedAttribute
from xdsl.irdl import irdl_attr_definition, param_def, prop_def
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

_NM_PATTERN = re.compile(r"^([1-9][0-9]*):([1-9][0-9]*)$")


@irdl_attr_definition
class WeightAttr(ParametrizedAttribute):
    """A reference to a named array in the module's weight store: `#nn.weight<"fc.weight">`."""

    name = "nn.weight"
    ref: StringAttr = param_def()

    def __init__(self, ref: str | StringAttr):
        super().__init__(StringAttr(ref) if isinstance(ref, str) else ref)

    @property
    def key(self) -> str:
        return self.ref.data

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> tuple[StringAttr]:
        with parser.in_angle_brackets():
            return (StringAttr(parser.parse_str_literal()),)

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_string_literal(self.ref.data)




@irdl_attr_definition
class SparsityAttr(ParametrizedAttribute):
    """The sparsity pattern of a weight, set by `prune` as the discardable attribute
    `nn.sparsity` on its `nn.constant` (see docs/pruning.md):

        %w = nn.constant #nn.weight<"fc.weight"> {nn.sparsity = #nn.sparsity<"2:4", axis = 1>}
             : tensor<10x64xf32>
        %v = nn.constant #nn.weight<"c.weight"> {nn.sparsity = #nn.sparsity<unstructured, density = 0.25>}
             : tensor<16x8x3x3xf32>

    - `"N:M"`: in every run of M elements along `axis` (the reduction dimension: input
      channels of an FCHW conv weight, columns of a linear weight, rows of a matmul's
      constant rhs) at most N are non-zero; `density` is N/M. A run is M consecutive
      elements, or with `stride = S` M elements S apart: index (g·M + j)·S + r, j < M —
      a linear after a flatten of [C, H, W] groups M channels at one position (S = H·W),
      as a conv groups M input channels at one kernel tap:
      `#nn.sparsity<"2:4", axis = 1, stride = 16>`.
    - `unstructured`: any element may be zero; `density` is the fraction of non-zeros.
    """

    name = "nn.sparsity"
    pattern: StringAttr = param_def()
    axis: IntegerAttr[I64] = param_def()
    density: FloatAttr[Float64Type] = param_def()
    stride: IntegerAttr[I64] = param_def()

    def __init__(self, pattern: str, density: float, axis: int = -1, stride: int = 1):
        super().__init__(StringAttr(pattern), i64_attr(axis), f64(density), i64_attr(stride))

    @classmethod
    def nm(cls, n: int, m: int, axis: int, stride: int = 1) -> SparsityAttr:
        return cls(f"{n}:{m}", n / m, axis, stride)

    @classmethod
    def unstructured(cls, density: float) -> SparsityAttr:
        return cls("unstructured", density)

    @property
    def is_nm(self) -> bool:
        return self.pattern.data != "unstructured"

    @property
    def n_m(self) -> tuple[int, int]:
        """(N, M) of an N:M pattern."""
        n, _, m = self.pattern.data.partition(":")
        return int(n), int(m)

    def verify(self) -> None:
        if self.is_nm:
            match = _NM_PATTERN.match(self.pattern.data)
            if match is None or int(match[1]) >= int(match[2]):
                raise VerifyException(
                    f"#nn.sparsity expects 'unstructured' or \"N:M\" with 0 < N < M, "
                    f"got \"{self.pattern.data}\""
                )
            if self.axis.value.data < 0:
                raise VerifyException("#nn.sparsity expects an N:M pattern to name its axis >= 0")
        if self.stride.value.data < 1:
            raise VerifyException(f"#nn.sparsity expects stride >= 1, got {self.stride.value.data}")
        density = self.density.value.data
        if not 0.0 <= density <= 1.0:
            raise VerifyException(f"#nn.sparsity expects a density in [0, 1], got {density}")

    @classmethod
    def parse_parameters(
        cls, parser: AttrParser
    ) -> tuple[StringAttr, IntegerAttr, FloatAttr, IntegerAttr]:
        with parser.in_angle_brackets():
            if parser.parse_optional_keyword("unstructured") is not None:
                parser.parse_punctuation(",")
                parser.parse_keyword("density")
                parser.parse_punctuation("=")
                density = f64(parser.parse_float())
                return StringAttr("unstructured"), i64_attr(-1), density, i64_attr(1)
            pattern = parser.parse_str_literal()
            parser.parse_punctuation(",")
            parser.parse_keyword("axis")
            parser.parse_punctuation("=")
            axis = parser.parse_integer()
            stride = 1
            if parser.parse_optional_punctuation(",") is not None:
                parser.parse_keyword("stride")
                parser.parse_punctuation("=")
                stride = parser.parse_integer()
            match = _NM_PATTERN.match(pattern)
            density = int(match[1]) / int(match[2]) if match else 0.0
            return StringAttr(pattern), i64_attr(axis), f64(density), i64_attr(stride)

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            if self.is_nm:
                printer.print_string_literal(self.pattern.data)
                printer.print_string(f", axis = {self.axis.value.data}")
                if self.stride.value.data != 1:
                    printer.print_string(f", stride = {self.stride.value.data}")
            else:
                printer.print_string(f"unstructured, density = {self.density.value.data!r}")


def int_array(values: Sequence[int]) -> DenseArrayBase:
    return DenseArrayBase.from_list(i64, [int(v) for v in values])


def f64(value: float) -> FloatAttr:
    return FloatAttr(float(value), Float64Type())


def i64_attr(value: int) -> IntegerAttr:
    return IntegerAttr(int(value), i64)


def i64_prop(default: int) -> object:
    """An i64 property definition with a default (`axis = i64_prop(0)` in an op class)."""
    return prop_def(IntegerAttr[I64], default_value=i64_attr(default))


IntArray = DenseArrayBase.constr(i64)
F64 = FloatAttr[Float64Type]
