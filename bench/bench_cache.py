"""Cache-model throughput: line accesses per second, irflow's LRUCache beside pycachesim.

Run: .venv/bin/python bench/bench_cache.py [--accesses 10000000] [--repeat 3]

Same load-only trace, same geometry (the default machine's 256 KiB, 64 B lines,
8-way), same run; hit counts are checked equal before timing is reported. Each
figure is the median of `--repeat` runs on a fresh cache, in CPU time of this process
(`time.process_time`: both simulators are single-threaded, and CPU time is steadier
than wall time on a machine shared with other jobs). pycachesim is timed on
`load(list_of_addresses)` (the list is built outside the timer, as its C core needs
Python ints); irflow is timed on `LRUCache.access(lines, writes)` with numpy arrays.
Needs pycachesim (the `test` extra); the numba kernel runs only with numba installed (the
`fast` or `test` extra) — without it the numpy kernel alone is timed, and said so.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from irflow.backends.sim.cache import CacheGeometry, LRUCache, available_backends


def random_trace(n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform over 64 MiB of lines: almost every access misses."""
    return rng.integers(0, 1 << 20, n)


def tiled_trace(n: int) -> np.ndarray:
    """C[1024,1024] += A·B in fp32, 64x64 tiles, loop order (i, j, k); per tile step the
    A and B tiles are read row by row, and each C tile is read once per (i, j)."""
    size, tile, eb, line = 1024, 64, 4, 64
    a0, b0, c0 = 0, size * size * eb, 2 * size * size * eb
    rows = np.arange(tile)[:, None] * size
    cols = np.arange(0, tile, line // eb)[None, :]
    parts = []
    for i in range(0, size, tile):
        for j in range(0, size, tile):
            for k in range(0, size, tile):
                parts.append((a0 + ((i * size + k) + rows + cols) * eb) // line)
                parts.append((b0 + ((k * size + j) + rows + cols) * eb) // line)
            parts.append((c0 + ((i * size + j) + rows + cols) * eb) // line)
            if sum(p.size for p in parts) >= n:
                return np.concatenate([p.ravel() for p in parts])[:n].astype(np.int64)
    trace = np.concatenate([p.ravel() for p in parts]).astype(np.int64)
    return np.tile(trace, -(-n // trace.size))[:n]


def time_ours(geom: CacheGeometry, lines: np.ndarray, backend: str, repeat: int):
    writes = np.zeros(lines.size, bool)
    LRUCache(geom, backend).access(lines[:1000], writes[:1000])  # JIT warm-up
    times, hits = [], 0
    for _ in range(repeat):
        cache = LRUCache(geom, backend)
        t0 = time.process_time()
        hits = cache.access(lines, writes).hits
        times.append(time.process_time() - t0)
    return statistics.median(times), hits


def time_pycachesim(geom: CacheGeometry, lines: np.ndarray, repeat: int):
    import cachesim

    addrs = (lines * geom.line_bytes).tolist()
    times, hits = [], 0
    for _ in range(repeat):
        mem = cachesim.MainMemory()
        l1 = cachesim.Cache("L1", geom.sets, geom.ways, geom.line_bytes, "LRU")
        mem.load_to(l1)
        mem.store_from(l1)
        sim = cachesim.CacheSimulator(l1, mem)
        t0 = time.process_time()
        sim.load(addrs)
        times.append(time.process_time() - t0)
        hits = l1.HIT_count
    return statistics.median(times), hits


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accesses", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backends", default=",".join(available_backends()))
    args = ap.parse_args(argv)
    from extras import missing, require

    require("bench_cache.py", "cachesim")
    print("$ " + " ".join([".venv/bin/python", "bench/bench_cache.py", *sys.argv[1:]]))
    if missing("numba"):
        print("note: numba is not installed, so only the numpy kernel runs (the README's "
              "numba figures need it: .venv/bin/pip install -e '.[fast]')")
    geom = CacheGeometry(256 * 1024, 64, 8)
    print(f"geometry: {geom.size_bytes // 1024} KiB, {geom.line_bytes} B lines, {geom.ways}-way, "
          f"{geom.sets} sets; {args.accesses:,} line loads; median of {args.repeat} runs")
    rng = np.random.default_rng(0)
    traces = {"random": random_trace(args.accesses, rng), "tiled": tiled_trace(args.accesses)}
    print(f"{'trace':8} {'kernel':8} {'M acc/s':>9} {'pycachesim M/s':>15} {'ours/pcs':>9} "
          f"{'hit rate':>9}")
    for name, lines in traces.items():
        t_pcs, hits_pcs = time_pycachesim(geom, lines, args.repeat)
        for backend in args.backends.split(","):
            t, hits = time_ours(geom, lines, backend, args.repeat)
            if hits != hits_pcs:
                print(f"MISMATCH on {name}/{backend}: {hits} hits vs pycachesim {hits_pcs}")
                return 1
            ours, pcs = lines.size / t / 1e6, lines.size / t_pcs / 1e6
            print(f"{name:8} {backend:8} {ours:9.1f} {pcs:15.1f} {ours / pcs:9.2f} "
                  f"{hits / lines.size:9.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
