"""The simulator's side of `dialects/accel_vector.py`: the vector cost class of each of its
kinds (`executor.VECTOR_KIND`) and the tile kernel of `nn.topk` (registered in
`executor.TILE_KERNELS`), which stores the one result its layer's `result` param names.

Every other kind there uses the generic path: the reference kernel on the tile's slices
(the axes it reduces or scans over are whole in every tile), so its numbers are the
reference executor's.
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Block

from irflow.backends.reference.kernels import make_kernel
from irflow.backends.sim.executor import NN_OPS, TILE_KERNELS, VECTOR_KIND, Step, TileKernel
from irflow.dialects import accel, accel_vector, nn


def topk_tiles(layer: accel.LayerOp, space: accel.Space) -> TileKernel:
    params = dict(layer.params.data)
    which = nn.prop_int(params, accel_vector.RESULT_PARAM, 0)
    params.pop(accel_vector.RESULT_PARAM, None)
    x, out = layer.inputs[0].type, layer.output.type
    assert isinstance(x, TensorType) and isinstance(out, TensorType)
    values_type = TensorType(x.element_type, out.get_shape())
    block = Block(arg_types=[x])
    op = NN_OPS[layer.kind.data].create(
        operands=list(block.args), result_types=[values_type, out],
        properties=params)
    kernel = make_kernel(op)

    def run(step: Step) -> None:
        step.out[...] = np.asarray(kernel(*step.operands)[which]).reshape(step.out.shape)

    return run


assert accel_vector.TOPK in NN_OPS
TILE_KERNELS[accel_vector.TOPK] = topk_tiles
VECTOR_KIND.update(accel_vector.COST_CLASS)
