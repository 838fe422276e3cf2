"""Integer semantics of quantized programs — the specification, written down once.

Every executor of quantized irflow IR (the reference executor's quantized kernels in
`backends/reference/quant_kernels.py`, and the accelerator simulator on its tiles)
computes through the functions of this module, so they agree bit for bit. Pure
numpy; no IR types here.

Notation: a quantized tensor holds storage integers `q`; its real value is
`r = s · (q − z)` with scale `s > 0` (float64 in the IR, chosen float32-representable
by `quantize`) and zero point `z` (integer in the storage range).

1. **Storage ranges.** `bits`-wide signed storage holds `[−2^(bits−1), 2^(bits−1)−1]`
   (int8 `[−128, 127]`, int4 `[−8, 7]`, held one per int8 byte in memory; packed two
   per byte, low nibble first, by `pack_int4` for storage size); unsigned
   `[0, 2^bits − 1]`. A type may narrow it (`i8<-127:127>` for symmetric weights).

2. **Quantize** (float → int, ONNX `QuantizeLinear`): in float32,
   `q = clamp(round_half_to_even(x / s) + z, qmin, qmax)`. **Dequantize**:
   `x = float32(q − z) · float32(s)`.

3. **Accumulation.** A contraction (conv2d, linear, matmul) multiplies zero-point
   corrected operands `(q_x − z_x) · (q_w − z_w)` and sums them exactly into a signed
   accumulator; the int32 bias (scale `s_x · s_w`, zero point 0) is added. The
   accumulator is *int32*: `quantize` guarantees `|acc| < 2^31` by construction
   (`accumulator_bound`), so it never wraps. Sums are exact, hence independent of
   summation order and tiling: partial accumulators of K-tiles add up to the same
   integers (the simulator may split K freely and requantize once at the end).
   `exact_accumulate` evaluates a float kernel (numpy/BLAS) on float64 copies of the
   integer operands: every partial sum is an integer below 2^53, so float64 is exact.

4. **Requantization** of an int32 accumulator to an output of scale `s_y`, zero
   point `z_y`: the real multiplier `M = s_x · s_w / s_y` (per output channel for
   per-channel weights) is written `M = M0 · 2^(shift − 31)` with `M0` an int32 in
   `[2^30, 2^31)` (Q31 in [0.5, 1)), `M0 = round_half_away(frac · 2^31)` where
   `M = frac · 2^shift`, `frac ∈ [0.5, 1)` (`quantize_multiplier`; TFLite's
   `QuantizeMultiplier`). Then (gemmlowp / TFLite `MultiplyByQuantizedMultiplier`):

       x1 = saturate_int32(acc · 2^max(shift, 0))
       x2 = SaturatingRoundingDoublingHighMul(x1, M0)
          = (x1 · M0 + nudge) / 2^31, truncated toward zero,
            nudge = 2^30 if x1 · M0 ≥ 0 else 1 − 2^30
            (round to nearest; an exact tie rounds toward +∞: 2.5 → 3, −2.5 → −2)
       x3 = RoundingDivideByPOT(x2, max(−shift, 0))
            (round to nearest, ties away from zero: 2.5 → 3, −2.5 → −3)
       q  = clamp(x3 + z_y, lo, hi)

   with `[lo, hi]` the output storage range intersected with a fused activation's
   range (relu: `lo = max(lo, z_y)`; relu6: also `hi = min(hi, z_y + round(6 / s_y))`).
   `M < 2^−31` gives `M0 = 0` (output = z_y). The two roundings make the result
   `round(acc · M)` except within 2^−(right+1) of a tie, and always within one LSB of
   `acc · M` (tested against float64).

5. **Elementwise add** of two quantized tensors (TFLite's reference `Add`): each
   input is shifted left by 20 bits and rescaled to the common scale `2·max(s_a,s_b)`
   with multipliers `s_a / (2·max)`, `s_b / (2·max)` (< 1), summed, and requantized
   with `2·max / (2^20 · s_y)` as in 4.

6. **Average pooling**: exact integer sum of `(q − z_x)` over the window, requantized
   with `M = s_x / (count · s_y)` per output cell (`count` = cells averaged).

Bias quantization (a compile-time step, not executed): `b_q = round_half_even(b /
(s_x · s_w))` saturated to int32.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from irflow.diagnostics import ExecutionError


class QuantizationError(ExecutionError):
    """Values that have no integer representation (NaN)."""

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
ADD_LEFT_SHIFT = 20  # TFLite's left shift for quantized add (headroom for the sum)

FloatLike = float | np.ndarray


def storage_range(bits: int, signed: bool = True, narrow: bool = False) -> tuple[int, int]:
    """`(qmin, qmax)` of a storage type; `narrow` drops the most negative signed value."""
    if signed:
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return (lo + 1 if narrow else lo), hi
    return 0, (1 << bits) - 1


# --------------------------------------------------------------------------------------
# Float <-> int (2)


def quantize(x: np.ndarray, scale: FloatLike, zero_point: int | np.ndarray, qmin: int,
             qmax: int, dtype: np.dtype | type = np.int8) -> np.ndarray:
    """`clamp(round_half_even(x / s) + z, qmin, qmax)` in float32 (ONNX QuantizeLinear).

    `scale`/`zero_point` broadcast against `x` (reshape them for per-axis).
    """
    xf = np.asarray(x, np.float32)
    nan = int(np.count_nonzero(np.isnan(xf)))
    if nan:
        raise QuantizationError(f"cannot quantize NaN to integers: {nan} of {xf.size} values "
                                "are NaN (check the input data)")
    q = np.rint(xf / np.asarray(scale, np.float32))
    q += np.asarray(zero_point, np.float32)
    np.clip(q, qmin, qmax, out=q)
    return q.astype(dtype)


def dequantize(q: np.ndarray, scale: FloatLike, zero_point: int | np.ndarray) -> np.ndarray:
    """`float32(q − z) · float32(s)` (ONNX DequantizeLinear)."""
    d = (np.asarray(q, np.int64) - np.asarray(zero_point, np.int64)).astype(np.float32)
    d *= np.asarray(scale, np.float32)
    return d


# --------------------------------------------------------------------------------------
# Fixed-point multipliers (4)


@dataclass(frozen=True)
class Multiplier:
    """A real multiplier `M ≈ m0 · 2^(shift − 31)` (arrays broadcast per channel)."""

    m0: np.ndarray  # int64 values in [2^30, 2^31) or 0
    shift: np.ndarray  # int64

    def real(self) -> np.ndarray:
        return self.m0.astype(np.float64) * np.exp2(self.shift.astype(np.float64) - 31)

    def reshape(self, shape: tuple[int, ...]) -> Multiplier:
        return Multiplier(self.m0.reshape(shape), self.shift.reshape(shape))


def quantize_multiplier(real: FloatLike) -> Multiplier:
    """Split `real ≥ 0` into Q31 `m0` and `shift` (TFLite `QuantizeMultiplier`)."""
    r = np.asarray(real, np.float64)
    if np.any(~np.isfinite(r)) or np.any(r < 0):
        raise ValueError(f"requantization multipliers must be finite and >= 0, got {r}")
    frac, exp = np.frexp(r)  # r = frac · 2^exp, frac in [0.5, 1)
    m0 = np.floor(frac * 2.0**31 + 0.5).astype(np.int64)  # round half away (frac >= 0)
    exp = exp.astype(np.int64)
    carry = m0 == (1 << 31)
    m0 = np.where(carry, m0 // 2, m0)
    exp = np.where(carry, exp + 1, exp)
    tiny = (exp < -31) | (m0 == 0)
    m0 = np.where(tiny, 0, m0)
    exp = np.where(tiny, 0, exp)
    if np.any(exp > 30):
        raise ValueError(f"requantization multiplier too large (>= 2^30): {r.max()}")
    return Multiplier(m0, exp)


def saturating_rounding_doubling_high_mul(a: np.ndarray, m0: np.ndarray) -> np.ndarray:
    """gemmlowp `SaturatingRoundingDoublingHighMul` on int64 arrays holding int32 values.

    `(a·m0 + nudge) / 2^31` truncated toward zero, nudge = 2^30 (a·m0 ≥ 0) or 1 − 2^30,
    i.e. `(a·m0 + 2^30) >> 31` and `−((2^30 − 1 − a·m0) >> 31)` for a negative product.
    The saturating case of gemmlowp (a = m0 = −2^31) cannot occur: `quantize_multiplier`
    gives 0 <= m0 < 2^31.
    """
    ab = a.astype(np.int64) * m0
    neg = ab < 0
    ab += np.int64(1 << 30)
    pos_part = ab >> 31
    # for negative products: -((2^30 - 1 - ab_orig) >> 31) = -((2^31 - 1 - ab) >> 31)
    np.subtract(np.int64((1 << 31) - 1), ab, out=ab)
    ab >>= 31
    np.negative(ab, out=ab)
    return np.where(neg, ab, pos_part)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """gemmlowp `RoundingDivideByPOT`: x / 2^exponent, rounding half away from zero."""
    exponent = np.asarray(exponent, np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, mult: Multiplier) -> np.ndarray:
    """TFLite `MultiplyByQuantizedMultiplier`: ≈ round(x · M), all in integers."""
    x = np.asarray(x, np.int64)
    left = np.maximum(mult.shift, 0)
    right = np.maximum(-mult.shift, 0)
    x1 = np.clip(x << left, INT32_MIN, INT32_MAX)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x1, mult.m0), right)


def requantize(acc: np.ndarray, mult: Multiplier, zero_point: int | np.ndarray, lo: int,
               hi: int, dtype: np.dtype | type = np.int8) -> np.ndarray:
    """int32 accumulator → output storage: `clamp(MBQM(acc, M) + z, lo, hi)` (4)."""
    y = multiply_by_quantized_multiplier(acc, mult)
    y += np.asarray(zero_point, np.int64)
    np.clip(y, lo, hi, out=y)
    return y.astype(dtype)


def activation_range(act: str | None, scale: float, zero_point: int, qmin: int,
                     qmax: int) -> tuple[int, int]:
    """The clamp `[lo, hi]` that applies a fused relu/relu6 in the integer domain."""
    if act is None:
        return qmin, qmax
    if act == "relu":
        return max(qmin, zero_point), qmax
    if act == "relu6":
        return max(qmin, zero_point), min(qmax, zero_point + int(np.rint(6.0 / scale)))
    raise ValueError(f"activation '{act}' cannot be applied in integers (relu, relu6 can)")


INTEGER_ACTIVATIONS = frozenset({"relu", "relu6"})


# --------------------------------------------------------------------------------------
# Exact accumulation (3)


def accumulator_bound(k: int, x_range: tuple[int, int], x_zp: int, w_absmax: int,
                      bias_absmax: int = 0) -> int:
    """Largest |acc| a K-deep dot product of (x − z_x)(w) plus bias can reach."""
    x_abs = max(abs(x_range[0] - x_zp), abs(x_range[1] - x_zp))
    return k * x_abs * w_absmax + bias_absmax


def check_accumulator(bound: int, where: str) -> None:
    if bound > INT32_MAX:
        raise ValueError(
            f"{where}: the int32 accumulator could overflow (bound {bound} > 2^31 − 1)"
        )


def exact_accumulate(kernel: Callable[..., np.ndarray], *operands: np.ndarray | None
                     ) -> np.ndarray:
    """Evaluate a linear float kernel on integer operands, exactly, as int64.

    The operands (already zero-point corrected, e.g. `q_x − z_x`) are copied to
    float64; a sum of integer products each below 2^53 is exact in any order, so the
    float64 result is the exact integer accumulator.
    """
    args = [None if o is None else np.asarray(o, np.float64) for o in operands]
    out = kernel(*args)
    return np.asarray(out).astype(np.int64)


def centered(q: np.ndarray, zero_point: int | np.ndarray) -> np.ndarray:
    """`q − z` as int64 (the zero-point corrected operand of a contraction)."""
    return np.asarray(q, np.int64) - np.asarray(zero_point, np.int64)


def centered_f64(q: np.ndarray, zero_point: int | np.ndarray) -> np.ndarray:
    """`q − z` as float64 (exact: storage integers and their differences are far below
    2^53) — the operand form `exact_accumulate` computes on, made in one copy."""
    out = np.asarray(q).astype(np.float64)
    if np.any(zero_point):
        out -= np.asarray(zero_point, np.float64)
    return out


# --------------------------------------------------------------------------------------
# Elementwise add (5) and pooling (6)


@dataclass(frozen=True)
class AddParams:
    """Precomputed multipliers of a quantized add (TFLite reference `Add`)."""

    a: Multiplier
    b: Multiplier
    out: Multiplier

    @staticmethod
    def make(s_a: float, s_b: float, s_y: float) -> AddParams:
        twice_max = 2.0 * max(s_a, s_b)
        return AddParams(
            quantize_multiplier(s_a / twice_max),
            quantize_multiplier(s_b / twice_max),
            quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * s_y)),
        )


def add(qa: np.ndarray, za: int, qb: np.ndarray, zb: int, params: AddParams, zy: int,
        lo: int, hi: int, dtype: np.dtype | type = np.int8) -> np.ndarray:
    """Quantized `a + b` with broadcasting (5)."""
    a = multiply_by_quantized_multiplier(centered(qa, za) << ADD_LEFT_SHIFT, params.a)
    b = multiply_by_quantized_multiplier(centered(qb, zb) << ADD_LEFT_SHIFT, params.b)
    return requantize(a + b, params.out, zy, lo, hi, dtype)


def pack_int4(q: np.ndarray) -> np.ndarray:
    """Pack int4 values (held in int8, in [−8, 7]) two per byte, low nibble first, in
    row-major order (an odd count pads the last high nibble with 0): the layout whose
    size, ceil(n / 2) bytes, the simulator charges for an int4 tensor."""
    flat = np.asarray(q, np.int8).ravel()
    out = np.empty((flat.size + 1) // 2, np.uint8)
    step = 1 << 20  # even: a block at a time, in the CPU cache
    for i in range(0, flat.size, step):
        block = flat[i: i + step]
        if block.min() < -8 or block.max() > 7:
            raise ValueError(f"int4 values must be in [-8, 7], got [{flat.min()}, "
                             f"{flat.max()}]")
        u = block.view(np.uint8)  # two's complement: the low nibble is the int4 value
        even = u.size - u.size % 2
        dest = out[i // 2: i // 2 + (u.size + 1) // 2]
        np.bitwise_and(u[0:even:2], 0x0F, out=dest[: even // 2])
        dest[: even // 2] |= u[1:even:2] << 4
        if u.size % 2:  # an odd count: the last high nibble is 0
            dest[-1] = u[-1] & 0x0F
    return out


def unpack_int4(packed: np.ndarray, count: int) -> np.ndarray:
    """Inverse of `pack_int4`: the first `count` signed int4 values, as int8."""
    b = np.asarray(packed, np.uint8)
    nibbles = np.empty(b.size * 2, np.uint8)
    nibbles[0::2], nibbles[1::2] = b & 0x0F, b >> 4
    values = nibbles[:count].astype(np.int8)
    values[values > 7] -= 16
    return values


def bias_to_int32(bias: np.ndarray, s_x: float, s_w: FloatLike) -> np.ndarray:
    """`round_half_even(b / (s_x · s_w))` saturated to int32 (compile time)."""
    q = np.rint(np.asarray(bias, np.float64) / (np.float64(s_x) * np.asarray(s_w, np.float64)))
    return np.clip(q, INT32_MIN, INT32_MAX).astype(np.int32)


__all__ = [
    "INT32_MIN", "INT32_MAX", "ADD_LEFT_SHIFT", "INTEGER_ACTIVATIONS", "storage_range",
    "quantize", "dequantize", "Multiplier", "quantize_multiplier",
    "saturating_rounding_doubling_high_mul", "rounding_divide_by_pot",
    "multiply_by_quantized_multiplier", "requantize", "activation_range",
    "accumulator_bound", "check_accumulator", "exact_accumulate", "centered",
    "centered_f64", "AddParams", "pack_int4", "unpack_int4",
    "add", "bias_to_int32",
]
