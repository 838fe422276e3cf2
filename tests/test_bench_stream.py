"""bench/bench_stream.py's Stream inputs, written from irflow's machine (docs/tiling.md
"Against Stream"). Stream itself is not needed: the bench installs it in its own
environment with a Python 3.12 it finds."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from irflow.backends.sim.machine import load_machine

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))  # bench_stream imports its sibling bench_zigzag
_spec = importlib.util.spec_from_file_location("bench_stream", REPO / "bench" / "bench_stream.py")
bs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bs)


def test_the_system_is_irflows_machine():
    m = load_machine("default")
    pe = bs.pe_core(m)
    # the PE core is ZigZag's description of the array (bench_zigzag), without DRAM
    assert list(pe["memories"]) == ["rf_w", "rf_o", "sbuf", "cache"]
    assert pe["operational_array"]["sizes"] == [16, 16] and pe["type"] == "zigzag.compute"
    assert pe["operand_precision"] == {"input": "int8", "accumulator": "int32"}
    dram = bs.offchip_core(m)["memories"]["dram"]
    assert dram["ports"][0]["bandwidth_max"] == 256  # 32 B/cycle
    assert dram["r_cost"] == 5120.0  # 160 pJ/B x 32 B
    sysd = bs.system(m)
    assert sysd["offchip_core_id"] == 3 and len(sysd["cores"]) == 4
    bus = [c for c in sysd["core_connectivity"] if c["type"] == "bus"]
    assert bus == [{"type": "bus", "cores": [0, 1, 2, 3], "bandwidth": 256}]


def test_a_python_that_is_not_3_12_is_refused():
    with pytest.raises(SystemExit, match="not a working Python 3.12"):
        bs.find_python(sys.executable if sys.version_info[:2] != (3, 12) else "/nonexistent")


def test_the_peer_environment_is_outside_the_repository():
    assert REPO not in bs.venv_path().parents
    assert isinstance(bs.fuse_layers_available(), bool)
