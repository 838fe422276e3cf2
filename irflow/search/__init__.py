"""Hardware-aware design-space search (docs/search.md): `irflow search SPACE.toml`.

One concept per module: `space` (the TOML space and its knobs), `recipe` (a point as a
pipeline text and a machine), `data` (calibration and held-out data), `evaluate`
(compile -> simulate -> accuracy, one Dask task), `strategies` (grid, random, Optuna's
NSGA-II, HAQ-style ILP), `table` (SQLite results), `runner` (Dask), `front` (Pareto
front, plots), `cli`. docs/search.md is the guide.
"""

from __future__ import annotations

from irflow.search.space import Space, SpaceError, load_space

__all__ = ["Space", "SpaceError", "load_space"]
