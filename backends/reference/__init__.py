"""irflow's reference executor: the executable semantics of the `nn` dialect.

    >>> from irflow.backends.reference import compile_function, run
    >>> prog = compile_function(module)          # compile @main once
    >>> outs = prog.run({"x": x}, check=True)    # dict: output name -> array

`KERNELS` is the one table from op class to numpy kernel factory; constant folding
and the simulator evaluate single ops through `evaluate_op`. Later dialects add
kernels with `@register_kernel(OpClass)`.
"""

from irflow.backends.reference import (
    block_kernels,  # noqa: F401  (registers irq.block_linear)
    grad_kernels,  # noqa: F401  (registers backward kernels)
    indexing_kernels,  # noqa: F401  (the table-driven nn families: indexing)
    llm_kernels,  # noqa: F401  (registers the decoder ops)
    math_kernels,  # noqa: F401  (math and logic families)
    quant_kernels,  # noqa: F401  (registers quantized kernels)
    reduction_grad_kernels,  # noqa: F401  (nn.reduce_grad)
    reduction_kernels,  # noqa: F401  (reductions family)
    spatial_kernels,  # noqa: F401  (n-D spatial: conv_transpose, pool, resize, lrn)
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
