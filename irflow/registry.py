"""The pass registry: CLI name -> pass class, imported only when a pipeline asks for it.

Three sources, looked up in this order:

1. passes registered in this process: `register_pass(MyPass)`, `@module_pass("name")`,
   `load_pass("path/file.py:MyPass")` (what `irflow opt --load-pass` calls);
2. the built-in table `PASSES` below (xDSL's cleanups and irflow's own passes) — adding a
   pass is one line, `"cli-name": "irflow.passes.module:ClassName"`;
3. installed plugins: the Python entry-point group `irflow.passes`, e.g. in a plugin's
   `pyproject.toml`: `[project.entry-points."irflow.passes"] my-pass = "mypkg.passes:MyPass"`.

    >>> from irflow.registry import get_pass
    >>> get_pass("fold-batchnorm")
    <class 'irflow.passes.fold_batchnorm.FoldBatchNormPass'>

Unknown names raise `PassError` with a "did you mean" suggestion.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from irflow.diagnostics import PassError, did_you_mean

# Built-in passes: CLI name -> "module:ClassName", imported lazily (xDSL
# `transforms/__init__.py` style). Keep one line per pass.
PASSES: dict[str, str] = {
    # xDSL's generic cleanups, the counterparts of MLIR's passes of the same name.
    "canonicalize": "xdsl.transforms.canonicalize:CanonicalizePass",
    "cse": "xdsl.transforms.common_subexpression_elimination:CommonSubexpressionElimination",
    "dce": "xdsl.transforms.dead_code_elimination:DeadCodeElimination",
    # irflow's own passes, one module per pass under passes/.
    "fold-batchnorm": "irflow.passes.fold_batchnorm:FoldBatchNormPass",
    "fuse-activation": "irflow.passes.fuse_activation:FuseActivationPass",
    "fold-constants": "irflow.passes.fold_constants:FoldConstantsPass",
    "prune": "irflow.passes.prune:PrunePass",
    "calibrate": "irflow.passes.calibrate:CalibratePass",
    "quantize": "irflow.passes.quantize:QuantizePass",
    "quantize-groups": "irflow.passes.quantize_groups:QuantizeGroupsPass",
    "convert-float": "irflow.passes.convert_float:ConvertFloatPass",
    "tile": "irflow.passes.tile:TilePass",
    "plan-memory": "irflow.passes.plan_memory:PlanMemoryPass",
    "lower-to-accel": "irflow.passes.lower_to_accel:LowerToAccelPass",
    "fuse-epilogue": "irflow.passes.fuse_epilogue:FuseEpiloguePass",
    "fuse-layers": "irflow.passes.fuse_layers:FuseLayersPass",
}

# Passes that come from xDSL itself; `irflow.universe` must not re-export them
# (a name clash between universes is an error in `xdsl-opt`).
XDSL_PASSES = frozenset({"canonicalize", "cse", "dce"})

ENTRY_POINT_GROUP = "irflow.passes"

_registered: dict[str, type[ModulePass]] = {}


# --------------------------------------------------------------------------------------
# Lookup


def get_pass(name: str) -> type[ModulePass]:
    """The pass class registered under CLI `name`; `PassError` (with a suggestion) if none."""
    if name in _registered:
        return _registered[name]
    if name in PASSES:
        return _import_target(PASSES[name], f"built-in pass '{name}'")
    plugin = _plugin_entry_points().get(name)
    if plugin is not None:
        return _load_entry_point(name, plugin)
    raise PassError(f"unknown pass '{name}'{did_you_mean(name, pass_names())}")


def has_pass(name: str) -> bool:
    return name in _registered or name in PASSES or name in _plugin_entry_points()


def pass_names() -> list[str]:
    """Every known pass name, sorted (built-in, registered and plugin passes)."""
    return sorted({*PASSES, *_registered, *_plugin_entry_points()})


def pass_origin(name: str) -> str:
    """Where pass `name` comes from: `loaded (file.py)` (registered in this process),
    `xDSL`, `built-in` or `plugin (distribution)`; `PassError` if unknown."""
    if name in _registered:
        cls = _registered[name]
        source = getattr(cls, "__irflow_source__", None) or cls.__module__
        return f"loaded ({Path(source).name})"
    if name in XDSL_PASSES:
        return "xDSL"
    if name in PASSES:
        return "built-in"
    ep = _plugin_entry_points().get(name)
    if ep is None:
        raise PassError(f"unknown pass '{name}'{did_you_mean(name, pass_names())}")
    dist = getattr(ep, "dist", None)
    return f"plugin ({dist.name if dist is not None else ep.value})"


def plugin_passes() -> dict[str, EntryPoint]:
    """Installed plugin passes: name -> entry point of group `irflow.passes`."""
    return dict(_plugin_entry_points())


def available_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    """Name -> factory, the shape xDSL's `PassPipeline.parse_spec` and `Universe` take."""
    return {name: functools.partial(get_pass, name) for name in pass_names()}


