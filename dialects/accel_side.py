"""`accel.side`: a second result a layer's epilogue stores (`fuse-epilogue`).

An epilogue has one chain and one result. Where a value in the chain has two uses — a
LayerNorm's output read by the next residual add in float and, through a
`quant.qcast`, by the next integer MatMuls — the output path writes both: the chain's
value as the layer's result, and the cast of it as a *side output*, like a multi-output
fusion. The cast is an epilogue entry with `side = k` (dialects/accel_epilogue.py): it
reads the chain value at its place in the chain and does not continue the chain; its
result is stored at the address of the layer's k-th `accel.side`, which names it:

    %y = accel.layer "l0.o.mm" "nn.matmul"(%c, %w, %b, %x, %g, %be) at 4096 on "pe"
           tiles <...> params {} epilogue [
             ..., {kind = "nn.layernorm", label = "l0.ln1", operands = array<i64: -1, 2, 3>,
                   in = tensor<1x128x312xf32>, out = tensor<1x128x312xf32>, ...},
             {kind = "quant.qcast", label = "qcast_4", operands = array<i64: -1>,
              in = tensor<1x128x312xf32>, out = tensor<1x128x312x!q>, side = 0 : i64}]
           : (...) -> tensor<1x128x312xf32>
    %q = accel.side %y, 0 at 163840 : (tensor<1x128x312xf32>) -> tensor<1x128x312x!q>

The op computes nothing when it runs: the layer wrote its values (docs/simulator.md
§2.4); it places them and orders their uses after the layer.
"""

from __future__ import annotations

from xdsl.dialects.builtin import I64, IntegerAttr, TensorType
from xdsl.ir import SSAValue
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from irflow.dialects.accel import Addr, LayerOp, _verify_addr, addr_attr


@irdl_op_definition
class SideOp(IRDLOperation):
    """The `index`-th side output of the epilogue of the layer that produced `source`,
    placed at `addr` (module docstring).

        %q = accel.side %y, 0 at 163840 : (tensor<1x128x312xf32>) -> tensor<1x128x312xi8>
    """

    name = "accel.side"
    source = operand_def(TensorType)
    index = prop_def(IntegerAttr[I64])
    output = result_def(TensorType)
    addr = prop_def(Addr)
    traits = traits_def(Pure())
    assembly_format = ("$source `,` $index `at` $addr attr-dict `:` "
                       "functional-type($source, $output)")

    def __init__(self, source: SSAValue, index: int, type: TensorType, addr: int):
        super().__init__(operands=[source], result_types=[type],
                         properties={"index": addr_attr(index), "addr": addr_attr(addr)})

    def verify_(self) -> None:
        from irflow.dialects import accel_epilogue as ep

        _verify_addr(self, self.addr)
        owner = self.source.owner
        k = self.index.value.data
        sides = ep.side_stages(owner) if isinstance(owner, LayerOp) else []
        if not 0 <= k < len(sides):
            raise VerifyException(f"accel.side expects the result of a layer whose epilogue "
                                  f"has side output {k}, got {len(sides)} side outputs")
        if sides[k].out_type != self.output.type:
            raise VerifyException(f"accel.side expects type {sides[k].out_type} (side output "
                                  f"{k}, '{sides[k].label}'), got {self.output.type}")


def sides_of(layer: LayerOp) -> list[SideOp]:
    """The `accel.side` ops of `layer`'s result, by index."""
    found = [u.operation for u in layer.output.uses if isinstance(u.operation, SideOp)]
    return sorted(found, key=lambda s: s.index.value.data)  # type: ignore[attr-defined]


__all__ = ["SideOp", "sides_of"]
