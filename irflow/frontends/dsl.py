"""The irflow model DSL: text → a verified `nn`-level module with its weights.

A model is a `model` with typed inputs whose body names layers; reusable `block`s
are defined once and instantiated with parameters. The grammar is `irflow.lark`
(shipped beside this file); the language reference is `docs/dsl.md`.

    block basic(x, planes, stride=1) {
      conv1 = conv2d(x, out=planes, kernel=3, stride=stride, pad=1, bias=false)
      bn1 = batchnorm(conv1)
      ...
      return relu(add(bn2, x))
    }
    model net(x: f32[1, 3, 32, 32]) {
      layer1.0 = basic(x, planes=3)      # weights: layer1.0.conv1.weight, layer1.0.bn1.weight, ...
      return layer1.0
    }

    >>> module = compile_source(text, "net.irf", seed=0)          # seeded weights
    >>> module = compile_file("net.irf", weights="net.npz")       # pretrained weights

The layers themselves (operands, options, weights, IR) are the table in `dsl_layers.py`;
parsing is `dsl_parse.py`, compile-time expressions (names, literals, operators)
`dsl_eval.py`. This module holds statements, calls, blocks and weights.

Compilation evaluates the program directly (blocks are expanded at each use, `if`
conditions are decided at compile time), appending one `nn` op per layer through
`GraphBuilder`; every op carries `loc("file":line:col)` of the layer call. Every
error is a `ParseError` at `file:line:col` — lark's exceptions never escape.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from lark import Token, Tree
from xdsl.dialects.builtin import (
    ModuleOp,
    TensorType,
    f16,
    f32,
    f64,
    i8,
    i32,
    i64,
)
from xdsl.ir import Attribute, SSAValue

from irflow.alloc import check_alloc
from irflow.diagnostics import IrflowError, ParseError, did_you_mean
from irflow.dialects import nn
from irflow.frontends import (
    dsl_layers_ops,  # noqa: F401  (registers the nn families' layers)
    dsl_llm_layers,  # noqa: F401  (registers the decoder layers)
)
from irflow.frontends.dsl_eval import Evaluator, Scope
from irflow.frontends.dsl_layers import (
    BUILTINS,
    LAYERS,
    REQUIRED,
    SCALAR_OPERANDS,
    BadValue,
    Init,
    LayerCall,
    LayerSpec,
    Value,
    kind,
)
from irflow.frontends.dsl_parse import parse_tree
from irflow.graph import GraphBuilder
from irflow.verify import verify_module
from irflow.weights import WeightStore

ELEMENT_TYPES: dict[str, Attribute] = {"f32": f32, "f16": f16, "f64": f64, "i64": i64,
                                       "i32": i32, "i8": i8}
MAX_BLOCK_DEPTH = 64

# --------------------------------------------------------------------------------------
# The compiler


class _Return(Exception):
    def __init__(self, values: list[Value], nodes: list[Tree]):
        self.values = values
        self.nodes = nodes


@dataclass
class _Stmt:
    """The statement being evaluated: its target names the one weighted layer it holds."""

    target: str | None
    named: str | None = None  # the layer or block that took the name


class _Compiler(Evaluator):
    """Evaluates a parsed program, appending ops to one `GraphBuilder`.

    Statements run in order; expressions evaluate to tensors (SSA values) or
    compile-time values; a block call runs the block's body in a fresh scope whose
    names are prefixed by the instance name.
    """

    def __init__(self, filename: str, weights: WeightStore | None, weights_file: str, seed: int):
        super().__init__(filename)
        self.pretrained = weights
        self.weights_file = weights_file
        self.seed = seed
        self.lazy = False  # seeded weights made on first access (WeightStore.add_lazy)
        self.graph = GraphBuilder()
        self.blocks: dict[str, Tree] = {}
        self.stmt = _Stmt(None)

    # ---- program

    def compile(self, tree: Tree) -> ModuleOp:
        models = []
        for item in tree.children:
            name_tok = item.children[0]
            if item.data == "block_def":
                if name_tok in self.blocks:
                    first = self.where(self.blocks[name_tok])
                    raise ParseError(f"block '{name_tok}' is already defined at {first}",
                                     self.where(name_tok))
                if name_tok in LAYERS or name_tok in BUILTINS:
                    raise ParseError(f"block '{name_tok}' has the name of a built-in layer",
                                     self.where(name_tok))
                seen: set[str] = set()
                for param in item.children[1:-1]:
                    if param is not None and param.children[0] in seen:
                        raise ParseError(f"block '{name_tok}' has two parameters named "
                                         f"'{param.children[0]}'", self.where(param))
                    if param is not None:
                        seen.add(str(param.children[0]))
                self.blocks[str(name_tok)] = item
            else:
                models.append(item)
        if not models:
            raise ParseError("no model in this file: expected `model NAME(x: f32[...]) { ... }`",
                             f"{self.filename}:1:1")
        if len(models) > 1:
            raise ParseError(f"a file holds one model; the first is at {self.where(models[0])}",
                             self.where(models[1]))
        return self.compile_model(models[0])

    def compile_model(self, node: Tree) -> ModuleOp:
        _name, *inputs, body = node.children
        scope = Scope("")
        for inp in inputs:
            if inp is None:
                continue
            name, dtype, *dims = inp.children
            if dtype not in ELEMENT_TYPES:
                raise ParseError(_unknown("element type", str(dtype), ELEMENT_TYPES),
                                 self.where(dtype))
            shape = [int(d) for d in dims if d is not None]
            for d, tok in zip(shape, dims):
                if d < 1:
                    raise ParseError(f"input '{name}' expects positive dimensions, got {d}",
                                     self.where(tok))
            self.define(scope, name, self.graph.input(str(name), shape, ELEMENT_TYPES[dtype]))
        try:
            self.run_body(body, scope)
        except _Return as r:
            outputs, names = [], []
            for value, expr in zip(r.values, r.nodes):
                if not isinstance(value, SSAValue):
                    raise ParseError(f"a model returns tensors, got {kind(value)}",
                                     self.where(expr)) from None
                outputs.append(value)
                name = str(expr.children[0]) if expr.data == "var" else f"output{len(names)}"
                names.append(name if name not in names else f"{name}.{len(names)}")
            module = self.graph.finish(outputs, names)
            verify_module(module)
            return module
        raise ParseError("the model ends without `return`", self.end_where(body))

    def run_body(self, body: Tree, scope: Scope) -> None:
        for stmt in body.children:
            getattr(self, f"stmt_{stmt.data}")(stmt, scope)

    # ---- statements

    def stmt_assign(self, node: Tree, scope: Scope) -> None:
        *targets, expr = node.children
        self.stmt = _Stmt(str(targets[0]))
        value = self.eval(expr, scope)
        self.stmt = _Stmt(None)
        if len(targets) == 1:
            # several results under one name become a list: `parts = split(...)`, `parts[0]`
            self.define(scope, targets[0], list(value) if isinstance(value, tuple) else value)
            return
        values = value if isinstance(value, tuple) else (value,)
        if len(values) != len(targets):
            raise ParseError(f"expected {len(targets)} values on the right, got {len(values)}",
                             self.where(expr))
        for t, v in zip(targets, values):
            self.define(scope, t, v)

    def stmt_return_stmt(self, node: Tree, scope: Scope) -> None:
        values = []
        for expr in node.children:
            self.stmt = _Stmt(None)
            values.append(self.eval(expr, scope))
        raise _Return(values, list(node.children))

    def stmt_if_stmt(self, node: Tree, scope: Scope) -> None:
        cond, body, *rest = node.children
        branches = [(cond, body)] + [tuple(e.children) for e in rest[:-1] if e is not None]
        for c, b in branches:
            if self.truth(c, scope):
                self.run_body(b, scope)
                return
        if rest and rest[-1] is not None:
            self.run_body(rest[-1].children[0], scope)

    def define(self, scope: Scope, name: Token, value: Value) -> None:
        if name in scope.env:
            raise ParseError(f"'{name}' is already defined at {scope.env[name][1]} "
                             "(names are single-assignment: they name layers and weights)",
                             self.where(name))
        scope.env[str(name)] = (value, self.where(name))

    # ---- calls

    def eval_call(self, node: Tree, scope: Scope) -> Value:
        name_tok, *arg_nodes = node.children
        name = str(name_tok)
        args: list[tuple[Value, Tree]] = []
        kwargs: dict[str, tuple[Value, Tree, Token]] = {}
        for a in arg_nodes:
            if a is None:
                continue
            if isinstance(a, Tree) and a.data == "kwarg":
                key, expr = a.children
                if key in kwargs:
                    raise ParseError(f"option '{key}' is given twice", self.where(key))
                kwargs[str(key)] = (self.eval(expr, scope), expr, key)
            else:
                if kwargs:
                    raise ParseError("positional arguments must come before options "
                                     "(`name=value`)", self.where(a))
                args.append((self.eval(a, scope), a))
        if name in self.blocks:
            return self.instantiate(name, node, args, kwargs, scope)
        if name in LAYERS:
            return self.call_layer(LAYERS[name], node, args, kwargs, scope)
        if name in BUILTINS:
            return self.call_builtin(name, node, args, kwargs)
        if "." in name:
            raise ParseError(f"'{name}' is not a layer: call names have no dots",
                             self.where(name_tok))
        known = [*LAYERS, *self.blocks, *BUILTINS]
        raise ParseError(_unknown("layer or block", name, known), self.where(name_tok))

    def claim_name(self, what: str, node: Tree, scope: Scope) -> str:
        """The weight/instance prefix for a named layer or block call in this statement."""
        stmt = self.stmt
        if stmt.target is None:
            raise ParseError(f"'{what}' creates weights, so it needs a name: assign it first "
                             f"(`name = {what}(...)`)", self.where(node))
        if stmt.named is not None:
            raise ParseError(f"'{stmt.target}' already names the '{stmt.named}' in this "
                             f"statement; give this '{what}' its own statement", self.where(node))
        stmt.named = what
        return scope.prefix + stmt.target

    def call_layer(self, spec: LayerSpec, node: Tree, args: list[tuple[Value, Tree]],
                   kwargs: dict[str, tuple[Value, Tree, Token]], scope: Scope) -> Value:
        lo, hi = spec.inputs
        if len(args) < lo or (hi is not None and len(args) > hi):
            want = (f"{lo}" if lo == hi else f"at least {lo}" if hi is None
                    else f"{lo} to {hi}")
            noun = "tensor argument" + ("" if lo == 1 and hi == 1 else "s")
            raise ParseError(f"{spec.name} expects {want} {noun}, got {len(args)}",
                             self.where(node))
        tensors: list[SSAValue] = []
        for i, (v, a) in enumerate(args):
            if spec.name in SCALAR_OPERANDS and _is_number(v):
                tensors.append(v)  # converted once the other operand's type is known
            elif not isinstance(v, SSAValue):
                raise ParseError(f"{spec.name} expects a tensor as argument {i + 1}, "
                                 f"got {kind(v)}", self.where(a))
            else:
                tensors.append(v)
        opts: dict[str, Any] = {}
        for key, (v, expr, key_tok) in kwargs.items():
            if key not in spec.options:
                hint = did_you_mean(key, spec.options, clause=True)
                allowed = ", ".join(spec.options) or "none"
                raise ParseError(f"{spec.name} has no option '{key}'{hint} (options: {allowed})",
                                 self.where(key_tok))
            try:
                opts[key] = spec.options[key].convert(v)
            except BadValue as e:
                raise ParseError(f"{spec.name} option '{key}' expects {e}",
                                 self.where(expr)) from None
        for key, opt in spec.options.items():
            if key not in opts:
                if opt.default is REQUIRED:
                    raise ParseError(f"{spec.name} needs option '{key}'", self.where(node))
                opts[key] = opt.default if opt.default is None else opt.convert(opt.default)
        call = LayerCall(self, spec, tensors, opts, self.loc(node), self.where(node), "")
        if spec.name in SCALAR_OPERANDS:
            call.args = self._constants_for(call, node)
        if spec.weighted:
            call.prefix = self.claim_name(spec.name, node, scope)
        return spec.build(call)

    def _constants_for(self, call: LayerCall, node: Tree) -> list[SSAValue]:
        tensors = [a for a in call.args if isinstance(a, SSAValue)]
        if not tensors:
            raise ParseError(f"{call.spec.name} needs at least one tensor operand; for numbers "
                             "use the operators + - * / **", self.where(node))
        return [a if isinstance(a, SSAValue) else call.scalar(a, tensors[0]) for a in call.args]

    def call_builtin(self, name: str, node: Tree, args: list[tuple[Value, Tree]],
                     kwargs: dict[str, tuple[Value, Tree, Token]]) -> Value:
        arity, fn = BUILTINS[name]
        if kwargs:
            key = next(iter(kwargs.values()))[2]
            raise ParseError(f"{name} takes no options", self.where(key))
        if len(args) != arity:
            raise ParseError(f"{name} expects {arity} argument{'s' * (arity > 1)}, "
                             f"got {len(args)}", self.where(node))
        try:
            return fn(*(v for v, _ in args))
        except BadValue as e:
            raise ParseError(f"{name} expects {e}", self.where(node)) from None

    def instantiate(self, name: str, node: Tree, args: list[tuple[Value, Tree]],
                    kwargs: dict[str, tuple[Value, Tree, Token]], scope: Scope) -> Value:
        block = self.blocks[name]
        _, *params, body = block.children
        params = [p for p in params if p is not None]
        pnames = [str(p.children[0]) for p in params]
        if len(args) > len(params):
            raise ParseError(f"block '{name}' takes {len(params)} argument"
                             f"{'s' * (len(params) != 1)}, got {len(args)}", self.where(node))
        if scope.depth >= MAX_BLOCK_DEPTH:
            raise ParseError(f"blocks nest deeper than {MAX_BLOCK_DEPTH} (is '{name}' "
                             "recursive?)", self.where(node))
        instance = self.claim_name(name, node, scope)
        inner = Scope(instance + ".", depth=scope.depth + 1)
        bound: dict[str, Value] = {pnames[i]: v for i, (v, _) in enumerate(args)}
        for key, (v, _, key_tok) in kwargs.items():
            if key not in pnames:
                hint = did_you_mean(key, pnames, clause=True)
                raise ParseError(f"block '{name}' has no parameter '{key}'{hint} "
                                 f"(parameters: {', '.join(pnames)})", self.where(key_tok))
            if key in bound:
                raise ParseError(f"block '{name}' parameter '{key}' is given twice",
                                 self.where(key_tok))
            bound[key] = v
        for p, pname in zip(params, pnames):
            if pname not in bound:
                default = p.children[1]
                if default is None:
                    raise ParseError(f"block '{name}' needs parameter '{pname}'",
                                     self.where(node))
                bound[pname] = self.eval(default, Scope(inner.prefix, depth=inner.depth))
            inner.env[pname] = (bound[pname], self.where(p))
        saved = self.stmt
        try:
            self.run_body(body, inner)
        except _Return as r:
            return r.values[0] if len(r.values) == 1 else tuple(r.values)
        except ParseError as e:
            e.message += f" (in block '{name}' instantiated at {self.where(node)})"
            raise
        finally:
            self.stmt = saved
        raise ParseError(f"block '{name}' ends without `return`", self.end_where(body))

    # ---- weights

    def weight(self, name: str, shape: tuple[int, ...], init: Init, call: LayerCall) -> SSAValue:
        store = self.graph.store
        if name in store:
            raise ParseError(f"weight '{name}' is already defined; rename the layer", call.where)
        if self.pretrained is not None:
            if name not in self.pretrained:
                hint = did_you_mean(name, self.pretrained, clause=True)
                raise ParseError(f"weight '{name}' is missing from {self.weights_file}{hint}",
                                 call.where)
            array = self.pretrained[name]
            if tuple(array.shape) != shape:
                raise ParseError(f"weight '{name}' in {self.weights_file} has shape "
                                 f"{list(array.shape)}, but {call.spec.name} needs {list(shape)}",
                                 call.where)
        elif self.lazy:
            seed = [self.seed, zlib.crc32(name.encode())]
            key = store.add_lazy(name, lambda: init(np.random.default_rng(seed), shape))
            ty = TensorType(f32, list(shape))
            return self.graph.add(nn.ConstantOp(nn.WeightAttr(key), ty), call.loc).results[0]
        else:
            check_alloc(shape, np.float32, f"weight '{name}' of {call.spec.name}", call.where)
            rng = np.random.default_rng([self.seed, zlib.crc32(name.encode())])
            array = init(rng, shape)
        return self.graph.weight(name, array, call.loc)


def _is_number(v: Value) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _unknown(what: str, name: str, candidates: Iterable[str]) -> str:
    return f"unknown {what} '{name}'{did_you_mean(name, candidates, clause=True)}"


# --------------------------------------------------------------------------------------
# Public API


def compile_source(text: str, filename: str = "<string>", *,
                   weights: str | Path | WeightStore | None = None, seed: int = 0,
                   lazy: bool = False) -> ModuleOp:
    """Compile DSL text to a verified module with one `func.func @main` and its weights.

    Weights come from `weights` (an `.npz` path or a `WeightStore`, keyed by weight
    name) or, by default, from a seeded initializer: the same `seed` and weight name
    always give the same array. With `lazy`, a seeded weight is made when it is first
    read (the same array), so building a large model allocates nothing.
    """
    tree = parse_tree(text, filename)
    if weights is None or isinstance(weights, WeightStore):
        store, label = weights, "the weight store"
    else:
        store, label = _load_npz(weights), str(weights)
    compiler = _Compiler(filename, store, label, seed)
    compiler.lazy = lazy
    try:
        return compiler.compile(tree)
    except RecursionError:  # e.g. `x + x + ... + x` with thousands of terms
        raise ParseError("the program is nested too deeply to compile (an expression of "
                         "thousands of terms?); split it into named steps", filename) from None


def compile_file(path: str | Path, *, weights: str | Path | WeightStore | None = None,
                 seed: int = 0) -> ModuleOp:
    """Compile a `.irf` file (see `compile_source`)."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise IrflowError(f"{path}: cannot read: {e}") from None
    return compile_source(text, str(path), weights=weights, seed=seed)


def _load_npz(path: str | Path) -> WeightStore:
    if not Path(path).exists():
        raise IrflowError(f"{path}: no such weights file")
    return WeightStore.load(path)


__all__ = ["compile_source", "compile_file", "parse_tree", "LAYERS", "BUILTINS"]
