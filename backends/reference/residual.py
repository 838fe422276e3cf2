"""Residual adds fused into the convolution before them, when the reference executor
compiles a program (`executor.compile_function`).

A ResNet block ends `y = conv(x) + b; z = act(y + skip)`: the conv's epilogue writes y,
then the add reads y and skip and writes z — for a 56×56×256 output, two more passes
over 3 MiB than needed. Fused, the conv step also takes `skip`. On the GEMM path (1×1
and im2col convs) BLAS adds the GEMM result to the skip (`gemm_acc.py`), in the skip's
own buffer when nothing reads it afterwards (else in a copy), and one pass adds the bias
and applies the activation: act((skip + conv) + b), the op-by-op sum up to rounding
(~1e-7 of ResNet-50's output scale). Elsewhere (Winograd, depthwise, banded, no BLAS
found) the epilogue computes act((conv + b) + skip) in one pass
(`conv.epilogue_residual`): the same additions in the same order, the same bits.
`tests/test_residual_fusion.py` checks both, and that no buffer still read is written.

The fusion applies when the add is a float32/float64 `nn.add` (optionally with a fused
relu/relu6) of two values of one shape, one of them the result of an `nn.conv2d` without
a fused activation that nothing else reads, and the other already computed when the conv
runs. The program keeps both step lists: the fused one runs by default (and under
`timings`, which then charge the add's time to the conv), the op-by-op one under
`check` and `observe`, which look at every op's result (calibration reads the conv's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from xdsl.ir import Operation

from irflow.backends.reference.conv import EPILOGUE_ACTS, WeightCache, conv2d
from irflow.dialects import nn

Pending = tuple[Operation, Any, tuple[int, ...], tuple[int, ...]]
"""(op, kernel, operand slots, result slots): one step before its free list."""

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

FRESH = (nn.Conv2dOp, nn.AddOp, nn.ReluOp)
"""Ops whose float kernels always return a new array: a skip they produced may take the
fused step's result in place."""


def _float_shape(value: Any) -> tuple[tuple[int, ...], np.dtype] | None:
    from irflow.backends.reference.executor import ValueSpec

    spec = ValueSpec.of(value)
    return (spec.shape, spec.dtype) if spec.dtype in FLOATS else None


def _dtype(value: Any) -> np.dtype | None:
    from irflow.backends.reference.executor import ValueSpec

    return ValueSpec.of(value).dtype


def _conv_residual_kernel(conv: nn.Conv2dOp, act: str | None, overwrite: bool) -> Any:
    """The conv's kernel with the residual as its last operand: act((conv + b) + r)."""
    strides, pads, dil, groups = nn.conv2d_params(conv)
    cache = WeightCache()

    def kernel(x: np.ndarray, w: np.ndarray, *rest: np.ndarray) -> np.ndarray:
        b = rest[0] if len(rest) == 2 else None
        return conv2d(x, w, b, strides, pads, dil, groups, act, cache, residual=rest[-1],
                      overwrite=overwrite)

    return kernel


def _free_after(skip: int, k: int, conv_ins: tuple[int, ...], pending: Sequence[Pending],
                protected: set[int]) -> bool:
    """Whether the skip value's buffer may take the fused step's result: nothing reads
    it after the add (step k), it is not the program's (an input, a constant, an
    output), the conv does not read it, and only convs and the add read it at all (a
    view-returning op such as a reshape could share its memory)."""
    if skip in protected or skip in conv_ins:
        return False
    producer = next((op for op, _, _, outs in pending if skip in outs), None)
    if type(producer) not in FRESH:  # e.g. a reshape may hand back an input's own array
        return False
    for j, (op, _, ins, _) in enumerate(pending):
        if skip in ins and (j > k or type(op) not in (nn.Conv2dOp, nn.AddOp)):
            return False
    return True


def fuse(pending: Sequence[Pending], output_slots: Sequence[int],
         protected: set[int] | None = None) -> list[Pending]:
    """`pending` with each fusable (conv, add) pair made one step (module docstring);
    `protected` (inputs, constants, outputs) are slots whose arrays must not be written."""
    protected = set(output_slots) | (protected or set())
    producer = {s: k for k, (_, _, _, outs) in enumerate(pending) for s in outs}
    uses = Counter(s for _, _, ins, _ in pending for s in ins)
    uses.update(output_slots)
    fused: dict[int, Pending] = {}  # conv step index -> its fused step
    dropped: set[int] = set()
    for k, (op, _, ins, outs) in enumerate(pending):
        if type(op) is not nn.AddOp or len(ins) != 2:
            continue
        act = nn.fused_act(op)
        if act is not None and act not in EPILOGUE_ACTS:
            continue
        kinds = [_float_shape(v) for v in (*op.operands, op.results[0])]
        if None in kinds or len(set(kinds)) != 1:
            continue
        for mine, other in ((ins[0], ins[1]), (ins[1], ins[0])):
            j = producer.get(mine)
            if j is None or j in fused or j in dropped or uses[mine] != 1 or mine == other:
                continue
            conv, _, conv_ins, _ = pending[j]
            if type(conv) is not nn.Conv2dOp or nn.fused_act(conv) is not None:
                continue
            if any(_dtype(v) not in FLOATS for v in conv.operands):
                continue
            if producer.get(other, -1) >= j:  # the skip is not computed yet at the conv
                continue
            overwrite = _free_after(other, k, conv_ins, pending, protected)
            fused[j] = (conv, _conv_residual_kernel(conv, act, overwrite), (*conv_ins, other),
                        outs)
            dropped.add(k)
            break
    if not fused:
        return list(pending)
    return [fused.get(k, step) for k, step in enumerate(pending) if k not in dropped]
