"""What a point *is*, as irflow inputs: a model, a pipeline text and a machine description.

A point's compression settings become one pipeline text that `irflow run -p` accepts:

    prune{mode=nm n=2 m=4 exclude="conv1,fc"}     one prune per sparsity setting, excluding
                                                  every layer that does not take it
    default                                       the float cleanup
    calibrate                                     only when something is quantized
    quantize{bits=8 layers="conv2:bits=4,act-bits=4;fc:skip=true"}
                                                  per-layer bits (32 = left float: skip)

and its machine knobs one machine TOML (`base = "default"` plus the overridden fields).
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from xdsl.dialects.builtin import ModuleOp

from irflow.search.space import (
    Space,
    Unit,
    global_setting,
    knob_values,
    render_template,
    unit_settings,
)


def load_float_model(source: str, input_shape: str, weights: str,
                     arch: dict[str, Any]) -> ModuleOp:
    """The float model of a point: a zoo model, a file, or a family template filled in."""
    from irflow import zoo
    from irflow.cli import parse_shape_flag
    from irflow.frontends.dsl import compile_source
    from irflow.io import load
    from irflow.weights import WeightStore, attach_weights, read_npz

    if source in zoo.names() and input_shape:
        module = compile_source(zoo_source_at(source, input_shape), f"{source}.irf", seed=0)
    elif source in zoo.names():
        module = zoo.load(source, seed=0)
    elif arch:
        text = render_template(Path(source).read_text(), arch, source)
        module = compile_source(text, Path(source).name, seed=0)
    else:
        shapes = parse_shape_flag([input_shape]) if input_shape else {}
        return load(Path(source), input_shapes=shapes, weights=weights or None)
    if weights:
        attach_weights(module, WeightStore(read_npz(weights, "weights")))
    return module


def zoo_source_at(name: str, input_shape: str) -> str:
    """A zoo model's DSL text with its input declared at `input_shape` (`x=1x3x112x112`),
    as `irflow.zoo.source_at`; a malformed setting is a `SpaceError`."""
    from irflow import zoo
    from irflow.diagnostics import IrflowError
    from irflow.search.space import SpaceError

    arg, _, dims = input_shape.partition("=")
    if not re.fullmatch(r"\d+(x\d+)*", dims.strip().lower()):
        raise SpaceError(f"[model] input_shape = '{input_shape}': expected "
                         f"INPUT=1x3xHxW naming {name}'s input")
    try:
        return zoo.source_at(name, {arg.strip(): [int(d) for d in dims.lower().split("x")]})
    except IrflowError as e:
        raise SpaceError(f"[model] input_shape = '{input_shape}': {e}") from None


def contraction_layers(module: ModuleOp) -> list[str]:
    """Names of the conv2d/linear/matmul layers with a constant weight, in program order."""
    from irflow.dialects import nn
    from irflow.graph import main_func
    from irflow.passes.quantize import CONTRACTIONS, layer_name

    out: list[str] = []
    for op in main_func(module).body.blocks[0].ops:
        if (isinstance(op, CONTRACTIONS) and len(op.operands) > 1
                and isinstance(op.operands[1].owner, nn.ConstantOp)):
            name = layer_name(op)
            if name not in out:
                out.append(name)
    return out


def _prune_spec(sparsity: str, exclude: list[str]) -> str:
    kind, _, amount = sparsity.partition(":")
    if kind == "magnitude":
        opts = f"mode=magnitude sparsity={float(amount)} scope=layer"
    elif kind == "channel":
        opts = f"mode=channel ratio={float(amount)} fold=bias"
    else:
        n, m = sparsity.split(":")
        opts = f"mode=nm n={n} m={m}"
    if exclude:
        opts += f' exclude="{",".join(exclude)}"'
    return f"prune{{{opts}}}"


def pipeline_text(space: Space, point: dict[str, Any]) -> str:
    """The pipeline a point compiles with (see the module docstring)."""
    return ",".join(filter(None, pipeline_parts(space, point)))


def pipeline_parts(space: Space, point: dict[str, Any]) -> tuple[str, str]:
    """The pipeline as (float part: prune, default, calibrate; quantize step or "").
    Points that share the float part share its result (the evaluation caches it)."""
    units = unit_settings(space, point)
    steps = _prune_steps(space, units)
    steps.append("default")
    per_layer: dict[str, Unit] = {n: u for u in units for n in u.layers}
    if any(u.w_bits != 32 for u in per_layer.values()):
        method = global_setting(space, point, "calibration")
        steps.append("calibrate" if method == "minmax" else f"calibrate{{method={method}}}")
        clip = global_setting(space, point, "weight_clip")
        return ",".join(steps), ",".join(filter(None, [
            _quantize_spec(space, per_layer, clip), _mapping_step(space, point)]))
    return ",".join(steps), _mapping_step(space, point)


def _mapping_step(space: Space, point: dict[str, Any]) -> str:
    """`tile{search=latency}` (the PE-array mapping search, docs/tiling.md) for a point
    with `mapping = "latency"`, after quantize: it tiles for the types the layers run in."""
    if global_setting(space, point, "mapping") != "latency":
        return ""
    base = "" if space.machine_base == "default" else f" machine={space.machine_base}"
    return f"tile{{search=latency{base}}}"


def _prune_steps(space: Space, units: list[Unit]) -> list[str]:
    by_setting: dict[str, list[str]] = defaultdict(list)
    for u in units:
        if u.sparsity != "dense":
            by_setting[u.sparsity].extend(u.layers)
    steps = []
    for sparsity, chosen in by_setting.items():
        exclude = [n for n in space.layers if n not in chosen]
        steps.append(_prune_spec(sparsity, exclude))
    return steps


def _quantize_spec(space: Space, per_layer: dict[str, Unit], clip: str = "minmax") -> str:
    """`quantize{bits=8}` when uniform, else with an inline `layers=` list."""
    settings = {(u.w_bits, u.a_bits) for u in per_layer.values()}
    extra = f" weight-clip={clip}" if clip != "minmax" else ""
    if len(settings) == 1 and space.per == "model":
        w, a = settings.pop()
        if w != 32:
            return f"quantize{{bits={w}" + (f" act-bits={a}" if a != 8 else "") + extra + "}"
    entries = []
    for name, u in per_layer.items():
        if u.w_bits == 32:
            entries.append(f"{name}:skip=true")
        elif (u.w_bits, u.a_bits) != (8, 8):
            entries.append(f"{name}:bits={u.w_bits}" + (f",act-bits={u.a_bits}"
                                                         if u.a_bits != 8 else ""))
    if not entries:
        return f"quantize{{bits=8{extra}}}"
    return f'quantize{{bits=8{extra} layers="{";".join(entries)}"}}'


def machine_toml(space: Space, point: dict[str, Any]) -> str:
    """The point's machine: `base` preset plus its `[machine]` knob values."""
    tables: dict[str, dict[str, Any]] = defaultdict(dict)
    top: dict[str, Any] = {}
    for dotted, value in sorted(knob_values(point, "machine").items()):
        table, _, key = dotted.rpartition(".")
        (tables[table] if table else top)[key] = value
    lines = [f'base = "{space.machine_base}"']
    lines += [f"{k} = {_toml_value(v)}" for k, v in top.items()]
    for table, entries in tables.items():
        lines.append(f"\n[{table}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in entries.items()]
    return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


@functools.lru_cache(maxsize=64)
def machine_of(space_base: str, text: str) -> Any:
    """A `Machine` from `machine_toml` text (cached: points share machines)."""
    from irflow.backends.sim.machine import machine_from_toml

    return machine_from_toml(text, f"{space_base}*")


__all__ = ["load_float_model", "contraction_layers", "pipeline_text", "pipeline_parts",
           "machine_toml", "machine_of"]
