"""The Chrome trace loads where Perfetto would load it, and links slices to IR source lines.

Perfetto's trace processor (PyPI `perfetto`) downloads its binary at run time, which this
project's machines cannot (no network besides package registries), so the trace is
checked against the Trace Event Format's JSON Object Format as a JSON schema
(tests/data/trace_event.schema.json) and for what Perfetto's JSON importer needs beyond
it: complete events on one track nest (a slice that overlaps its parent is dropped).
"""

import json
from pathlib import Path

import jsonschema

from irflow import zoo
from irflow.backends.sim import simulate
from irflow.backends.sim.report import chrome_trace, chrome_trace_events, mlir_loc
from irflow.cli import load_inputs, main
from irflow.frontends.dsl import compile_source

SCHEMA = json.loads((Path(__file__).parent / "data" / "trace_event.schema.json").read_text())

MODEL = """
model tiny(x: f32[1, 8, 16, 16]) {
  y = conv2d(x, out=16, kernel=3, pad=1)
  z = maxpool(relu(y), kernel=2)
  return z
}
"""


def _nests(events):
    """Complete events of each (pid, tid) form a tree: each starts and ends inside the
    innermost open one or after it ended (what Perfetto's JSON importer requires)."""
    tracks = {}
    for e in events:
        if e["ph"] == "X":
            tracks.setdefault((e["pid"], e["tid"]), []).append(e)
    for evs in tracks.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []
        for e in evs:
            end = e["ts"] + e["dur"]
            while stack and stack[-1] <= e["ts"] + 1e-9:
                stack.pop()
            if stack and end > stack[-1] + 1e-9:
                return False
            stack.append(end)
    return True


def test_a_lenet5_trace_is_a_valid_trace_event_file(tmp_path):
    m = zoo.load("lenet5")
    r = simulate(m, load_inputs(m, None, 0), numerics=False)
    path = tmp_path / "t.json"
    chrome_trace(r.report, path)
    doc = json.loads(path.read_text())
    jsonschema.validate(doc, SCHEMA)
    assert _nests(doc["traceEvents"])
    slices = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert slices and all(e["args"]["op"].startswith("nn.") or e["args"]["op"] ==
                          "cache.flush" for e in slices)


def test_the_schema_rejects_what_perfetto_would():
    bad = {"traceEvents": [{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 0}]}  # no dur
    try:
        jsonschema.validate(bad, SCHEMA)
    except jsonschema.ValidationError as e:
        assert "dur" in e.message
    else:
        raise AssertionError("an X event without dur passed")
    overlapping = [{"ph": "X", "pid": 1, "tid": 1, "ts": 0, "dur": 10},
                   {"ph": "X", "pid": 1, "tid": 1, "ts": 5, "dur": 10}]
    assert not _nests(overlapping)


def test_every_slice_carries_the_ir_op_and_its_source_location(tmp_path):
    src = tmp_path / "tiny.irf"
    src.write_text(MODEL)
    trace = tmp_path / "trace.json"
    assert main(["run", str(src), "--trace", str(trace), "-q"]) == 0
    doc = json.loads(trace.read_text())
    jsonschema.validate(doc, SCHEMA)
    assert _nests(doc["traceEvents"])
    locs = {e["args"]["op"]: e["args"]["loc"] for e in doc["traceEvents"] if e["ph"] == "X"}
    assert locs["nn.conv2d"] == f'loc("{src}":3:7)'
    assert locs["nn.maxpool"] == f'loc("{src}":4:7)'
    m = compile_source(MODEL, "tiny.irf")
    events = chrome_trace_events(simulate(m, load_inputs(m, None, 0)).report)["traceEvents"]
    assert {e["args"]["loc"] for e in events if e["ph"] == "X" and e["args"]["op"] ==
            "nn.conv2d"} == {'loc("tiny.irf":3:7)'}


def test_mlir_loc_syntax():
    assert mlir_loc("model.irf:12:5") == 'loc("model.irf":12:5)'
    assert mlir_loc("") == "loc(unknown)"
    assert mlir_loc("fc1") == 'loc("fc1")'
