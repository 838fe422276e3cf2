"""`fuse-activation`: fold an activation into the `act` property of the op producing its input."""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from irflow.diagnostics import PassError
from irflow.dialects import nn

# Ops with an `act` property: the activation is applied to each output element as it is
# written, so it costs no extra pass over memory.
ACT_PRODUCERS = (nn.Conv2dOp, nn.LinearOp, nn.MatmulOp, nn.BinaryOp)

@dataclass
class FuseActivationIntoProducer(RewritePattern):
    """`act(producer(...))` -> `producer(...) {act = "<act>"}` when the producer has one use.

        %y = nn.conv2d %x, %w : (...) -> tensor<1x4x6x6xf32>
        %z = nn.relu %y : tensor<1x4x6x6xf32>
    becomes
        %z = nn.conv2d %x, %w {act = "relu"} : (...) -> tensor<1x4x6x6xf32>
    """

    only: frozenset[str] = frozenset(nn.FUSABLE_ACTIVATIONS)

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.UnaryOp, rewriter: PatternRewriter) -> None:
        act = nn.ACTIVATION_NAMES.get(type(op))
        if act is None or act not in self.only:
            return  # not a parameter-free activation this run may fuse (see nn.FUSABLE_ACTIVATIONS)
        producer = op.input.owner
        if not isinstance(producer, ACT_PRODUCERS):
            return  # the producer has no `act` property to carry the activation
        if producer.properties.get("act") is not None:
            return  # one fused activation per op; act(act2(x)) stays two steps
        if not producer.results[0].has_one_use():
            return  # the pre-activation value is needed elsewhere
        fused = type(producer).create(
            operands=list(producer.operands),
            result_types=[op.output.type],
            properties={**producer.properties, "act": StringAttr(act)},
            attributes=dict(producer.attributes),
        )
        fused.location = producer.location
        rewriter.replace(op, fused)
        rewriter.erase(producer)


def patterns(only: frozenset[str] = frozenset(nn.FUSABLE_ACTIVATIONS)) -> list[RewritePattern]:
    """The patterns of this pass, for reuse in other pipelines' rewrite drivers."""
    return [FuseActivationIntoProducer(only)]


@dataclass(frozen=True)
class FuseActivationPass(ModulePass):
    """Fuse relu/relu6/sigmoid/tanh/silu/hardswish into the conv/linear/matmul/add before it.

    The activation becomes the producer's `act` property; the executors and the
    accelerator apply it to the producer's output as it is written.

        // before
        %y = nn.conv2d %x, %w, %b : (tensor<1x3x8x8xf32>, ...) -> tensor<1x4x6x6xf32>
        %z = nn.relu %y : tensor<1x4x6x6xf32>
        // after
        %z = nn.conv2d %x, %w, %b {act = "relu"} : (tensor<1x3x8x8xf32>, ...) -> tensor<1x4x6x6xf32>

    Does: the activations of `nn.FUSABLE_ACTIVATIONS` (restricted by `only`, e.g.
    `fuse-activation{only=relu,relu6}` for hardware that applies just those) following an
    op of `ACT_PRODUCERS` (conv2d, linear, matmul, and the elementwise binary ops).

    Does not: fuse when the producer's result has another user, or when the producer
    already has an `act`; fuse activations with parameters (clip, gelu, hardsigmoid) —
    express relu6 as `nn.relu6`, not as a clip. Results are bit-identical to the unfused
    graph. Creates no new op kinds; the fused op keeps the producer's location.
    """

    name = "fuse-activation"

    only: tuple[str, ...] = ()
    """Activations to fuse (default: all of `nn.FUSABLE_ACTIVATIONS`)."""

    def __post_init__(self) -> None:
        unknown = [a for a in self.only if a not in nn.FUSABLE_ACTIVATIONS]
        if unknown:
            raise PassError(f"option 'only' expects activations from "
                             f"{sorted(nn.FUSABLE_ACTIVATIONS)}, got '{unknown[0]}'")

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        only = frozenset(self.only or nn.FUSABLE_ACTIVATIONS)
        PatternRewriteWalker(
            GreedyRewritePatternApplier(patterns(only)),  # type: ignore[arg-type]
            apply_recursively=False,
        ).rewrite_module(op)


__all__ = ["FuseActivationPass", "FuseActivationIntoProducer", "patterns", "ACT_PRODUCERS"]
