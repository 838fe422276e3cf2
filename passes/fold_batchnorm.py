"""`fold-batchnorm`: fold inference batch normalization into the conv or linear before it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, ModuleOp, TensorType
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint

from irflow.dialects import nn
from irflow.weights import WeightStore, constant_value, dense_attr, weights_of

# Producers whose output channels batchnorm's axis 1 can be folded into.
BN_FOLDABLE = (nn.Conv2dOp, nn.LinearOp)


@dataclass
class FoldBatchNormIntoProducer(RewritePattern):
    """`nn.batchnorm(nn.conv2d(x, W, b))` -> `nn.conv2d(x, W*s, (b-mean)*s+beta)`; also linear.

        %y = nn.conv2d %x, %w : (...) -> tensor<1x4x6x6xf32>
        %z = nn.batchnorm %y, %g, %beta, %m, %v : (...) -> tensor<1x4x6x6xf32>
    becomes
        %z = nn.conv2d %x, %w2, %b2 : (...) -> tensor<1x4x6x6xf32>
    """

    store: WeightStore

    @op_type_rewrite_pattern
    def match_and_rewrite(self, bn: nn.BatchNormOp, rewriter: PatternRewriter) -> None:
        producer = bn.input.owner
        if not isinstance(producer, BN_FOLDABLE):
            return  # only a conv or linear has per-output-channel weights to scale
        if not producer.results[0].has_one_use():
            return  # the unnormalized value is used elsewhere too: folding would duplicate work
        if producer.properties.get("act") is not None:
            return  # an activation sits between the producer and the batchnorm
        if isinstance(producer, nn.LinearOp) and len(nn.shape_of(producer.output)) != 2:
            return  # batchnorm's axis 1 is the features axis only for rank-2 linear outputs
        w_op = nn.defining_constant(producer.weight)
        b_op = nn.defining_constant(producer.bias)
        params = [nn.defining_constant(v) for v in (bn.scale, bn.bias, bn.mean, bn.var)]
        if w_op is None or (producer.bias is not None and b_op is None) or None in params:
            return  # weights or batchnorm parameters are computed, not constants
        consts = [c for c in (w_op, b_op, *params) if c is not None]

        weight = constant_value(w_op, self.store)
        if not np.issubdtype(weight.dtype, np.floating):
            return  # integer (quantized) weights cannot absorb a float scale exactly
        scale, beta, mean, var = (constant_value(c, self.store).astype(np.float64)
                                  for c in params)  # type: ignore[arg-type]
        denom = var + bn.epsilon.value.data
        if not np.all(denom > 0):
            return  # var + epsilon <= 0: the batchnorm itself divides by zero; keep it visible
        s = scale / np.sqrt(denom)
        bias = (np.zeros_like(s) if b_op is None
                else constant_value(b_op, self.store).astype(np.float64))
        new_w = (weight.astype(np.float64) * s.reshape((-1,) + (1,) * (weight.ndim - 1)))
        new_b = (bias - mean) * s + beta

        inline = all(isinstance(c.value, DenseIntOrFPElementsAttr) for c in consts)
        w_const = self._constant(new_w.astype(weight.dtype), w_op, "weight", inline)
        b_const = self._constant(new_b.astype(weight.dtype), b_op or w_op, "bias", inline)
        for c, old in ((w_const, w_op), (b_const, b_op)):
            c.location = producer.location
            c.output.name_hint = old.output.name_hint if old is not None else None
        # Scaling each output channel keeps every zero a zero, so a pruned weight's
        # `nn.sparsity` (and any other discardable attribute) still holds.
        w_const.attributes.update(w_op.attributes)
        rewriter.insert((w_const, b_const), InsertPoint.before(producer))

        folded = type(producer).create(
            operands=[producer.operands[0], w_const.output, b_const.output],
            result_types=[bn.output.type],
            properties=dict(producer.properties),
            attributes=dict(producer.attributes),
        )
        folded.location = producer.location
        rewriter.replace(bn, folded)
        rewriter.erase(producer)
        for c in dict.fromkeys(consts):  # a constant may feed several operands
            if not c.output.uses:
                rewriter.erase(c)

    def _constant(self, array: np.ndarray, like: nn.ConstantOp, role: str,
                  inline: bool) -> nn.ConstantOp:
        ty = like.output.type
        assert isinstance(ty, TensorType)
        new_ty = TensorType(ty.element_type, list(array.shape))
        if inline:
            return nn.ConstantOp(dense_attr(array, ty.element_type), new_ty)
        hint = like.value.key if isinstance(like.value, nn.WeightAttr) else role
        if role == "bias" and hint.endswith(".weight"):
            hint = hint.removesuffix(".weight") + ".bias"  # no bias before: name it after W
        return nn.ConstantOp(nn.WeightAttr(self.store.add(f"{hint}.bnfold", array)), new_ty)


def patterns(store: WeightStore) -> list[RewritePattern]:
    """The patterns of this pass, for reuse in other pipelines' rewrite drivers."""
    return [FoldBatchNormIntoProducer(store)]


@dataclass(frozen=True)
class FoldBatchNormPass(ModulePass):
    """Fold inference batchnorm into the preceding conv2d (or rank-2 linear).

    Inference batchnorm is a per-channel affine map, `z = (y - mean) * s + beta` with
    `s = scale / sqrt(var + eps)`. When `y = conv(x, W) + b`, the same result comes from
    one conv with `W' = W * s` (per output channel) and `b' = (b - mean) * s + beta`.

        // before
        %y = nn.conv2d %x, %w, %b : (tensor<1x3x8x8xf32>, ...) -> tensor<1x4x6x6xf32>
        %z = nn.batchnorm %y, %scale, %beta, %mean, %var {epsilon = 1.0e-05 : f64} : (...) -> ...
        // after
        %w2 = nn.constant #nn.weight<"conv1.weight.bnfold"> : tensor<4x3x3x3xf32>
        %b2 = nn.constant #nn.weight<"conv1.bias.bnfold"> : tensor<4xf32>
        %z = nn.conv2d %x, %w2, %b2 : (tensor<1x3x8x8xf32>, ...) -> tensor<1x4x6x6xf32>

    Does:
    - conv2d (any groups, strides, pads, dilations; with or without bias) -> batchnorm;
    - linear -> batchnorm when the linear output is rank 2 (batchnorm's axis 1 is then the
      features axis).

    Does not:
    - fold when the producer's result has another user (both values would be needed), when
      the producer already has a fused `act` (the activation sits between them), or when a
      weight, bias or batchnorm parameter is not an `nn.constant`;
    - fold a batchnorm into a following conv (padding makes that inexact);
    - remove the old constants' arrays from the weight store (their `nn.constant`s are
      erased when nothing else uses them; `WeightStore.prune_unused` drops the arrays).

    The folded arrays are computed in float64 and cast to the weight's dtype; the result
    matches conv-then-batchnorm within float rounding (tests: rtol 1e-5 in float32). New
    constants go to the weight store (`weights_of(module)`), or stay inline `dense<...>`
    when every constant they come from was inline (golden tests, `xdsl-opt`). The new conv
    keeps the old conv's location. Creates only `nn` ops.
    """

    name = "fold-batchnorm"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(
            GreedyRewritePatternApplier(patterns(weights_of(op))),  # type: ignore[arg-type]
            apply_recursively=False,
        ).rewrite_module(op)


__all__ = ["FoldBatchNormPass", "FoldBatchNormIntoProducer", "patterns", "BN_FOLDABLE"]
