"""The DSL's layer table: every layer's operands, typed options, weights and IR.

Each layer is a function registered with `@layer(name, inputs=..., weighted=...,
**options)`; it receives a `LayerCall` (tensor operands, options already checked
and converted, the weight-name prefix, the source location) and appends `nn` ops
through it. Adding a layer is one decorated function:

    @layer("mish")
    def _mish(c: LayerCall) -> SSAValue:
        (x,) = c.args                         # the tensor operands, already checked
        return c.make(nn.MishOp, [x])         # appended with the call's location

A layer with `weighted=True` names its weights with `c.weight("weight", shape, init)`
(`<variable>.weight`); its shape errors are reported at the call by `c.make`/`c.build`.
Seeded initializers (torch's defaults) and the compile-time builtins live here too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from xdsl.dialects.builtin import FileLineColLoc, StringAttr
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.utils.exceptions import VerifyException

from irflow.diagnostics import ParseError
from irflow.dialects import nn

if TYPE_CHECKING:
    from irflow.frontends.dsl import _Compiler

Value = Any  # SSAValue (a tensor) | int | float | bool | str | list[Value] | tuple (results)

# --------------------------------------------------------------------------------------
# Layer table: name → (operands, typed options, builder)


class _Required:
    def __repr__(self) -> str:
        return "required"


REQUIRED: Any = _Required()


class BadValue(Exception):
    """An option or argument value of the wrong kind; the message says what was expected."""


def is_int(v: Value) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1


def _in_i64(*values: int) -> None:
    """Integers become i64 attributes: a larger one is a clear error, not an overflow."""
    for x in values:
        if not _I64_MIN <= x <= _I64_MAX:
            raise BadValue(f"an integer that fits in 64 bits, got {x}")


def _as_int(v: Value) -> int:
    if not is_int(v):
        raise BadValue(f"an integer, got {kind(v)}")
    _in_i64(v)
    return v


def as_float(v: Value) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise BadValue(f"a number, got {kind(v)}")
    return float(v)


def _as_bool(v: Value) -> bool:
    if not isinstance(v, bool):
        raise BadValue(f"true or false, got {kind(v)}")
    return v


def _as_ints(v: Value) -> tuple[int, ...]:
    if not isinstance(v, list) or not all(is_int(x) for x in v):
        raise BadValue(f"a list of integers, got {kind(v)}")
    _in_i64(*v)
    return tuple(v)


def _as_pair(v: Value) -> tuple[int, int]:
    if is_int(v):
        _in_i64(v)
        return (v, v)
    if isinstance(v, list) and len(v) == 2 and all(is_int(x) for x in v):
        _in_i64(*v)
        return (v[0], v[1])
    raise BadValue(f"an integer or a list of 2 integers, got {kind(v)}")


def _as_pads(v: Value) -> tuple[int, int, int, int]:
    """`p`, `[h, w]` or `[top, left, bottom, right]` (ONNX order)."""
    if is_int(v):
        _in_i64(v)
        return (v, v, v, v)
    if isinstance(v, list) and all(is_int(x) for x in v):
        _in_i64(*v)
        if len(v) == 2:
            return (v[0], v[1], v[0], v[1])
        if len(v) == 4:
            return (v[0], v[1], v[2], v[3])
    raise BadValue(f"an integer, [h, w] or [top, left, bottom, right], got {kind(v)}")


def _as_choice(*choices: str) -> Callable[[Value], str]:
    def convert(v: Value) -> str:
        if v not in choices:
            raise BadValue(f"one of {', '.join(repr(c) for c in choices)}, got {kind(v)}")
        return v

    return convert


def kind(v: Value) -> str:
    if isinstance(v, SSAValue):
        return f"a tensor {shape_str(v)}"
    if isinstance(v, bool):
        return f"{'true' if v else 'false'}"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, tuple):
        return f"{len(v)} values"
    if isinstance(v, list):
        return "[" + ", ".join(kind(x) if isinstance(x, SSAValue) else repr(x)
                               for x in v) + "]"
    return repr(v)


def shape_str(v: SSAValue) -> str:
    return nn.format_shape(nn.shape_of(v))


@dataclass(frozen=True)
class Opt:
    convert: Callable[[Value], Any]
    default: Any = REQUIRED


@dataclass(frozen=True)
class LayerSpec:
    """A DSL layer: how many tensor operands, which options, and how it builds IR."""

    name: str
    build: Callable[[LayerCall], Value]
    inputs: tuple[int, int | None]  # (min, max) tensor operands; max None = any number
    options: dict[str, Opt]
    weighted: bool
    doc: str


LAYERS: dict[str, LayerSpec] = {}


def layer(name: str, *, inputs: int | tuple[int, int | None] = 1, weighted: bool = False,
          **options: Opt) -> Callable[[Callable[[LayerCall], Value]], Callable[[LayerCall], Value]]:
    """Register a DSL layer (the decorated function builds its IR)."""

    def register(build: Callable[[LayerCall], Value]) -> Callable[[LayerCall], Value]:
        n = (inputs, inputs) if isinstance(inputs, int) else inputs
        LAYERS[name] = LayerSpec(name, build, n, options, weighted,
                                 (build.__doc__ or "").strip().splitlines()[0])
        return build

    return register


@dataclass
class LayerCall:
    """One evaluated layer call: operands, converted options, and where it is."""

    compiler: _Compiler
    spec: LayerSpec
    args: list[SSAValue]
    opts: dict[str, Any]
    loc: FileLineColLoc
    where: str
    prefix: str  # weight-name prefix (`layer1.0.conv1`), set for weighted layers

    def build(self, thunk: Callable[[], Operation]) -> Operation:
        """Append the op `thunk()` builds; a shape error raised building it points here."""
        try:
            op = thunk()
        except VerifyException as e:
            raise ParseError(_shape_message(self.spec.name, e), self.where) from None
        return self.compiler.graph.add(op, self.loc)

    def op(self, cls: type[nn.NNOp], operands: Sequence[SSAValue | None],
           props: dict[str, Attribute | None] | None = None) -> Operation:
        """Append a `cls` op with result types inferred from the operands."""
        return self.build(lambda: cls.make(list(operands), props or {}))

    def make(self, cls: type[nn.NNOp], operands: Sequence[SSAValue | None],
             props: dict[str, Attribute | None] | None = None) -> SSAValue:
        return self.op(cls, operands, props).results[0]

    def weight(self, suffix: str, shape: Sequence[int], init: Init) -> SSAValue:
        name = f"{self.prefix}.{suffix}" if suffix else self.prefix
        return self.compiler.weight(name, tuple(int(d) for d in shape), init, self)

    def scalar(self, value: float, like: SSAValue) -> SSAValue:
        """A rank-0 inline constant of `like`'s element type."""
        elem = like.type.element_type  # type: ignore[attr-defined]
        return self.compiler.graph.inline(np.array(value), elem, self.loc)


