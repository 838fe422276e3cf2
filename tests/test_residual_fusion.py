"""Residual adds fused into the conv before them (`backends/reference/residual.py`): the
fused program gives the op-by-op program's bits, and only fusable pairs fuse."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import StringAttr

from irflow.backends.reference import compile_function, conv
from irflow.dialects import nn
from irflow.graph import GraphBuilder


def _block(act: str | None, k: int = 3, skip_first: bool = True, second_use: bool = False,
           wide: bool = False) -> tuple[object, np.ndarray]:
    """x -> conv a (relu) -> conv b; out = act(skip + b), skip = x (or relu(x), computed
    after conv b)."""
    rng = np.random.default_rng(0)
    c, hw = (32, 24) if wide else (8, 6)
    g = GraphBuilder()
    x = g.input("x", [1, c, hw, hw])

    def conv(v: object, name: str, act_: str | None = None) -> object:
        w = (rng.standard_normal((c, c, k, k)) / (3 * c)).astype(np.float32)
        b = rng.standard_normal(c).astype(np.float32)
        return g.add(nn.Conv2dOp(v, g.weight(f"{name}.w", w), g.weight(f"{name}.b", b),
                                 strides=(1, 1), pads=(k // 2,) * 4, act=act_)).results[0]

    skip = x if skip_first else None
    a = conv(x, "a", "relu")
    b = conv(a, "b")
    if skip is None:  # computed after conv b: cannot be fused into it
        skip = g.add(nn.ReluOp(x)).results[0]
    attrs = {} if act is None else {"act": StringAttr(act)}
    y = g.add(nn.AddOp.make([skip, b], attrs)).results[0]
    outs = [y, b] if second_use else [y]
    xs = rng.standard_normal((1, c, hw, hw)).astype(np.float32) * 2
    return g.finish(outs), xs


@pytest.mark.parametrize("jit", ["on", "off"])
@pytest.mark.parametrize("act", [None, "relu", "relu6"])
@pytest.mark.parametrize("k", [1, 3])
def test_fused_program_gives_the_same_bits(jit: str, act: str | None, k: int,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRFLOW_REFERENCE_JIT", jit)
    module, x = _block(act, k)
    prog = compile_function(module)
    assert prog.fused_steps is not None and len(prog.fused_steps) == len(prog.steps) - 1
    fused = prog.run([x])
    op_by_op = prog.run([x], check=True)  # check runs the unfused steps
    for name in fused:
        np.testing.assert_array_equal(fused[name], op_by_op[name])


def test_fused_winograd_layer_gives_the_same_bits() -> None:
    module, x = _block("relu", 3, wide=True)  # 32 channels, 24x24: F(4x4, 3x3) with numba
    prog = compile_function(module)
    assert prog.fused_steps is not None
    w = np.zeros((32, 32, 3, 3), np.float32)
    if conv.jit_available():
        assert conv.winograd_tile(x, w, None, (1, 1), (1, 1), 1, (24, 24)) == 4
    fused, op_by_op = prog.run([x]), prog.run([x], check=True)
    for name in fused:
        np.testing.assert_array_equal(fused[name], op_by_op[name])


@pytest.mark.parametrize("case", ["skip-after-conv", "conv-result-read-twice"])
def test_unfusable_pairs_stay_apart(case: str) -> None:
    module, x = (_block("relu", skip_first=False) if case == "skip-after-conv"
                 else _block("relu", second_use=True))
    prog = compile_function(module)
    assert prog.fused_steps is None
    assert len(prog.run([x])) == len(prog.output_names)
