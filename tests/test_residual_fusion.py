"""Residual adds fused into the conv before them (`backends/reference/residual.py`): the
fused program gives the op-by-op program's result (the same bits on the Winograd,
depthwise and numpy paths; within rounding where BLAS adds the GEMM result to the
residual, `gemm_acc.py`), never writes a buffer someone still reads, and only fusable
pairs fuse."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import StringAttr

from irflow.backends.reference import compile_function, conv, gemm_acc
from irflow.dialects import nn
from irflow.graph import GraphBuilder


def _block(act: str | None, k: int = 3, skip: str = "x", also_out: str = "",
           wide: bool = False) -> tuple[object, np.ndarray]:
    """x -> conv a (relu) -> conv b; out = act(skip + b), skip = x (an input), relu(x)
    computed before conv a ("early": an intermediate that dies at the add), a same-shape
    reshape of x ("reshape": may be x's own array) or relu(x) after conv b ("late":
    cannot be fused); `also_out` "skip" or "conv" returns that value too."""
    rng = np.random.default_rng(0)
    c, hw = (32, 24) if wide else (8, 6)
    g = GraphBuilder()
    x = g.input("x", [1, c, hw, hw])

    def conv(v: object, name: str, act_: str | None = None) -> object:
        w = (rng.standard_normal((c, c, k, k)) / (3 * c)).astype(np.float32)
        b = rng.standard_normal(c).astype(np.float32)
        return g.add(nn.Conv2dOp(v, g.weight(f"{name}.w", w), g.weight(f"{name}.b", b),
                                 strides=(1, 1), pads=(k // 2,) * 4, act=act_)).results[0]

    s = (x if skip == "x" else g.add(nn.ReluOp(x)).results[0] if skip == "early"
         else g.add(nn.ReshapeOp(x, [1, c, hw, hw])).results[0] if skip == "reshape" else None)
    a = conv(x if s is None else s, "a", "relu")
    b = conv(a, "b")
    if s is None:  # computed after conv b: cannot be fused into it
        s = g.add(nn.ReluOp(x)).results[0]
    attrs = {} if act is None else {"act": StringAttr(act)}
    y = g.add(nn.AddOp.make([s, b], attrs)).results[0]
    outs = [y] + ([s] if also_out == "skip" else [b] if also_out == "conv" else [])
    xs = rng.standard_normal((1, c, hw, hw)).astype(np.float32) * 2
    return g.finish(outs), xs


def _same(fused: dict[str, np.ndarray], op_by_op: dict[str, np.ndarray], exact: bool) -> None:
    for name in op_by_op:
        if exact:
            np.testing.assert_array_equal(fused[name], op_by_op[name])
        else:
            np.testing.assert_allclose(fused[name], op_by_op[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("jit", ["on", "off"])
@pytest.mark.parametrize("act", [None, "relu", "relu6"])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("skip", ["x", "early", "reshape"])
def test_fused_program_gives_the_op_by_op_result(jit: str, act: str | None, k: int, skip: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRFLOW_REFERENCE_JIT", jit)
    module, x = _block(act, k, skip)
    prog = compile_function(module)
    assert prog.fused_steps is not None and len(prog.fused_steps) == len(prog.steps) - 1
    x0 = x.copy()
    fused = prog.run([x])
    op_by_op = prog.run([x], check=True)  # check runs the unfused steps
    _same(fused, op_by_op, exact=not gemm_acc.available())
    _same(prog.run([x]), fused, exact=True)  # nothing it read was overwritten
    np.testing.assert_array_equal(x, x0)  # the caller's input is never written


def test_a_skip_read_after_the_add_keeps_its_values() -> None:
    module, x = _block("relu", 1, "early", also_out="skip")  # relu(x) is also an output
    prog = compile_function(module)
    assert prog.fused_steps is not None
    fused, op_by_op = prog.run([x]), prog.run([x], check=True)
    np.testing.assert_array_equal(fused["output1"], np.maximum(x, 0))
    _same(fused, op_by_op, exact=not gemm_acc.available())


def test_fused_winograd_layer_gives_the_same_bits() -> None:
    module, x = _block("relu", 3, wide=True)  # 32 channels, 24x24: F(4x4, 3x3) with numba
    prog = compile_function(module)
    assert prog.fused_steps is not None
    w = np.zeros((32, 32, 3, 3), np.float32)
    if conv.jit_available():
        assert conv.winograd_tile(x, w, None, (1, 1), (1, 1), 1, (24, 24)) == 4
    _same(prog.run([x]), prog.run([x], check=True), exact=True)


@pytest.mark.parametrize("case", ["skip-after-conv", "conv-result-read-twice"])
def test_unfusable_pairs_stay_apart(case: str) -> None:
    module, x = (_block("relu", skip="late") if case == "skip-after-conv"
                 else _block("relu", also_out="conv"))
    prog = compile_function(module)
    assert prog.fused_steps is None
    assert len(prog.run([x])) == len(prog.output_names)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blas_accumulate_adds_the_product(dtype: type) -> None:
    if not gemm_acc.available():
        pytest.skip("numpy's OpenBLAS not found")
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((7, 5)).astype(dtype), rng.standard_normal((5, 9)).astype(dtype)
    c = rng.standard_normal((7, 12)).astype(dtype)
    expected = c.copy()
    expected[:, 2:11] += a @ b
    assert gemm_acc.accumulate(a, b, c[:, 2:11])  # a strided view: its row stride is used
    np.testing.assert_allclose(c, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert not gemm_acc.accumulate(a, b.astype(np.float16), c[:, 2:11])
    assert not gemm_acc.accumulate(a, b[:, ::2], c[:, :5])  # no unit stride along rows
