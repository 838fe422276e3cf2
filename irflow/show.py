"""A Graphviz picture of a model's dataflow graph: one node per op, edges labelled
with tensor shapes. Weights fold into their consumer's label to keep the picture
readable.

    $ irflow show lenet5 -o lenet5.svg
"""

from __future__ import annotations

import shutil
import subprocess

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Attribute, BlockArgument, OpResult, SSAValue

from irflow.diagnostics import IrflowError, location_string
from irflow.dialects import nn
from irflow.graph import input_names, main_func, output_names


def _shape(ty: Attribute) -> str:
    if isinstance(ty, TensorType):
        return nn.format_shape(nn.shape_of(ty))
    return str(ty)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(module: ModuleOp) -> str:
    """The DOT text of `@main`'s dataflow graph."""
    fn = main_func(module)
    block = fn.body.blocks[0]
    ids: dict[object, str] = {}
    lines = ["digraph irflow {", "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", '
             'fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=10];']
    for i, (arg, name) in enumerate(zip(block.args, input_names(fn))):
        ids[arg] = f"in{i}"
        lines.append(f"  in{i} [label={_quote(name + chr(10) + _shape(arg.type))}, "
                     'shape=oval, fillcolor="#dff0d8"];')

    def source(value: SSAValue) -> str | None:
        if isinstance(value, BlockArgument):
            return ids.get(value)
        assert isinstance(value, OpResult)
        return ids.get(value.op)

    for k, op in enumerate(block.ops):
        if isinstance(op, nn.ConstantOp):
            continue
        if isinstance(op, func.ReturnOp):
            for j, (value, name) in enumerate(zip(op.operands, output_names(fn))):
                lines.append(f"  out{j} [label={_quote(name)}, shape=oval, "
                             'fillcolor="#fcf8e3"];')
                src = source(value)
                if src:
                    lines.append(f"  {src} -> out{j} [label={_quote(_shape(value.type))}];")
            continue
        node = f"op{k}"
        ids[op] = node
        label = [op.name.removeprefix("nn.")]
        weights = [o for o in op.operands
                   if isinstance(o, OpResult) and isinstance(o.op, nn.ConstantOp)]
        label += [f"w {_shape(w.type)}" for w in weights]
        act = nn.fused_act(op)
        if act is not None:
            label.append(f"+ {act}")
        loc = location_string(op.location)
        tooltip = f", tooltip={_quote(loc)}" if loc else ""
        lines.append(f"  {node} [label={_quote(chr(10).join(label))}{tooltip}];")
        for operand in op.operands:
            if operand in weights:
                continue
            src = source(operand)
            if src:
                lines.append(f"  {src} -> {node} [label={_quote(_shape(operand.type))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(dot: str) -> str:
    """Render DOT to SVG with Graphviz's `dot` (an error says how to get it if absent)."""
    exe = shutil.which("dot")
    if exe is None:
        raise IrflowError("SVG output needs Graphviz's 'dot' (apt-get install graphviz); "
                          "write '.dot' instead")
    proc = subprocess.run([exe, "-Tsvg"], input=dot, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise IrflowError(f"dot failed: {proc.stderr.strip()}")
    return proc.stdout
