"""Report renderings: JSON schema irflow.sim.report/2, the text table, the Chrome trace."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from irflow.backends.sim.cache import LRUCache
from irflow.backends.sim.cost import flush_stats, layer_stats
from irflow.backends.sim.machine import load_machine
from irflow.backends.sim.mapping import map_space
from irflow.backends.sim.report import (
    MAX_EVENTS_PER_LAYER,
    SCHEMA,
    SimReport,
    chrome_trace,
)
from irflow.backends.sim.trace import LayerTrace, Unit
from irflow.dialects import accel

COUNTS = ["accesses", "hits", "misses", "hit_rate", "evictions", "writebacks"]
LAYER_KEYS = ["name", "op", "unit", "dtype", "steps", "cycles", "macs", "vector_ops",
              "pe_utilization", "pe_array", "psum_bytes", "cache", "dram", "energy_pj",
              "latency_ms", "roofline", "notes", "loc", "dma", "limited_by"]


@pytest.fixture(scope="module")
def report() -> SimReport:
    m = load_machine("default")
    rng = np.random.default_rng(5)
    cache = LRUCache(m.cache.geometry)
    stats = []
    layers = [("conv1", "accel.conv2d", Unit.PE_ARRAY, 300),
              ("relu1", "accel.relu", Unit.VECTOR, 20),
              ("flatten", "accel.copy", Unit.DMA, 5)]
    # conv1's steps: a 3x3 conv tile, 8 -> 16 channels over 14 x 14 pixels (each 225,792 MACs)
    conv = accel.layer_space("nn.conv2d", [(1, 8, 16, 16), (16, 8, 3, 3)], (1, 16, 14, 14), {})
    ms = map_space(conv)
    for name, op, unit, steps in layers:
        n = 40 * steps
        pe = unit == Unit.PE_ARRAY
        t = LayerTrace(name, op, unit, "fp32", rng.integers(0, 30000, n), rng.random(n) < 0.25,
                       rng.integers(0, 4, n).astype(np.int8),
                       np.sort(rng.integers(0, steps, n)).astype(np.int32),
                       np.full(steps, 14 * 14 * 16 * 8 * 9 if pe else 0),
                       np.full(steps, 4096 if unit == Unit.VECTOR else 0), vector_kind="relu",
                       compulsory_bytes=64 * 1000, notes=["a warning"] if name == "relu1" else [],
                       map_space=ms if pe else None,
                       step_tiles=np.tile([1, 1, 16, 14, 14, 8, 3, 3], (steps, 1)) if pe else None)
        stats.append(layer_stats(t, cache.access(t.line, t.write), m))
    stats.append(flush_stats(cache.flush(), m))
    return SimReport.build(m, stats, model="tiny")


def test_json_schema_keys_in_a_stable_order(report):
    d = json.loads(report.to_json())
    assert list(d) == ["schema", "model", "machine", "layers", "total", "notes"]
    assert d["schema"] == SCHEMA == "irflow.sim.report/2"
    assert d["machine"]["name"] == "default" and d["machine"]["cache"]["size_bytes"] == 262144
    assert [layer["name"] for layer in d["layers"]] == ["conv1", "relu1", "flatten",
                                                         "cache flush"]
    for entry in [*d["layers"], d["total"]]:
        assert list(entry) == LAYER_KEYS
        assert list(entry["cycles"]) == ["total", "compute", "stall"]
        assert list(entry["cache"]) == [*COUNTS, "by_role"]
        assert list(entry["cache"]["by_role"]) == ["input", "weight", "output", "psum"]
        assert list(entry["pe_array"]) == ["mapping", "cycles", "mapped_cycles",
                                           "spatial_utilization", "temporal_utilization",
                                           "fill_drain_cycles", "load_cycles", "folds"]
        assert all(list(v) == COUNTS for v in entry["cache"]["by_role"].values())
        assert list(entry["dram"]) == ["bytes_read", "bytes_written"]
        assert list(entry["energy_pj"]) == ["mac", "vector", "cache", "dram", "total"]
        assert list(entry["roofline"]) == ["cycles", "bound", "achieved_over_bound"]
        c = entry["cycles"]
        assert c["total"] == c["compute"] + c["stall"]
    total = d["total"]
    assert total["cycles"]["total"] == sum(x["cycles"]["total"] for x in d["layers"])
    assert total["cache"]["misses"] == sum(x["cache"]["misses"] for x in d["layers"])
    assert d["layers"][1]["notes"] == ["a warning"]
    # conv1 under ws: rows = c·r·s = 72 (5 folds of 16, 90 % of the rows), cols = f = 16,
    # 196 pixels streamed at 1/4 MAC per cycle; 1,152 fp32 weights = 144 cycles of load,
    # 28.8 per fold, hidden behind the stream: the first step ceil(28.8 + 5 x 784) + 30,
    # the 299 steps after it 5 x 784 (one pipeline: the skew and first load once)
    pe = d["layers"][0]["pe_array"]
    assert pe["mapping"] == "ws: rows=c·r·s, cols=f"
    assert (pe["cycles"], pe["mapped_cycles"], pe["folds"]) == (
        3949 + 30 + 299 * 3920, 300 * 5 * 784, 300 * 5)
    assert pe["spatial_utilization"] == pytest.approx(72 / 80)
    assert pe["temporal_utilization"] == pytest.approx(300 * 3920 / (3979 + 299 * 3920))
    assert (pe["fill_drain_cycles"], pe["load_cycles"]) == (30, 29)
    conv1 = d["layers"][0]
    assert conv1["dma"]["cycles"] > 0 and conv1["limited_by"] in ("compute", "bandwidth")
    assert d["layers"][2]["limited_by"] == "bandwidth"  # a DMA copy computes nothing
    assert d["layers"][1]["pe_array"]["mapping"] == "-"
    psum = d["layers"][0]["cache"]["by_role"]["psum"]["accesses"]
    assert psum > 0 and d["layers"][0]["psum_bytes"] == psum * 64
    assert report.to_json() == report.to_json()  # stable


def test_table_has_a_row_per_layer_and_total(report):
    text = report.table()
    assert "machine 'default'" in text
    for name in ["conv1", "relu1", "flatten", "cache flush", "total"]:
        assert sum(line.startswith(name) for line in text.splitlines()) == 2  # both tables
    assert "relu1: a warning" in text
    header = next(line for line in text.splitlines() if line.startswith("layer"))
    for col in ["cycles", "compute", "stall", "MACs", "PE util", "x bound", "ms"]:
        assert col in header


def test_chrome_trace_is_well_formed_with_three_tracks(report, tmp_path):
    path = tmp_path / "trace.json"
    chrome_trace(report, path)
    d = json.loads(path.read_text())
    events = d["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events
             if e["ph"] == "M" and e["name"] == "thread_name"}
    assert names == {1: "PE array", 2: "vector unit", 3: "DMA"}
    spans = [e for e in events if e["ph"] == "X"]
    assert {e["tid"] for e in spans} == {1, 2, 3}
    us_per_cycle = 1 / (report.machine.clock_ghz * 1e3)
    end = max(e["ts"] + e["dur"] for e in spans)
    assert end == pytest.approx(report.total.cycles * us_per_cycle)
    for e in spans:
        assert e["dur"] > 0 and e["ts"] >= 0 and e["pid"] == 1
        assert e["args"]["layer"] in e["name"] and e["args"]["op"] in e["name"]
        assert e["cat"] == e["args"]["op"]
    # Per track, events either nest or follow each other (what Perfetto needs).
    for tid in (1, 2, 3):
        track = sorted((e["ts"], -e["dur"], e["ts"] + e["dur"]) for e in spans if e["tid"] == tid)
        stack: list[float] = []
        for ts, _neg, stop in track:
            while stack and stack[-1] <= ts + 1e-9:
                stack.pop()
            assert not stack or stop <= stack[-1] + 1e-9
            stack.append(stop)
    conv = [e for e in spans if e["args"]["layer"] == "conv1" and e["tid"] == 1]
    assert len(conv) <= MAX_EVENTS_PER_LAYER + 1  # 300 steps grouped, plus the layer span


def test_every_json_key_is_documented(report):
    """docs/simulator.md documents schema irflow.sim.report/2 field by field."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "simulator.md").read_text()
    schema = doc[doc.index(f"schema `{SCHEMA}`"):]
    d = report.to_dict()
    top = [k for k in d if k != "machine"]  # the machine is docs/machine.md's
    layer_keys = []

    def walk(obj, prefix=""):
        for k, v in obj.items():
            if isinstance(v, dict) and k != "by_role":
                walk(v, f"{prefix}{k}.")
            else:
                layer_keys.append(f"{prefix}{k}")

    walk(d["total"])
    def documented(key: str) -> bool:  # `a.b`, or `a.b` / `c` rows, or `a.{b,c}`
        prefix, _, last = key.rpartition(".")
        brace = rf"`{re.escape(prefix)}\.\{{[^}}]*\b{last}\b[^}}]*\}}`"
        spelled = (f"`{key}`", f"`{key}.", f"/ `{last}`")
        return any(x in schema for x in spelled) or bool(re.search(brace, schema))

    missing = [k for k in top if f'"{k}"' not in schema]
    missing += [k for k in layer_keys if not documented(k)]
    assert not missing, f"undocumented report keys: {missing}"
