"""Backward ops: what `irflow.train.grad` emits for the vector-Jacobian products that the
forward `nn` ops cannot express themselves.

Each takes the upstream gradient `%dy` (plus what the VJP needs from the forward pass)
and returns the gradient with respect to one operand, in that operand's type:

    %dx = nn.conv2d_input_grad %dy, %w {pads = array<i64: 1, 1, 1, 1>}
          : (tensor<8x16x8x8xf32>, tensor<16x1x3x3xf32>) -> tensor<8x1x8x8xf32>
    %dw = nn.conv2d_weight_grad %x, %dy {pads = array<i64: 1, 1, 1, 1>}
          : (tensor<8x1x8x8xf32>, tensor<8x16x8x8xf32>) -> tensor<16x1x3x3xf32>

A result shape is not always a function of the operands (a strided convolution's input
size is not), so these ops carry their result type and verify that the forward op, applied
to it, gives `%dy`'s shape. `backends/reference/grad_kernels.py` is their semantics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from xdsl.dialects.builtin import I64, IntegerAttr, StringAttr, TensorType
from xdsl.ir import Attribute, SSAValue
from xdsl.irdl import (
    VarConstraint,
    base,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    result_def,
)
from xdsl.utils.exceptions import VerifyException

from irflow.dialects.nn.attributes import F64, IntArray, f64, i64_attr, int_array
from irflow.dialects.nn.base import NNOp
from irflow.dialects.nn.contractions import Conv2dOp, ConvWindow
from irflow.dialects.nn.math import DIFFERENTIABLE_MATH
from irflow.dialects.nn.movement import GatherOp, SliceOp
from irflow.dialects.nn.normalization import ReduceMeanOp
from irflow.dialects.nn.pooling import Pool2dOp
from irflow.dialects.nn.shapes import Shape, broadcast_shapes, shape_of
from irflow.dialects.nn.shapes import format_shape as _fmt

# Unary functions `nn.activation_grad` differentiates (the `fn` property): the forward op
# names without the `nn.` prefix.
ACTIVATION_GRAD_FNS = ("relu", "relu6", "clip", "sigmoid", "tanh", "gelu", "silu",
                       "hardsigmoid", "hardswish", "erf", "sqrt", "exp", *DIFFERENTIABLE_MATH)


class ShapedGradOp(NNOp):
    """A backward op whose result type is given (the shape of the operand it differentiates).

    `check(operand_shapes, result_shapes, props)` raises if the forward op does not map the
    result back to the upstream gradient's shape."""

    @classmethod
    def shaped(cls, operands: Sequence[SSAValue], like: Sequence[SSAValue | TensorType],
              props: Mapping[str, Attribute | None] | None = None) -> ShapedGradOp:
        """The op on `operands`, its results typed like `like` (values or types)."""
        types = [v.type if isinstance(v, SSAValue) else v for v in like]
        return cls.create(operands=list(operands), result_types=types,
                          properties={k: v for k, v in (props or {}).items() if v is not None})

    @classmethod
    def check(cls, shapes: Sequence[Shape], results: Sequence[Shape],
              props: Mapping[str, Attribute]) -> None:
        raise NotImplementedError

    def verify_(self) -> None:
        shapes = [shape_of(o) for o in self.operands]
        results = [shape_of(r) for r in self.results]
        self.check(shapes, results, self.properties)


def _expect(op: str, what: str, want: Shape, got: Shape) -> None:
    if tuple(want) != tuple(got):
        raise VerifyException(f"{op} expects {what} {_fmt(want)}, got {_fmt(got)}")


@irdl_op_definition
class Conv2dInputGradOp(ShapedGradOp, ConvWindow):
    """dL/dx of `nn.conv2d` (a transposed convolution of `%dy` with `%w`); same properties
    as the forward op."""

    name = "nn.conv2d_input_grad"
    grad = operand_def(TensorType)
    weight = operand_def(TensorType)
    output = result_def(TensorType)
    assembly_format = "$grad `,` $weight attr-dict `:` functional-type(operands, results)"

    @classmethod
    def check(cls, shapes: Sequence[Shape], results: Sequence[Shape],
              props: Mapping[str, Attribute]) -> None:
        dy = Conv2dOp.infer_shapes([results[0], shapes[1]], props)[0]
        _expect(cls.name, "a gradient of the conv2d output shape", dy, shapes[0])


