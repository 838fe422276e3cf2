"""passes/set_loads.py: a tile's exact lines per cache set against a brute-force count
of its elements' addresses, their invariance under moving the tensor by whole lines,
and the overflow fraction against every relative placement of two tensors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from irflow.dialects import accel
from irflow.passes import set_loads

# a 3x3 stride-2 conv's input (n, c, h, w) = (1, 24, 29, 29), padding 1, fp32 and int4
CONV_IN = accel.Access((1, 24, 29, 29), (
    accel.on("n"), accel.on("c"),
    accel.Axis("window", "oh", stride=2, kernel=3, offset=1),
    accel.Axis("window", "ow", stride=2, kernel=3, offset=1)))
EXT = {"n": 1, "c": 24, "oh": 15, "ow": 15}


def brute_lines(acc: accel.Access, grid: dict[str, int], itemsize: float,
                line: int) -> np.ndarray:
    """Every element of the slice `tile_lines` takes (the middle tile of each loop),
    one address at a time."""
    tile = {}
    for d, g in grid.items():
        lo = (-(-EXT[d] // g) // 2) * g
        tile[d] = (lo, min(lo + g, EXT[d]))
    ranges, _ = acc.slice(tile)
    strides = np.cumprod((1, *acc.view[:0:-1]))[::-1]
    out = set()
    for idx in itertools.product(*(range(*r) for r in ranges)):
        e = int(np.dot(idx, strides))
        first = int(e * itemsize * 8) // (8 * line)
        last = (int((e + 1) * itemsize * 8) - 1) // (8 * line)
        out.update(range(first, last + 1))
    return np.array(sorted(out), np.int64)


@pytest.mark.parametrize("grid, itemsize", [
    ({"n": 1, "c": 8, "oh": 5, "ow": 15}, 4.0),  # whole rows: runs of the row pitch
    ({"n": 1, "c": 3, "oh": 3, "ow": 5}, 4.0),  # partial rows
    ({"n": 1, "c": 24, "oh": 15, "ow": 15}, 4.0),  # the whole tensor
    ({"n": 1, "c": 5, "oh": 4, "ow": 7}, 0.5),  # int4: two elements a byte
])
def test_tile_lines_and_set_counts_match_a_brute_force_count(grid, itemsize):
    line, sets = 64, 16
    lines = set_loads.tile_lines(CONV_IN, grid, EXT, itemsize, line)
    brute = brute_lines(CONV_IN, grid, itemsize, line)
    np.testing.assert_array_equal(lines, brute)
    counts = set_loads.set_counts(lines, sets)
    np.testing.assert_array_equal(counts, np.bincount(brute % sets, minlength=sets))
    assert counts.sum() == len(brute)
    # moving the tensor by whole lines rotates the sets: the same multiset of loads
    for shift in (1, 5, 13):
        np.testing.assert_array_equal(np.sort(set_loads.set_counts(lines + shift, sets)),
                                      np.sort(counts))


def test_overfilled_matches_every_relative_placement():
    """Two tensors at independent uniform rotations: the fraction of each one's lines in
    sets over the way count, averaged over all relative rotations."""
    rng = np.random.default_rng(0)
    sets, ways = 16, 4
    a = rng.integers(0, 4, sets)
    b = rng.integers(0, 3, sets)
    got = set_loads.overfilled([[(1.0, a)], [(1.0, b)]], ways)
    for t, (mine, other) in enumerate(((a, b), (b, a))):
        frac = np.mean([(mine * ((mine + np.roll(other, r)) > ways)).sum() / mine.sum()
                        for r in range(sets)])
        assert got[t] == pytest.approx(frac)
    # a reuse window holding one body a quarter of the time, two the rest: its lines'
    # fraction is the weighted mean of the two windows'
    c = rng.integers(0, 5, sets)
    mixed = set_loads.overfilled([[(0.25, a), (0.75, c)], [(1.0, b)]], ways)
    one, two = (set_loads.overfilled([[(1.0, x)], [(1.0, b)]], ways)[0] for x in (a, c))
    assert mixed[0] == pytest.approx(0.25 * one + 0.75 * two)


def test_window_straddling_two_tiles_matches_the_elements_it_touches():
    """A weight tile (f, c) reused across `f` with `c` inside: the window from chunk t of
    tile j to chunk t of tile j + 1 holds j's chunks t.. and j + 1's chunks ..t - 1."""
    acc = accel.Access((8, 40), (accel.on("f"), accel.on("c")))
    ext, tile, line, sets = {"f": 8, "c": 40}, {"f": 2, "c": 10}, 16, 8
    got = set_loads.window_loads(acc, ("f", "c"), 0, tile, ext, 4.0, line, sets)
    assert got is not None and len(got) == 4
    j = 8 // 2 // 2 - 1  # the tiles compared: j and j + 1 around the middle
    for t, (w, counts) in enumerate(got):
        assert w == pytest.approx(0.25)
        elems = [(f, c) for f in range(2 * j, 2 * j + 2) for c in range(10 * t, 40)]
        elems += [(f, c) for f in range(2 * j + 2, 2 * j + 4) for c in range(0, 10 * t)]
        lines = np.unique([(f * 40 + c) * 4 // line for f, c in elems])
        np.testing.assert_array_equal(counts, np.bincount(lines % sets, minlength=sets))
    # more steps in the body than allowed: the caller falls back
    assert set_loads.window_loads(acc, ("f", "c"), 0, tile, ext, 4.0, line, sets,
                                  max_steps=2) is None
