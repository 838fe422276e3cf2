"""Quantization-aware training: `nn.fake_quant` where `quantize` will round.

    >>> qat_model = fake_quantize(float_model, calib_batches, bits=4)   # w4a8
    >>> trainer = Trainer(qat_model, config); trainer.fit(data)
    >>> trained = trainer.trained(float_model)      # the float model, QAT-trained weights
    >>> run_pipeline(trained, "calibrate,quantize{bits=4 granularity=per-channel}")

The weights keep their names, so the trained float model lowers through the same
`calibrate,quantize` pipeline as post-training quantization, to the same integer IR
(other scales, same ops and types).

Before (after `default` and `calibrate`):

    %c1 = nn.conv2d %input, %w1, %b1 {act = "relu", quant.range = ...} : (...)

After `fake_quantize(..., bits=4)`:

    %0 = nn.fake_quant %input {mode = "activation", bits = 8, scale = 0.0039, zero_point = 0,
                               signed = 0} : tensor<1x1x8x8xf32>
    %1 = nn.fake_quant %w1 {mode = "weight", bits = 4, axis = 0} : tensor<16x1x3x3xf32>
    %c1 = nn.conv2d %0, %1, %b1 {act = "relu", ...} : (...)

Where the simulation simplifies: the activation ranges are those calibrated before
training (fixed; the export recalibrates on the trained weights), only contraction
inputs are fake-quantized (a contraction's int8 output feeding the next one through
max pooling, flatten or relu is the next one's input, so it is rounded there), biases
stay float (int32 at s_x · s_w in the integer IR: rounding far below the weights').
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import Operation, SSAValue

from irflow.diagnostics import IrflowError
from irflow.dialects import nn
from irflow.dialects.nn.fake_quant import FakeQuantOp
from irflow.graph import main_func
from irflow.passes.calibrate import calibrate, recorded_range
from irflow.passes.quantize import CONTRACTIONS, TRANSPARENT, activation_type
from irflow.train.retype import retype
from irflow.weights import attach_weights, weights_of


def _source(value: SSAValue) -> SSAValue:
    """The value whose quantized type `value` carries: through the ops that move storage
    integers unchanged (max pooling, reshapes, relu), as `quantize` propagates it."""
    while isinstance(value.owner, TRANSPARENT) and value.owner.operands:
        value = value.owner.operands[0]
    return value


def fake_quantize(module: ModuleOp, calib_batches: Sequence[dict[str, np.ndarray]], *,
                  bits: int = 4, act_bits: int = 8, granularity: str = "per-channel",
                  symmetric: bool = True) -> ModuleOp:
    """A copy of `module` (weights shared) with `nn.fake_quant` on every contraction's
    constant weight and activation input; activation ranges calibrated (min-max) on
    `calib_batches`, as `calibrate` then `quantize{symmetric=...}` would."""
    if granularity not in ("per-channel", "per-tensor"):
        raise IrflowError(f"granularity must be per-channel or per-tensor, got '{granularity}'")
    new = attach_weights(module.clone(), weights_of(module))
    first = next(iter(calib_batches[0].values()))
    observed = retype(new, batch=len(first))  # the same ops, at the calibration batch
    calibrate(observed, calib_batches)
    for op, seen in zip(new.walk(), observed.walk()):
        if "quant.range" in seen.attributes:
            op.attributes["quant.range"] = seen.attributes["quant.range"]
    main_func(new).arg_attrs = main_func(observed).arg_attrs
    block = main_func(new).body.blocks[0]
    for op in list(block.ops):
        if not isinstance(op, CONTRACTIONS):
            continue
        w = op.operands[1]
        if isinstance(w.owner, nn.ConstantOp):
            axis = len(nn.shape_of(w)) - 1 if isinstance(op, nn.MatmulOp) else 0
            props = {"mode": StringAttr("weight"), "bits": nn.i64_attr(bits)}
            if granularity == "per-channel":
                props["axis"] = nn.i64_attr(axis)
            _insert(op, 1, FakeQuantOp.make([w], props))
        r = recorded_range(_source(op.operands[0]))
        if r is not None:
            qt = activation_type(r[0], r[1], symmetric, act_bits)
            props = {"mode": StringAttr("activation"), "bits": nn.i64_attr(act_bits),
                     "scale": nn.f64(qt.scale), "zero_point": nn.i64_attr(qt.zero_point),
                     "signed": nn.i64_attr(int(qt.signed))}
            _insert(op, 0, FakeQuantOp.make([op.operands[0]], props))
    for op in block.walk():
        op.attributes.pop("quant.range", None)
    main_func(new).arg_attrs = main_func(module).arg_attrs  # without the recorded ranges
    return new


def _insert(op: Operation, index: int, fq: Operation) -> None:
    block = op.parent
    assert block is not None
    block.insert_op_before(fq, op)
    fq.location = op.location
    op.operands[index] = fq.results[0]
