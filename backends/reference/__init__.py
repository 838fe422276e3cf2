"""irflow's reference executor: the executable semantics of the `nn` dialect.

    >>> from irflow.backends.reference import compile_function, run
    >>> prog = compile_function(module)          # compile @main once
    >>> outs = prog.run({"x": x}, check=True)    # dict: output name -> array

`KERNELS` is the one table from op class to numpy kernel factory; constant folding
and the simulator evaluate single ops through `evaluate_op`. Later dialects add
kernels with `@register_kernel(OpClass)`.
"""

from irflow.backends.reference import (  # noqa: F401  (register the table-driven nn families)
    indexing_kernels,
    math_kernels,
    quant_kernels,  # noqa: F401  (registers quantized kernels)
    reduction_kernels,
)
from irflow.backends.reference.executor import Program, Step, ValueSpec, compile_function, run
from irflow.backends.reference.kernels import (
    KERNELS,
    evaluate_op,
    kernel_factory,
    make_kernel,
    register_kernel,
)

__all__ = [
    "KERNELS",
    "Program",
    "Step",
    "ValueSpec",
    "compile_function",
    "evaluate_op",
    "kernel_factory",
    "make_kernel",
    "register_kernel",
    "run",
]
