"""irflow.intmath: the integer semantics, against float64 references and hand cases."""

from __future__ import annotations

import numpy as np
import pytest

from irflow import intmath as im


def test_storage_ranges():
    assert im.storage_range(8) == (-128, 127)
    assert im.storage_range(8, narrow=True) == (-127, 127)
    assert im.storage_range(4) == (-8, 7)
    assert im.storage_range(8, signed=False) == (0, 255)


@pytest.mark.parametrize("real", [1e-9, 3.7e-5, 0.0123, 0.5, 0.75, 0.99999999, 1.0, 1.5, 1234.5])
def test_quantize_multiplier_represents_real(real):
    m = im.quantize_multiplier(real)
    assert (1 << 30) <= int(m.m0) < (1 << 31)
    assert abs(float(m.real()) / real - 1) < 2.0**-30


def test_quantize_multiplier_edge_cases():
    assert int(im.quantize_multiplier(0.0).m0) == 0
    assert int(im.quantize_multiplier(2.0**-40).m0) == 0  # below 2^-31: output = zero point
    # frac * 2^31 rounding up to 2^31 carries into the exponent
    m = im.quantize_multiplier(1 - 2.0**-33)
    assert int(m.m0) == 1 << 30 and int(m.shift) == 1
    with pytest.raises(ValueError):
        im.quantize_multiplier(-1.0)


def test_multiply_by_quantized_multiplier_hand_cases():
    # M = 0.5: m0 = 2^30, shift 0 -> SRDHM only: ties toward +inf (gemmlowp's nudge).
    half = im.quantize_multiplier(np.full(6, 0.5))
    got = im.multiply_by_quantized_multiplier(np.array([5, -5, 3, -3, 1, -1]), half)
    assert got.tolist() == [3, -2, 2, -1, 1, 0]
    # M = 0.25: m0 = 2^30, shift -1 -> SRDHM(x)=x/2 (ties to +inf), then RDBPOT by 1
    # (ties away from zero): 6 -> 3 -> 2 (1.5 rounds away); -6 -> -3 -> -2 (-1.5 away = -2);
    # 10 -> 5 -> 3 (2.5 away); -10 -> -5 -> -3.
    q = im.quantize_multiplier(np.full(4, 0.25))
    got = im.multiply_by_quantized_multiplier(np.array([6, -6, 10, -10]), q)
    assert got.tolist() == [2, -2, 3, -3]
    # M = 3: m0 = 0.75 * 2^31, shift 2 -> exact for integers.
    three = im.quantize_multiplier(np.full(3, 3.0))
    assert im.multiply_by_quantized_multiplier(np.array([7, -7, 0]), three).tolist() == [21, -21, 0]


def test_rounding_divide_by_pot_ties_away_from_zero():
    x = np.array([5, -5, 6, -6, 7, -7, 4, -4])
    assert im.rounding_divide_by_pot(x, np.int64(1)).tolist() == [3, -3, 3, -3, 4, -4, 2, -2]


def test_requantization_within_one_lsb_of_float64():
    rng = np.random.default_rng(0)
    acc = rng.integers(-(2**24), 2**24, 20000)
    real = rng.uniform(1e-6, 4.0, 20000)
    got = im.multiply_by_quantized_multiplier(acc, im.quantize_multiplier(real))
    assert np.abs(got - acc * real).max() <= 1.0


def test_requantization_exact_away_from_ties():
    """In the range requantization is used for (int8-sized outputs), the result is the
    float64 product rounded to nearest wherever it is more than 0.25 from a tie: the
    doubling high-mul rounds once (error <= 0.5 before the shift, <= 0.25 after a shift
    of >= 1), and the shift rounds again."""
    rng = np.random.default_rng(4)
    acc = rng.integers(-(2**20), 2**20, 20000)
    acc[acc == 0] = 1
    real = rng.uniform(0.0, 300.0, 20000) / np.abs(acc)
    got = im.multiply_by_quantized_multiplier(acc, im.quantize_multiplier(real))
    ref = acc * real
    far = np.abs(np.abs(ref - np.trunc(ref)) - 0.5) > 0.25 + 1e-6
    assert far.sum() > 9000
    assert np.array_equal(got[far], np.round(ref[far]))


def test_requantize_saturates_to_storage_and_activation_range():
    mult = im.quantize_multiplier(np.array(0.1))
    acc = np.array([-100000, -50, 0, 50, 100000])
    assert im.requantize(acc, mult, 3, -128, 127).tolist() == [-128, -2, 3, 8, 127]
    lo, hi = im.activation_range("relu", 0.1, 3, -128, 127)
    assert (lo, hi) == (3, 127)
    assert im.requantize(acc, mult, 3, lo, hi).tolist() == [3, 3, 3, 8, 127]
    assert im.activation_range("relu6", 0.1, -128, -128, 127) == (-128, -68)
    with pytest.raises(ValueError):
        im.activation_range("sigmoid", 0.1, 0, -128, 127)


