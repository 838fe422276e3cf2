"""Small builders shared by the tests that build nn ops directly (reference, simulator)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Attribute, SSAValue

from irflow.dialects import nn
from irflow.graph import GraphBuilder


def as_props(values: Mapping[str, Any]) -> dict[str, Attribute]:
    """Python values as nn op properties: an int sequence is an i64 array, an int or
    bool an i64, a float an f64, a str a string; an `Attribute` is kept as it is."""
    out: dict[str, Attribute] = {}
    for k, v in values.items():
        if isinstance(v, Attribute):
            out[k] = v
        elif isinstance(v, list | tuple):
            out[k] = nn.int_array(v)
        elif isinstance(v, bool | int):
            out[k] = nn.i64_attr(int(v))
        elif isinstance(v, float):
            out[k] = nn.f64(v)
        else:
            out[k] = StringAttr(v)
    return out


def typed_value(shape: list[int]) -> SSAValue:
    """A free-standing SSA value of type tensor<shape x f32> to build ops on."""
    return GraphBuilder().input("v", shape)
