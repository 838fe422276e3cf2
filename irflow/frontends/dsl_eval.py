"""Compile-time evaluation in the DSL: scopes, source locations, names, literals, operators.

`Evaluator` is the base of the compiler (`dsl._Compiler`): it dispatches an expression
node to its `eval_<rule>` method, resolves names in a `Scope`, and computes the
language's compile-time values (numbers, booleans, strings, lists; `+ - * / // % **`,
comparisons, `and`/`or`/`not`, indexing), every misuse a `ParseError` at
`file:line:col`. Statements, calls (layers, builtins, blocks) and weights are the
compiler's, in `dsl.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lark import Token, Tree
from xdsl.dialects.builtin import FileLineColLoc, IntAttr, StringAttr
from xdsl.ir import SSAValue

from irflow.diagnostics import ParseError, did_you_mean
from irflow.frontends.dsl_layers import BadValue, Value, as_float, is_int, kind


@dataclass
class Scope:
    prefix: str  # "" in the model, "layer1.0." inside that instance
    env: dict[str, tuple[Value, str]] = field(default_factory=dict)  # name → (value, where)
    depth: int = 0


class Evaluator:
    """Locations in one source file and the evaluation of compile-time expressions."""

    def __init__(self, filename: str):
        self.filename = filename
        self.file_attr = StringAttr(filename)

    # ---- locations

    def where(self, node: Tree | Token) -> str:
        line, col = _pos(node)
        return f"{self.filename}:{line}:{col}"

    def end_where(self, node: Tree) -> str:
        """Where `node` ends (its last character, e.g. a block's closing brace)."""
        return f"{self.filename}:{node.meta.end_line}:{max(node.meta.end_column - 1, 1)}"

    def loc(self, node: Tree | Token) -> FileLineColLoc:
        line, col = _pos(node)
        return FileLineColLoc(self.file_attr, IntAttr(line), IntAttr(col))

    # ---- expressions

    def eval(self, node: Tree | Token, scope: Scope) -> Value:
        return getattr(self, f"eval_{node.data}")(node, scope)

    def eval_var(self, node: Tree, scope: Scope) -> Value:
        name = str(node.children[0])
        if name not in scope.env:
            hint = did_you_mean(name, scope.env, clause=True)
            raise ParseError(f"undefined variable '{name}'{hint}", self.where(node))
        return scope.env[name][0]

    def eval_int_lit(self, node: Tree, scope: Scope) -> int:
        return int(node.children[0])

    def eval_float_lit(self, node: Tree, scope: Scope) -> float:
        return float(node.children[0])

    def eval_str_lit(self, node: Tree, scope: Scope) -> str:
        return str(node.children[0])[1:-1]

    def eval_true_lit(self, node: Tree, scope: Scope) -> bool:
        return True

    def eval_false_lit(self, node: Tree, scope: Scope) -> bool:
        return False

    def eval_list_lit(self, node: Tree, scope: Scope) -> list[Value]:
        return [self.eval(c, scope) for c in node.children if c is not None]

    def eval_index_op(self, node: Tree, scope: Scope) -> Value:
        seq, idx = (self.eval(c, scope) for c in node.children)
        if not isinstance(seq, list | tuple):
            raise ParseError(f"only lists can be indexed, got {kind(seq)}", self.where(node))
        if not is_int(idx) or not -len(seq) <= idx < len(seq):
            raise ParseError(f"index must be an integer in [{-len(seq)}, {len(seq)}), "
                             f"got {kind(idx)}", self.where(node.children[1]))
        return seq[idx]

    def eval_neg_op(self, node: Tree, scope: Scope) -> Value:
        v = self.eval(node.children[0], scope)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ParseError(f"'-' expects a number, got {kind(v)} (use neg(x) for tensors)",
                             self.where(node))
        return -v

    def eval_not_op(self, node: Tree, scope: Scope) -> bool:
        return not self.truth(node.children[0], scope)

    def eval_and_op(self, node: Tree, scope: Scope) -> bool:
        return self.truth(node.children[0], scope) and self.truth(node.children[1], scope)

    def eval_or_op(self, node: Tree, scope: Scope) -> bool:
        return self.truth(node.children[0], scope) or self.truth(node.children[1], scope)

    def eval_compare_op(self, node: Tree, scope: Scope) -> bool:
        lhs, op, rhs = node.children
        a, b = self.eval(lhs, scope), self.eval(rhs, scope)
        if op in ("==", "!="):
            if isinstance(a, SSAValue) or isinstance(b, SSAValue):
                raise ParseError("tensors cannot be compared at compile time; compare their "
                                 "shapes (shape(x) == ...)", self.where(node))
            return (a == b) == (op == "==")
        try:
            return _COMPARE[str(op)](as_float(a), as_float(b))
        except BadValue as e:
            raise ParseError(f"'{op}' expects numbers, got {e}", self.where(node)) from None

    def _arith(self, node: Tree, scope: Scope, sym: str, fn: Callable[[Any, Any], Any]) -> Value:
        a, b = (self.eval(c, scope) for c in node.children)
        if isinstance(a, SSAValue) or isinstance(b, SSAValue):
            layer_name = _TENSOR_OPS.get(sym)
            hint = f" (use {layer_name}(a, b) for tensors)" if layer_name else ""
            raise ParseError(f"'{sym}' works on compile-time numbers, not tensors{hint}",
                             self.where(node))
        if sym == "+" and isinstance(a, list) and isinstance(b, list):
            return a + b
        try:
            _, y = as_float(a), as_float(b)
        except BadValue as e:
            raise ParseError(f"'{sym}' expects numbers, got {e}", self.where(node)) from None
        if sym in ("/", "//", "%") and y == 0:
            raise ParseError(f"division by zero in '{sym}'", self.where(node))
        return fn(a, b)

    def eval_add_op(self, node: Tree, scope: Scope) -> Value:
        return self._arith(node, scope, "+", lambda a, b: a + b)

    def eval_sub_op(self, node: Tree, scope: Scope) -> Value:
        return self._arith(node, scope, "-", lambda a, b: a - b)

    def eval_mul_op(self, node: Tree, scope: Scope) -> Value:
        return self._arith(node, scope, "*", lambda a, b: a * b)

    def eval_div_op(self, node: Tree, scope: Scope) -> Value:
        return self._arith(node, scope, "/", lambda a, b: a / b)

    def eval_floordiv_op(self, node: Tree, scope: Scope) -> Value:
        return self._arith(node, scope, "//", lambda a, b: a // b)

    def eval_mod_op(self, node: Tree, scope: Scope) -> Value:
        return self._arith(node, scope, "%", lambda a, b: a % b)

    def eval_pow_op(self, node: Tree, scope: Scope) -> Value:
        return self._arith(node, scope, "**", lambda a, b: a ** b)

    def truth(self, node: Tree, scope: Scope) -> bool:
        value = self.eval(node, scope)
        if not isinstance(value, bool):
            raise ParseError(f"a condition must be true or false, got {kind(value)}",
                             self.where(node))
        return value


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}
_TENSOR_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "**": "pow"}


def _pos(node: Tree | Token) -> tuple[int, int]:
    if isinstance(node, Token):
        return node.line or 1, node.column or 1
    meta = node.meta
    return getattr(meta, "line", 1), getattr(meta, "column", 1)
