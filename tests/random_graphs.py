"""A seeded generator of small, valid nn graphs for differential tests.

    >>> case = random_graph(seed)          # same seed -> same graph, weights and inputs
    >>> case.module, case.inputs, case.calib, case.summary

Graphs are built with `GraphBuilder` from a numpy `Generator(seed)`: a stem of random
layers on a [N, C, H, W] tensor — conv2d (random groups incl. depthwise, stride, pads,
dilation, kernel, bias or not, a fusable or a non-fusable activation after it, sometimes
batchnorm in between), standalone batchnorm and activations, residual adds (with a
preceding same-shape tensor, else a shape-preserving conv branch), max/avg pooling,
channel concat of two branches, a per-channel affine map (broadcasting mul and add/sub
with [C, 1, 1] constants) — then one head: nothing (4-D output), global average pool, or
flatten -> linear, optionally followed by a small matmul whose rhs is a constant or a
second graph input `v`, and sometimes a second model output. Channel counts favour
multiples of 4 so that 2:4 pruning has something to prune; sizes stay tiny (each case
runs in milliseconds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue

from irflow.dialects import nn
from irflow.graph import GraphBuilder

T = TypeVar("T")
FUSABLE = sorted(nn.FUSABLE_ACTIVATIONS)
# Activations that are not fusable stay standalone nn ops after `fuse-activation`.
OTHER_ACTIVATIONS = ("gelu", "hardsigmoid", "neg", "clip")
CHANNELS = (1, 2, 3, 4, 4, 4, 6, 8, 8)  # multiples of 4 favoured (2:4 pruning)


@dataclass
class Case:
    seed: int
    module: ModuleOp
    inputs: dict[str, np.ndarray]
    calib: list[dict[str, np.ndarray]]
    summary: list[str] = field(default_factory=list)  # one line per generated layer


class _Gen:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.g = GraphBuilder()
        self.summary: list[str] = []
        self.n = 0
        self.inputs: dict[str, tuple[int, ...]] = {}  # graph inputs: name -> shape

    def input(self, name: str, shape: tuple[int, ...]) -> SSAValue:
        self.inputs[name] = shape
        return self.g.input(name, shape)

    # -- helpers ---------------------------------------------------------------

    def pick(self, seq: Sequence[T]) -> T:
        return seq[int(self.rng.integers(len(seq)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def weight(self, hint: str, shape: tuple[int, ...], positive: bool = False) -> SSAValue:
        a = self.rng.standard_normal(shape).astype(np.float32)
        if positive:
            a = np.abs(a) + np.float32(0.5)
        self.n += 1
        return self.g.weight(f"l{self.n}.{hint}", a)

    def log(self, text: str) -> None:
        self.summary.append(text)

    @staticmethod
    def shape(v: SSAValue) -> list[int]:
        return list(v.type.get_shape())  # type: ignore[attr-defined]

    # -- layers ----------------------------------------------------------------

    def any_activation(self) -> str:
        """relu/relu6 (integer clamps after quantize) more often than the others, which
        keep their producer in float under int8."""
        if self.chance(0.6):
            return self.pick(("relu", "relu6", "clip"))
        return self.pick(FUSABLE) if self.chance(0.7) else self.pick(OTHER_ACTIVATIONS)

    def activation(self, x: SSAValue, name: str) -> SSAValue:
        self.log(f"act {name}")
        if name == "clip":
            lo = float(self.pick((-1.0, 0.0, -0.5)))
            return self.g.add(nn.ClipOp.make([x], {"min": nn.f64(lo), "max": nn.f64(1.5)})
                              ).results[0]
        if name in nn.FUSABLE_ACTIVATIONS:
            cls = nn.FUSABLE_ACTIVATIONS[name]
        else:
            cls = {"gelu": nn.GeluOp, "hardsigmoid": nn.HardSigmoidOp, "neg": nn.NegOp}[name]
        return self.g.add(cls(x)).results[0]

    def batchnorm(self, x: SSAValue) -> SSAValue:
        c = self.shape(x)[1]
        ops = [x, self.weight("bn.weight", (c,)), self.weight("bn.bias", (c,)),
               self.weight("bn.mean", (c,)), self.weight("bn.var", (c,), positive=True)]
        self.log(f"batchnorm c={c}")
        return self.g.add(nn.BatchNormOp.make(ops, {})).results[0]

    def conv(self, x: SSAValue, out_channels: int | None = None,
             keep_spatial: bool = False) -> SSAValue:
        _, c, h, w = self.shape(x)
        groups = 1
        if c > 1 and self.chance(0.35):
            groups = c if self.chance(0.5) else self.pick([d for d in range(1, c + 1)
                                                           if c % d == 0])
        if out_channels is None:
            mult = self.pick((1, 1, 2)) if groups == c else 1
            f = groups * mult if groups == c else self.pick(
                [k for k in CHANNELS if k % groups == 0] or [groups])
        else:
            f = out_channels
            if f % groups:
                groups = 1
        if keep_spatial:
            k = self.pick((1, 3))
            stride, dil = 1, self.pick((1, 1, 2)) if k == 3 else 1
            p = dil * (k - 1) // 2
            pads = [p, p, p, p]
        else:
            k = self.pick((1, 2, 3, 3))
            stride = self.pick((1, 1, 2))
            dil = self.pick((1, 1, 2)) if k > 1 else 1
            pads = [int(self.rng.integers(0, 3)) for _ in range(4)]
            span = dil * (k - 1) + 1
            if h + pads[0] + pads[2] < span or w + pads[1] + pads[3] < span:
                pads = [span - 1] * 4
        wt = self.weight("conv.weight", (f, c // groups, k, k))
        bias = self.weight("conv.bias", (f,)) if self.chance(0.6) else None
        self.log(f"conv {c}->{f} k={k} s={stride} d={dil} g={groups} pads={pads} "
                 f"bias={bias is not None}")
        y = self.g.add(nn.Conv2dOp(x, wt, bias, strides=[stride, stride], pads=pads,
                                   dilations=[dil, dil], groups=groups)).results[0]
        if self.chance(0.4):
            y = self.batchnorm(y)
        if self.chance(0.7):
            y = self.activation(y, self.any_activation())
        return y

    def pool(self, x: SSAValue) -> SSAValue:
        _, _, h, w = self.shape(x)
        kh, kw = min(int(self.rng.integers(1, 4)), h), min(int(self.rng.integers(1, 4)), w)
        stride = self.pick((1, 2, 2))
        pads = [min(int(self.rng.integers(0, 2)), k - 1) for k in (kh, kw, kh, kw)]
        is_max = self.chance(0.5)
        props = {"kernel": nn.int_array([kh, kw]), "strides": nn.int_array([stride, stride]),
                 "pads": nn.int_array(pads)}
        if self.chance(0.3):
            props["ceil_mode"] = nn.i64_attr(1)
        if not is_max and self.chance(0.5):
            props["count_include_pad"] = nn.i64_attr(1)
        self.log(f"{'maxpool' if is_max else 'avgpool'} k={kh}x{kw} s={stride} pads={pads} "
                 f"ceil={'ceil_mode' in props}")
        cls = nn.MaxPoolOp if is_max else nn.AvgPoolOp
        return self.g.add(cls.make([x], props)).results[0]

    def residual(self, x: SSAValue, earlier: list[SSAValue]) -> SSAValue:
        same = [v for v in earlier if self.shape(v) == self.shape(x) and v is not x]
        other = self.pick(same) if same else self.conv(x, self.shape(x)[1], keep_spatial=True)
        self.log("add (residual)")
        y = self.g.add(nn.AddOp.make([x, other], {})).results[0]
        if self.chance(0.6):
            y = self.activation(y, self.pick(("relu", "relu6")))
        return y

    def concat(self, x: SSAValue) -> SSAValue:
        a = self.conv(x, keep_spatial=True)
        b = x if self.chance(0.4) else self.conv(x, keep_spatial=True)
        self.log("concat axis=1")
        return self.g.add(nn.ConcatOp.make([a, b], {"axis": nn.i64_attr(1)})).results[0]

    def channel_affine(self, x: SSAValue) -> SSAValue:
        """x * s + b with per-channel constants [C, 1, 1] (broadcasting binary ops)."""
        c = self.shape(x)[1]
        y = self.g.add(nn.MulOp.make([x, self.weight("scale", (c, 1, 1), positive=True)], {})
                       ).results[0]
        op = nn.AddOp if self.chance(0.5) else nn.SubOp
        self.log(f"channel_affine mul+{op.name.split('.')[1]} c={c}")
        return self.g.add(op.make([y, self.weight("shift", (c, 1, 1))], {})).results[0]

    def head(self, x: SSAValue) -> list[SSAValue]:
        kind = self.pick(("none", "gap", "linear", "linear", "gap-linear"))
        if kind == "none":
            return [x]
        if kind.startswith("gap"):
            self.log("global_avg_pool")
            x = self.g.add(nn.GlobalAvgPoolOp.make([x], {})).results[0]
        if "linear" not in kind:
            return [x]
        self.log("flatten")
        x = self.g.add(nn.FlattenOp.make([x], {"axis": nn.i64_attr(1)})).results[0]
        k = self.shape(x)[1]
        n = self.pick((3, 4, 8, 10))
        wt = self.weight("fc.weight", (n, k))
        bias = [self.weight("fc.bias", (n,))] if self.chance(0.7) else []
        self.log(f"linear {k}->{n} bias={bool(bias)}")
        y = self.g.add(nn.LinearOp.make([x, wt, *bias], {})).results[0]
        if self.chance(0.5):
            y = self.activation(y, self.any_activation())
        outs = [y]
        if self.chance(0.5):
            m = self.pick((4, 5, 8))
            self.log(f"matmul {n}->{m}")
            if self.chance(0.6):
                rhs = self.weight("mm.rhs", (n, m))
            else:  # activation x activation: a second graph input
                rhs = self.input("v", (n, m))
                self.log("input v")
            z = self.g.add(nn.MatmulOp.make([y, rhs], {})).results[0]
            outs = [z, y] if self.chance(0.4) else [z]
        return outs


def random_graph(seed: int) -> Case:
    """A small valid nn model, its inputs and two calibration batches, all from `seed`."""
    gen = _Gen(seed)
    rng = gen.rng
    shape = (int(gen.pick((1, 1, 2))), int(gen.pick(CHANNELS)),
             int(rng.integers(4, 11)), int(rng.integers(4, 11)))
    gen.log(f"input {list(shape)}")
    x = gen.input("x", shape)
    values = [x]
    for _ in range(int(rng.integers(1, 5))):
        kind = gen.pick(("conv", "conv", "conv", "bn", "act", "residual", "pool", "concat",
                         "affine"))
        _, _, h, w = gen.shape(x)
        if kind == "conv":
            x = gen.conv(x)
        elif kind == "bn":
            x = gen.batchnorm(x)
        elif kind == "act":
            x = gen.activation(x, gen.any_activation())
        elif kind == "residual":
            x = gen.residual(x, values)
        elif kind == "pool" and min(h, w) >= 2:
            x = gen.pool(x)
        elif kind == "concat":
            x = gen.concat(x)
        elif kind == "affine":
            x = gen.channel_affine(x)
        values.append(x)
    outputs = gen.head(x)
    module = gen.g.finish(outputs)

    def sample() -> dict[str, np.ndarray]:
        return {k: rng.standard_normal(s).astype(np.float32) for k, s in gen.inputs.items()}

    calib = [sample(), sample()]
    return Case(seed, module, sample(), calib, gen.summary)
