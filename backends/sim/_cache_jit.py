"""Optional numba kernel for `LRUCache` (install the `fast` extra: `pip install irflow[fast]`).

A per-access loop over `tags[sets, ways]` with last-use stamps, compiled by numba
(cached on disk after the first compile). Same semantics and the same state
format at the boundary as the numpy kernel in `cache.py`, which is the fallback
and the reference this one is tested against (`tests/test_cache.py`). Importing
this module raises ImportError when numba is not installed.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _kernel(lines, writes, sets, tags, stamp, dirty, clock, code):  # pragma: no cover - jitted
    ways = tags.shape[1]
    pow2 = (sets & (sets - 1)) == 0
    for i in range(lines.size):
        line = lines[i]
        s = (line & (sets - 1)) if pow2 else line % sets
        clock += 1
        found = -1
        victim = 0  # one pass finds the line or, failing that, the LRU way
        oldest = stamp[s, 0]
        for w in range(ways):
            if tags[s, w] == line:
                found = w
                break
            if stamp[s, w] < oldest:
                oldest = stamp[s, w]
                victim = w
        if found >= 0:
            stamp[s, found] = clock
            if writes[i]:
                dirty[s, found] = True
            code[i] = 1
            continue
        c = 0
        if tags[s, victim] >= 0:
            c = 6 if dirty[s, victim] else 2
        tags[s, victim] = line
        stamp[s, victim] = clock
        dirty[s, victim] = writes[i]
        code[i] = c
    return clock


def simulate(
    lines: np.ndarray, writes: np.ndarray, sets: int, ways: int,
    res_lines: np.ndarray, res_dirty: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(code per access, resident lines by set in LRU order, their dirty bits) — the
    contract of `cache._simulate`, starting from the given resident state."""
    tags = np.full((sets, ways), -1, np.int64)
    stamp = np.zeros((sets, ways), np.int64)  # 0 = empty; valid stamps are >= 1
    dirty = np.zeros((sets, ways), np.bool_)
    if res_lines.size:
        s = res_lines % sets  # grouped by set, LRU first
        first = np.searchsorted(s, s)  # index of the first entry of each entry's set
        rank = np.arange(s.size) - first
        tags[s, rank] = res_lines
        stamp[s, rank] = rank + 1
        dirty[s, rank] = res_dirty
    code = np.empty(lines.size, np.uint8)
    _kernel(lines, writes, sets, tags, stamp, dirty, ways + 1, code)
    valid = tags.ravel() >= 0
    set_idx = np.repeat(np.arange(sets), ways)[valid]
    o = np.lexsort((stamp.ravel()[valid], set_idx))
    return code, tags.ravel()[valid][o], dirty.ravel()[valid][o]


@numba.njit(cache=True, nogil=True)
def _fa_kernel(prev, capacity, hit):  # pragma: no cover - jitted
    n = prev.size
    tree = np.zeros(n + 1, np.int32)  # Fenwick tree over positions: 1 = a line's latest use
    for t in range(n):
        q = prev[t]
        if q >= 0:
            between = 0  # latest uses in (q, t) = distinct lines touched since q
            i = t
            while i > 0:
                between += tree[i]
                i -= i & -i
            i = q + 1
            while i > 0:
                between -= tree[i]
                i -= i & -i
            hit[t] = between < capacity
            i = q + 1
            while i <= n:
                tree[i] -= 1
                i += i & -i
        i = t + 1
        while i <= n:
            tree[i] += 1
            i += i & -i


def fully_associative_hits(prev: np.ndarray, capacity: int) -> np.ndarray:
    """Hits of a fully associative LRU cache of `capacity` lines, starting empty, given
    each access's previous use of the same line (`prev`, -1 for none): an access hits iff
    fewer than `capacity` distinct lines were touched since that use (the LRU stack
    distance), counted with a Fenwick tree in O(n log n)."""
    hit = np.zeros(prev.size, np.bool_)
    _fa_kernel(np.ascontiguousarray(prev, np.int64), capacity, hit)
    return hit
