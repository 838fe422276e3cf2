"""Kernels of the backward ops (`nn/gradients.py`) and the losses (`nn/losses.py`).

Vectorized like the forward kernels they mirror: the convolution gradients are one batched
matmul per kernel tap (KH·KW of them, each over the whole batch), the input gradient
adding each tap's product into the strided positions it read (col2im); pooling gradients
loop over the taps too, never over elements.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from irflow.backends.reference.conv import pad_nchw, tap_views
from irflow.backends.reference.kernels import (
    Kernel,
    _pool_planner,
    erf,
    register_kernel,
    sigmoid,
    softmax,
)
from irflow.backends.reference.math_grad_kernels import MATH_DERIVATIVES, math_derivative
from irflow.dialects import nn
from irflow.dialects.nn import fake_quant as fq
from irflow.dialects.nn import gradients as g
from irflow.dialects.nn import losses as lo

# --------------------------------------------------------------------------------------
# Convolution


def _grad_by_group(dy: np.ndarray, groups: int) -> np.ndarray:
    """dy [N, F, OH, OW] as [G, F/G, N·OH·OW] (one copy), the contraction axis last."""
    n, f, oh, ow = dy.shape
    d = dy.reshape(n, groups, f // groups, oh * ow).transpose(1, 2, 0, 3)
    return np.ascontiguousarray(d).reshape(groups, f // groups, n * oh * ow)


def conv2d_weight_grad(x: np.ndarray, dy: np.ndarray, w_shape: Sequence[int],
                       strides: Sequence[int], pads: Sequence[int], dilations: Sequence[int],
                       groups: int) -> np.ndarray:
    """dw[f, c, i, j] = Σ_{n, oh, ow} dy[n, f, oh, ow] · xpad[n, c, oh·s + i·d, ow·s + j·d]:
    per kernel tap (i, j) one batched matmul of dy [G, F/G, N·OH·OW] with the strided
    input view the tap read, as [G, N·OH·OW, C/G]."""
    n = x.shape[0]
    f, cg, kh, kw = w_shape
    oh, ow = dy.shape[2], dy.shape[3]
    d = _grad_by_group(dy, groups)
    dw = np.empty((f, cg, kh, kw), dtype=dy.dtype)
    for k, tap in enumerate(tap_views(pad_nchw(x, pads), (kh, kw), strides, dilations, (oh, ow))):
        t = np.ascontiguousarray(tap.reshape(n, groups, cg, oh, ow).transpose(1, 2, 0, 3, 4))
        dw[:, :, k // kw, k % kw] = np.matmul(
            d, t.reshape(groups, cg, n * oh * ow).transpose(0, 2, 1)).reshape(f, cg)
    return dw


def conv2d_input_grad(dy: np.ndarray, w: np.ndarray, x_shape: Sequence[int],
                      strides: Sequence[int], pads: Sequence[int], dilations: Sequence[int],
                      groups: int) -> np.ndarray:
    """dx = the transposed convolution: per kernel tap (i, j), w[:, :, i, j]ᵀ · dy (one
    batched matmul over the groups) added into the padded input at the strided positions
    that tap read (col2im), then the padding cut off."""
    n, c, h, wd = x_shape
    f, cg, kh, kw = w.shape
    oh, ow = dy.shape[2], dy.shape[3]
    top, left, bottom, right = pads
    d = _grad_by_group(dy, groups)
    wt = np.ascontiguousarray(w.reshape(groups, f // groups, cg, kh * kw).transpose(3, 0, 2, 1))
    dxp = np.zeros((c, n, h + top + bottom, wd + left + right), dtype=dy.dtype)  # C first
    for k, tap in enumerate(tap_views(dxp, (kh, kw), strides, dilations, (oh, ow))):
        tap += np.matmul(wt[k], d).reshape(c, n, oh, ow)
    return dxp[:, :, top:top + h, left:left + wd].transpose(1, 0, 2, 3)


@register_kernel(g.Conv2dInputGradOp)
def _conv2d_input_grad(op: g.Conv2dInputGradOp) -> Kernel:
    strides, pads, dil, groups = nn.conv2d_params(op)
    x_shape = nn.shape_of(op.output)
    return lambda dy, w: conv2d_input_grad(dy, w, x_shape, strides, pads, dil, groups)


@register_kernel(g.Conv2dWeightGradOp)
def _conv2d_weight_grad(op: g.Conv2dWeightGradOp) -> Kernel:
    strides, pads, dil, groups = nn.conv2d_params(op)
    w_shape = nn.shape_of(op.output)
    return lambda x, dy: conv2d_weight_grad(x, dy, w_shape, strides, pads, dil, groups)


# --------------------------------------------------------------------------------------
# Pooling


@register_kernel(g.MaxPoolGradOp, g.AvgPoolGradOp)
def _pool_grad(op: g.Pool2dGradOp) -> Kernel:
    """Over the KH·KW taps: max pooling sends each window's gradient to the first tap
    holding its maximum (torch's choice on ties); average pooling adds dy / count to every
    tap. The extra ceil_mode and explicit padding are cut off at the end."""
    average = isinstance(op, g.AvgPoolGradOp)
    plan = _pool_planner(op, average)
    k, s, *_ = nn.pool2d_params(op)

    def pool_grad(x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        n, c, h, w = x.shape
        pl = plan(h, w)
        top, left = pl.pads[0], pl.pads[1]
        shape = (n, c, h + pl.pads[0] + pl.pads[2], w + pl.pads[1] + pl.pads[3])
        dxp = np.zeros(shape, dtype=dy.dtype)
        dtaps = tap_views(dxp, k, s, (1, 1), pl.out_hw)
        if average:
            share = dy / pl.count.astype(dy.dtype)  # type: ignore[union-attr]
            for tap in dtaps:
                tap += share
        else:
            fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
            xtaps = list(tap_views(pad_nchw(x, pl.pads, fill), k, s, (1, 1), pl.out_hw))
            y = xtaps[0].copy()
            for tap in xtaps[1:]:
                np.maximum(y, tap, out=y)
            pending = np.ones(y.shape, dtype=bool)
            for xtap, dtap in zip(xtaps, dtaps):
                hit = (xtap == y) & pending
                dtap += np.where(hit, dy, 0)
                pending &= ~hit
        return dxp[:, :, top:top + h, left:left + w]

    return pool_grad


@register_kernel(g.ReduceMeanGradOp)
def _reduce_mean_grad(op: g.ReduceMeanGradOp) -> Kernel:
    x_shape = nn.shape_of(op.output)
    rank = len(x_shape)
    axes = sorted({a % rank for a in nn.prop_ints(op, "axes", ())})
    count = math.prod(x_shape[a] for a in axes)
    kept = tuple(1 if i in axes else d for i, d in enumerate(x_shape))

    def reduce_mean_grad(dy: np.ndarray) -> np.ndarray:
        share = dy.reshape(kept) / dy.dtype.type(count)
        return np.ascontiguousarray(np.broadcast_to(share, x_shape))

    return reduce_mean_grad


# --------------------------------------------------------------------------------------
# Elementwise


def activation_derivative(fn: str, x: np.ndarray, props: dict[str, float | str | None]
                          ) -> np.ndarray:
    """f'(x) of the unary function `fn` (relu's derivative at 0 is 0, as in torch)."""
    one, zero = x.dtype.type(1.0), x.dtype.type(0.0)
    if fn == "relu":
        return (x > 0).astype(x.dtype)
    if fn == "relu6":
        return ((x > 0) & (x < 6)).astype(x.dtype)
    if fn == "clip":
        lo, hi = props.get("min"), props.get("max")
        inside = np.ones(x.shape, dtype=bool)
        if lo is not None:
            inside &= x > x.dtype.type(lo)
        if hi is not None:
            inside &= x < x.dtype.type(hi)
        return inside.astype(x.dtype)
    if fn == "sigmoid":
        sg = sigmoid(x)
        return sg * (one - sg)
    if fn == "tanh":
        t = np.tanh(x)
        return one - t * t
    if fn == "silu":
        sg = sigmoid(x)
        return sg * (one + x * (one - sg))
    if fn == "hardsigmoid":
        alpha = float(props.get("alpha") or 0.2)  # type: ignore[arg-type]
        beta = float(props.get("beta") if props.get("beta") is not None else 0.5)  # type: ignore[arg-type]
        t = x * x.dtype.type(alpha) + x.dtype.type(beta)
        return np.where((t > 0) & (t < 1), x.dtype.type(alpha), zero)
    if fn == "hardswish":  # x · clip(x/6 + 1/2, 0, 1)
        slope = x / x.dtype.type(3) + x.dtype.type(0.5)
        return np.where(x <= -3, zero, np.where(x >= 3, one, slope))
    if fn == "erf":
        return x.dtype.type(2 / math.sqrt(math.pi)) * np.exp(-x * x)
    if fn == "sqrt":
        return x.dtype.type(0.5) / np.sqrt(x)
    if fn == "exp":
        return np.exp(x)
    if fn == "gelu":
        if props.get("approximate") == "tanh":
            c = x.dtype.type(math.sqrt(2.0 / math.pi))
            a = x.dtype.type(0.044715)
            inner = c * (x + a * x * x * x)
            t = np.tanh(inner)
            return x.dtype.type(0.5) * (one + t) + x.dtype.type(0.5) * x * (one - t * t) * c * (
                one + x.dtype.type(3) * a * x * x)
        cdf = x.dtype.type(0.5) * (one + erf(x * x.dtype.type(1 / math.sqrt(2.0))))
        pdf = np.exp(x * x * x.dtype.type(-0.5)) * x.dtype.type(1 / math.sqrt(2 * math.pi))
        return cdf + x * pdf
    if fn in MATH_DERIVATIVES:
        return math_derivative(fn, x, props)
    raise ValueError(f"no derivative for '{fn}'")


@register_kernel(g.ActivationGradOp)
def _activation_grad(op: g.ActivationGradOp) -> Kernel:
    fn = op.fn.data
    props: dict[str, float | str | None] = {
        name: (None if op.properties.get(name) is None
               else nn.prop_float(op, name, 0.0))
        for name in ("min", "max", "alpha", "beta", "gamma", "lambd", "bias")
    }
    props["approximate"] = nn.prop_str(op, "approximate", "none")
    return lambda x, dy: dy * activation_derivative(fn, x, props)


@register_kernel(g.SoftmaxGradOp)
def _softmax_grad(op: g.SoftmaxGradOp) -> Kernel:
    axis = nn.prop_int(op, "axis", -1)

    def softmax_grad(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        dx = dy - (dy * y).sum(axis=axis, keepdims=True)
        dx *= y
        return dx

    return softmax_grad


def sum_to(x: np.ndarray, out_shape: Sequence[int]) -> np.ndarray:
    """Sum `x` over the axes along which `out_shape` was broadcast to x's shape."""
    lead = x.ndim - len(out_shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(out_shape) if d == 1 and x.shape[lead + i] != 1)
    return x.sum(axis=axes).reshape(out_shape) if axes else x.reshape(out_shape)