@irdl_op_definition
class Conv2dWeightGradOp(ShapedGradOp, ConvWindow):
    """dL/dw of `nn.conv2d` (a correlation of the input `%x` with `%dy`)."""

    name = "nn.conv2d_weight_grad"
    input = operand_def(TensorType)
    grad = operand_def(TensorType)
    output = result_def(TensorType)
    assembly_format = "$input `,` $grad attr-dict `:` functional-type(operands, results)"

    @classmethod
    def check(cls, shapes: Sequence[Shape], results: Sequence[Shape],
              props: Mapping[str, Attribute]) -> None:
        dy = Conv2dOp.infer_shapes([shapes[0], results[0]], props)[0]
        _expect(cls.name, "a gradient of the conv2d output shape", dy, shapes[1])


class Pool2dGradOp(ShapedGradOp):
    """dL/dx of a 2-D pool: `%x` (the forward input) and `%dy`; the forward properties."""

    input = operand_def(TensorType)
    grad = operand_def(TensorType)
    output = result_def(TensorType)
    kernel = prop_def(IntArray)
    strides = prop_def(IntArray, default_value=int_array([1, 1]))
    pads = prop_def(IntArray, default_value=int_array([0, 0, 0, 0]))
    ceil_mode = prop_def(IntegerAttr[I64], default_value=i64_attr(0))
    assembly_format = "$input `,` $grad attr-dict `:` functional-type(operands, results)"

    @classmethod
    def check(cls, shapes: Sequence[Shape], results: Sequence[Shape],
              props: Mapping[str, Attribute]) -> None:
        _expect(cls.name, "a result of the input's shape", shapes[0], results[0])
        dy = Pool2dOp.infer_shapes([shapes[0]], props)[0]
        _expect(cls.name, "a gradient of the pool output shape", dy, shapes[1])


@irdl_op_definition
class MaxPoolGradOp(Pool2dGradOp):
    """`%dx = nn.maxpool_grad %x, %dy {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>}`:
    each window's gradient goes to its (first) maximum, as torch does."""

    name = "nn.maxpool_grad"


@irdl_op_definition
class AvgPoolGradOp(Pool2dGradOp):
    """`%dx = nn.avgpool_grad %x, %dy {kernel = ..., count_include_pad = 0}`: each window's
    gradient spread evenly over the cells its average counted."""

    name = "nn.avgpool_grad"
    count_include_pad = prop_def(IntegerAttr[I64], default_value=i64_attr(0))


@irdl_op_definition
class ActivationGradOp(NNOp):
    """dL/dx of a unary elementwise op `fn` (`relu`, `gelu`, ...) from its input `%x`:

        %dx = nn.activation_grad %x, %dy {fn = "relu"} : (tensor<8x16xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>

    The forward op's own properties (`min`/`max` of clip, `alpha`/`beta` of hardsigmoid,
    `approximate` of gelu, `alpha`/`gamma`/`lambd`/`bias` of the parameterized activations
    of `nn/math.py`) are carried over. At a kink (relu at 0) the derivative is
    torch's: 0."""

    name = "nn.activation_grad"
    T: ClassVar = VarConstraint("T", base(TensorType))
    input = operand_def(T)
    grad = operand_def(T)
    output = result_def(T)
    fn = prop_def(StringAttr)
    min = opt_prop_def(F64)
    max = opt_prop_def(F64)
    alpha = opt_prop_def(F64)
    beta = opt_prop_def(F64)
    gamma = opt_prop_def(F64)
    lambd = opt_prop_def(F64)
    bias = opt_prop_def(F64)
    approximate = opt_prop_def(StringAttr)
    assembly_format = "$input `,` $grad attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        fn = props.get("fn")
        name = fn.data if isinstance(fn, StringAttr) else "?"
        if name not in ACTIVATION_GRAD_FNS:
            raise VerifyException(
                f"nn.activation_grad expects fn in {list(ACTIVATION_GRAD_FNS)}, got '{name}'"
            )
        return [shapes[0]]


