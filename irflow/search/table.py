"""The results table: one SQLite file, one row per evaluated point, written as points finish.

    >>> t = ResultsTable("out/results.sqlite", space)
    >>> t.done()                       # {key: row} of the points already evaluated
    >>> t.add(key, point, row, run=1)  # one transaction: a killed run leaves whole rows

Tables:
- `meta(key, value)`: `space_fingerprint` and `space` (the TOML): a resumed run must be
  of the same space, else the table is refused rather than mixed;
- `points`: `key` (primary key: a point is stored once), `run` (which invocation
  evaluated it), `role` (`search`, `baseline`, `sensitivity`), `point` (JSON), `pipeline`,
  `machine` (TOML), `status`, `error`, one REAL column per metric (`METRICS`),
  `float_accuracy`, `accuracy_drop`, `layer_cycles` (JSON), `seconds`, `worker`, `finished`,
  `finetune` (what fine-tune ran, e.g. `adam lr=0.001 1 epoch ... qat w4a8`; empty: none).

SQLite in WAL mode with one writer (the driver): a crash mid-write rolls the row back,
never leaves half of one.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from pathlib import Path
from typing import Any

from irflow.search.space import METRICS, Space, SpaceError

COLUMNS: tuple[str, ...] = ("key", "run", "role", "point", "pipeline", "machine", "status",
                            "error", *METRICS, "float_accuracy", "accuracy_drop",
                            "layer_cycles", "seconds", "worker", "finished", "finetune")
_REAL = {*METRICS, "float_accuracy", "accuracy_drop", "seconds", "finished"}


class ResultsTable:
    def __init__(self, path: str | Path, space: Space):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        cols = ", ".join(f"{c} {'REAL' if c in _REAL else 'INTEGER' if c == 'run' else 'TEXT'}"
                         + (" PRIMARY KEY" if c == "key" else "") for c in COLUMNS)
        with self.db:
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            self.db.execute(f"CREATE TABLE IF NOT EXISTS points ({cols})")
            have = {r[1] for r in self.db.execute("PRAGMA table_info(points)")}
            if "finetune" not in have:  # a table written before the column existed
                self.db.execute("ALTER TABLE points ADD COLUMN finetune TEXT")
        stored = self.meta("space_fingerprint")
        if stored is None:
            with self.db:
                self.db.execute("INSERT INTO meta VALUES ('space_fingerprint', ?), "
                                "('space', ?)", (space.fingerprint, space.text))
        elif stored != space.fingerprint:
            raise SpaceError(f"{self.path} holds the results of another search space; "
                             "give another --output directory (or delete it to start over)")

    def meta(self, key: str) -> str | None:
        r = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return r[0] if r else None

    def next_run(self) -> int:
        r = self.db.execute("SELECT MAX(run) FROM points").fetchone()
        return (r[0] or 0) + 1

    def add(self, key: str, point: dict[str, Any], row: dict[str, Any], run: int,
            role: str = "search") -> bool:
        """Store one evaluated point (False if it was stored already: never twice)."""
        values = {c: row.get(c) for c in COLUMNS}
        values.update(key=key, run=run, role=role, finished=time.time(),
                      point=json.dumps(point, sort_keys=True),
                      layer_cycles=json.dumps(row.get("layer_cycles", {})))
        for c in _REAL:
            v = values[c]
            values[c] = None if v is None or (isinstance(v, float) and math.isnan(v)) else v
            if isinstance(values[c], float) and math.isinf(values[c]):
                values[c] = 1e308 if values[c] > 0 else -1e308  # SQLite has no inf literal
        with self.db:
            cur = self.db.execute(
                f"INSERT OR IGNORE INTO points ({', '.join(COLUMNS)}) VALUES "
                f"({', '.join('?' for _ in COLUMNS)})", [values[c] for c in COLUMNS])
        return cur.rowcount == 1

    def rows(self, role: str | None = None) -> list[dict[str, Any]]:
        q = f"SELECT {', '.join(COLUMNS)} FROM points"
        args: tuple[Any, ...] = ()
        if role is not None:
            q += " WHERE role = ?"
            args = (role,)
        out = []
        for r in self.db.execute(q + " ORDER BY finished", args):
            d = dict(zip(COLUMNS, r))
            d["point"] = json.loads(d["point"])
            d["layer_cycles"] = json.loads(d["layer_cycles"] or "{}")
            out.append(d)
        return out

    def done(self) -> dict[str, dict[str, Any]]:
        return {r["key"]: r for r in self.rows()}

    def close(self) -> None:
        self.db.close()


__all__ = ["ResultsTable", "COLUMNS"]
