"""Two user passes in a few lines each: load them without touching irflow.

    irflow opt model.irf --load-pass examples/custom_pass.py:DecomposeRelu6 \\
        -p "default,decompose-relu6,count-ops"

or from Python:

    >>> from irflow.registry import load_pass
    >>> from irflow.pipeline import run_pipeline
    >>> load_pass("examples/custom_pass.py:DecomposeRelu6")
    >>> run_pipeline(module, "decompose-relu6,count-ops{top=3}")

Loading the file registers every pass defined in it (`decompose-relu6` and, through the
decorator, `count-ops`). See docs/passes.md.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from irflow.dialects import nn
from irflow.registry import module_pass


class Relu6ToClip(RewritePattern):
    """`nn.relu6 %x` -> `nn.clip %x {min = 0.0, max = 6.0}` (for hardware without relu6)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.Relu6Op, rewriter: PatternRewriter) -> None:
        clip = nn.ClipOp(op.input, min=nn.f64(0.0), max=nn.f64(6.0))
        clip.location = op.location  # rewrites do not carry locations by themselves
        rewriter.replace(op, clip)


@dataclass(frozen=True)
class DecomposeRelu6(ModulePass):
    """Rewrite every stand-alone `nn.relu6` as `nn.clip` in [0, 6] (results are identical).

        %y = nn.relu6 %x : tensor<4xf32>
    becomes
        %y = nn.clip %x {min = 0.000000e+00 : f64, max = 6.000000e+00 : f64} : tensor<4xf32>

    Does not touch a relu6 already fused into a producer's `act`.
    """

    name = "decompose-relu6"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(Relu6ToClip()).rewrite_module(op)


@module_pass("count-ops")
def count_ops(ctx: Context, module: ModuleOp, *, top: int = 10) -> None:
    """Print the `top` most frequent op names to stderr (an analysis: the IR is unchanged)."""
    counts = Counter(op.name for op in module.walk())
    for name, n in counts.most_common(top):
        print(f"{n:6d}  {name}", file=sys.stderr)