@irdl_op_definition
class SoftmaxGradOp(NNOp):
    """`%dx = nn.softmax_grad %y, %dy {axis = -1 : i64}` from the softmax output `%y`:
    y · (dy − Σ dy·y)."""

    name = "nn.softmax_grad"
    T: ClassVar = VarConstraint("T", base(TensorType))
    output_value = operand_def(T)
    grad = operand_def(T)
    output = result_def(T)
    axis = prop_def(IntegerAttr[I64], default_value=i64_attr(-1))
    assembly_format = "$output_value `,` $grad attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        return [shapes[0]]


@irdl_op_definition
class LayerNormGradOp(ShapedGradOp):
    """dL/dx and dL/dscale of `nn.layernorm` (the bias's gradient is `nn.sum_to` of dy):

        %dx, %dg = nn.layernorm_grad %x, %g, %dy {axis = -1 : i64} : (...) -> (tensor<4x8xf32>, tensor<8xf32>)
    """

    name = "nn.layernorm_grad"
    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    grad = operand_def(TensorType)
    input_grad = result_def(TensorType)
    scale_grad = result_def(TensorType)
    axis = prop_def(IntegerAttr[I64], default_value=i64_attr(-1))
    epsilon = prop_def(F64, default_value=f64(1e-5))
    assembly_format = "$input `,` $scale `,` $grad attr-dict `:` functional-type(operands, results)"

    @classmethod
    def check(cls, shapes: Sequence[Shape], results: Sequence[Shape],
              props: Mapping[str, Attribute]) -> None:
        _expect(cls.name, "a gradient of the input's shape", shapes[0], shapes[2])
        _expect(cls.name, "an input gradient of the input's shape", shapes[0], results[0])
        _expect(cls.name, "a scale gradient of the scale's shape", shapes[1], results[1])


@irdl_op_definition
class BatchNormGradOp(ShapedGradOp):
    """dL/dx, dL/dscale, dL/dbias of (inference) `nn.batchnorm`, the statistics fixed:

        %dx, %dg, %db = nn.batchnorm_grad %x, %g, %mean, %var, %dy {epsilon = 1.0e-05 : f64} : (...) -> (...)
    """

    name = "nn.batchnorm_grad"
    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    mean = operand_def(TensorType)
    var = operand_def(TensorType)
    grad = operand_def(TensorType)
    input_grad = result_def(TensorType)
    scale_grad = result_def(TensorType)
    bias_grad = result_def(TensorType)
    epsilon = prop_def(F64, default_value=f64(1e-5))
    assembly_format = (
        "$input `,` $scale `,` $mean `,` $var `,` $grad attr-dict `:` "
        "functional-type(operands, results)"
    )

    @classmethod
    def check(cls, shapes: Sequence[Shape], results: Sequence[Shape],
              props: Mapping[str, Attribute]) -> None:
        x = shapes[0]
        _expect(cls.name, "a gradient of the input's shape", x, shapes[4])
        _expect(cls.name, "results of the input's and channels' shapes",
                (*x, x[1], x[1]) if len(x) > 1 else x, tuple(d for r in results for d in r))


@irdl_op_definition
class SumToOp(ShapedGradOp):
    """Sum over the dimensions along which the result shape broadcasts to the input's (the
    adjoint of broadcasting): `%db = nn.sum_to %dy : (tensor<8x16xf32>) -> tensor<16xf32>`."""

    name = "nn.sum_to"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    @classmethod
    def check(cls, shapes: Sequence[Shape], results: Sequence[Shape],
              props: Mapping[str, Attribute]) -> None:
        if len(results[0]) > len(shapes[0]) or broadcast_shapes(
                cls.name, results[0], shapes[0]) != shapes[0]:
            raise VerifyException(
                f"nn.sum_to expects a result that broadcasts to {_fmt(shapes[0])}, "
                f"got {_fmt(results[0])}"
            )


@irdl_op_definition
class ReduceMeanGradOp(ShapedGradOp):
    """dL/dx of `nn.reduce_mean` (dy / count, broadcast back over the reduced axes):
    `%dx = nn.reduce_mean_grad %dy {axes = array<i64: 2, 3>, keepdims = 1 : i64}`."""

    name = "nn.reduce_mean_grad"
    grad = operand_def(TensorType)
    output = result_def(TensorType)
    axes = prop_def(IntArray)
    keepdims = prop_def(IntegerAttr[I64], default_value=i64_attr(1))
    assembly_format = "$grad attr-dict `:` functional-type(operands, results)"

    @classmethod
    def check(cls, shapes: Sequence[Shape], results: Sequence[Shape],
              props: Mapping[str, Attribute]) -> None:
        dy = ReduceMeanOp.infer_shapes([results[0]], props)[0]
        _expect(cls.name, "a gradient of the reduced shape", dy, shapes[0])


