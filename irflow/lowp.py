"""Low-precision float element types: MLIR's bf16, f8E4M3FN, f8E4M3FNUZ, f8E5M2,
f8E5M2FNUZ and f4E2M1FN (not yet f8E8M0FNU: ONNX casts to it round up, `round_mode`),
held in numpy as `ml_dtypes`' dtypes (the package onnx itself uses for them; it comes
with the `onnx` extra).

    >>> numpy_dtype_of(builtin.bf16)          # ml_dtypes.bfloat16
    >>> element_type_of_dtype(np.dtype(ml_dtypes.float8_e4m3fn))   # Float8E4M3FNType()

Arithmetic on them goes through float32 (ml_dtypes' ufuncs); `nn.cast` to a float8 type
saturates (ONNX Cast's `saturate = 1`): finite values beyond the type's range, and ±inf,
become its largest finite value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from xdsl.dialects.builtin import (
    BFloat16Type,
    Float4E2M1FNType,
    Float8E4M3FNType,
    Float8E4M3FNUZType,
    Float8E5M2FNUZType,
    Float8E5M2Type,
)
from xdsl.ir import Attribute

# MLIR type class -> ml_dtypes attribute name
_TYPES: dict[type[Attribute], str] = {
    BFloat16Type: "bfloat16",
    Float8E4M3FNType: "float8_e4m3fn",
    Float8E4M3FNUZType: "float8_e4m3fnuz",
    Float8E5M2Type: "float8_e5m2",
    Float8E5M2FNUZType: "float8_e5m2fnuz",
    Float4E2M1FNType: "float4_e2m1fn",
}
SATURATING = {"float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz"}
"""The types ONNX Cast's `saturate` applies to."""


def _ml_dtypes() -> Any:
    import ml_dtypes  # onnx's dependency: present wherever an ONNX model brought these types

    return ml_dtypes


def numpy_dtype_of(element_type: Attribute) -> np.dtype | None:
    """The ml_dtypes dtype of a low-precision float type; None for any other type."""
    name = _TYPES.get(type(element_type))
    return None if name is None else np.dtype(getattr(_ml_dtypes(), name))


def element_type_of_dtype(dtype: np.dtype) -> Attribute | None:
    """The MLIR type of an ml_dtypes float dtype; None for any other dtype."""
    try:
        ml = _ml_dtypes()
    except ImportError:
        return None
    for cls, name in _TYPES.items():
        if dtype == np.dtype(getattr(ml, name)):
            return cls()
    return None


def is_low_precision(dtype: np.dtype) -> bool:
    return element_type_of_dtype(np.dtype(dtype)) is not None


def cast(x: np.ndarray, to: np.dtype, saturate: bool = True) -> np.ndarray:
    """`x.astype(to)` for a low-precision side; to a float8 type with `saturate`, values
    are first clipped to its finite range (NaN stays NaN)."""
    name = next((n for n in SATURATING if np.dtype(getattr(_ml_dtypes(), n)) == to), None)
    if name is not None and saturate:
        info = _ml_dtypes().finfo(to)
        wide = x.astype(np.float32)
        return np.clip(wide, float(info.min), float(info.max)).astype(to)
    if is_low_precision(x.dtype) and to.kind in "iu":
        with np.errstate(invalid="ignore"):
            return np.trunc(x.astype(np.float32)).astype(to)
    return x.astype(to)


__all__ = ["numpy_dtype_of", "element_type_of_dtype", "is_low_precision", "cast",
           "SATURATING"]
