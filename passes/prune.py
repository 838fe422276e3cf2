"""`prune`: magnitude (unstructured), structured channel, and N:M weight pruning.

Three modes, one pass (`prune{mode=...}`); the shared machinery (masks, the
`nn.sparsity` attribute, channel dependency groups) is in `irflow.sparsity`.
docs/pruning.md describes the modes, the IR encoding and the exactness guarantee.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.passes import ModulePass

from irflow.dialects import nn
from irflow.graph import main_func
from irflow.passes.prune_channels import prune_channels
from irflow.passes.prune_common import (
    PruneReport,
    PruneWarning,
    WeightEditor,
    check_patterns,
    note_quantized,
    split_patterns,
    validate_options,
)
from irflow.sparsity import (
    WeightUse,
    flatten_block,
    matches_any,
    nm_mask,
    set_sparsity,
    smallest_mask,
    unstructured_attr,
    weight_uses,
)

# --------------------------------------------------------------------------------------
# magnitude and N:M



def _selected_uses(fn: func.FuncOp, exclude: Sequence[str], report: PruneReport,
                   ) -> list[WeightUse]:
    note_quantized(fn, report)
    uses = weight_uses(fn)
    check_patterns(report, exclude, [u.names() for u in uses])
    out: list[WeightUse] = []
    seen: set[nn.ConstantOp] = set()
    for u in uses:
        pattern = matches_any(u.names(), exclude)
        if pattern is not None:
            report.skipped.append(f"{u.key}: excluded by pattern '{pattern}'")
            continue
        if u.const in seen:
            continue  # one weight shared by several layers is pruned once
        seen.add(u.const)
        out.append(u)
    return out


def prune_magnitude(module: ModuleOp, sparsity: float = 0.5, scope: str = "global",
                    exclude: Sequence[str] = ()) -> PruneReport:
    """Zero the smallest-magnitude weights of every conv2d / linear / matmul weight.

    `scope="global"`: one threshold over all selected weights, so that `sparsity` of
    all their elements together are zero; `scope="layer"`: each weight gets `sparsity`.
    Every pruned constant gets `#nn.sparsity<unstructured, density = d>`.
    """
    validate_options("magnitude", sparsity, scope, 0.0, "l1", 2, 4)
    fn = main_func(module)
    exclude = split_patterns(exclude)
    report = PruneReport("magnitude")
    uses = _selected_uses(fn, exclude, report)
    weights = WeightEditor(module, fn)
    arrays = [weights.value(u.const) for u in uses]
    if scope == "global" and arrays:
        flat = np.concatenate([np.abs(a).reshape(-1) for a in arrays])
        keep_all = smallest_mask(flat, round(sparsity * flat.size))
        bounds = np.cumsum([0] + [a.size for a in arrays])
        masks = [keep_all[lo:hi].reshape(a.shape)
                 for lo, hi, a in zip(bounds[:-1], bounds[1:], arrays)]
    else:
        masks = [smallest_mask(np.abs(a), round(sparsity * a.size)) for a in arrays]
    for u, a, keep in zip(uses, arrays, masks):
        report.params_before += a.size
        report.masks[u.key] = keep
        pruned = np.where(keep, a, np.zeros((), a.dtype))
        report.zeros += int(a.size - np.count_nonzero(pruned))
        if keep.all():
            continue  # nothing below the threshold: the weight stays dense, unmarked
        weights.rewrite(u.const, pruned)
        set_sparsity(u.const, unstructured_attr(pruned))
    report.params_after = report.params_before
    return report


def prune_nm(module: ModuleOp, n: int = 2, m: int = 4, exclude: Sequence[str] = ()
             ) -> PruneReport:
    """Keep the N largest of every run of M weights along the reduction axis.

    The axis is the input channels of a conv2d weight (FCHW: runs of M input channels at
    each output channel and kernel tap), the columns of a linear weight and the rows of
    a matmul's constant rhs. A linear layer reading a flatten of [N, C, H, W] is a conv
    with an H×W kernel: its runs are M channels at one position, H·W columns apart
    (`stride = H·W`), when C is a multiple of M. A weight whose axis is not a multiple
    of M (e.g. the first conv on 3 channels, a depthwise conv) is skipped with a
    warning. Every pruned constant gets `#nn.sparsity<"N:M", axis = A[, stride = S]>`.
    """
    validate_options("nm", 0.0, "global", 0.0, "l1", n, m)
    fn = main_func(module)
    exclude = split_patterns(exclude)
    report = PruneReport("nm")
    weights = WeightEditor(module, fn)
    for u in _selected_uses(fn, exclude, report):
        a = weights.value(u.const)
        if a.shape[u.axis] % m:
            report.skip(f"{u.key}: reduction axis {u.axis} of {list(a.shape)} has "
                        f"{a.shape[u.axis]} elements, not a multiple of {m}; left dense")
            continue
        stride = _run_stride(u, m)
        keep = nm_mask(a, n, m, u.axis, stride)
        pruned = np.where(keep, a, np.zeros((), a.dtype))
        weights.rewrite(u.const, pruned)
        set_sparsity(u.const, nn.SparsityAttr.nm(n, m, u.axis, stride))
        report.masks[u.key] = keep
        report.params_before += a.size
        report.zeros += int(a.size - np.count_nonzero(pruned))
    report.params_after = report.params_before
    return report


def _run_stride(u: WeightUse, m: int) -> int:
    """H·W for a linear reading a flatten of [N, C, H, W] with C a multiple of M, else 1."""
    if not isinstance(u.op, nn.LinearOp):
        return 1
    flat = u.op.operands[0].owner
    if not isinstance(flat, Operation) or flatten_block(flat) is None:
        return 1
    x = nn.shape_of(flat.operands[0])
    block = flatten_block(flat) or 1
    return block if block > 1 and x[1] % m == 0 else 1


@dataclass(frozen=True)
class PrunePass(ModulePass):
    """Prune weights: `mode=magnitude` (unstructured), `mode=channel` (structured, removes
    channels), `mode=nm` (N:M along the reduction axis).

        prune{mode=magnitude sparsity=0.5 scope=global exclude="fc*"}
        prune{mode=channel ratio=0.25 norm=l1 fold=exact}
        prune{mode=nm n=2 m=4}

    magnitude / nm keep every shape and mark each pruned weight constant:

        // before
        %w = nn.constant #nn.weight<"fc1.weight"> : tensor<256x64xf32>
        // after prune{mode=nm}
        %w = nn.constant #nn.weight<"fc1.weight">
             {nn.sparsity = #nn.sparsity<"2:4", axis = 1>} : tensor<256x64xf32>

    channel removes filters and shrinks everything tied to them (dependency groups
    across residual adds, concats, depthwise convs, flatten -> linear):

        // before (ratio=0.25)
        %y = nn.conv2d %x, %w1, %b1 : (tensor<1x3x8x8xf32>, tensor<16x3x3x3xf32>,
             tensor<16xf32>) -> tensor<1x16x6x6xf32>
        %z = nn.conv2d %y, %w2, %b2 : (tensor<1x16x6x6xf32>, tensor<8x16x3x3xf32>,
             tensor<8xf32>) -> tensor<1x8x4x4xf32>
        // after
        %y = nn.conv2d %x, %w1, %b1 : (tensor<1x3x8x8xf32>, tensor<12x3x3x3xf32>,
             tensor<12xf32>) -> tensor<1x12x6x6xf32>
        %z = nn.conv2d %y, %w2, %b2 : (tensor<1x12x6x6xf32>, tensor<8x12x3x3xf32>,
             tensor<8xf32>) -> tensor<1x8x4x4xf32>

    Exact: the result equals the dense model with the pruned weights (magnitude, nm) or
    the removed filters (channel) set to zero, up to float rounding; a removed
    channel's constant output is folded into its consumers. Does not: fine-tune, prune
    biases or normalization parameters on their own, prune quantized (integer) weights,
    or prune a channel group tied to a graph input/output or a channel-mixing op (those
    are skipped with a `PruneWarning` saying why). Creates only `nn` ops.
    """

    name = "prune"

    mode: str = "magnitude"
    sparsity: float = 0.5
    scope: str = "global"
    exclude: tuple[str, ...] = ()
    ratio: float = 0.25
    norm: str = "l1"
    fold: str = "exact"
    n: int = 2
    m: int = 4

    def __post_init__(self) -> None:
        validate_options(self.mode, float(self.sparsity), self.scope, float(self.ratio),
                         self.norm, self.n, self.m, self.fold)

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        logging.getLogger("irflow.prune").info(run_prune(op, self).summary())


def run_prune(module: ModuleOp, options: PrunePass) -> PruneReport:
    """Run the pass's mode on `module` and return its report."""
    if options.mode == "magnitude":
        return prune_magnitude(module, options.sparsity, options.scope, options.exclude)
    if options.mode == "nm":
        return prune_nm(module, options.n, options.m, options.exclude)
    return prune_channels(module, options.ratio, options.norm, options.exclude, options.fold)


__all__ = ["PrunePass", "PruneReport", "PruneWarning", "prune_magnitude", "prune_nm",
           "prune_channels", "run_prune", "validate_options"]