@register_kernel(g.SumToOp)
def _sum_to(op: g.SumToOp) -> Kernel:
    out_shape = nn.shape_of(op.output)
    return lambda x: sum_to(x, out_shape)


# --------------------------------------------------------------------------------------
# Normalization


@register_kernel(g.LayerNormGradOp)
def _layernorm_grad(op: g.LayerNormGradOp) -> Kernel:
    eps = nn.prop_float(op, "epsilon", 1e-5)
    rank = len(nn.shape_of(op.operands[0]))
    axes = tuple(range(nn.prop_int(op, "axis", -1) % rank, rank))
    scale_shape = nn.shape_of(op.operands[1])

    def layernorm_grad(x: np.ndarray, scale: np.ndarray, dy: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
        count = x.dtype.type(math.prod(x.shape[a] for a in axes))
        mu = x.mean(axis=axes, keepdims=True)
        d = x - mu
        rstd = 1 / np.sqrt(np.mean(d * d, axis=axes, keepdims=True) + x.dtype.type(eps))
        xhat = d * rstd
        dscale = sum_to(dy * xhat, scale_shape)
        dxhat = dy * scale
        dx = dxhat - dxhat.sum(axis=axes, keepdims=True) / count
        dx -= xhat * ((dxhat * xhat).sum(axis=axes, keepdims=True) / count)
        dx *= rstd
        return dx, dscale

    return layernorm_grad


@register_kernel(g.BatchNormGradOp)
def _batchnorm_grad(op: g.BatchNormGradOp) -> Kernel:
    eps = nn.prop_float(op, "epsilon", 1e-5)

    def batchnorm_grad(x: np.ndarray, scale: np.ndarray, mean: np.ndarray, var: np.ndarray,
                       dy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        bshape = (1, -1) + (1,) * (x.ndim - 2)
        axes = (0, *range(2, x.ndim))
        rstd = 1 / np.sqrt(var + var.dtype.type(eps))
        dx = dy * (scale * rstd).reshape(bshape)
        dscale = (dy * (x - mean.reshape(bshape))).sum(axis=axes) * rstd
        return dx, dscale, dy.sum(axis=axes)

    return batchnorm_grad


# --------------------------------------------------------------------------------------
# Movement


@register_kernel(g.SliceGradOp)
def _slice_grad(op: g.SliceGradOp) -> Kernel:
    x_shape = nn.shape_of(op.output)
    rank = len(x_shape)
    axes = nn.prop_ints(op, "axes", ())
    index: list[slice] = [slice(None)] * rank
    for st, en, ax, sp in zip(nn.prop_ints(op, "starts", ()), nn.prop_ints(op, "ends", ()),
                              axes, nn.prop_ints(op, "steps", (1,) * len(axes))):
        index[ax % rank] = slice(st, en, sp)
    key = tuple(index)

    def slice_grad(dy: np.ndarray) -> np.ndarray:
        dx = np.zeros(x_shape, dtype=dy.dtype)
        dx[key] = dy
        return dx

    return slice_grad


@register_kernel(g.GatherGradOp)
def _gather_grad(op: g.GatherGradOp) -> Kernel:
    d_shape = nn.shape_of(op.output)
    axis = nn.prop_int(op, "axis", 0) % len(d_shape)

    def gather_grad(indices: np.ndarray, dy: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, np.int64) % d_shape[axis]
        moved = np.zeros((d_shape[axis],) + d_shape[:axis] + d_shape[axis + 1:], dy.dtype)
        rows = np.moveaxis(dy.reshape(d_shape[:axis] + (idx.size,) + d_shape[axis + 1:]),
                           axis, 0)
        np.add.at(moved, idx.reshape(-1), rows)
        return np.ascontiguousarray(np.moveaxis(moved, 0, axis))

    return gather_grad


# --------------------------------------------------------------------------------------
# Losses


def log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    z -= np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return z


def _smoothed_targets(labels: np.ndarray, classes: int, eps: float, dtype: np.dtype
                      ) -> np.ndarray:
    t = np.full((len(labels), classes), eps / classes, dtype=dtype)
    t[np.arange(len(labels)), labels] += dtype.type(1.0 - eps)
    return t


def _check_labels(labels: np.ndarray, classes: int) -> np.ndarray:
    labels = np.asarray(labels, np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        bad = labels[(labels < 0) | (labels >= classes)].flat[0]
        raise ValueError(f"label {int(bad)} is outside [0, {classes})")
    return labels


@register_kernel(lo.CrossEntropyOp)
def _cross_entropy(op: lo.CrossEntropyOp) -> Kernel:
    eps = nn.prop_float(op, "label_smoothing", 0.0)

    def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        labels = _check_labels(labels, logits.shape[1])
        t = _smoothed_targets(labels, logits.shape[1], eps, logits.dtype)
        return np.asarray(-(t * log_softmax(logits)).sum() / logits.shape[0], logits.dtype)

    return cross_entropy


@register_kernel(lo.CrossEntropyGradOp)
def _cross_entropy_grad(op: lo.CrossEntropyGradOp) -> Kernel:
    eps = nn.prop_float(op, "label_smoothing", 0.0)

    def cross_entropy_grad(logits: np.ndarray, labels: np.ndarray, dloss: np.ndarray
                           ) -> np.ndarray:
        labels = _check_labels(labels, logits.shape[1])
        p = softmax(logits, -1)
        p -= _smoothed_targets(labels, logits.shape[1], eps, logits.dtype)
        p *= dloss / logits.dtype.type(logits.shape[0])
        return p

    return cross_entropy_grad


@register_kernel(lo.KlDivOp)
def _kl_div(op: lo.KlDivOp) -> Kernel:
    temp = nn.prop_float(op, "temperature", 1.0)

    def kl_div(s: np.ndarray, t: np.ndarray) -> np.ndarray:
        ls, lt = log_softmax(s / s.dtype.type(temp)), log_softmax(t / s.dtype.type(temp))
        kl = (np.exp(lt) * (lt - ls)).sum() / s.shape[0]
        return np.asarray(kl * temp * temp, s.dtype)

    return kl_div


@register_kernel(lo.KlDivGradOp)
def _kl_div_grad(op: lo.KlDivGradOp) -> Kernel:
    temp = nn.prop_float(op, "temperature", 1.0)

    def kl_div_grad(s: np.ndarray, t: np.ndarray, dloss: np.ndarray) -> np.ndarray:
        d = softmax(s / s.dtype.type(temp), -1) - softmax(t / s.dtype.type(temp), -1)
        d *= dloss * s.dtype.type(temp / s.shape[0])
        return d

    return kl_div_grad


@register_kernel(lo.MseOp)
def _mse(op: lo.MseOp) -> Kernel:
    def mse(p: np.ndarray, t: np.ndarray) -> np.ndarray:
        d = p - t
        return np.asarray((d * d).mean(), p.dtype)

    return mse


@register_kernel(lo.MseGradOp)
def _mse_grad(op: lo.MseGradOp) -> Kernel:
    def mse_grad(p: np.ndarray, t: np.ndarray, dloss: np.ndarray) -> np.ndarray:
        d = p - t
        d *= dloss * p.dtype.type(2.0 / p.size)
        return d

    return mse_grad


# --------------------------------------------------------------------------------------
# Fake quantization (quantization-aware training)


def _fake_quant_params(op: fq.FakeQuantOp | fq.FakeQuantGradOp
                       ) -> tuple[str, int, int | None, float, int, bool]:
    return (nn.prop_str(op, "mode", ""), nn.prop_int(op, "bits", 8),
            None if op.properties.get("axis") is None else nn.prop_int(op, "axis", 0),
            nn.prop_float(op, "scale", 1.0), nn.prop_int(op, "zero_point", 0),
            bool(nn.prop_int(op, "signed", 1)))


def _quant_grid(x: np.ndarray, mode: str, bits: int, axis: int | None, scale: float,
                zero_point: int, signed: bool) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """(q before clamping, per-element scale, zero point, qmin, qmax) of `x`, in float32."""
    from irflow.intmath import storage_range
    from irflow.passes.quantize import weight_scales

    if mode == "weight":
        qmax = (1 << (bits - 1)) - 1
        ax = None if axis is None else axis % x.ndim
        s = np.asarray(weight_scales(x, bits, ax, "minmax"), np.float32)
        if ax is not None:
            s = s.reshape([-1 if i == ax else 1 for i in range(x.ndim)])
        else:
            s = s.reshape(())
        return np.rint(x.astype(np.float32) / s), s, 0, -qmax, qmax
    qmin, qmax = storage_range(bits, signed)
    s = np.asarray(scale, np.float32)
    q = np.rint(x.astype(np.float32) / s)
    q += np.float32(zero_point)
    return q, s, zero_point, qmin, qmax


@register_kernel(fq.FakeQuantOp)
def _fake_quant(op: fq.FakeQuantOp) -> Kernel:
    params = _fake_quant_params(op)

    def fake_quant(x: np.ndarray) -> np.ndarray:
        q, s, z, qmin, qmax = _quant_grid(x, *params)
        np.clip(q, qmin, qmax, out=q)
        q -= np.float32(z)
        return (q * s).astype(x.dtype)

    return fake_quant


@register_kernel(fq.FakeQuantGradOp)
def _fake_quant_grad(op: fq.FakeQuantGradOp) -> Kernel:
    params = _fake_quant_params(op)

    def fake_quant_grad(x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        q, _, _, qmin, qmax = _quant_grid(x, *params)
        return dy * ((q >= qmin) & (q <= qmax)).astype(dy.dtype)

    return fake_quant_grad
