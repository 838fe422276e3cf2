"""`fold-constants`: evaluate ops whose operands are all constants, at compile time.

Each foldable op is evaluated with the reference executor's kernel table
(`irflow.backends.reference.evaluate_op`, so folding cannot disagree with execution)
and replaced by one `nn.constant` per result. The arrays go into the module's weight
store (`irflow.weights.weights_of`), named after the first operand weight and the op
(`fc.weight.transpose`), else after the result. A result stays inline (`dense<...>`)
when every operand was inline and it is no larger than the largest of them (irflow's
passes keep inline constants inline), or when it has at most `inline_limit` elements.
Constants left without uses are erased.

Before:

    %w = nn.constant #nn.weight<"fc.weight"> : tensor<10x64xf32>
    %t = nn.transpose %w {perm = array<i64: 1, 0>} : (tensor<10x64xf32>) -> tensor<64x10xf32>
    %y = nn.matmul %x, %t : (tensor<1x64xf32>, tensor<64x10xf32>) -> tensor<1x10xf32>

After:

    %t = nn.constant #nn.weight<"fc.weight.transpose"> : tensor<64x10xf32>
    %y = nn.matmul %x, %t : (tensor<1x64xf32>, tensor<64x10xf32>) -> tensor<1x10xf32>

What it does not do: it folds only `Pure` ops that have a reference kernel (never
function calls or ops of unknown effect), it skips results of more than
`max_elements` elements (a broadcast could otherwise blow a small constant up), and
it deletes from the weight store only the intermediates it created itself (another
module, such as the original of a before/after comparison, may share the store;
`WeightStore.prune_unused` drops unreferenced arrays before saving).
Mirrors xDSL's `constant-fold-interp`, with irflow's own kernels and weight store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import AnyFloat, IntegerType, ModuleOp, TensorType
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
)
from xdsl.traits import Pure

from irflow.backends.reference.kernels import evaluate_op, kernel_factory
from irflow.diagnostics import ExecutionError, IrflowError, PassError
from irflow.dialects import nn
from irflow.weights import WeightStore, constant_value, dense_attr, numpy_dtype, weights_of


def _name_hint(op: Operation, index: int) -> str:
    """A readable weight name: `<first operand weight>.<op>`, else the result's SSA name,
    else `folded.<op>` (the store makes it unique)."""
    short = op.name.removeprefix("nn.")
    for operand in op.operands:
        const = nn.defining_constant(operand)
        if const is not None and isinstance(const.value, nn.WeightAttr):
            base = f"{const.value.key}.{short}"
            return base if len(op.results) == 1 else f"{base}.{index}"
    return op.results[index].name_hint or f"folded.{short}"


@dataclass
class FoldConstantOp(RewritePattern):
    """Replace an op with all-constant operands by constants holding its results.

        %a = nn.constant dense<[-1.0, 2.0]> : tensor<2xf32>
        %b = nn.relu %a : tensor<2xf32>
    becomes
        %b = nn.constant dense<[0.0, 2.0]> : tensor<2xf32>
    """

    store: WeightStore
    inline_limit: int = 0
    max_elements: int = 1 << 24
    created: set[str] = field(default_factory=set)
    """Store entries this pattern added; dropped again if a later fold consumes them."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if isinstance(op, nn.ConstantOp) or not op.operands or not op.results:
            return  # nothing to fold: already a constant, or a source/sink
        if not op.has_trait(Pure) or kernel_factory(type(op)) is None:
            return  # unknown effects, or no kernel to evaluate it with
        constants = [nn.defining_constant(v) for v in op.operands]
        if any(c is None for c in constants):
            return  # some operand is only known at run time
        types = [r.type for r in op.results]
        if not all(isinstance(t, TensorType) for t in types):
            return  # results that nn.constant cannot hold
        if any(np.prod(t.get_shape()) > self.max_elements for t in types):  # type: ignore[attr-defined]
            return  # folding would materialize a huge array
        try:
            dtypes = [numpy_dtype(t.element_type) for t in types]  # type: ignore[attr-defined]
        except IrflowError:
            return  # an element type with no numpy representation
        arrays = [constant_value(c, self.store) for c in constants]  # type: ignore[arg-type]
        try:
            values = evaluate_op(op, arrays)
        except ExecutionError:
            return  # fails on these constants (e.g. an index out of range): keep the op, so
            # running the program reports it as before
        new_ops: list[Operation] = []
        for i, (value, ty, dtype) in enumerate(zip(values, types, dtypes, strict=True)):
            assert isinstance(ty, TensorType)
            if value.shape != tuple(ty.get_shape()) or value.dtype != dtype:
                raise PassError(
                    f"fold-constants: the {op.name} kernel returned {value.dtype} "
                    f"{list(value.shape)} for result {i}, the IR declares {ty}", op
                )
            new_ops.append(self._constant(op, i, value, ty, constants))  # type: ignore[arg-type]
        rewriter.replace(op, new_ops, [c.results[0] for c in new_ops])
        for c in dict.fromkeys(constants):  # erase operands this fold left unused
            assert c is not None
            if not c.results[0].uses:
                rewriter.erase(c)
                if isinstance(c.value, nn.WeightAttr) and c.value.key in self.created:
                    self.created.discard(c.value.key)
                    del self.store[c.value.key]  # an intermediate of a folded chain

    def _constant(self, op: Operation, index: int, value: np.ndarray, ty: TensorType,
                  operands: list[nn.ConstantOp]) -> nn.ConstantOp:
        array = np.ascontiguousarray(value)
        inline_operands = [c for c in operands if not isinstance(c.value, nn.WeightAttr)]
        stays_inline = len(inline_operands) == len(operands) and array.size <= max(
            math.prod(nn.shape_of(c.output)) for c in operands
        )  # computed from inline constants only, and no larger than they are
        inline = array.size <= self.inline_limit or stays_inline
        if inline and isinstance(ty.element_type, IntegerType | AnyFloat):
            attr: nn.WeightAttr | object = dense_attr(array, ty.element_type)
        else:
            key = self.store.add(_name_hint(op, index), array)
            self.created.add(key)
            attr = nn.WeightAttr(key)
        const = nn.ConstantOp(attr, ty)  # type: ignore[arg-type]
        const.location = op.location
        name = op.results[index].name_hint
        if name:
            const.results[0].name_hint = name
        return const


@dataclass(frozen=True)
class FoldConstantsPass(ModulePass):
    """Fold every op whose operands are all `nn.constant` (see the module docstring)."""

    name = "fold-constants"

    inline_limit: int = 0
    """Results with at most this many elements become inline `dense<...>` constants."""

    max_elements: int = 1 << 24
    """Results larger than this are left unfolded."""

    def apply(self, ctx: Context, module: ModuleOp) -> None:
        pattern = FoldConstantOp(weights_of(module), self.inline_limit, self.max_elements)
        PatternRewriteWalker(pattern, apply_recursively=True).rewrite_module(module)
