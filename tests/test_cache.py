"""The LRU cache model against pycachesim 0.3.1, a plain-Python LRU, and hand-derived counts.

pycachesim's store semantics differ from irflow's (read from its C core and checked
below in `test_pycachesim_store_semantics`): a store *hit* does not refresh LRU
order and is not counted as a hit; a store miss is counted as a load miss (the
write-allocate fill); its EVICT counter counts dirty evictions only. So hits and
misses are compared exactly on load-only traces, and mixed traces are compared
with a plain-Python model of each semantics.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from irflow.backends.sim.cache import CacheGeometry, LRUCache, available_backends
from irflow.diagnostics import SimulationError

cachesim = pytest.importorskip("cachesim")  # test-only dependency (pyproject [test])

DEFAULT = CacheGeometry(size_bytes=256 * 1024, line_bytes=64, ways=8)
# Both kernels when numba is installed (the `fast`/`test` extras), else the numpy one.
BACKENDS = available_backends()


# ---------------------------------------------------------------------- references


def python_lru(lines, writes, sets, ways, state=None):
    """Textbook LRU, write-back, write-allocate; every access makes its line MRU."""
    state = state if state is not None else [OrderedDict() for _ in range(sets)]
    hit, evict, wb = [], [], []
    for line, w in zip(lines.tolist(), writes.tolist(), strict=True):
        s = state[line % sets]
        if line in s:
            dirty = s.pop(line)
            s[line] = dirty or w
            hit.append(True), evict.append(False), wb.append(False)
        else:
            hit.append(False)
            if len(s) >= ways:
                _, dirty = s.popitem(last=False)
                evict.append(True), wb.append(dirty)
            else:
                evict.append(False), wb.append(False)
            s[line] = w
    return np.array(hit, bool), np.array(evict, bool), np.array(wb, bool), state


def pycachesim_semantics(lines, writes, sets, ways):
    """pycachesim's counters as a Python model: (HIT, MISS, EVICT) — see module doc."""
    state = [OrderedDict() for _ in range(sets)]
    hits = misses = dirty_evictions = 0
    for line, w in zip(lines.tolist(), writes.tolist(), strict=True):
        s = state[line % sets]
        if line in s:
            if w:
                s[line] = True  # store hit: dirty, LRU order untouched, not counted
            else:
                hits += 1
                s.move_to_end(line)
            continue
        misses += 1  # load miss, or store miss counted as the allocating load
        if len(s) >= ways:
            _, dirty = s.popitem(last=False)
            dirty_evictions += dirty
        s[line] = bool(w)
    return hits, misses, dirty_evictions


def pycachesim(geom: CacheGeometry):
    mem = cachesim.MainMemory()
    l1 = cachesim.Cache("L1", geom.sets, geom.ways, geom.line_bytes, "LRU")
    mem.load_to(l1)
    mem.store_from(l1)
    return cachesim.CacheSimulator(l1, mem), l1


def pycachesim_loads(geom: CacheGeometry, lines: np.ndarray) -> tuple[int, int]:
    sim, l1 = pycachesim(geom)
    sim.load((lines * geom.line_bytes).tolist())
    return l1.HIT_count, l1.MISS_count


def ours(geom, lines, writes=None, backend="auto"):
    writes = np.zeros(len(lines), bool) if writes is None else writes
    return LRUCache(geom, backend).access(np.asarray(lines, np.int64), writes)


# ---------------------------------------------------------------------- traces


