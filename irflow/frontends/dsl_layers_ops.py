"""DSL layers for the table-driven nn families (math, logic, reductions, indexing): one
layer per op, generated from the same tables as the ops, so every nn op stays reachable
from the DSL.

    m = less(x, y)                      # nn.less, an i1 tensor
    z = where(m, x, maximum(x, y))      # nn.where, nn.max
    s = reduce_sum(z, axes=[1])         # nn.reduce_sum
    v, i = topk(s, k=2)                 # nn.topk: two results

Names are the ops' short names, except where the DSL already uses the word: `not`, `and`,
`or` are keywords and `min`/`max` builtins, so those layers are `logical_not`,
`logical_and`, `logical_or`, `logical_xor`, `minimum`, `maximum`.
"""

from __future__ import annotations

from collections.abc import Callable

from xdsl.dialects.builtin import StringAttr, f16, f32, f64, i1, i8, i32, i64
from xdsl.ir import Attribute, SSAValue

from irflow.dialects import nn
from irflow.dialects.nn import indexing as ix
from irflow.dialects.nn.logic import BINARIES, COMPARISONS, LOGIC_OPS
from irflow.dialects.nn.math import MATH_OPS, PARAM_ACTIVATIONS, UNARY_MATH
from irflow.dialects.nn.reductions import (
    ARG_REDUCTIONS,
    AXIS_MAPS,
    REDUCTION_OPS,
    REDUCTIONS,
    SCANS,
)
from irflow.frontends.dsl_layers import (
    BUILTINS,
    LAYERS,
    BadValue,
    LayerCall,
    LayerSpec,
    Opt,
    Value,
    _as_bool,
    _as_int,
    _as_ints,
    as_float,
    kind,
)

DSL_NAMES = {"not": "logical_not", "and": "logical_and", "or": "logical_or",
             "xor": "logical_xor", "min": "minimum", "max": "maximum"}


def _as_str(v: Value) -> str:
    if not isinstance(v, str):
        raise BadValue(f"a string, got {kind(v)}")
    return v


def _register(short: str, cls: type[nn.NNOp], arity: int, doc: str,
              options: dict[str, Opt] | None = None,
              props: Callable[[dict], dict[str, Attribute | None]] | None = None,
              element_type: Attribute | None = None, results: int = 1) -> None:
    name = DSL_NAMES.get(short, short)
    assert name not in LAYERS and name not in BUILTINS, name

    def build(c: LayerCall) -> Value:
        p = props(c.opts) if props is not None else {}
        elem = element_type
        if cls is LOGIC_OPS["where"] or cls is ix.OneHotOp:
            elem = c.args[1].type.element_type  # type: ignore[attr-defined]
        op = c.build(lambda: cls.make(list(c.args), p, element_type=elem))
        return op.results[0] if results == 1 else tuple(op.results)

    LAYERS[name] = LayerSpec(name, build, (arity, arity), options or {}, False, doc)


for _short, (_onnx, _what) in UNARY_MATH.items():
    _register(_short, MATH_OPS[_short], 1, f"{_what} (nn.{_short}).")

for _short, (_onnx, _params, _what) in PARAM_ACTIVATIONS.items():
    _register(_short, MATH_OPS[_short], 1, f"{_what} (nn.{_short}).",
              {k: Opt(as_float, v) for k, v in _params.items()},
              lambda o, ks=tuple(_params): {k: nn.f64(o[k]) for k in ks})

_register("is_nan", MATH_OPS["is_nan"], 1, "x is NaN, an i1 tensor.", element_type=i1)
_register("is_inf", MATH_OPS["is_inf"], 1, "x is ±inf (as selected), an i1 tensor.",
          {"detect_positive": Opt(_as_bool, True), "detect_negative": Opt(_as_bool, True)},
          lambda o: {k: nn.i64_attr(int(o[k])) for k in ("detect_positive", "detect_negative")},
          element_type=i1)

for _short in COMPARISONS:
    _register(_short, LOGIC_OPS[_short], 2, f"x {_short.replace('_', ' ')} y, an i1 tensor.",
              element_type=i1)
for _short in BINARIES:
    options: dict[str, Opt] = {}
    make_props = None
    if _short == "mod":
        options = {"fmod": Opt(_as_bool, False)}
        make_props = lambda o: {"fmod": nn.i64_attr(int(o["fmod"]))}  # noqa: E731
    if _short == "bit_shift":
        options = {"direction": Opt(_as_str)}
        make_props = lambda o: {"direction": StringAttr(o["direction"])}  # noqa: E731
    _register(_short, LOGIC_OPS[_short], 2, f"ONNX {BINARIES[_short]}, broadcasting.",
              options, make_props)
_register("where", LOGIC_OPS["where"], 3, "x where the i1 condition holds, else y.")

for _short in REDUCTIONS:
    _register(_short, REDUCTION_OPS[_short], 1, f"{REDUCTIONS[_short][1]} over `axes`.",
              {"axes": Opt(_as_ints), "keepdims": Opt(_as_bool, True)},
              lambda o: {"axes": nn.int_array(o["axes"]),
                         "keepdims": nn.i64_attr(int(o["keepdims"]))})
for _short in ARG_REDUCTIONS:
    _register(_short, REDUCTION_OPS[_short], 1, f"index of the {_short[4:]} along `axis` (i64).",
              {"axis": Opt(_as_int, 0), "keepdims": Opt(_as_bool, True),
               "select_last_index": Opt(_as_bool, False)},
              lambda o: {k: nn.i64_attr(int(o[k])) for k in
                         ("axis", "keepdims", "select_last_index")}, element_type=i64)