@irdl_op_definition
class SliceGradOp(ShapedGradOp):
    """dL/dx of `nn.slice`: `%dy` written back into zeros of the input's shape."""

    name = "nn.slice_grad"
    grad = operand_def(TensorType)
    output = result_def(TensorType)
    starts = prop_def(IntArray)
    ends = prop_def(IntArray)
    axes = prop_def(IntArray)
    steps = opt_prop_def(IntArray)
    assembly_format = "$grad attr-dict `:` functional-type(operands, results)"

    @classmethod
    def check(cls, shapes: Sequence[Shape], results: Sequence[Shape],
              props: Mapping[str, Attribute]) -> None:
        dy = SliceOp.infer_shapes([results[0]], props)[0]
        _expect(cls.name, "a gradient of the slice's shape", dy, shapes[0])


@irdl_op_definition
class GatherGradOp(ShapedGradOp):
    """dL/ddata of `nn.gather`: `%dy` scatter-added at `%indices` into zeros of the data's
    shape (repeated indices accumulate)."""

    name = "nn.gather_grad"
    indices = operand_def(TensorType)
    grad = operand_def(TensorType)
    output = result_def(TensorType)
    axis = prop_def(IntegerAttr[I64], default_value=i64_attr(0))
    assembly_format = "$indices `,` $grad attr-dict `:` functional-type(operands, results)"

    @classmethod
    def check(cls, shapes: Sequence[Shape], results: Sequence[Shape],
              props: Mapping[str, Attribute]) -> None:
        dy = GatherOp.infer_shapes([results[0], shapes[0]], props)[0]
        _expect(cls.name, "a gradient of the gather's shape", dy, shapes[1])


# Reductions of `nn/reductions.py` `nn.reduce_grad` differentiates (its `fn`).
REDUCE_GRAD_FNS = ("reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_l1",
                   "reduce_l2", "reduce_log_sum", "reduce_log_sum_exp", "reduce_sum_square")


@irdl_op_definition
class ReduceGradOp(ShapedGradOp):
    """dL/dx of the reduction `fn` (`reduce_sum`, `reduce_max`, ...) from its input, its
    result and the upstream gradient: dy broadcast back over `axes` times ∂y/∂x (for max
    and min, shared equally among tied extremes, as torch's amax/amin):

        %dx = nn.reduce_grad %x, %y, %dy {fn = "reduce_max", axes = array<i64: 1>, keepdims = 0 : i64}
              : (tensor<2x3xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2x3xf32>"""

    name = "nn.reduce_grad"
    input = operand_def(TensorType)
    result = operand_def(TensorType)
    grad = operand_def(TensorType)
    output = result_def(TensorType)
    fn = prop_def(StringAttr)
    axes = prop_def(IntArray)
    keepdims = prop_def(IntegerAttr[I64], default_value=i64_attr(1))
    assembly_format = "$input `,` $result `,` $grad attr-dict `:` functional-type(operands, results)"

    @classmethod
    def check(cls, shapes: Sequence[Shape], results: Sequence[Shape],
              props: Mapping[str, Attribute]) -> None:
        fn = props.get("fn")
        name = fn.data if isinstance(fn, StringAttr) else "?"
        if name not in REDUCE_GRAD_FNS:
            raise VerifyException(f"nn.reduce_grad expects fn in {list(REDUCE_GRAD_FNS)}, "
                                  f"got '{name}'")
        _expect(cls.name, "an input of the result's shape", results[0], shapes[0])
        dy = ReduceMeanOp.infer_shapes([results[0]], props)[0]
        _expect(cls.name, "a reduced value of the reduced shape", dy, shapes[1])
        _expect(cls.name, "a gradient of the reduced shape", dy, shapes[2])


GRADIENT_OPS = [
    Conv2dInputGradOp, Conv2dWeightGradOp, MaxPoolGradOp, AvgPoolGradOp, ActivationGradOp,
    SoftmaxGradOp, LayerNormGradOp, BatchNormGradOp, SumToOp, ReduceMeanGradOp, SliceGradOp,
    GatherGradOp, ReduceGradOp,
]
