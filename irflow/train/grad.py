"""`grad`: reverse-mode automatic differentiation as an IR transformation.

From a model's `@main` and a loss, `grad` builds a new function `@train_step` in `nn`
that returns the loss, the model's outputs and the gradient of the loss with respect to
every trainable weight. The weights become arguments after the model's inputs (the
training loop passes the current values; the program is compiled once), then the loss's
targets:

Before (`@main` of digits_cnn at batch 8, shortened):

    func.func @main(%input: tensor<8x1x8x8xf32>) -> tensor<8x10xf32> {
      %w1 = nn.constant #nn.weight<"conv1.weight"> : tensor<16x1x3x3xf32>
      %conv1 = nn.conv2d %input, %w1, %b1 {act = "relu", pads = ...} : (...) -> tensor<8x16x8x8xf32>
      ...
      func.return %fc : tensor<8x10xf32>
    }

After `grad(module, CrossEntropy())`:

    func.func @train_step(%input: tensor<8x1x8x8xf32>, %conv1.weight: tensor<16x1x3x3xf32>,
                          ..., %labels: tensor<8xi64>) -> (tensor<f32>, ...) {
      %conv1 = nn.conv2d %input, %conv1.weight, %conv1.bias {pads = ...} : (...)
      %0 = nn.relu %conv1 : tensor<8x16x8x8xf32>                  // activations unfused
      ...
      %loss = nn.cross_entropy %fc, %labels : (...) -> tensor<f32>
      %1 = nn.constant dense<1.0> : tensor<f32>                    // d loss / d loss
      %2 = nn.cross_entropy_grad %fc, %labels, %1 : (...) -> tensor<8x10xf32>
      ...
      %9 = nn.activation_grad %conv1, %8 {fn = "relu"} : (...)
      %10 = nn.conv2d_weight_grad %input, %9 {pads = ...} : (...) -> tensor<16x1x3x3xf32>
      func.return %loss, %fc, %10, ... : ...
    }

Outputs are named `loss`, the model's output names, then `grad:<weight name>`. The
backward pass walks the forward ops in reverse, calling each op's VJP rule
(`irflow.train.vjp`) for the operands that depend on a trainable weight, and adds the
contributions of values used more than once. A weight that does not reach the loss gets
a zero gradient; an op without a VJP on a weight's path is a `NotDifferentiable` error
naming it. Integer and boolean values carry no gradient (`irflow.train.nondiff`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, ModuleOp, StringAttr, TensorType
from xdsl.ir import Block, Operation, Region, SSAValue

from irflow.diagnostics import IrflowError
from irflow.dialects import nn
from irflow.graph import NAME_ATTR, SSA_NAME, input_names, main_func, output_names
from irflow.train.losses import CrossEntropy, Loss
from irflow.train.nondiff import NO_GRADIENT, carries_gradient
from irflow.train.vjp import Emitter, NotDifferentiable, rule_for
from irflow.verify import verify_module
from irflow.weights import attach_weights, numpy_dtype, weights_of

STEP_FUNC = "train_step"
GRAD_PREFIX = "grad:"


@dataclass(frozen=True)
class GradSignature:
    """How to call `@train_step`: input names in order, and the outputs."""

    inputs: tuple[str, ...]       # the model's inputs
    targets: tuple[str, ...]      # the loss's extra inputs (labels, teacher logits, ...)
    params: tuple[str, ...]       # trainable weight names (arguments and gradients)
    outputs: tuple[str, ...]      # the model's output names (returned after the loss)


def trainable_weights(module: ModuleOp) -> list[str]:
    """Float `#nn.weight` constants of `@main`, in first-use order, except batchnorm's
    running statistics (inference batchnorm: they are not learned by gradient)."""
    fn = main_func(module)
    stats: set[SSAValue] = set()
    for op in fn.walk():
        if isinstance(op, nn.BatchNormOp):
            stats.update((op.mean, op.var))
    names: list[str] = []
    for op in fn.walk():
        if (isinstance(op, nn.ConstantOp) and isinstance(op.value, nn.WeightAttr)
                and numpy_dtype(nn.value_element_type(op.output)).kind == "f"
                and not any(u.operation.operands[u.index] in stats for u in op.output.uses)
                and op.value.key not in names):
            names.append(op.value.key)
    return names


def grad(module: ModuleOp, loss: Loss | None = None,
         trainable: Iterable[str] | None = None) -> ModuleOp:
    """A new module holding `@train_step` (see the module docstring), sharing `module`'s
    weight store for the constants that are not trainable. `signature(result)` says how
    to call it."""
    loss = loss if loss is not None else CrossEntropy()
    fn = main_func(module)
    store = weights_of(module)
    params = list(trainable) if trainable is not None else trainable_weights(module)
    unknown = [p for p in params if p not in store]
    if unknown:
        raise IrflowError(f"grad: trainable weight '{unknown[0]}' is not in the weight store")
    block = Block()
    e = Emitter(block)
    mapping: dict[SSAValue, SSAValue] = {}
    in_names = input_names(fn)
    arg_names: list[str] = []
    for name, arg in zip(in_names, fn.body.blocks[0].args):
        mapping[arg] = _arg(block, arg.type, name, arg_names)  # type: ignore[arg-type]
    const_types = {op.value.key: op.output.type for op in fn.walk()
                   if isinstance(op, nn.ConstantOp) and isinstance(op.value, nn.WeightAttr)}
    param_args: dict[str, SSAValue] = {}
    for name in params:
        if name not in const_types:
            raise IrflowError(f"grad: trainable weight '{name}' is not used by @main")
        param_args[name] = _arg(block, const_types[name], name, arg_names)  # type: ignore[arg-type]
    outputs: list[SSAValue] = []
    for op in fn.body.blocks[0].ops:
        if isinstance(op, func.ReturnOp):
            outputs = [mapping[v] for v in op.operands]
            break
        if isinstance(op, nn.ConstantOp) and isinstance(op.value, nn.WeightAttr) and (
                op.value.key in param_args):
            mapping[op.output] = param_args[op.value.key]
            continue
        _clone_unfused(e, op, mapping)
    if len(outputs) != 1:
        raise IrflowError(f"grad expects a model with one output, got {len(outputs)}")
    target_args = [_arg(block, ty, name, arg_names) for name, ty in loss.target_types(outputs[0])]
    loss_value = loss.emit(e, outputs[0], target_args)
    forward_ops = list(block.ops)
    adjoint = _backward(e, forward_ops, loss_value, set(param_args.values()))
    grads = [adjoint.get(param_args[n]) or e.zeros(param_args[n]) for n in params]
    block.add_op(func.ReturnOp(loss_value, *outputs, *grads))
    out_names = ["loss", *output_names(fn), *(GRAD_PREFIX + n for n in params)]
    step = func.FuncOp(STEP_FUNC, ([a.type for a in block.args],
                                   [v.type for v in (loss_value, *outputs, *grads)]),
                       Region(block))
    step.arg_attrs = _names(arg_names)
    step.res_attrs = _names(out_names)
    result = attach_weights(ModuleOp([step]), store)
    verify_module(result, context="grad produced invalid IR: ")
    return result


def signature(step_module: ModuleOp) -> GradSignature:
    """The argument and output roles of a `grad` result's `@train_step`: arguments are the
    model's inputs, then the trainable weights, then the loss's targets."""
    fn = main_func(step_module, STEP_FUNC)
    ins, outs = input_names(fn), output_names(fn)
    params = tuple(o.removeprefix(GRAD_PREFIX) for o in outs if o.startswith(GRAD_PREFIX))
    first = ins.index(params[0]) if params else len(ins)
    return GradSignature(tuple(ins[:first]), tuple(ins[first + len(params):]), params,
                         tuple(outs[1:len(outs) - len(params)]))


def _arg(block: Block, ty: TensorType, name: str, names: list[str]) -> SSAValue:
    arg = block.insert_arg(ty, len(block.args))
    if SSA_NAME.match(name):
        arg.name_hint = name
    names.append(name)
    return arg


def _names(names: list[str]) -> ArrayAttr[DictionaryAttr]:
    return ArrayAttr([DictionaryAttr({NAME_ATTR: StringAttr(n)}) for n in names])


def _clone_unfused(e: Emitter, op: Operation, mapping: dict[SSAValue, SSAValue]) -> None:
    """Clone `op` into the gradient function; a fused `act` becomes its own op (its VJP
    needs the pre-activation value)."""
    new = op.clone(value_mapper=mapping)
    act = nn.fused_act(new)
    e.loc = op.location
    e.emit(new)
    if act is None:
        return
    del new.properties["act"]
    act_op = nn.FUSABLE_ACTIVATIONS[act](new.results[0])
    act_op.location = op.location
    e.block.add_op(act_op)
    mapping[op.results[0]] = act_op.results[0]


def _backward(e: Emitter, ops: list[Operation], loss: SSAValue,
              params: set[SSAValue]) -> dict[SSAValue, SSAValue]:
    needs: set[SSAValue] = set(params)
    for op in ops:
        if any(v in needs for v in op.operands):
            needs.update(r for r in op.results if carries_gradient(r))
    if loss not in needs:
        return {}
    e.loc = None
    adjoint: dict[SSAValue, SSAValue] = {loss: e.constant(1.0, loss)}
    for op in reversed(ops):
        dys = [adjoint.get(r) for r in op.results]
        if all(d is None for d in dys):
            continue
        want = [v in needs for v in op.operands]
        if not any(want):
            continue
        rule = rule_for(op)
        if rule is None:
            why = f": {NO_GRADIENT[op.name]}" if op.name in NO_GRADIENT else ""
            raise NotDifferentiable(
                f"{op.name} has no gradient (VJP) and lies on the path from a trainable "
                f"weight to the loss{why}", op)
        e.loc = op.location
        grads = rule(e, op, dys, want)
        for v, w, d in zip(op.operands, want, grads):
            if not w or d is None:
                continue
            prev = adjoint.get(v)
            adjoint[v] = d if prev is None else e.make(nn.AddOp, [prev, d])
    return adjoint
