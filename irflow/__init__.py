"""irflow: an MLIR-style IR and lowering stack for hardware-aware neural-network optimization.

    >>> import irflow
    >>> module = irflow.load("model.onnx", input_shapes={"input": [1, 3, 224, 224]})
    >>> irflow.run_pipeline(module, "default")
    >>> irflow.save(module, "out/model.mlir")

    >>> @irflow.module_pass("count-ops")        # a user pass in a few lines
    ... def count_ops(ctx, module) -> None: ...

`load`/`save` come from `irflow.io`, the pass API from `irflow.pipeline` and
`irflow.registry`, each imported on first use so `import irflow` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from irflow.io import load, save
    from irflow.pipeline import PassManager, parse_pipeline, run_pipeline
    from irflow.registry import load_pass, module_pass, register_pass

_LAZY = {
    "load": "irflow.io",
    "save": "irflow.io",
    "run_pipeline": "irflow.pipeline",
    "parse_pipeline": "irflow.pipeline",
    "PassManager": "irflow.pipeline",
    "module_pass": "irflow.registry",
    "register_pass": "irflow.registry",
    "load_pass": "irflow.registry",
}
__all__ = ["load", "save", "run_pipeline", "parse_pipeline", "PassManager", "module_pass",
           "register_pass", "load_pass"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'irflow' has no attribute {name!r}")
