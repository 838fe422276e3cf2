"""bench/bench_zigzag.py's ZigZag inputs, written from irflow's machine and layer spaces
(the matched assumptions docs/tiling.md "Against ZigZag" states). ZigZag itself is not
needed: the bench installs it in its own environment."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from irflow.backends.sim.machine import load_machine
from irflow.dialects import accel
from irflow.graph import main_func

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_zigzag", REPO / "bench" / "bench_zigzag.py")
bz = importlib.util.module_from_spec(_spec)
sys.modules["bench_zigzag"] = bz  # its dataclasses look their module up
_spec.loader.exec_module(bz)


def space_of(layer: bz.Layer) -> accel.Space:
    op = next(o for o in main_func(bz.layer_module(layer)[0]).body.walk()
              if o.name in ("nn.conv2d", "nn.linear", "nn.matmul"))
    return accel.space_of_op(op)


def test_accelerator_matches_the_default_machine():
    hw = bz.accelerator(load_machine("default"))
    mem = hw["memories"]
    assert hw["operational_array"]["sizes"] == [16, 16]
    assert hw["operational_array"]["unit_energy"] == 0.23
    # the 32 B/cycle weight load path spread over 256 PE registers: 1 bit each
    assert mem["rf_w"]["size"] == 16 and mem["rf_w"]["ports"][1]["bandwidth_max"] == 1
    assert mem["sbuf"]["size"] == mem["cache"]["size"] == 256 * 1024 * 8
    assert mem["cache"]["ports"][0]["bandwidth_max"] == 512  # 64 B/cycle of hits
    assert mem["cache"]["r_cost"] == 400.0  # a 64 B line at 50 pJ per 64 bit
    assert mem["dram"]["ports"][0]["bandwidth_max"] == 256  # 32 B/cycle
    assert mem["dram"]["r_cost"] == 5120.0  # 640 pJ per 32 bit


def test_conv_and_linear_workloads():
    conv, hint = bz.zigzag_layer(space_of(bz.Layer("c", "conv", (1, 64, 56, 56),
                                                    (128, 64, 3, 3), 2, 1)), "c", 0, (8, 8, 32))
    assert dict(zip(conv["loop_dims"], conv["loop_sizes"])) == {
        "B": 1, "K": 128, "G": 1, "OX": 28, "OY": 28, "C": 64, "FX": 3, "FY": 3}
    assert conv["dimension_relations"] == ["ix=2*ox+1*fx", "iy=2*oy+1*fy"]
    assert conv["padding"] == [[1, 0], [1, 0]] and conv["pr_loop_sizes"] == [56, 56]
    assert conv["operand_precision"] == {"I": 8, "W": 8, "O": 32, "O_final": 32}
    assert hint == {"D1": ["K"], "D2": ["C", "FX", "FY"]}
    dw, _ = bz.zigzag_layer(space_of(bz.LAYERS["depthwise"]), "d", 1, (8, 8, 8))
    sizes = dict(zip(dw["loop_dims"], dw["loop_sizes"]))
    assert (sizes["G"], sizes["K"], sizes["C"]) == (144, 1, 1)
    assert dw["padding"] == [[1, 1], [1, 1]]
    fc, hint = bz.zigzag_layer(space_of(bz.LAYERS["fc"]), "fc", 2, (8, 8, 8))
    assert dict(zip(fc["loop_dims"], fc["loop_sizes"])) == {"C": 512, "D": 1, "K": 1000}
    assert hint == {"D1": ["K"], "D2": ["C"]}


def test_the_peer_environment_is_outside_the_repository():
    assert REPO not in bz.venv_path().parents