def test_int4_range():
    x = np.array([-2.0, -0.9, -0.05, 0.05, 0.9, 2.0], np.float32)
    q = im.quantize(x, 0.125, 0, *im.storage_range(4))
    assert q.dtype == np.int8
    assert q.tolist() == [-8, -7, 0, 0, 7, 7]  # rint(0.4) = 0; saturated at [-8, 7]


def test_quantize_rounds_half_to_even_and_dequantizes():
    x = np.array([0.25, 0.75, -0.25, 1.25], np.float32)
    q = im.quantize(x, 0.5, 0, -128, 127)
    assert q.tolist() == [0, 2, 0, 2]  # 0.5 -> 0, 1.5 -> 2, -0.5 -> 0, 2.5 -> 2
    assert im.dequantize(np.array([-128, 0, 127]), 0.5, -1).tolist() == [-63.5, 0.5, 64.0]


def test_exact_accumulate_equals_int64_reference():
    rng = np.random.default_rng(1)
    a = rng.integers(-255, 256, (7, 300))
    b = rng.integers(-127, 128, (300, 5))
    got = im.exact_accumulate(np.matmul, a, b)
    assert got.dtype == np.int64
    assert np.array_equal(got, a @ b)  # numpy int64 matmul: the exact reference


def test_partial_accumulators_add_exactly():
    """The simulator may split the reduction into tiles and requantize once at the end."""
    rng = np.random.default_rng(2)
    a = rng.integers(-128, 128, (4, 96))
    b = rng.integers(-127, 128, (96, 8))
    full = im.exact_accumulate(np.matmul, a, b)
    tiles = sum(im.exact_accumulate(np.matmul, a[:, k:k + 32], b[k:k + 32]) for k in (0, 32, 64))
    assert np.array_equal(full, tiles)
    mult = im.quantize_multiplier(np.array(1e-3))
    assert np.array_equal(im.requantize(full, mult, 0, -128, 127),
                          im.requantize(tiles, mult, 0, -128, 127))


def test_add_within_one_lsb():
    rng = np.random.default_rng(3)
    qa = rng.integers(-128, 128, 5000)
    qb = rng.integers(-128, 128, 5000)
    sa, za, sb, zb, sy, zy = 0.02, 5, 0.035, -7, 0.05, 3
    params = im.AddParams.make(sa, sb, sy)
    got = im.add(qa, za, qb, zb, params, zy, -128, 127)
    real = sa * (qa - za) + sb * (qb - zb)
    ref = np.clip(np.round(real / sy) + zy, -128, 127)
    assert np.abs(got.astype(np.int64) - ref).max() <= 1


def test_bias_to_int32():
    b = np.array([0.5, -0.25, 1e9])
    q = im.bias_to_int32(b, 0.01, np.array([0.5, 0.5, 0.5]))
    assert q.dtype == np.int32
    assert q.tolist() == [100, -50, im.INT32_MAX]


def test_accumulator_bound():
    bound = im.accumulator_bound(4608, (-128, 127), -128, 127)
    assert bound == 4608 * 255 * 127
    im.check_accumulator(bound, "conv")
    with pytest.raises(ValueError, match="overflow"):
        im.check_accumulator(im.accumulator_bound(70000, (-128, 127), -128, 127), "conv")


def _srdhm_reference(a: int, b: int) -> int:
    """gemmlowp's SaturatingRoundingDoublingHighMul, transcribed with Python integers."""
    if a == b == im.INT32_MIN:
        return im.INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else (1 - (1 << 30))
    t = ab + nudge
    return -((-t) >> 31) if t < 0 else t >> 31  # C division truncates toward zero


def _rdbpot_reference(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def test_vectorized_primitives_equal_the_scalar_transcription():
    rng = np.random.default_rng(7)
    a = rng.integers(im.INT32_MIN, im.INT32_MAX, 3000)
    a[:4] = [0, -1, 1, im.INT32_MIN]
    m0 = rng.integers(1 << 30, 1 << 31, 3000)
    got = im.saturating_rounding_doubling_high_mul(a, m0)
    assert got.tolist() == [_srdhm_reference(int(x), int(y)) for x, y in zip(a, m0)]
    x = rng.integers(-(2**31), 2**31, 3000)
    e = rng.integers(0, 31, 3000)
    got = im.rounding_divide_by_pot(x, e)
    assert got.tolist() == [_rdbpot_reference(int(v), int(k)) for v, k in zip(x, e)]


def test_int4_packing_round_trips():
    q = np.random.default_rng(8).integers(-8, 8, 37).astype(np.int8)
    packed = im.pack_int4(q)
    assert packed.dtype == np.uint8 and packed.size == 19
    assert np.array_equal(im.unpack_int4(packed, 37), q)
    assert im.pack_int4(np.array([-1, 2], np.int8)).tolist() == [0x2F]  # low nibble first
    with pytest.raises(ValueError, match=r"\[-8, 7\]"):
        im.pack_int4(np.array([8], np.int8))
