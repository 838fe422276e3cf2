"""Table-driven elementwise maps: math functions (`nn.abs`, `nn.log`, `nn.sin`, ...),
parameterized activations (`nn.leaky_relu {alpha}`, `nn.elu`, `nn.selu`, ...), predicates
with a boolean result (`nn.is_nan`, `nn.is_inf`) and `nn.cast`.

Every op here is a one-line row of a table; the classes are generated from the rows, so
each has its own readable MLIR name and verifier and they share one shape rule (the
result has the input's shape):

    %y = nn.log %x : tensor<4xf32>
    %y = nn.leaky_relu %x {alpha = 0.1 : f64} : tensor<4xf32>
    %m = nn.is_nan %x : (tensor<4xf32>) -> tensor<4xi1>
    %i = nn.cast %x : (tensor<4xf32>) -> tensor<4xi64>

`MATH_OPS` maps the short name (`"abs"`) to its class; the reference kernels are in
`backends/reference/math_kernels.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from xdsl.dialects.builtin import I64, IntegerAttr, IntegerType, TensorType
from xdsl.ir import Attribute
from xdsl.irdl import irdl_op_definition, operand_def, prop_def, result_def
from xdsl.utils.exceptions import VerifyException

from irflow.dialects.nn.attributes import F64, f64, i64_attr
from irflow.dialects.nn.base import NNOp
from irflow.dialects.nn.elementwise import UnaryOp
from irflow.dialects.nn.shapes import Shape, value_element_type

# short name -> (ONNX operator, what it computes)
UNARY_MATH: dict[str, tuple[str, str]] = {
    "abs": ("Abs", "|x|"),
    "log": ("Log", "natural logarithm"),
    "reciprocal": ("Reciprocal", "1 / x"),
    "floor": ("Floor", "round down"),
    "ceil": ("Ceil", "round up"),
    "round": ("Round", "round half to even"),
    "sign": ("Sign", "-1, 0 or 1"),
    "sin": ("Sin", "sine"), "cos": ("Cos", "cosine"), "tan": ("Tan", "tangent"),
    "asin": ("Asin", "arcsine"), "acos": ("Acos", "arccosine"), "atan": ("Atan", "arctangent"),
    "sinh": ("Sinh", "hyperbolic sine"), "cosh": ("Cosh", "hyperbolic cosine"),
    "asinh": ("Asinh", "inverse hyperbolic sine"),
    "acosh": ("Acosh", "inverse hyperbolic cosine"),
    "atanh": ("Atanh", "inverse hyperbolic tangent"),
    "softplus": ("Softplus", "log(1 + exp(x))"),
    "softsign": ("Softsign", "x / (1 + |x|)"),
    "mish": ("Mish", "x · tanh(softplus(x))"),
    "not": ("Not", "logical not of a boolean tensor"),
    "bitwise_not": ("BitwiseNot", "bitwise complement of an integer tensor"),
}

# short name -> (ONNX operator, float properties with their ONNX defaults, formula)
PARAM_ACTIVATIONS: dict[str, tuple[str, dict[str, float], str]] = {
    "leaky_relu": ("LeakyRelu", {"alpha": 0.01}, "x if x >= 0 else alpha·x"),
    "elu": ("Elu", {"alpha": 1.0}, "x if x > 0 else alpha·(exp(x) − 1)"),
    "selu": ("Selu", {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875},
             "gamma·(x if x > 0 else alpha·(exp(x) − 1))"),
    "celu": ("Celu", {"alpha": 1.0}, "max(0, x) + min(0, alpha·(exp(x/alpha) − 1))"),
    "thresholded_relu": ("ThresholdedRelu", {"alpha": 1.0}, "x if x > alpha else 0"),
    "shrink": ("Shrink", {"bias": 0.0, "lambd": 0.5},
               "x − bias if x > lambd, x + bias if x < −lambd, else 0"),
}

# The rows `grad` differentiates (`nn.activation_grad`'s fn table): the rest are
# piecewise constant (floor, ceil, round, sign), boolean or integer.
DIFFERENTIABLE_MATH = ("abs", "log", "reciprocal", "sin", "cos", "tan", "asin", "acos", "atan",
                       "sinh", "cosh", "asinh", "acosh", "atanh", "softplus", "softsign", "mish",
                       *PARAM_ACTIVATIONS)

MATH_OPS: dict[str, type[NNOp]] = {}
"""Short name (`"abs"`, `"leaky_relu"`, `"is_nan"`, `"cast"`) -> op class."""


def _class_name(short: str) -> str:
    return "".join(part.capitalize() for part in short.split("_")) + "Op"


def _define(short: str, base_cls: type[NNOp], doc: str,
            fields: Mapping[str, object] | None = None) -> type[NNOp]:
    cls = type(_class_name(short), (base_cls,),
               {"name": f"nn.{short}", "__doc__": doc, "__module__": __name__,
                **(fields or {})})
    op = irdl_op_definition(cls)
    MATH_OPS[short] = op
    return op


for _short, (_onnx, _what) in UNARY_MATH.items():
    _define(_short, UnaryOp, f"`%y = nn.{_short} %x : tensor<4xf32>` — {_what} (ONNX {_onnx}).")

for _short, (_onnx, _params, _what) in PARAM_ACTIVATIONS.items():
    _define(_short, UnaryOp,
            f"`%y = nn.{_short} %x : tensor<4xf32>` — {_what} (ONNX {_onnx}; properties "
            f"{', '.join(f'{k} = {v}' for k, v in _params.items())} by default).",
            {k: prop_def(F64, default_value=f64(v)) for k, v in _params.items()})


class ConvertOp(NNOp):
    """Same shape, another element type (the result type says which)."""

    input = operand_def(TensorType)
    output = result_def(TensorType)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    @classmethod
    def infer_shapes(cls, shapes: Sequence[Shape], props: Mapping[str, Attribute]) -> list[Shape]:
        return [shapes[0]]


class PredicateOp(ConvertOp):
    """Same shape, boolean (i1) result."""

    def verify_(self) -> None:
        super().verify_()
        el = value_element_type(self.output)
        if not (isinstance(el, IntegerType) and el.width.data == 1):
            raise VerifyException(f"{self.name} expects an i1 result, got {self.output.type}")


_define("cast", ConvertOp,
        "`%y = nn.cast %x : (tensor<4xf32>) -> tensor<4xi64>` — convert to the result's element "
        "type (ONNX Cast: floats to integers truncate toward zero, to bool is x != 0; to a "
        "float8 type with `saturate` = 1, out-of-range values clip to its largest finite one).",
        {"saturate": prop_def(IntegerAttr[I64], default_value=i64_attr(1))})
_define("is_nan", PredicateOp, "`%m = nn.is_nan %x : (tensor<4xf32>) -> tensor<4xi1>` (ONNX IsNaN).")
_define("is_inf", PredicateOp,
        "`%m = nn.is_inf %x : (tensor<4xf32>) -> tensor<4xi1>` — ±inf, as selected by "
        "`detect_positive` / `detect_negative` (ONNX IsInf; both 1 by default).",
        {"detect_positive": prop_def(IntegerAttr[I64], default_value=i64_attr(1)),
         "detect_negative": prop_def(IntegerAttr[I64], default_value=i64_attr(1))})

CastOp = MATH_OPS["cast"]

__all__ = ["MATH_OPS", "UNARY_MATH", "DIFFERENTIABLE_MATH", "PARAM_ACTIVATIONS", "ConvertOp", "PredicateOp", "CastOp"]
