"""The single-layer workloads the peer benches share (bench_scalesim, bench_zigzag).

A `Layer` is one conv (any stride, padding, groups), batch-1 linear or matmul; its
`layer_module` is that layer alone as an irflow module with seeded weights and input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from irflow.dialects import nn
from irflow.graph import GraphBuilder


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str  # conv, linear, matmul
    x: tuple[int, ...]
    w: tuple[int, ...]
    stride: int = 1
    pad: int = 0
    groups: int = 1


def layer_module(layer: Layer) -> tuple[ModuleOp, dict[str, np.ndarray]]:
    """The layer as a module (weights seeded 0) and its input `x`."""
    rng = np.random.default_rng(0)
    g = GraphBuilder()
    x = g.input("x", layer.x)
    w = g.weight("w", rng.standard_normal(layer.w).astype(np.float32))
    if layer.kind == "conv":
        op = nn.Conv2dOp(x, w, strides=(layer.stride,) * 2, pads=(layer.pad,) * 4,
                         groups=layer.groups)
    elif layer.kind == "linear":
        op = nn.LinearOp.make([x, w])
    else:
        op = nn.MatmulOp.make([x, w])
    y = g.add(op).results[0]
    return g.finish([y]), {"x": rng.standard_normal(layer.x).astype(np.float32)}