def pass_summary(name: str) -> str:
    """The first line of the pass's docstring (for `--list-passes` style output)."""
    doc = inspect.getdoc(get_pass(name)) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _import_target(target: str, what: str) -> type[ModulePass]:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, attr)
    except (ImportError, AttributeError) as e:
        raise PassError(f"{what} cannot be imported from '{target}': {e}") from e
    return _check_pass_class(cls, target)


# --------------------------------------------------------------------------------------
# Plugins (entry points)


@functools.cache
def _plugin_entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _load_entry_point(name: str, ep: EntryPoint) -> type[ModulePass]:
    try:
        cls = ep.load()
    except Exception as e:  # a broken plugin must not crash the CLI with a traceback
        raise PassError(
            f"plugin pass '{name}' ({ep.value}, entry point group '{ENTRY_POINT_GROUP}') "
            f"cannot be loaded: {type(e).__name__}: {e}"
        ) from e
    cls = _check_pass_class(cls, ep.value)
    if cls.name != name:
        raise PassError(
            f"plugin pass '{name}' ({ep.value}) declares name '{cls.name}'; "
            "the entry point name must equal the pass's `name`"
        )
    return cls


# --------------------------------------------------------------------------------------
# User passes


def register_pass(cls: type[ModulePass], *, replace: bool = False) -> type[ModulePass]:
    """Make `cls` available under `cls.name`; usable as a class decorator.

    Registering a name that a built-in pass or another class already holds is an error
    unless `replace=True` (re-registering the same class is a no-op).
    """
    cls = _check_pass_class(cls, getattr(cls, "__qualname__", repr(cls)))
    name = cls.name
    current = _registered.get(name)
    if current is None and name in PASSES and get_pass(name) is cls:
        return cls  # the built-in class itself: nothing to add
    if current is cls or replace:
        _registered[name] = cls
        return cls
    if current is not None and _same_definition(current, cls):
        # The same file loaded twice (e.g. `--load-pass` repeated): keep the newer class.
        _registered[name] = cls
        return cls
    if current is not None or name in PASSES:
        owner = current.__module__ + "." + current.__qualname__ if current else PASSES[name]
        raise PassError(
            f"pass name '{name}' is already taken by {owner}; pick another name "
            "or register with replace=True"
        )
    _registered[name] = cls
    return cls


def unregister_pass(name: str) -> None:
    """Forget a pass registered in this process (tests use this to clean up)."""
    _registered.pop(name, None)


def _same_definition(a: type, b: type) -> bool:
    return (a.__qualname__ == b.__qualname__
            and getattr(a, "__irflow_source__", None) is not None
            and getattr(a, "__irflow_source__", None) == getattr(b, "__irflow_source__", None))


def _check_pass_class(cls: Any, where: str) -> type[ModulePass]:
    if not (inspect.isclass(cls) and issubclass(cls, ModulePass)):
        raise PassError(
            f"{where} is not a pass: expected a subclass of xdsl.passes.ModulePass, "
            f"got {cls!r}"
        )
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise PassError(f"{where} has no `name` (add `name = \"my-pass\"` to the class)")
    if inspect.isabstract(cls):
        raise PassError(f"{where} does not implement `apply(self, ctx, module)`")
    if not dataclasses.is_dataclass(cls):
        raise PassError(f"{where} must be a @dataclass(frozen=True) (its fields are the options)")
    return cls


def load_pass(spec: str) -> list[type[ModulePass]]:
    """Import and register user passes from `"path/file.py:ClassName"` or `"pkg.mod:ClassName"`.

    Without `:ClassName`, every `ModulePass` defined in that file or module is
    registered. Returns the registered classes. A missing file, a failing import, a
    missing class or a class that is not a `ModulePass` is a `PassError` saying which.

        >>> load_pass("examples/custom_pass.py:DecomposeRelu6")
        [<class '...DecomposeRelu6'>]
    """
    source, sep, class_name = spec.rpartition(":")
    if not sep:
        source, class_name = spec, ""
    if not source:
        raise PassError(f"--load-pass '{spec}': expected 'path/file.py:ClassName' "
                        "or 'package.module:ClassName'")
    module = _import_user_module(source, spec)
    if class_name:
        if not hasattr(module, class_name):
            defined = _passes_defined_in(module)
            names = [c.__name__ for c in defined]
            hint = did_you_mean(class_name, names) or (
                f" (it defines: {', '.join(names)})" if names else " (it defines no ModulePass)")
            raise PassError(f"{source} has no class '{class_name}'{hint}")
        classes = [_check_pass_class(getattr(module, class_name), f"{source}:{class_name}")]
    else:
        classes = _passes_defined_in(module)
        if not classes:
            raise PassError(f"{source} defines no ModulePass subclass")
    for cls in classes:
        register_pass(cls)
    return classes


