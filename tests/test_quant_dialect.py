"""The quant dialect: !quant.uniform types (round trip, per-axis, invalid) and the casts."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from xdsl.dialects.builtin import TensorType, f32
from xdsl.utils.exceptions import VerifyException

from irflow.backends.reference import run
from irflow.diagnostics import IrflowError, ParseError
from irflow.dialects import quant
from irflow.dialects.quant import UniformQuantizedType, format_float
from irflow.io import parse_mlir, print_module
from irflow.weights import numpy_dtype


def _roundtrip_type(text: str) -> str:
    module = parse_mlir(
        f'func.func @f(%a: tensor<2x3x{text}>) {{\n  func.return\n}}', verify=True
    )
    printed = print_module(module)
    start = printed.index("tensor<2x3x") + len("tensor<2x3x")
    depth, i = 1, start
    while depth:  # the element type ends at the tensor's closing '>'
        depth += {"<": 1, ">": -1}.get(printed[i], 0)
        i += 1
    return printed[start: i - 1]


@pytest.mark.parametrize("text, expected", [
    ("!quant.uniform<i8:f32, 0.0125:-3>", "!quant.uniform<i8:f32, 0.0125:-3>"),
    ("!quant.uniform<i8:f32, 0.5:0>", "!quant.uniform<i8:f32, 0.5>"),
    ("!quant.uniform<u8:f32, 2.0e-2:128>", "!quant.uniform<u8:f32, 0.02:128>"),
    ("!quant.uniform<i8<-127:127>:f32, 1.0>", "!quant.uniform<i8<-127:127>:f32, 1.0>"),
    ("!quant.uniform<i8<-128:127>:f32, 1.0>", "!quant.uniform<i8:f32, 1.0>"),
    ("!quant.uniform<i4:f32:0, {0.1, 0.2}>", "!quant.uniform<i4:f32:0, {0.1,0.2}>"),
    ("!quant.uniform<i32:f32:1, {1.0e-5:0, 2.0e-5:0, 3.0e-5:0}>",
     "!quant.uniform<i32:f32:1, {1.0e-05,2.0e-05,3.0e-05}>"),
])
def test_type_syntax_round_trips(text, expected):
    got = _roundtrip_type(text)
    assert got == expected
    assert _roundtrip_type(got) == expected


def test_per_axis_type_on_its_axis():
    module = parse_mlir(
        "func.func @f(%a: tensor<3x2x!quant.uniform<i8:f32:1, {0.1, 0.2:5}>>) {\n"
        "  func.return\n}"
    )
    ty = list(module.ops)[0].body.blocks[0].args[0].type
    q = ty.element_type
    assert q.is_per_axis and q.quantized_axis == 1
    assert q.scale_values().tolist() == [0.1, 0.2]
    assert q.zero_point_values().tolist() == [0, 5]
    assert q.broadcast_shape(2) == (1, -1)
    with pytest.raises(ValueError, match="per-axis"):
        _ = q.scale


def test_make_and_views():
    q = UniformQuantizedType.make(4, 0.25, -2, storage_range=(-7, 7))
    assert (q.bits, q.signed, q.qmin, q.qmax, q.scale, q.zero_point) == (4, True, -7, 7, 0.25, -2)
    assert str(q) == "!quant.uniform<i4<-7:7>:f32, 0.25:-2>"
    u = UniformQuantizedType.make(8, [0.5, 0.25], 3, signed=False, axis=0)
    assert str(u) == "!quant.uniform<u8:f32:0, {0.5:3,0.25:3}>"


def test_scales_round_trip_exactly():
    """A float64 scale survives print -> parse bit for bit (MLIR's %e would not)."""
    rng = np.random.default_rng(0)
    scales = rng.uniform(1e-7, 10, 20)
    q = UniformQuantizedType.make(8, scales, 0, axis=0)
    text = str(q)
    module = parse_mlir(f"func.func @f(%a: tensor<20x{text}>) {{\n  func.return\n}}")
    parsed = list(module.ops)[0].body.blocks[0].args[0].type.element_type
    assert np.array_equal(parsed.scale_values(), scales)
    assert format_float(1e-45) == "1.0e-45" and format_float(3.0) == "3.0"


def test_numpy_dtype_is_the_storage():
    assert numpy_dtype(UniformQuantizedType.make(8, 0.1)) == np.int8
    assert numpy_dtype(UniformQuantizedType.make(4, 0.1)) == np.int8  # int4 held in int8
    assert numpy_dtype(UniformQuantizedType.make(8, 0.1, signed=False)) == np.uint8
    assert numpy_dtype(UniformQuantizedType.make(32, 0.1)) == np.int32


@pytest.mark.parametrize("text, message", [
    ("!quant.uniform<i8:f32, 0.0>", "positive finite scales, got 0.0"),
    ("!quant.uniform<i8:f32, 0.1:128>", "zero points in the storage range [-128, 127], got 128"),
    ("!quant.uniform<i8<5:3>:f32, 0.1>", "with min < max, got [5, 3]"),
    ("!quant.uniform<i8:f32 0.1>", "','"),
    ("!quant.uniform<x8:f32, 0.1>", "storage type like i8"),
])
def test_invalid_types(text, message):
    with pytest.raises(ParseError, match=None) as err:
        parse_mlir(f"func.func @f(%a: tensor<2x{text}>) {{\n  func.return\n}}")
    assert message in str(err.value)


def test_per_axis_scale_count_checked_by_cast():
    with pytest.raises(IrflowError, match="expects 2 scales for the result's axis 0, got 3"):
        parse_mlir(
            "func.func @f(%w: tensor<2x3xf32>) {\n"
            "  %q = quant.qcast %w : tensor<2x3xf32> to "
            "tensor<2x3x!quant.uniform<i8:f32:0, {0.1,0.2,0.3}>>\n  func.return\n}"
        )


def test_casts_build_verify_and_execute():
    q = UniformQuantizedType.make(8, 0.1, 3)
    text = (
        "func.func @main(%x: tensor<5xf32>) -> tensor<5xf32> {\n"
        f"  %q = quant.qcast %x : tensor<5xf32> to tensor<5x{q}>\n"
        f"  %r = irq.requantize %q : tensor<5x{q}> to tensor<5x!quant.uniform<i8:f32, 0.2>>\n"
        "  %y = quant.dcast %r : tensor<5x!quant.uniform<i8:f32, 0.2>> to tensor<5xf32>\n"
        "  func.return %y : tensor<5xf32>\n}"
    )
    module = parse_mlir(text)
    x = np.array([-20.0, -0.26, 0.0, 0.34, 20.0], np.float32)
    y = run(module, {"x": x}, check=True)["output0"]
    # quantize: rint(x/0.1)+3 clamped = [-128, 0, 3, 6, 127]; requantize to scale 0.2:
    # M = 0.5 (m0 = 2^30, shift 0: one rounding, ties toward +inf) on q-3 = [-131, -3, 0,
    # 3, 124] -> [-65.5 -> -65, -1.5 -> -1, 0, 1.5 -> 2, 62]; dequantized * 0.2.
    assert y.tolist() == pytest.approx([-13.0, -0.2, 0.0, 0.4, 12.4])
    op = quant.QuantizeOp(module.ops.first.body.blocks[0].args[0], TensorType(f32, [5]))
    with pytest.raises(VerifyException, match="quantized result element type"):
        op.verify()


@pytest.mark.skipif(shutil.which("mlir-opt-19") is None, reason="mlir-opt-19 not installed")
def test_types_parse_in_mlir_opt():
    """MLIR's own quant dialect reads irflow's types (in the generic form)."""
    module = parse_mlir(
        "func.func @f(%a: tensor<2x!quant.uniform<i8<-127:127>:f32, 0.003921568859368563>>,\n"
        "             %b: tensor<2x3x!quant.uniform<i4<-7:7>:f32:0, {0.1,0.25:1}>>,\n"
        "             %c: tensor<2x!quant.uniform<u8:f32, 0.02:128>>) {\n  func.return\n}"
    )
    text = print_module(module, generic=True)
    out = subprocess.run(["mlir-opt-19", "--allow-unregistered-dialect", "-"], input=text,
                         capture_output=True, text=True, check=True).stdout
    assert re.search(r"!quant.uniform<i8<-127:127>:f32, 0.00392156885\d*>", out)
    assert "!quant.uniform<i4<-7:7>:f32:0, {1.000000e-01,2.500000e-01:1}>" in out
    assert "!quant.uniform<u8:f32, 2.000000e-02:128>" in out