def _shape_message(layer_name: str, e: VerifyException) -> str:
    msg = str(e.args[0]) if e.args else str(e)
    return msg if msg.startswith("nn.") else f"{layer_name}: {msg}"


# --------------------------------------------------------------------------------------
# Weight initializers: deterministic from (seed, weight name).

Init = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]


def _uniform(lo: float, hi: float) -> Init:
    def init(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.random(shape, dtype=np.float32) * np.float32(hi - lo) + np.float32(lo)

    return init


def _kaiming_uniform(fan_in: int) -> Init:
    """torch's default for conv/linear weights and biases: U(±1/√fan_in)."""
    bound = 1.0 / math.sqrt(max(fan_in, 1))
    return _uniform(-bound, bound)


def _normal(std: float) -> Init:
    def init(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(std)

    return init


def _full(value: float) -> Init:
    return lambda rng, shape: np.full(shape, value, np.float32)


# Normalization parameters are perturbed around their identity values so that
# fold-batchnorm and friends are exercised on non-trivial numbers.
_NORM_SCALE, _NORM_SHIFT = _uniform(0.8, 1.2), _uniform(-0.1, 0.1)
_BN_MEAN, _BN_VAR = _uniform(-0.1, 0.1), _uniform(0.8, 1.2)


def _bias(c: LayerCall, out: int, fan_in: int) -> SSAValue | None:
    return c.weight("bias", (out,), _kaiming_uniform(fan_in)) if c.opts["bias"] else None


# ---- contractions


@layer("conv2d", weighted=True, out=Opt(_as_int), kernel=Opt(_as_pair), stride=Opt(_as_pair, 1),
       pad=Opt(_as_pads, 0), dilation=Opt(_as_pair, 1), groups=Opt(_as_int, 1),
       bias=Opt(_as_bool, True))
def _conv2d(c: LayerCall) -> SSAValue:
    """2-D convolution, NCHW; weight `.weight` [out, in/groups, kh, kw], `.bias` [out]."""
    (x,) = c.args
    o = c.opts
    shape = nn.shape_of(x)
    if len(shape) != 4:
        raise ParseError(f"conv2d expects a rank-4 input (NCHW), got {shape_str(x)}", c.where)
    groups, (kh, kw) = o["groups"], o["kernel"]
    if groups < 1 or shape[1] % groups or o["out"] % groups or o["out"] < 1:
        raise ParseError(
            f"conv2d expects in ({shape[1]}) and out ({o['out']}) channels divisible by "
            f"groups ({groups})", c.where)
    fan_in = shape[1] // groups * kh * kw
    w = c.weight("weight", (o["out"], shape[1] // groups, kh, kw), _kaiming_uniform(fan_in))
    b = _bias(c, o["out"], fan_in)
    return c.build(lambda: nn.Conv2dOp(x, w, b, strides=o["stride"], pads=o["pad"],
                                       dilations=o["dilation"], groups=groups)).results[0]


@layer("linear", weighted=True, out=Opt(_as_int), bias=Opt(_as_bool, True))
def _linear(c: LayerCall) -> SSAValue:
    """y = x·Wᵀ + b over the last axis; `.weight` [out, in], `.bias` [out]."""
    (x,) = c.args
    shape = nn.shape_of(x)
    if not shape:
        raise ParseError("linear expects a tensor of rank >= 1, got a scalar", c.where)
    w = c.weight("weight", (c.opts["out"], shape[-1]), _kaiming_uniform(shape[-1]))
    b = _bias(c, c.opts["out"], shape[-1])
    return c.make(nn.LinearOp, [x, w, b])


@layer("matmul", inputs=2)
def _matmul(c: LayerCall) -> SSAValue:
    """Matrix product (ONNX MatMul: batched, broadcasting)."""
    return c.make(nn.MatmulOp, c.args)


# ---- normalization


@layer("batchnorm", weighted=True, eps=Opt(as_float, 1e-5))
def _batchnorm(c: LayerCall) -> SSAValue:
    """Inference batchnorm over axis 1; `.weight .bias .running_mean .running_var` [C]."""
    (x,) = c.args
    shape = nn.shape_of(x)
    if len(shape) < 2:
        raise ParseError(f"batchnorm expects rank >= 2, got {shape_str(x)}", c.where)
    ch = (shape[1],)
    params = [c.weight("weight", ch, _NORM_SCALE), c.weight("bias", ch, _NORM_SHIFT),
              c.weight("running_mean", ch, _BN_MEAN), c.weight("running_var", ch, _BN_VAR)]
    eps = c.opts["eps"]
    return c.make(nn.BatchNormOp, [x, *params], {"epsilon": None if eps == 1e-5 else nn.f64(eps)})


@layer("layernorm", weighted=True, axis=Opt(_as_int, -1), eps=Opt(as_float, 1e-5),
       bias=Opt(_as_bool, True))
def _layernorm(c: LayerCall) -> SSAValue:
    """Layer norm over axes `axis`..end; `.weight` and `.bias` of that shape."""
    (x,) = c.args
    shape = nn.shape_of(x)
    axis = c.opts["axis"]
    if not -len(shape) <= axis < len(shape):
        raise ParseError(f"layernorm expects axis in [{-len(shape)}, {len(shape)}), got {axis}",
                         c.where)
    norm = shape[axis:]
    g = c.weight("weight", norm, _NORM_SCALE)
    b = c.weight("bias", norm, _NORM_SHIFT) if c.opts["bias"] else None
    eps = c.opts["eps"]
    return c.make(nn.LayerNormOp, [x, g, b], {
        "axis": None if axis == -1 else nn.i64_attr(axis),
        "epsilon": None if eps == 1e-5 else nn.f64(eps)})


@layer("softmax", axis=Opt(_as_int, -1))
def _softmax(c: LayerCall) -> SSAValue:
    """Softmax along `axis`."""
    axis = c.opts["axis"]
    return c.make(nn.SoftmaxOp, c.args, {"axis": None if axis == -1 else nn.i64_attr(axis)})


@layer("reduce_mean", axes=Opt(_as_ints), keepdims=Opt(_as_bool, True))
def _reduce_mean(c: LayerCall) -> SSAValue:
    """Mean over `axes`."""
    return c.make(nn.ReduceMeanOp, c.args, {
        "axes": nn.int_array(c.opts["axes"]),
        "keepdims": None if c.opts["keepdims"] else nn.i64_attr(0)})


# ---- elementwise


def _elementwise(name: str, cls: type[nn.NNOp], arity: int, doc: str) -> None:
    def build(c: LayerCall) -> SSAValue:
        return c.make(cls, c.args)

    LAYERS[name] = LayerSpec(name, build, (arity, arity), {}, False, doc)


for _name, _cls, _doc in [
    ("relu", nn.ReluOp, "max(x, 0)."), ("relu6", nn.Relu6Op, "min(max(x, 0), 6)."),
    ("sigmoid", nn.SigmoidOp, "1 / (1 + exp(-x))."), ("tanh", nn.TanhOp, "tanh(x)."),
    ("silu", nn.SiluOp, "x · sigmoid(x)."),
    ("hardswish", nn.HardSwishOp, "x · max(0, min(1, x/6 + 1/2))."),
    ("erf", nn.ErfOp, "erf(x)."), ("sqrt", nn.SqrtOp, "√x."), ("exp", nn.ExpOp, "eˣ."),
    ("neg", nn.NegOp, "-x."),
]:
    _elementwise(_name, _cls, 1, _doc)


@layer("gelu", approximate=Opt(_as_choice("none", "tanh"), "none"))
def _gelu(c: LayerCall) -> SSAValue:
    """GELU, exact (erf) or `approximate="tanh"`."""
    approx = c.opts["approximate"]
    return c.make(nn.GeluOp, c.args,
                  {"approximate": None if approx == "none" else StringAttr(approx)})


@layer("hardsigmoid", alpha=Opt(as_float, 0.2), beta=Opt(as_float, 0.5))
def _hardsigmoid(c: LayerCall) -> SSAValue:
    """max(0, min(1, alpha·x + beta))."""
    a, b = c.opts["alpha"], c.opts["beta"]
    return c.make(nn.HardSigmoidOp, c.args, {"alpha": None if a == 0.2 else nn.f64(a),
                                             "beta": None if b == 0.5 else nn.f64(b)})


@layer("clip", min=Opt(as_float, None), max=Opt(as_float, None))
def _clip(c: LayerCall) -> SSAValue:
    """Clamp to [min, max]; a bound not given is open."""
    lo, hi = c.opts["min"], c.opts["max"]
    if lo is not None and hi is not None and lo > hi:
        raise ParseError(f"clip expects min <= max, got min {lo} and max {hi}", c.where)
    return c.make(nn.ClipOp, c.args, {"min": None if lo is None else nn.f64(lo),
                                      "max": None if hi is None else nn.f64(hi)})


for _name, _cls in [("add", nn.AddOp), ("sub", nn.SubOp), ("mul", nn.MulOp),
                    ("div", nn.DivOp), ("pow", nn.PowOp)]:
    _elementwise(_name, _cls, 2, f"Elementwise {_name}, broadcasting; a number operand "
                 "becomes a constant.")
SCALAR_OPERANDS = {"add", "sub", "mul", "div", "pow"}  # a number operand becomes a constant


# ---- pooling


def _pool(c: LayerCall, cls: type[nn.NNOp], extra: dict[str, Attribute | None]) -> SSAValue:
    o = c.opts
    stride = o["stride"] if o["stride"] is not None else o["kernel"]
    props: dict[str, Attribute | None] = {
        "kernel": nn.int_array(o["kernel"]),
        "strides": None if stride == (1, 1) else nn.int_array(stride),
        "pads": None if o["pad"] == (0, 0, 0, 0) else nn.int_array(o["pad"]),
        "ceil_mode": nn.i64_attr(1) if o["ceil_mode"] else None,
        **extra,
    }
    return c.make(cls, c.args, props)


_POOL_OPTS = dict(kernel=Opt(_as_pair), stride=Opt(_as_pair, None), pad=Opt(_as_pads, 0),
                  ceil_mode=Opt(_as_bool, False))


@layer("maxpool", **_POOL_OPTS)
def _maxpool(c: LayerCall) -> SSAValue:
    """Max pooling; `stride` defaults to `kernel` (as in torch)."""
    return _pool(c, nn.MaxPoolOp, {})


@layer("avgpool", **_POOL_OPTS, count_include_pad=Opt(_as_bool, False))
def _avgpool(c: LayerCall) -> SSAValue:
    """Average pooling; `stride` defaults to `kernel`; padding excluded from the divisor."""
    return _pool(c, nn.AvgPoolOp,
                 {"count_include_pad": nn.i64_attr(1) if c.opts["count_include_pad"] else None})


@layer("global_avg_pool")
def _global_avg_pool(c: LayerCall) -> SSAValue:
    """Mean over all spatial axes, keeping them as size 1."""
    return c.make(nn.GlobalAvgPoolOp, c.args)


# ---- data movement


@layer("reshape", shape=Opt(_as_ints))
def _reshape(c: LayerCall) -> SSAValue:
    """Reshape (row-major); one dimension may be -1, a 0 copies the input's dimension."""
    (x,) = c.args
    src = nn.shape_of(x)
    dims = list(c.opts["shape"])
    for i, d in enumerate(dims):
        if d == 0:
            if i >= len(src):
                raise ParseError(f"reshape: 0 at position {i} has no input dimension to copy "
                                 f"(input {shape_str(x)})", c.where)
            dims[i] = src[i]
    if dims.count(-1) > 1 or any(d < -1 for d in dims):
        raise ParseError(f"reshape expects dimensions >= 0 and at most one -1, got {dims}",
                         c.where)
    if -1 in dims:
        known = math.prod(d for d in dims if d != -1)
        if known == 0 or math.prod(src) % known:
            raise ParseError(f"reshape cannot infer -1 in {list(c.opts['shape'])} for input "
                             f"{shape_str(x)}", c.where)
        dims[dims.index(-1)] = math.prod(src) // known
    return c.build(lambda: nn.ReshapeOp(x, dims)).results[0]


@layer("flatten", axis=Opt(_as_int, 1))
def _flatten(c: LayerCall) -> SSAValue:
    """Flatten to 2-D at `axis`."""
    axis = c.opts["axis"]
    return c.make(nn.FlattenOp, c.args, {"axis": None if axis == 1 else nn.i64_attr(axis)})


@layer("transpose", perm=Opt(_as_ints))
def _transpose(c: LayerCall) -> SSAValue:
    """Permute axes."""
    return c.make(nn.TransposeOp, c.args, {"perm": nn.int_array(c.opts["perm"])})


@layer("concat", inputs=(1, None), axis=Opt(_as_int))
def _concat(c: LayerCall) -> SSAValue:
    """Concatenate any number of tensors along `axis`."""
    return c.make(nn.ConcatOp, c.args, {"axis": nn.i64_attr(c.opts["axis"])})


@layer("slice", starts=Opt(_as_ints), ends=Opt(_as_ints), axes=Opt(_as_ints, None),
       steps=Opt(_as_ints, None))
def _slice(c: LayerCall) -> SSAValue:
    """Static strided slice; `axes` defaults to 0..len(starts)-1."""
    o = c.opts
    axes = o["axes"] if o["axes"] is not None else tuple(range(len(o["starts"])))
    return c.make(nn.SliceOp, c.args, {
        "starts": nn.int_array(o["starts"]), "ends": nn.int_array(o["ends"]),
        "axes": nn.int_array(axes),
        "steps": None if o["steps"] is None else nn.int_array(o["steps"])})


@layer("split", axis=Opt(_as_int), sizes=Opt(_as_ints, None), parts=Opt(_as_int, None))
def _split(c: LayerCall) -> tuple[SSAValue, ...]:
    """Split along `axis` into `sizes`, or into `parts` equal pieces; returns several values."""
    (x,) = c.args
    o = c.opts
    if (o["sizes"] is None) == (o["parts"] is None):
        raise ParseError("split expects exactly one of 'sizes' and 'parts'", c.where)
    sizes = o["sizes"]
    if sizes is None:
        shape = nn.shape_of(x)
        try:
            n = shape[nn.normalize_axis("split", o["axis"], len(shape))]
        except VerifyException as e:
            raise ParseError(f"split: {e}", c.where) from None
        if o["parts"] < 1 or n % o["parts"]:
            raise ParseError(f"split cannot cut size {n} into {o['parts']} equal parts", c.where)
        sizes = [n // o["parts"]] * o["parts"]
    op = c.op(nn.SplitOp, [x], {"axis": nn.i64_attr(o["axis"]), "sizes": nn.int_array(sizes)})
    return tuple(op.results)


@layer("gather", inputs=2, axis=Opt(_as_int, 0))
def _gather(c: LayerCall) -> SSAValue:
    """Gather slices of the first operand at the integer indices of the second."""
    return c.make(nn.GatherOp, c.args, {"axis": None if c.opts["axis"] == 0
                                        else nn.i64_attr(c.opts["axis"])})


@layer("embedding", weighted=True, num=Opt(_as_int), dim=Opt(_as_int))
def _embedding(c: LayerCall) -> SSAValue:
    """Look up integer ids in a `.weight` table [num, dim] (N(0, 1) init, as torch)."""
    table = c.weight("weight", (c.opts["num"], c.opts["dim"]), _normal(1.0))
    return c.make(nn.GatherOp, [table, c.args[0]])


_PARAM_INITS = {"normal": _normal(0.02), "zeros": _full(0.0), "ones": _full(1.0),
                "uniform": _uniform(-0.1, 0.1)}


@layer("parameter", inputs=0, weighted=True, shape=Opt(_as_ints),
       init=Opt(_as_choice(*_PARAM_INITS), "normal"))
def _parameter(c: LayerCall) -> SSAValue:
    """A learned tensor of `shape` named by its variable (e.g. a position embedding)."""
    if any(d < 1 for d in c.opts["shape"]):
        raise ParseError(f"parameter expects positive dimensions, got {list(c.opts['shape'])}",
                         c.where)
    return c.weight("", c.opts["shape"], _PARAM_INITS[c.opts["init"]])


# --------------------------------------------------------------------------------------
# Scalar builtins (evaluated at compile time)


def _builtin_shape(v: Value) -> list[int]:
    if not isinstance(v, SSAValue):
        raise BadValue(f"a tensor, got {kind(v)}")
    return list(nn.shape_of(v))


def _builtin_len(v: Value) -> int:
    if not isinstance(v, list):
        raise BadValue(f"a list, got {kind(v)}")
    return len(v)


def _number(v: Value) -> int | float:
    as_float(v)  # type check
    return v


BUILTINS: dict[str, tuple[int, Callable[..., Value]]] = {
    "shape": (1, _builtin_shape),
    "rank": (1, lambda v: len(_builtin_shape(v))),
    "len": (1, _builtin_len),
    "min": (2, lambda a, b: min(_number(a), _number(b))),
    "max": (2, lambda a, b: max(_number(a), _number(b))),
    "int": (1, lambda v: int(as_float(v))),
    "float": (1, as_float),
}
