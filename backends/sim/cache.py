"""Exact set-associative LRU cache at line granularity, without a per-access Python loop.

Policy: LRU replacement, write-back, write-allocate; every access (load or store)
makes its line the most recently used. State persists across `access` calls, so a
whole network can be streamed layer by layer through one cache.

    >>> c = LRUCache(CacheGeometry(size_bytes=256, line_bytes=64, ways=2))  # 2 sets
    >>> out = c.access(np.array([0, 2, 0, 4, 2]), np.array([1, 0, 0, 0, 0], bool))
    >>> out.hit.astype(int).tolist(), out.writeback.astype(int).tolist()
    ([0, 0, 1, 0, 0], [0, 0, 0, 0, 1])

Two kernels give identical results: a numba loop (`_cache_jit.py`, with the optional
`fast` extra; ~7x faster once loaded) and the numpy kernel below (always available,
and the second implementation the tests hold the first against). See `LRUCache`.

How the numpy kernel is exact without a per-access loop: LRU has the stack property — whether an
access hits does not depend on the outcomes of other accesses, only on the
sequence. Sets are independent, so accesses are sorted (stably) by set; then an
access at position t to a line last used at position q hits iff fewer than `ways`
distinct lines of its set were used strictly between q and t. Equivalently, the
line last used at r is evicted at the position T(r) of the `ways`-th access after r
to a line whose previous use is at or before r (a "new" line for that window), if
that comes before the line's next use. Computing T(r) for every r gives hits (the
next use of r hits iff T(r) does not exist), evictions (the positions T(r)) and
write-backs (the residency that ends at r was written). T(r) is found with O(1)
prefix-sum tests for the common cases (fewer than `ways` accesses in the window:
no eviction; `ways` consecutive accesses whose previous uses are all too far back
to be inside the window: T(r) = r + ways) and otherwise by a vectorized scan over
all undecided windows at once, in blocks that double in length, so the number of
numpy passes is logarithmic. At most `ways` undecided windows cover any position,
so the scan does at most O(ways · n) work even on adversarial traces (everything
in one set, power-of-two strides).

Cache state between calls (the resident lines of each set in LRU order and their
dirty bits) is replayed as a prefix of synthetic accesses, which rebuilds it
exactly, so one call on a concatenated trace equals several calls on its parts.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np

from irflow.diagnostics import SimulationError


@dataclass(frozen=True)
class CacheGeometry:
    """Cache shape; `sets = size_bytes / (line_bytes * ways)`."""

    size_bytes: int
    line_bytes: int
    ways: int

    def __post_init__(self) -> None:
        if min(self.size_bytes, self.line_bytes, self.ways) <= 0 or self.size_bytes % (
            self.line_bytes * self.ways
        ):
            raise SimulationError(
                f"cache geometry {self}: size_bytes must be a positive multiple of "
                "line_bytes × ways"
            )

    @property
    def sets(self) -> int:
        return self.size_bytes // (self.line_bytes * self.ways)

    @property
    def lines(self) -> int:
        return self.size_bytes // self.line_bytes


@dataclass
class CacheOutcome:
    """Per access, in input order: a hit; caused an eviction; the evicted line was dirty."""

    hit: np.ndarray  # bool [n]
    evict: np.ndarray  # bool [n]
    writeback: np.ndarray  # bool [n]

    @property
    def hits(self) -> int:
        return int(np.count_nonzero(self.hit))

    @property
    def misses(self) -> int:
        return len(self.hit) - self.hits

    @property
    def evictions(self) -> int:
        return int(np.count_nonzero(self.evict))

    @property
    def writebacks(self) -> int:
        return int(np.count_nonzero(self.writeback))


_SCAN_BLOCK_ELEMENTS = 1 << 21  # rows × columns of one vectorized scan block
_NUMPY_CHUNK = 1 << 16  # accesses per numpy-kernel pass


# "auto" switches to numba once a cache has serviced this many accesses: importing numba
# and loading the compiled kernel costs ~1.2 s of CPU here, what the numpy kernel needs
# for ~8 M accesses (ResNet-18 at 224x224 streams ~3 M lines, so it stays on numpy).
_AUTO_NUMBA_AFTER = 1 << 23


def available_backends() -> tuple[str, ...]:
    """Kernels usable here: "numpy" always, "numba" with the optional `fast` extra."""
    return ("numba", "numpy") if importlib.util.find_spec("numba") else ("numpy",)


class LRUCache:
    """Exact LRU, write-back, write-allocate cache over line numbers (address // line).

    `backend`: "numba", "numpy", or "auto": numpy for the first `_AUTO_NUMBA_AFTER`
    accesses, then numba if it is installed (its import and kernel load cost more than
    numpy spends on a few million accesses). Both kernels give identical outcomes and
    share the state, so switching between calls is exact.
    """

    def __init__(self, geometry: CacheGeometry, backend: str = "auto"):
        self.geometry = geometry
        if backend not in ("auto", "numba", "numpy"):
            raise SimulationError(f"unknown cache backend {backend!r}: expected 'auto', "
                                  "'numba' or 'numpy'")
        if backend == "numba" and "numba" not in available_backends():
            raise SimulationError("cache backend 'numba' needs numba: pip install irflow[fast]")
        self.backend = backend
        self.accesses = 0  # serviced so far
        # Resident lines, grouped by set (ascending), each set in LRU -> MRU order.
        self._lines = np.empty(0, np.int64)
        self._dirty = np.empty(0, bool)

    # ------------------------------------------------------------------ public API

    def access(self, line: np.ndarray, write: np.ndarray) -> CacheOutcome:
        """Service accesses in order; return per-access hit / evict / write-back flags."""
        line = np.asarray(line)
        write = np.asarray(write, dtype=bool)
        if line.ndim != 1 or write.shape != line.shape:
            raise SimulationError(
                f"cache access expects two 1-D arrays of equal length, got shapes "
                f"{line.shape} and {write.shape}"
            )
        if line.size and (not np.issubdtype(line.dtype, np.integer) or line.min() < 0):
            raise SimulationError("cache access expects non-negative integer line numbers")
        n = line.size
        if n == 0:
            e = np.zeros(0, bool)
            return CacheOutcome(e, e.copy(), e.copy())
        sets, ways = self.geometry.sets, self.geometry.ways
        kernel = self.backend
        if kernel == "auto":
            big = self.accesses + n >= _AUTO_NUMBA_AFTER
            kernel = "numba" if big and "numba" in available_backends() else "numpy"
        self.accesses += n
        if kernel == "numba":
            from irflow.backends.sim import _cache_jit

            code, self._lines, self._dirty = _cache_jit.simulate(
                np.ascontiguousarray(line, np.int64), np.ascontiguousarray(write), sets, ways,
                self._lines, self._dirty)
        else:
            # Chunks keep the working arrays in the CPU caches (measured ~1.5x faster
            # than one pass over millions of accesses, and bounded memory). Each chunk
            # replays the resident lines first, so a chunk is at least 4x the cache's
            # lines: the replay stays <= 1/4 of the work (4 MiB server cache: ~20 %
            # less CPU than 64 Ki-access chunks).
            chunk = max(_NUMPY_CHUNK, 4 * self.geometry.lines)
            codes = []
            for c0 in range(0, n, chunk):
                m = self._lines.size
                seq_line = np.concatenate(
                    [self._lines, line[c0: c0 + chunk].astype(np.int64, copy=False)])
                seq_write = np.concatenate([self._dirty, write[c0: c0 + chunk]])
                code, self._lines, self._dirty = _simulate(seq_line, seq_write, sets, ways)
                codes.append(code[m:])  # the first m accesses replay the previous state
            code = np.concatenate(codes)
        return CacheOutcome((code & 1).astype(bool), (code & 2).astype(bool),
                            (code & 4).astype(bool))

    def flush(self) -> int:
        """Write back every dirty line (lines stay resident, now clean); return how many."""
        n = int(np.count_nonzero(self._dirty))
        self._dirty = np.zeros_like(self._dirty)
        return n

    def contents(self) -> tuple[np.ndarray, np.ndarray]:
        """(resident lines, dirty flags), grouped by set, each set in LRU -> MRU order."""
        return self._lines.copy(), self._dirty.copy()

    def clone(self) -> LRUCache:
        other = LRUCache(self.geometry, self.backend)
        other._lines, other._dirty = self.contents()
        other.accesses = self.accesses
        return other


# ---------------------------------------------------------------------- the kernel


def _packed_sort(keys: np.ndarray, kbits: int) -> np.ndarray | None:
    """Sort (key, index) pairs packed into one int64 (unique, so a plain SIMD sort is
    stable); None if they do not fit in 62 bits."""
    lo = int(keys.min())
    if (int(keys.max()) - lo).bit_length() + kbits > 62:
        return None
    packed = ((keys - lo) << kbits) | np.arange(keys.size, dtype=np.int64)
    packed.sort()
    return packed


def _simulate(
    seq_line: np.ndarray, seq_write: np.ndarray, sets: int, ways: int
) -> tuple[np.ndarray, ...]:
    """The whole model on one sequence, without per-access Python.

    Returns (code, res_lines, res_dirty): per input access a code (bit 0 hit, bit 1
    evict, bit 2 write-back), and the resident lines (by set, LRU -> MRU) and dirty bits
    afterwards.
    """
    N = seq_line.size
    it = np.int32 if N < (1 << 31) - 1 else np.int64  # positions: halve memory traffic
    kbits = max(1, (N - 1).bit_length())
    mask = (1 << kbits) - 1
    pos = np.arange(N, dtype=it)

    # 1. Sort by set, stably: each set's accesses become one contiguous segment.
    set_of = seq_line & (sets - 1) if sets & (sets - 1) == 0 else seq_line % sets
    packed = _packed_sort(set_of, kbits)
    order = (packed & mask).astype(it) if packed is not None else np.argsort(
        set_of, kind="stable").astype(it)
    del packed
    set_end = np.cumsum(np.bincount(set_of, minlength=sets))
    L = seq_line[order]
    W = seq_write[order]

    # 2. Group the uses of each line (same line implies same set): previous / next use.
    packed = _packed_sort(L, kbits)
    if packed is not None:
        by_line = (packed & mask).astype(it)
        packed >>= kbits
        same = packed[1:] == packed[:-1]
    else:
        by_line = np.argsort(L, kind="stable").astype(it)
        same = L[by_line[1:]] == L[by_line[:-1]]
    del packed
    a, b = by_line[:-1], by_line[1:]
    prev = np.empty(N, it)
    prev[by_line[0]] = -1
    prev[b] = np.where(same, a, -1)
    lim = np.empty(N, it)  # the window (r, lim) the line used at r must survive
    lim[a] = np.where(same, b, -1)
    lim[by_line[-1]] = -1
    last = np.flatnonzero(lim < 0)
    lim[last] = set_end[(L[last] % sets)]

    # 3. T[r]: where the line used at r is evicted (-1: not within its window).
    T = _eviction_points(prev, pos, lim, ways)
    del lim

    # 4. Outcomes, in line-grouped order. The next use of r hits iff r's line was not
    # evicted before it; a residency (a miss, then hits of the same line) is dirty if
    # any of its accesses wrote.
    T_s = T[by_line]
    del T
    evicted_s = T_s >= 0
    miss_s = np.empty(N, bool)
    miss_s[0] = True
    np.logical_or(~same, evicted_s[:-1], out=miss_s[1:])
    starts = np.flatnonzero(miss_s)
    dirty_res = np.logical_or.reduceat(W[by_line], starts)
    dirty_s = np.repeat(dirty_res, np.diff(np.append(starts, N)))
    code = np.empty(N, np.uint8)
    code[by_line] = ~miss_s
    victims = T_s[evicted_s]
    code[victims] |= 2 | (dirty_s[evicted_s].astype(np.uint8) << 2)

    # 5. The state after the sequence: last uses that were never evicted, in position
    # (= LRU) order.
    is_last = np.append(~same, True)
    keep = is_last & ~evicted_s
    res = by_line[keep]
    o = np.argsort(res)
    res_lines, res_dirty = L[res[o]], dirty_s[keep][o]

    # Back to input order.
    out = np.empty(N, np.uint8)
    out[order] = code
    return out, res_lines, res_dirty


def _eviction_points(prev: np.ndarray, pos: np.ndarray, lim: np.ndarray, ways: int) -> np.ndarray:
    """T[r] = the position of the `ways`-th access in (r, lim[r]) whose previous use is
    at or before r (prev <= r), or -1 if there are fewer."""
    N = pos.size
    T = np.full(N, -1, pos.dtype)
    # Windows shorter than `ways` cannot hold `ways` lines: no eviction.
    undecided = (lim - pos) > ways
    # Fast path: the next `ways` accesses after r all reuse lines last seen more than
    # `ways` accesses before themselves (or never), so each is new for the window and
    # T = r + ways. (`near` over-approximates for the first `ways` positions, which
    # only sends them to the scan.)
    near = np.cumsum(prev >= pos - ways, dtype=pos.dtype)
    if N > ways:
        fast = undecided[: N - ways] & (near[ways:] == near[: N - ways])
        T[: N - ways][fast] = pos[: N - ways][fast] + ways
        undecided[: N - ways] &= ~fast
    rest = np.flatnonzero(undecided)
    if rest.size:
        T[rest] = _scan(prev, rest, lim[rest], ways)
    return T


def _scan(prev: np.ndarray, r: np.ndarray, lim: np.ndarray, ways: int) -> np.ndarray:
    """Vectorized forward scan for the windows the fast paths could not decide: each
    pass looks at the next `width` positions of every undecided window at once
    (rows of a sliding-window view of `prev`), and the width doubles per pass."""
    N = prev.size
    out = np.full(r.size, -1, np.int64)
    max_width = 1 << 12
    # Padding past the end is never "new" (N > any r) and is masked anyway.
    windows_of = np.concatenate([prev, np.full(max_width, N, prev.dtype)])
    idx = np.arange(r.size)
    start = r + 1
    need = np.full(r.size, ways, np.int64)  # new lines still needed to reach `ways`
    width = 4 * ways  # measured: decides ~99% of the windows of real conv traces at once
    first_pass = True
    while idx.size:
        width = min(width, max_width)
        win = np.lib.stride_tricks.sliding_window_view(windows_of, width)
        rows = max(1, _SCAN_BLOCK_ELEMENTS // width)
        cols = np.arange(width)
        keep_parts = []
        for c0 in range(0, idx.size, rows):
            i, s, nd = idx[c0: c0 + rows], start[c0: c0 + rows], need[c0: c0 + rows]
            new = win[s] <= r[i][:, None]
            new &= cols < (lim[i] - s)[:, None]
            if width in (32, 64) and first_pass:
                found, j, got = _nth_set_bit(new, ways)
            else:
                cs = np.cumsum(new, axis=1, dtype=np.int16)  # width <= 4096
                got = cs[:, -1].astype(np.int64)
                found = got >= nd
                j = np.argmax(cs[found] >= nd[found][:, None], axis=1)
            out[i[found]] = s[found] + j
            go_on = ~found & (s + width < lim[i])
            keep_parts.append((i[go_on], s[go_on] + width, nd[go_on] - got[go_on]))
        idx = np.concatenate([k[0] for k in keep_parts])
        start = np.concatenate([k[1] for k in keep_parts])
        need = np.concatenate([k[2] for k in keep_parts])
        width *= 2
        first_pass = False
    return out


def _nth_set_bit(bits: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For rows of 32 or 64 flags: (has >= n set, column of the n-th set flag where it
    has, number set), with bit tricks on packed words instead of a cumsum per row."""
    word = np.uint32 if bits.shape[1] == 32 else np.uint64
    packed = np.packbits(bits, axis=1, bitorder="little")
    x = packed.view("<u4" if word is np.uint32 else "<u8").ravel().astype(word)
    got = np.bitwise_count(x).astype(np.int64)
    found = got >= n
    y = x[found]
    one = word(1)
    for _ in range(n - 1):  # clear the lowest set bit n-1 times
        y &= y - one
    lowest = y & (~y + one)
    j = np.frexp(lowest.astype(np.float64))[1] - 1  # exact: powers of two
    return found, j, got