def _passes_defined_in(module: Any) -> list[type[ModulePass]]:
    return [
        obj for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, ModulePass) and obj is not ModulePass
        and obj.__module__ == module.__name__ and isinstance(getattr(obj, "name", None), str)
        and not inspect.isabstract(obj)
    ]


def _import_user_module(source: str, spec: str) -> Any:
    is_file = source.endswith(".py") or "/" in source or "\\" in source
    if not is_file:
        try:
            return importlib.import_module(source)
        except Exception as e:
            raise PassError(f"--load-pass '{spec}': cannot import module '{source}': "
                            f"{type(e).__name__}: {e}") from e
    path = Path(source)
    if not path.is_file():
        raise PassError(f"--load-pass '{spec}': no such file '{source}'")
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:8]
    module_name = f"irflow_user_passes.{path.stem}_{digest}"
    import_spec = importlib.util.spec_from_file_location(module_name, resolved)
    assert import_spec is not None and import_spec.loader is not None
    module = importlib.util.module_from_spec(import_spec)
    # dataclasses resolve annotations through sys.modules, so register before executing.
    sys.modules[module_name] = module
    try:
        import_spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[module_name]
        raise PassError(f"--load-pass '{spec}': importing {source} failed: "
                        f"{type(e).__name__}: {e}") from e
    for obj in vars(module).values():
        if inspect.isclass(obj) and obj.__module__ == module_name:
            obj.__irflow_source__ = str(resolved)  # type: ignore[attr-defined]
    return module


# --------------------------------------------------------------------------------------
# Function passes


def module_pass(name: str) -> Callable[[Callable[..., None]], type[ModulePass]]:
    """Turn a function `(ctx, module, *, option=default, ...)` into a registered pass.

    Keyword parameters after `ctx` and `module` become typed options.

        >>> @module_pass("count-relus")
        ... def count_relus(ctx, module, *, verbose: bool = False) -> None:
        ...     print(sum(isinstance(op, nn.ReluOp) for op in module.walk()))
        >>> run_pipeline(module, "count-relus{verbose=true}")

    The decorated name is bound to the generated `ModulePass` class.
    """

    def wrap(fn: Callable[..., None]) -> type[ModulePass]:
        params = list(inspect.signature(fn, eval_str=True).parameters.values())
        if len(params) < 2:
            raise PassError(f"@module_pass('{name}') expects a function (ctx, module, ...), "
                            f"got {fn.__name__}{inspect.signature(fn)}")
        fields: list[tuple[str, Any, Any]] = []
        for p in params[2:]:
            if p.annotation is inspect.Parameter.empty:
                raise PassError(f"@module_pass('{name}'): option '{p.name}' needs a type "
                                "annotation (int, float, bool, str, tuple[int, ...], X | None)")
            default = (dataclasses.MISSING if p.default is inspect.Parameter.empty
                       else p.default)
            fields.append((p.name, p.annotation, dataclasses.field(default=default)))
        option_names = [f[0] for f in fields]

        def apply(self: ModulePass, ctx: Context, op: ModuleOp) -> None:
            fn(ctx, op, **{k: getattr(self, k) for k in option_names})

        class_name = "".join(part.capitalize() for part in fn.__name__.split("_")) + "Pass"
        cls = dataclasses.make_dataclass(
            class_name, fields, bases=(ModulePass,), frozen=True,
            namespace={"name": name, "apply": apply, "__doc__": fn.__doc__,
                       "__module__": fn.__module__},
        )
        return register_pass(cls)

    return wrap


__all__ = [
    "PASSES", "XDSL_PASSES", "ENTRY_POINT_GROUP", "get_pass", "has_pass", "pass_names",
    "available_passes", "pass_summary", "pass_origin", "plugin_passes", "did_you_mean",
    "register_pass", "unregister_pass", "load_pass", "module_pass",
]
