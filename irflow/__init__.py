"""irflow: an MLIR-style IR and lowering stack for hardware-aware neural-network optimization.

    >>> import irflow
    >>> module = irflow.load("model.onnx", input_shapes={"input": [1, 3, 224, 224]})
    >>> irflow.save(module, "out/model.mlir")

`load`/`save` come from `irflow.io`, imported on first use so `import irflow` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from irflow.io import load, save

__all__ = ["load", "save"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from irflow import io

        return getattr(io, name)
    raise AttributeError(f"module 'irflow' has no attribute {name!r}")
