"""Exact set-associative LRU cache at line granularity, vectorized with numpy.

Policy: LRU replacement, write-back, write-allocate; every access (load or store)
makes its line the most recently used. State persists across `access` calls, so a
whole network can be streamed layer by layer through one cache.

    >>> c = LRUCache(CacheGeometry(size_bytes=256, line_bytes=64, ways=2))  # 2 sets
    >>> out = c.access(np.array([0, 2, 0, 4, 2]), np.array([1, 0, 0, 0, 0], bool))
    >>> out.hit.tolist(), out.evict.tolist(), out.writeback.tolist()
    ([False, False, True, False, False], [False, False, False, True, True], \
[False, False, False, False, True])

How it is exact without a per-access loop: LRU has the stack property — whether an
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


class LRUCache:
    """Exact LRU, write-back, write-allocate cache over line numbers (address // line)."""

    def __init__(self, geometry: CacheGeometry):
        self.geometry = geometry
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
        m = self._lines.size
        seq_line = np.concatenate([self._lines, line.astype(np.int64, copy=False)])
        seq_write = np.concatenate([self._dirty, write])
        hit, evict, wb, res_pos, res_dirty, order, L = _simulate(
            seq_line, seq_write, self.geometry.sets, self.geometry.ways
        )
        self._lines = L[res_pos]
        self._dirty = res_dirty
        # Back to input order; the first m (synthetic) positions are dropped.
        real = order >= m
        idx = order[real] - m
        out_hit = np.empty(n, bool)
        out_evict = np.empty(n, bool)
        out_wb = np.empty(n, bool)
        out_hit[idx] = hit[real]
        out_evict[idx] = evict[real]
        out_wb[idx] = wb[real]
        return CacheOutcome(out_hit, out_evict, out_wb)

    def flush(self) -> int:
        """Write back every dirty line (lines stay resident, now clean); return how many."""
        n = int(np.count_nonzero(self._dirty))
        self._dirty = np.zeros_like(self._dirty)
        return n

    def contents(self) -> tuple[np.ndarray, np.ndarray]:
        """(resident lines, dirty flags), grouped by set, each set in LRU -> MRU order."""
        return self._lines.copy(), self._dirty.copy()

    def clone(self) -> LRUCache:
        other = LRUCache(self.geometry)
        other._lines, other._dirty = self.contents()
        return other


# ---------------------------------------------------------------------- the kernel


def _stable_argsort(keys: np.ndarray) -> np.ndarray:
    """Stable argsort of non-negative int64 keys by sorting (key, index) packed in one int64."""
    n = keys.size
    kbits = max(1, (n - 1).bit_length())
    lo = int(keys.min())
    span = int(keys.max()) - lo
    if span.bit_length() + kbits <= 62:
        packed = ((keys - lo) << kbits) | np.arange(n, dtype=np.int64)
        packed.sort()  # SIMD sort of unique keys: much faster than argsort
        return packed & ((1 << kbits) - 1)
    return np.argsort(keys, kind="stable")


def _simulate(
    seq_line: np.ndarray, seq_write: np.ndarray, sets: int, ways: int
) -> tuple[np.ndarray, ...]:
    """The whole model on one sequence; results are in set-sorted position order."""
    N = seq_line.size
    # 1. Sort by set, stably: each set's accesses become one contiguous segment.
    order = _stable_argsort(seq_line % sets)
    L = seq_line[order]
    W = seq_write[order]
    seg_end = np.cumsum(np.bincount(L % sets, minlength=sets))[L % sets]

    # 2. Previous / next use of the same line (same line implies same set).
    by_line = _stable_argsort(L)
    same = L[by_line[1:]] == L[by_line[:-1]]
    prev = np.full(N, -1, np.int64)
    nxt = np.full(N, -1, np.int64)
    prev[by_line[1:][same]] = by_line[:-1][same]
    nxt[by_line[:-1][same]] = by_line[1:][same]
    pos = np.arange(N, dtype=np.int64)
    lim = np.where(nxt >= 0, nxt, seg_end)  # the window (r, lim) a line must survive

    # 3. T[r]: where the line used at r is evicted (-1: not within its window).
    T = _eviction_points(prev, pos, lim, ways)

    # 4. Outcomes. The next use of r hits iff r's line was not evicted before it.
    miss = np.ones(N, bool)
    has_prev = prev >= 0
    miss[has_prev] = T[prev[has_prev]] >= 0
    evicted = T >= 0
    evict = np.zeros(N, bool)
    evict[T[evicted]] = True
    # A residency is a miss followed by hits of the same line; it is dirty if written.
    rid_sorted = np.cumsum(miss[by_line]) - 1
    dirty_res = np.bincount(rid_sorted, weights=W[by_line], minlength=int(rid_sorted[-1]) + 1) > 0
    rid = np.empty(N, np.int64)
    rid[by_line] = rid_sorted
    wb = np.zeros(N, bool)
    wb[T[evicted]] = dirty_res[rid[evicted]]

    # 5. The state after the sequence: last uses that were never evicted.
    res_pos = np.flatnonzero((nxt < 0) & ~evicted)
    return ~miss, evict, wb, res_pos, dirty_res[rid[res_pos]], order, L


def _eviction_points(prev: np.ndarray, pos: np.ndarray, lim: np.ndarray, ways: int) -> np.ndarray:
    """T[r] = the position of the `ways`-th access in (r, lim[r]) whose previous use is
    at or before r (prev <= r), or -1 if there are fewer."""
    N = pos.size
    T = np.full(N, -1, np.int64)
    undecided = (lim - pos - 1) >= ways  # shorter windows cannot hold `ways` lines
    # Fast path: the next `ways` accesses all reuse lines last seen more than `ways`
    # accesses ago (or never), so each is new for the window and T = r + ways.
    gap = np.where(prev >= 0, pos - prev, N + 1)
    near = np.concatenate([[0], np.cumsum(gap <= ways)])
    cand = np.flatnonzero(undecided)
    end = cand + ways  # < lim since undecided
    fast = near[end + 1] == near[cand + 1]
    T[cand[fast]] = end[fast]
    rest = cand[~fast]
    if rest.size:
        T[rest] = _scan(prev, rest, lim[rest], ways)
    return T


def _scan(prev: np.ndarray, r: np.ndarray, lim: np.ndarray, ways: int) -> np.ndarray:
    """Vectorized forward scan for the windows the fast paths could not decide."""
    N = prev.size
    out = np.full(r.size, -1, np.int64)
    idx = np.arange(r.size)
    start = r + 1
    count = np.zeros(r.size, np.int64)
    width = 2 * ways
    while idx.size:
        rows = max(1, _SCAN_BLOCK_ELEMENTS // width)
        keep_parts = []
        for c0 in range(0, idx.size, rows):
            sl = slice(c0, c0 + rows)
            i, s, cnt, rr, lm = idx[sl], start[sl], count[sl], r[idx[sl]], lim[idx[sl]]
            P = s[:, None] + np.arange(width, dtype=np.int64)
            valid = P < lm[:, None]
            new = valid & (prev[np.minimum(P, N - 1)] <= rr[:, None])
            cs = cnt[:, None] + np.cumsum(new, axis=1)
            reached = cs[:, -1] >= ways
            if reached.any():
                j = np.argmax(cs[reached] >= ways, axis=1)
                out[i[reached]] = P[reached, j]
            go_on = ~reached & (s + width < lm)
            keep_parts.append((i[go_on], s[go_on] + width, cs[go_on, -1]))
        if not keep_parts:
            break
        idx = np.concatenate([k[0] for k in keep_parts])
        start = np.concatenate([k[1] for k in keep_parts])
        count = np.concatenate([k[2] for k in keep_parts])
        width = min(width * 2, 1 << 16)
    return out
