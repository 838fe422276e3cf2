"""irflow search, measured: the front, the baselines it beats, and the time on 1 and 2 workers.

    .venv/bin/python bench/bench_search.py \
        [--spaces examples/search/digits_haq.toml,...] [--workers 1,2]

For each space and each worker count, a fresh LocalCluster (one single-threaded worker
process each) runs the whole search into a fresh results directory (nothing reused); the
wall time includes the cluster's start. Printed per space: the Pareto front (cycles,
energy, accuracy or output SQNR, pipeline), uniform int8 and w4a8 on the same machine,
the points that beat them as issue 13 asks (vs int8: fewer cycles at equal or better
quality; vs w4a8: better quality at equal or fewer cycles), whether both runs found the
same points with the same figures (the strategies are seeded), the load average when
each run ended, and the speed-up.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from irflow.search import load_space
from irflow.search.runner import run_search
from irflow.search.space import point_key
from irflow.search.strategies import uniform_point

ROOT = Path(__file__).resolve().parent.parent
SPACES = ("examples/search/digits_haq.toml", "examples/search/digits_mixed.toml",
          "examples/search/resnet18_haq.toml", "examples/search/mobilenetv2_haq.toml")


def _q(space) -> str:
    return "accuracy" if space.data_kind == "digits" else "sqnr_db"


def _line(name: str, r: dict, quality: str) -> str:
    return (f"  {name:<18} {r['cycles']:>12,.0f} {r['energy_pj'] / 1e6:>10.3f} "
            f"{r[quality]:>8.2f}  {r['pipeline']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spaces", default=",".join(SPACES))
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    for path in args.spaces.split(","):
        space = load_space(ROOT / path if not Path(path).is_absolute() else path)
        quality = _q(space)
        times: dict[int, float] = {}
        keys: dict[int, dict[str, tuple]] = {}
        result = None
        for n in (int(w) for w in args.workers.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                result = run_search(space, Path(tmp) / "out", workers=n, progress=False)
                times[n] = time.perf_counter() - start
                keys[n] = {r["key"]: (r["status"], r["cycles"], r["energy_pj"], r[quality])
                           for r in result.rows}
                print(f"  [{path}: {n} worker(s) {times[n]:.1f} s, load average "
                      f"{os.getloadavg()[0]:.1f} at the end]", flush=True)
        assert result is not None
        print(f"\n{path}: strategy {space.strategy}, {len(result.rows)} points evaluated")
        print(f"  {'point':<18} {'cycles':>12} {'energy µJ':>10} {quality:>8}  pipeline")
        for r in result.front:
            print(_line(r["key"], r, quality))
        for name, b in result.baselines.items():
            print(_line(f"[uniform {name}]", b, quality))
        own = {r["key"]: r for r in result.rows}.get(point_key(uniform_point(space, 8, 8)))
        if own is not None and own["pipeline"] != result.baselines["int8"]["pipeline"]:
            print(_line("[w8a8, space's]", own, quality)
                  + "  (uniform int8 with the space's whole-model settings)")
        for name, beat in result.claims.items():
            how = ("fewer cycles, equal or better " + quality if name == "int8"
                   else f"better {quality}, equal or fewer cycles")
            best = (min(beat, key=lambda r: r["cycles"]) if name == "int8"
                    else max(beat, key=lambda r: r[quality])) if beat else None
            print(f"  beats uniform {name} ({how}): {len(beat)} points"
                  + (f"; e.g. {best['key']}: {best['cycles']:,.0f} cycles, "
                     f"{best[quality]:.2f}" if best else ""))
        same = all(k == next(iter(keys.values())) for k in keys.values())
        t = ", ".join(f"{n} worker(s) {s:.1f} s" for n, s in times.items())
        speed = (f"; speed-up {times[1] / times[2]:.2f}x" if 1 in times and 2 in times else "")
        print(f"  time: {t}{speed}; same points and figures in every run: "
              f"{'yes' if same else 'NO'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
