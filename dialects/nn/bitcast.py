"""`nn.bitcast`: the same bits read as another element type of the same width (ONNX
BitCast, opset 26).

    %y = nn.bitcast %x : (tensor<3xf32>) -> tensor<3xi32>

Kernel: `backends/reference/spatial_kernels.py` (a numpy view).
"""

from __future__ import annotations

from xdsl.ir import Attribute
from xdsl.irdl import irdl_op_definition
from xdsl.utils.exceptions import VerifyException

from irflow.dialects.nn.math import ConvertOp
from irflow.dialects.nn.shapes import value_element_type


def _bits(element_type: Attribute) -> int | None:
    width = getattr(element_type, "width", None)  # integers (i1 is stored as a byte)
    if width is not None:
        return max(int(width.data), 8)
    bitwidth = getattr(element_type, "bitwidth", None)  # floats
    return int(bitwidth) if bitwidth is not None else None


@irdl_op_definition
class BitcastOp(ConvertOp):
    """Reinterpret the bits: `%y = nn.bitcast %x : (tensor<3xf32>) -> tensor<3xi32>`."""

    name = "nn.bitcast"

    def verify_(self) -> None:
        super().verify_()
        a, b = value_element_type(self.input), value_element_type(self.output)
        if _bits(a) is None or _bits(a) != _bits(b):
            raise VerifyException(f"nn.bitcast expects element types of one bit width, got "
                                  f"{a} and {b}")


__all__ = ["BitcastOp"]
