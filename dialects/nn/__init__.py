"""The `nn` dialect: irflow's graph level.

Values are statically shaped `tensor<...>` (NCHW for images, as ONNX). Every op
verifies its operand shapes and infers its result shape with one function,
`infer_shapes`, used both by the builders (`nn.Conv2dOp(x, w, b, strides=(2, 2))`, `nn.AddOp.make([x, y])`)
and by `verify_`, so a bad shape is a verifier error naming the op, the operand
and the shapes.

Weights are `nn.constant` ops whose value is `#nn.weight<"name">`, a reference
into the module's weight store (`irflow.weights`); small constants may be inline
`dense<...>` attributes.

    %w = nn.constant #nn.weight<"conv1.weight"> : tensor<64x3x7x7xf32>
    %y = nn.conv2d %x, %w {strides = array<i64: 2, 2>, pads = array<i64: 3, 3, 3, 3>}
         : (tensor<1x3x224x224xf32>, tensor<64x3x7x7xf32>) -> tensor<1x64x112x112xf32>

Semantics follow ONNX for the op of the same name; `backends/reference` is the
executable definition.

The package re-exports everything below (`nn.Conv2dOp`, `nn.prop_ints`, ...); its
modules are by concept: `attributes` (#nn.weight, #nn.sparsity, property builders),
`shapes` (shape and property helpers), `base` (`NNOp`), `constant`, `elementwise`,
`contractions`, `normalization` (+ softmax, reduce_mean), `pooling`, `movement`.
"""

from __future__ import annotations

from xdsl.ir import Dialect

from irflow.dialects.nn.attributes import (
    F64,
    IntArray,
    SparsityAttr,
    WeightAttr,
    f64,
    i64_attr,
    int_array,
)
from irflow.dialects.nn.base import NNOp
from irflow.dialects.nn.constant import ConstantOp, defining_constant
from irflow.dialects.nn.contractions import (
    Conv2dOp,
    ConvParams,
    LinearOp,
    MatmulOp,
    conv2d_params,
)
from irflow.dialects.nn.elementwise import (
    ACTIVATION_NAMES,
    FUSABLE_ACTIVATIONS,
    AddOp,
    BinaryOp,
    ClipOp,
    DivOp,
    ErfOp,
    ExpOp,
    GeluOp,
    HardSigmoidOp,
    HardSwishOp,
    MulOp,
    NegOp,
    PowOp,
    Relu6Op,
    ReluOp,
    SigmoidOp,
    SiluOp,
    SqrtOp,
    SubOp,
    TanhOp,
    UnaryOp,
)
from irflow.dialects.nn.fake_quant import FAKE_QUANT_OPS
from irflow.dialects.nn.gradients import GRADIENT_OPS
from irflow.dialects.nn.indexing import INDEXING_OPS
from irflow.dialects.nn.llm import AttentionOp, RMSNormOp, RotaryOp
from irflow.dialects.nn.logic import LOGIC_OPS
from irflow.dialects.nn.losses import LOSS_OPS
from irflow.dialects.nn.math import MATH_OPS
from irflow.dialects.nn.movement import (
    ConcatOp,
    FlattenOp,
    GatherOp,
    ReshapeOp,
    SliceOp,
    SplitOp,
    TransposeOp,
)
from irflow.dialects.nn.normalization import BatchNormOp, LayerNormOp, ReduceMeanOp, SoftmaxOp
from irflow.dialects.nn.pooling import (
    AvgPoolOp,
    GlobalAvgPoolOp,
    MaxPoolOp,
    Pool2dOp,
    PoolParams,
    pool2d_params,
)
from irflow.dialects.nn.reductions import REDUCTION_OPS
from irflow.dialects.nn.shapes import (
    Props,
    Shape,
    broadcast_shapes,
    format_shape,
    fused_act,
    normalize_axis,
    prop_float,
    prop_int,
    prop_ints,
    prop_str,
    shape_of,
    value_element_type,
    window_out,
)
from irflow.dialects.nn.spatial import SPATIAL_OPS

NN = Dialect(
    "nn",
    [
        ConstantOp,
        ReluOp, Relu6Op, ClipOp, SigmoidOp, TanhOp, GeluOp, SiluOp, HardSigmoidOp, HardSwishOp,
        ErfOp, SqrtOp, ExpOp, NegOp,
        AddOp, SubOp, MulOp, DivOp, PowOp,
        Conv2dOp, MatmulOp, LinearOp,
        BatchNormOp, LayerNormOp, SoftmaxOp, ReduceMeanOp,
        MaxPoolOp, AvgPoolOp, GlobalAvgPoolOp,
        ReshapeOp, FlattenOp, TransposeOp, ConcatOp, SliceOp, SplitOp, GatherOp,
        # table-driven families (ONNX coverage): math, logic, reductions, indexing
        *MATH_OPS.values(), *LOGIC_OPS.values(), *REDUCTION_OPS.values(),
        *INDEXING_OPS.values(),
        *GRADIENT_OPS, *LOSS_OPS, *FAKE_QUANT_OPS,  # training: gradients, losses, fake_quant
        RMSNormOp, RotaryOp, AttentionOp,
        *SPATIAL_OPS.values(),  # n-D spatial: conv_transpose, pool, resize, lrn
    ],
    [WeightAttr, SparsityAttr],
)

__all__ = [
    "ACTIVATION_NAMES",
    "AddOp",
    "AttentionOp",
    "RMSNormOp",
    "RotaryOp",
    "AvgPoolOp",
    "BatchNormOp",
    "BinaryOp",
    "ClipOp",
    "ConcatOp",
    "ConstantOp",
    "Conv2dOp",
    "ConvParams",
    "DivOp",
    "ErfOp",
    "ExpOp",
    "F64",
    "FUSABLE_ACTIVATIONS",
    "FlattenOp",
    "GatherOp",
    "GeluOp",
    "GlobalAvgPoolOp",
    "HardSigmoidOp",
    "HardSwishOp",
    "INDEXING_OPS",
    "LOGIC_OPS",
    "MATH_OPS",
    "REDUCTION_OPS",
    "SPATIAL_OPS",
    "IntArray",
    "LayerNormOp",
    "LinearOp",
    "MatmulOp",
    "MaxPoolOp",
    "MulOp",
    "NN",
    "NNOp",
    "NegOp",
    "Pool2dOp",
    "PoolParams",
    "PowOp",
    "Props",
    "ReduceMeanOp",
    "Relu6Op",
    "ReluOp",
    "ReshapeOp",
    "Shape",
    "SigmoidOp",
    "SiluOp",
    "SliceOp",
    "SoftmaxOp",
    "SparsityAttr",
    "SplitOp",
    "SqrtOp",
    "SubOp",
    "TanhOp",
    "TransposeOp",
    "UnaryOp",
    "WeightAttr",
    "broadcast_shapes",
    "conv2d_params",
    "defining_constant",
    "f64",
    "format_shape",
    "fused_act",
    "i64_attr",
    "int_array",
    "normalize_axis",
    "pool2d_params",
    "prop_float",
    "prop_int",
    "prop_ints",
    "prop_str",
    "shape_of",
    "value_element_type",
    "window_out",
]