for _short in AXIS_MAPS:
    _register(_short, REDUCTION_OPS[_short], 1, f"ONNX {AXIS_MAPS[_short]} along `axis`.",
              {"axis": Opt(_as_int, -1)}, lambda o: {"axis": nn.i64_attr(o["axis"])})
for _short in SCANS:
    _register(_short, REDUCTION_OPS[_short], 1, f"ONNX {SCANS[_short]} along `axis`.",
              {"axis": Opt(_as_int), "exclusive": Opt(_as_bool, False),
               "reverse": Opt(_as_bool, False)},
              lambda o: {k: nn.i64_attr(int(o[k])) for k in ("axis", "exclusive", "reverse")})


def _topk(c: LayerCall) -> Value:
    props = {k: nn.i64_attr(int(c.opts[k])) for k in ("k", "axis", "largest", "sorted")}
    cls = REDUCTION_OPS["topk"]
    (x,) = c.args

    def make() -> nn.NNOp:
        from xdsl.dialects.builtin import TensorType

        shapes = cls.infer_shapes([nn.shape_of(x)], props)
        elem = x.type.element_type  # type: ignore[attr-defined]
        return cls.create(operands=[x], result_types=[TensorType(elem, shapes[0]),
                                                      TensorType(i64, shapes[1])],
                          properties=props)

    return tuple(c.build(make).results)


LAYERS["topk"] = LayerSpec(
    "topk", _topk, (1, 1), {"k": Opt(_as_int), "axis": Opt(_as_int, -1),
                            "largest": Opt(_as_bool, True), "sorted": Opt(_as_bool, True)},
    False, "The k largest (or smallest) values along `axis` and their i64 indices.")

_INDEXING: list[tuple[type[nn.NNOp], int, dict[str, Opt], Callable[[dict], dict]]] = [
    (ix.ExpandOp, 1, {"shape": Opt(_as_ints)}, lambda o: {"shape": nn.int_array(o["shape"])}),
    (ix.TileOp, 1, {"repeats": Opt(_as_ints)},
     lambda o: {"repeats": nn.int_array(o["repeats"])}),
    (ix.PadOp, 1, {"pads": Opt(_as_ints), "mode": Opt(_as_str, "constant"),
                   "value": Opt(as_float, 0.0)},
     lambda o: {"pads": nn.int_array(o["pads"]), "mode": StringAttr(o["mode"]),
                "value": nn.f64(o["value"])}),
    (ix.TriluOp, 1, {"upper": Opt(_as_bool, True), "k": Opt(_as_int, 0)},
     lambda o: {"upper": nn.i64_attr(int(o["upper"])), "k": nn.i64_attr(o["k"])}),
    (ix.DepthToSpaceOp, 1, {"blocksize": Opt(_as_int), "mode": Opt(_as_str, "DCR")},
     lambda o: {"blocksize": nn.i64_attr(o["blocksize"]), "mode": StringAttr(o["mode"])}),
    (ix.SpaceToDepthOp, 1, {"blocksize": Opt(_as_int), "mode": Opt(_as_str, "DCR")},
     lambda o: {"blocksize": nn.i64_attr(o["blocksize"]), "mode": StringAttr(o["mode"])}),
    (ix.GatherElementsOp, 2, {"axis": Opt(_as_int, 0)},
     lambda o: {"axis": nn.i64_attr(o["axis"])}),
    (ix.GatherNDOp, 2, {"batch_dims": Opt(_as_int, 0)},
     lambda o: {"batch_dims": nn.i64_attr(o["batch_dims"])}),
    (ix.ScatterElementsOp, 3, {"axis": Opt(_as_int, 0), "reduction": Opt(_as_str, "none")},
     lambda o: {"axis": nn.i64_attr(o["axis"]), "reduction": StringAttr(o["reduction"])}),
    (ix.ScatterNDOp, 3, {"reduction": Opt(_as_str, "none")},
     lambda o: {"reduction": StringAttr(o["reduction"])}),
    (ix.OneHotOp, 2, {"depth": Opt(_as_int), "axis": Opt(_as_int, -1)},
     lambda o: {"depth": nn.i64_attr(o["depth"]), "axis": nn.i64_attr(o["axis"])}),
]
for _cls, _arity, _options, _props in _INDEXING:
    _register(_cls.name.removeprefix("nn."), _cls, _arity,
              (_cls.__doc__ or "").split("—")[-1].strip().splitlines()[0] or _cls.name,
              _options, _props)

_CAST_TYPES: dict[str, Attribute] = {"f32": f32, "f16": f16, "f64": f64, "i64": i64,
                                     "i32": i32, "i8": i8, "i1": i1}


def _as_type(v: Value) -> Attribute:
    if v not in _CAST_TYPES:
        raise BadValue(f"one of {', '.join(repr(t) for t in _CAST_TYPES)}, got {kind(v)}")
    return _CAST_TYPES[v]


def _cast(c: LayerCall) -> SSAValue:
    to = c.opts["to"]
    return c.build(lambda: MATH_OPS["cast"].make(c.args, {}, element_type=to)).results[0]


LAYERS["cast"] = LayerSpec("cast", _cast, (1, 1), {"to": Opt(_as_type)}, False,
                           "Convert to element type `to` (f32, i64, ...; floats to integers "
                           "truncate).")
