"""Shapes and properties as the nn verifiers see them: `shape_of` a tensor value,
broadcasting, the sliding-window formula, axis normalization, and the typed readers of
op properties (`prop_ints`, `prop_int`, `prop_float`, `prop_str`) that kernels,
exporters and the accel dialect share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from xdsl.dialects.builtin import DenseArrayBase, TensorType
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.utils.exceptions import VerifyException

Shape = tuple[int, ...]


def shape_of(value: SSAValue | Attribute) -> Shape:
    """The static shape of a tensor-typed value or type (a `?` dimension is an error)."""
    ty = value.type if isinstance(value, SSAValue) else value
    if not isinstance(ty, TensorType):
        raise VerifyException(f"expected a ranked tensor, got {ty}")
    shape = tuple(int(d) for d in ty.get_shape())
    if any(d < 0 for d in shape):
        raise VerifyException(f"expected a statically shaped tensor, got {ty}")
    return shape


Props = Mapping[str, Attribute]


def _props(op: Operation | Props) -> Props:
    return op.properties if isinstance(op, Operation) else op


def prop_ints(op: Operation | Props, name: str, default: Sequence[int]) -> tuple[int, ...]:
    """An int-array property of an op (or a property dict); `default`, the op's declared
    default, when absent. The readers below are what kernels and exporters call."""
    attr = _props(op).get(name)
    if attr is None:
        return tuple(default)
    assert isinstance(attr, DenseArrayBase)
    return tuple(int(v) for v in attr.get_values())


def prop_int(op: Operation | Props, name: str, default: int) -> int:
    attr = _props(op).get(name)
    return default if attr is None else int(attr.value.data)  # type: ignore[attr-defined]


def prop_float(op: Operation | Props, name: str, default: float) -> float:
    attr = _props(op).get(name)
    return default if attr is None else float(attr.value.data)  # type: ignore[attr-defined]


def prop_str(op: Operation | Props, name: str, default: str) -> str:
    attr = _props(op).get(name)
    return default if attr is None else attr.data  # type: ignore[attr-defined]


def fused_act(op: Operation | Props) -> str | None:
    """The activation named by an op's `act` property (`"relu"`, ...); None when absent."""
    attr = _props(op).get("act")
    return None if attr is None else str(attr.data)  # type: ignore[attr-defined]


def format_shape(shape: Sequence[int]) -> str:
    """`1x3x224x224` (MLIR's dimension list), `scalar` for rank 0 — the one spelling of a
    shape in irflow's messages."""
    return "x".join(str(d) for d in shape) if len(shape) else "scalar"


_fmt = format_shape  # the short spelling used by the verifiers below


def broadcast_shapes(op: str, a: Shape, b: Shape) -> Shape:
    """Numpy/ONNX multidirectional broadcasting of two shapes."""
    out: list[int] = []
    for i in range(max(len(a), len(b))):
        da = a[len(a) - 1 - i] if i < len(a) else 1
        db = b[len(b) - 1 - i] if i < len(b) else 1
        if da != db and 1 not in (da, db):
            raise VerifyException(
                f"{op} expects broadcast-compatible operands, got {_fmt(a)} and {_fmt(b)}"
            )
        out.append(max(da, db))
    return tuple(reversed(out))


def normalize_axis(op: str, axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise VerifyException(f"{op} expects axis in [{-rank}, {rank}), got {axis}")
    return axis % rank if rank else 0


def window_out(size: int, kernel: int, stride: int, pad_lo: int, pad_hi: int,
               dilation: int = 1, ceil_mode: bool = False) -> int:
    """Output length of a sliding window (ONNX Conv/MaxPool/AveragePool formula)."""
    span = dilation * (kernel - 1) + 1
    num = size + pad_lo + pad_hi - span
    out = (-(-num // stride) if ceil_mode else num // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad_lo:
        out -= 1  # the last window must start inside the input or the leading padding
    return out



def value_element_type(value: SSAValue) -> Attribute:
    """The element type of a tensor-typed value."""
    assert isinstance(value.type, TensorType)
    return value.type.element_type