def tiled_matmul_lines(m, n, k, tile, elem_bytes=4, line_bytes=64, base=0):
    """Line trace of C[m,n] += A[m,k] B[k,n], row-major, tiled (i, j, k): per tile step
    read the A and B tiles row by row, then read-modify-write the C tile."""
    a0, b0 = base, base + m * k * elem_bytes
    c0 = b0 + k * n * elem_bytes
    per_line = line_bytes // elem_bytes
    out = []
    for i in range(0, m, tile):
        for j in range(0, n, tile):
            for kk in range(0, k, tile):
                r = np.arange(tile)
                cols = np.arange(0, tile, per_line)
                out.append(((a0 + ((i + r)[:, None] * k + kk + cols) * elem_bytes)
                            // line_bytes).ravel())
                out.append(((b0 + ((kk + r)[:, None] * n + j + cols) * elem_bytes)
                            // line_bytes).ravel())
            out.append(((c0 + ((i + r)[:, None] * n + j + cols) * elem_bytes)
                        // line_bytes).ravel())
    return np.concatenate(out).astype(np.int64)


def traces():
    rng = np.random.default_rng(1234)
    yield "random-small", rng.integers(0, 6000, 40_000)
    yield "random-wide", rng.integers(0, 1 << 22, 40_000)
    # reuse-heavy: a random walk, so windows hold few distinct lines (the scan path)
    yield "random-walk", np.abs(np.cumsum(rng.integers(-3, 4, 40_000))) + 10
    for stride in (1, 3, 64, 512, 1024, 4096):  # 512 lines = one set only (default geometry)
        yield f"strided-{stride}", np.tile(np.arange(0, 9 * stride * 8, stride), 30)
    yield "tiled-matmul-fits", tiled_matmul_lines(64, 64, 64, 32)
    yield "tiled-matmul-thrash", tiled_matmul_lines(256, 256, 256, 64)


GEOMETRIES = [
    DEFAULT,
    CacheGeometry(32 * 1024, 32, 4),  # micro preset
    CacheGeometry(64 * 1024, 64, 16),  # server-like associativity
    CacheGeometry(4096, 64, 1),  # direct-mapped
    CacheGeometry(4096, 64, 64),  # fully associative
]


# ---------------------------------------------------------------------- pycachesim


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("geom", GEOMETRIES, ids=lambda g: f"{g.size_bytes}B-{g.ways}way")
@pytest.mark.parametrize("name,lines", list(traces()), ids=[t[0] for t in traces()])
def test_load_traces_match_pycachesim(name, lines, geom, backend):
    out = ours(geom, lines, backend=backend)
    assert (out.hits, out.misses) == pycachesim_loads(geom, lines)


def test_per_access_outcomes_match_pycachesim():
    """Not only the totals: each access's hit/miss equals pycachesim's counter step."""
    rng = np.random.default_rng(7)
    geom = CacheGeometry(2048, 64, 4)
    lines = rng.integers(0, 128, 3000)
    sim, l1 = pycachesim(geom)
    expected = []
    for line in lines.tolist():
        before = l1.HIT_count
        sim.load(line * geom.line_bytes)
        expected.append(l1.HIT_count > before)
    assert ours(geom, lines).hit.tolist() == expected


def test_pycachesim_store_semantics():
    """How pycachesim's stores differ from irflow's, on a hand trace and random traces."""
    geom = CacheGeometry(128, 64, 2)  # one set, two ways
    a, b, c = 0, 1, 2
    lines = np.array([a, b, a, c, a])
    writes = np.array([0, 0, 1, 0, 0], bool)
    # irflow: the store to A makes it MRU, so C evicts B and the last A hits.
    out = ours(geom, lines, writes)
    assert out.hit.tolist() == [False, False, True, False, True]
    assert out.writeback.tolist() == [False] * 5
    # pycachesim: the store hit leaves A least recent, so C evicts the dirty A.
    sim, l1 = pycachesim(geom)
    for line, w in zip(lines.tolist(), writes.tolist(), strict=True):
        (sim.store if w else sim.load)(line * 64)
    assert (l1.HIT_count, l1.MISS_count, l1.EVICT_count) == (0, 4, 1)

    rng = np.random.default_rng(3)
    for sets, ways in [(1, 2), (4, 4), (16, 8)]:
        geom = CacheGeometry(sets * ways * 64, 64, ways)
        lines = rng.integers(0, sets * ways * 3, 5000)
        writes = rng.random(5000) < 0.3
        sim, l1 = pycachesim(geom)
        for line, w in zip(lines.tolist(), writes.tolist(), strict=True):
            (sim.store if w else sim.load)(line * 64)
        got = (l1.HIT_count, l1.MISS_count, l1.EVICT_count)
        assert got == pycachesim_semantics(lines, writes, sets, ways)


# ---------------------------------------------------------------------- exactness


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(4))
def test_matches_python_lru_across_calls(seed, backend):
    """Hit, eviction and write-back of every access, and the final state, over 3 calls."""
    rng = np.random.default_rng(seed)
    for _ in range(25):
        sets, ways = int(rng.choice([1, 2, 3, 4, 8])), int(rng.choice([1, 2, 3, 5, 8, 16]))
        cache = LRUCache(CacheGeometry(sets * ways * 64, 64, ways), backend)
        state = None
        for _call in range(3):
            n = int(rng.integers(0, 400))
            lines = rng.integers(0, int(rng.integers(1, 80)), n)
            writes = rng.random(n) < 0.3
            out = cache.access(lines, writes)
            hit, evict, wb, state = python_lru(lines, writes, sets, ways, state)
            np.testing.assert_array_equal(out.hit, hit)
            np.testing.assert_array_equal(out.evict, evict)
            np.testing.assert_array_equal(out.writeback, wb)
        resident, dirty = cache.contents()
        expected = [(line, d) for s in state for line, d in s.items()]
        assert list(zip(resident.tolist(), dirty.tolist(), strict=True)) == expected


@pytest.mark.parametrize("backend", BACKENDS)
def test_skewed_trace_all_in_one_set(backend):
    """Every access in one set (a 32 KiB power-of-two stride): the vectorized scan path."""
    rng = np.random.default_rng(11)
    geom = DEFAULT
    lines = (rng.integers(0, 12, 20_000) * geom.sets).astype(np.int64)
    writes = rng.random(20_000) < 0.5
    out = ours(geom, lines, writes, backend)
    hit, evict, wb, _ = python_lru(lines, writes, geom.sets, geom.ways)
    np.testing.assert_array_equal(out.hit, hit)
    np.testing.assert_array_equal(out.evict, evict)
    np.testing.assert_array_equal(out.writeback, wb)


# ---------------------------------------------------------------------- hand cases


def test_matmul_that_fits_misses_only_compulsory_lines():
    # 64x64x64 fp32: A, B, C are 16 KiB each = 768 distinct lines, far below 256 KiB.
    lines = tiled_matmul_lines(64, 64, 64, 16)
    out = ours(DEFAULT, lines)
    assert out.misses == 3 * 64 * 64 * 4 // 64 == len(np.unique(lines))
    assert out.evictions == 0


def test_stream_twice_the_cache_read_twice_never_hits():
    n_lines = 2 * DEFAULT.lines
    lines = np.tile(np.arange(n_lines), 2)
    out = ours(DEFAULT, lines)
    assert out.hits == 0
    assert out.hit[n_lines:].sum() == 0
    assert out.evictions == len(lines) - DEFAULT.lines


def test_stream_that_fits_read_twice_always_hits_second_time():
    lines = np.tile(np.arange(DEFAULT.lines), 2)
    out = ours(DEFAULT, lines)
    assert out.hit[: DEFAULT.lines].sum() == 0 and out.hit[DEFAULT.lines:].all()


def test_flush_writes_back_dirty_lines_once():
    cache = LRUCache(CacheGeometry(1024, 64, 2))
    cache.access(np.arange(10), np.arange(10) % 3 == 0)  # writes lines 0, 3, 6, 9
    assert cache.flush() == 4
    assert cache.flush() == 0
    # 8 sets x 2 ways = 16 slots: 20 new lines fill the 6 free slots and
    # evict all 10 resident lines (and 4 of the new ones), writing nothing back.
    out = cache.access(np.arange(100, 120), np.zeros(20, bool))
    assert out.writebacks == 0 and out.evictions == 20 - (16 - 10)
    assert set(cache.contents()[0].tolist()) <= set(range(100, 120))


def test_kernels_agree_on_a_long_mixed_trace_in_chunks():
    """numba and numpy kernels: same outcomes and state, a trace fed in uneven chunks."""
    rng = np.random.default_rng(21)
    lines = np.concatenate([rng.integers(0, 20_000, 150_000),
                            np.tile(np.arange(0, 6000, 3), 20),
                            tiled_matmul_lines(128, 128, 128, 32)])
    writes = rng.random(lines.size) < 0.2
    cuts = np.sort(rng.integers(0, lines.size, 6))
    results = {}
    for backend in BACKENDS:
        cache = LRUCache(DEFAULT, backend)
        outs = [cache.access(lo, w) for lo, w in zip(np.split(lines, cuts), np.split(writes, cuts),
                                                     strict=True)]
        results[backend] = (np.concatenate([o.hit for o in outs]),
                            np.concatenate([o.writeback for o in outs]), *cache.contents())
    hit, _, wb, _ = python_lru(lines, writes, DEFAULT.sets, DEFAULT.ways)
    for got in results.values():
        np.testing.assert_array_equal(got[0], hit)
        np.testing.assert_array_equal(got[1], wb)
    if len(results) == 2:
        for a, b in zip(results["numba"], results["numpy"], strict=True):
            np.testing.assert_array_equal(a, b)


def test_numpy_chunks_of_a_big_cache_equal_one_pass(monkeypatch):
    """A 2 MiB cache (32 Ki lines) is fed in chunks of 4x its lines, each replaying the
    resident state first: the same outcomes and state as one pass over the whole trace."""
    from irflow.backends.sim import cache as cache_mod

    big = CacheGeometry(size_bytes=2 << 20, line_bytes=64, ways=8)
    rng = np.random.default_rng(5)
    lines = np.concatenate([np.arange(200_000) % 70_000, rng.integers(0, 70_000, 150_000)])
    writes = rng.random(lines.size) < 0.3
    chunked = LRUCache(big, "numpy")
    out = chunked.access(lines, writes)
    monkeypatch.setattr(cache_mod, "_NUMPY_CHUNK", lines.size)
    whole = LRUCache(big, "numpy")
    ref = whole.access(lines, writes)
    for a, b in [(out.hit, ref.hit), (out.evict, ref.evict), (out.writeback, ref.writeback),
                 *zip(chunked.contents(), whole.contents(), strict=True)]:
        np.testing.assert_array_equal(a, b)


def test_auto_switches_from_numpy_to_numba_exactly(monkeypatch):
    """"auto" starts on numpy (numba's load time is not worth it for short runs) and moves
    to numba past a threshold; the outcomes never notice."""
    import irflow.backends.sim.cache as cache_mod

    monkeypatch.setattr(cache_mod, "_AUTO_NUMBA_AFTER", 5000)
    numpy_calls = []
    real = cache_mod._simulate
    monkeypatch.setattr(cache_mod, "_simulate", lambda *a: numpy_calls.append(1) or real(*a))
    rng = np.random.default_rng(8)
    lines, writes = rng.integers(0, 3000, 12_000), rng.random(12_000) < 0.3
    cache = LRUCache(CacheGeometry(8192, 64, 4))
    outs = [cache.access(lines[i:i + 2000], writes[i:i + 2000]) for i in range(0, 12_000, 2000)]
    hit, _, wb, _ = python_lru(lines, writes, cache.geometry.sets, cache.geometry.ways)
    np.testing.assert_array_equal(np.concatenate([o.hit for o in outs]), hit)
    np.testing.assert_array_equal(np.concatenate([o.writeback for o in outs]), wb)
    assert len(numpy_calls) == (2 if "numba" in BACKENDS else 6)
    assert cache.accesses == 12_000


def test_bad_input_is_a_simulation_error():
    cache = LRUCache(DEFAULT)
    with pytest.raises(SimulationError, match="equal length"):
        cache.access(np.arange(3), np.zeros(2, bool))
    with pytest.raises(SimulationError, match="non-negative"):
        cache.access(np.array([-1]), np.zeros(1, bool))
    with pytest.raises(SimulationError, match="multiple"):
        CacheGeometry(1000, 64, 8)
    with pytest.raises(SimulationError, match="unknown cache backend 'gpu'"):
        LRUCache(DEFAULT, "gpu")


# ---------------------------------------------------------------------- properties

line_traces = st.lists(st.tuples(st.integers(0, 200), st.booleans()), max_size=300)


@settings(max_examples=60, deadline=None)
@given(trace=line_traces, sets_log=st.integers(0, 3), ways=st.integers(1, 8),
       backend=st.sampled_from(BACKENDS))
def test_hits_plus_misses_is_accesses_and_deterministic(trace, sets_log, ways, backend):
    lines = np.array([t[0] for t in trace], np.int64)
    writes = np.array([t[1] for t in trace], bool)
    geom = CacheGeometry((1 << sets_log) * ways * 64, 64, ways)
    a, b = ours(geom, lines, writes, backend), ours(geom, lines, writes, backend)
    assert a.hits + a.misses == len(lines)
    assert a.writebacks <= a.evictions <= a.misses
    for x, y in [(a.hit, b.hit), (a.evict, b.evict), (a.writeback, b.writeback)]:
        np.testing.assert_array_equal(x, y)


@settings(max_examples=60, deadline=None)
@given(trace=line_traces, sets_log=st.integers(0, 3), ways=st.integers(1, 8),
       extra=st.integers(1, 8), backend=st.sampled_from(BACKENDS))
def test_more_ways_never_miss_more(trace, sets_log, ways, extra, backend):
    """LRU inclusion: at the same number of sets, every hit stays a hit with more ways."""
    lines = np.array([t[0] for t in trace], np.int64)
    writes = np.array([t[1] for t in trace], bool)
    sets = 1 << sets_log
    small = ours(CacheGeometry(sets * ways * 64, 64, ways), lines, writes, backend)
    big = ours(CacheGeometry(sets * (ways + extra) * 64, 64, ways + extra), lines, writes,
               backend)
    assert not (small.hit & ~big.hit).any()
    assert big.misses <= small.misses


@settings(max_examples=80, deadline=None)
@given(alphabet=st.integers(1, 40), stride=st.sampled_from([1, 3, 4, 64]),
       n=st.integers(0, 600), seed=st.integers(0, 2**32 - 1),
       sets_log=st.integers(0, 2), ways=st.sampled_from([1, 2, 3, 8, 16]),
       backend=st.sampled_from(BACKENDS))
def test_exact_against_python_lru(alphabet, stride, n, seed, sets_log, ways, backend):
    """Small alphabets and power-of-two strides: long windows with few distinct lines,
    the numpy kernel's multi-pass scan and packed-bit paths."""
    rng = np.random.default_rng(seed)
    lines = rng.integers(0, alphabet, n) * stride
    writes = rng.random(n) < 0.3
    sets = 1 << sets_log
    out = ours(CacheGeometry(sets * ways * 64, 64, ways), lines, writes, backend)
    hit, evict, wb, _ = python_lru(lines, writes, sets, ways)
    np.testing.assert_array_equal(out.hit, hit)
    np.testing.assert_array_equal(out.evict, evict)
    np.testing.assert_array_equal(out.writeback, wb)


@settings(max_examples=40, deadline=None)
@given(trace=line_traces, cut=st.integers(0, 300), backend=st.sampled_from(BACKENDS))
def test_split_calls_equal_one_call(trace, cut, backend):
    """State persists across calls: a trace in two calls gives the outcome of one call."""
    lines = np.array([t[0] for t in trace], np.int64)
    writes = np.array([t[1] for t in trace], bool)
    geom = CacheGeometry(4 * 2 * 64, 64, 2)
    whole = ours(geom, lines, writes, backend)
    cache = LRUCache(geom, backend)
    first, second = cache.access(lines[:cut], writes[:cut]), cache.access(lines[cut:], writes[cut:])
    np.testing.assert_array_equal(np.concatenate([first.hit, second.hit]), whole.hit)
    np.testing.assert_array_equal(np.concatenate([first.writeback, second.writeback]),
                                  whole.writeback)
