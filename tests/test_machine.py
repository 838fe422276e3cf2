"""Machine descriptions: presets load, and bad files name the field and the allowed range."""

from __future__ import annotations

import tomllib

import pytest

from irflow.backends.sim.machine import (
    PRESETS,
    VECTOR_KINDS,
    Machine,
    MachineError,
    field_docs,
    load_machine,
    machine_from_toml,
)


def test_default_preset_is_design_section_4():
    m = load_machine(None)
    assert m.name == "default" and (m.pe_array.rows, m.pe_array.cols) == (16, 16)
    rates = m.pe_array.macs_per_pe_per_cycle
    assert (rates.int8, rates.int4, rates.fp16, rates.bf16, rates.fp32) == (1, 2, 0.5, 0.5, 0.25)
    assert m.peak_macs_per_cycle("int8") == 256 and m.peak_macs_per_cycle("fp32") == 64
    assert (m.cache.size_bytes, m.cache.line_bytes, m.cache.ways) == (256 * 1024, 64, 8)
    assert m.cache.sets == 512 and m.cache.hit_bytes_per_cycle == 64
    assert (m.dram.bytes_per_cycle, m.dram.latency_cycles, m.clock_ghz) == (32, 100, 1.0)
    assert m.vector.lanes == 64 and m.sparsity.structured == ("2:4",)
    assert m.sparsity.structured_mac_cycle_factor == 0.5
    assert m.sparsity.unstructured_format == "bitmap"
    assert m.energy.mac_pj.int8 == pytest.approx(0.2 + 0.03)
    assert m.energy.mac_pj.fp32 == pytest.approx(3.7 + 0.9)
    assert m.dram_pj_per_byte == 160.0
    assert m.cycles_to_ms(1_000_000) == pytest.approx(1.0)


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_loads_and_round_trips(name):
    m = load_machine(name)
    assert m == machine_from_toml(_to_toml(m.to_dict()), name)
    assert all(m.vector_cycles_per_element(k) > 0 for k in VECTOR_KINDS)


def test_micro_and_server_bracket_the_default():
    micro, default, server = (load_machine(p) for p in ("micro", "default", "server"))
    assert micro.cache.size_bytes < default.cache.size_bytes < server.cache.size_bytes
    assert micro.pes < default.pes < server.pes
    assert micro.dram.bytes_per_cycle < default.dram.bytes_per_cycle < server.dram.bytes_per_cycle


def test_a_file_may_override_a_preset(tmp_path):
    p = tmp_path / "big_cache.toml"
    p.write_text('base = "default"\n[cache]\nsize_bytes = 1048576\nways = 16\n')
    m = load_machine(p)
    assert m.name == "big_cache" and m.cache.size_bytes == 1 << 20 and m.cache.ways == 16
    assert m.pe_array == load_machine("default").pe_array


@pytest.mark.parametrize("text,message", [
    ('base = "default"\n[cache]\nwayz = 4',
     r"'cache\.wayz' unknown field \(did you mean 'ways'\?\)"),
    ('base = "default"\n[cache]\nways = 0', r"'cache\.ways' = 0 is out of range: expected an "
                                            r"integer in \[1, 1024\]"),
    ('base = "default"\n[cache]\nways = 3', r"'cache\.ways' = 3: size_bytes \(262144\) must be a "
                                            r"multiple of line_bytes × ways"),
    ('base = "default"\n[cache]\nline_bytes = 48', r"'cache\.line_bytes' = 48 .*power-of-two"),
    ('base = "default"\n[dram]\nbytes_per_cycle = 0', r"'dram\.bytes_per_cycle' = 0 is out of "
                                                      r"range: expected a number in \(0, "),
    ('base = "default"\nclock_ghz = "fast"', r"'clock_ghz' = 'fast': expected a number"),
    ('base = "default"\n[vector.cycles_per_element]\nadd = -1',
     r"'vector\.cycles_per_element\.add' = -1 is out of range"),
    ('base = "default"\n[sparsity]\nstructured = ["3:5"]', r"'sparsity\.structured'.*'2:4'"),
    ('base = "default"\n[cache]\nreplacement = "fifo"', r"'cache\.replacement'.*one of 'lru'"),
    ('base = "default"\n[pe_array]\nrows = 1.5', r"'pe_array\.rows' = 1\.5: expected an integer"),
    ('name = "x"\nclock_ghz = 1.0', r"'pe_array' missing table"),
    ('base = "default"\ncache = 5', r"'cache' expected a table"),
    ('base = "defualt"', r"'base' = 'defualt'.*did you mean 'default'"),
])
def test_bad_fields_name_the_field_and_the_range(text, message):
    with pytest.raises(MachineError, match=message) as err:
        machine_from_toml(text, "hw.toml")
    assert str(err.value).startswith("hw.toml: error: ")


def test_missing_field_in_a_full_file(tmp_path):
    d = load_machine("default").to_dict()
    del d["dram"]["latency_cycles"]
    p = tmp_path / "hw.toml"
    p.write_text(_to_toml(d))
    with pytest.raises(MachineError, match=r"'dram\.latency_cycles' missing field .*cycles"):
        load_machine(p)


def test_malformed_toml_points_at_line_and_column(tmp_path):
    p = tmp_path / "hw.toml"
    p.write_text('base = "default"\n[cache\n')
    with pytest.raises(MachineError, match=r"hw\.toml:2:\d+: error: malformed machine"):
        load_machine(p)


def test_unknown_preset_or_missing_file(tmp_path):
    with pytest.raises(MachineError, match="unknown machine 'servr'.*did you mean 'server'"):
        load_machine("servr")
    with pytest.raises(MachineError, match="cannot read"):
        load_machine(tmp_path / "nope.toml")


def test_machine_is_frozen_and_validated_when_built_in_python():
    m = load_machine()
    with pytest.raises(AttributeError):
        setattr(m, "clock_ghz", 2.0)  # noqa: B010 - frozen: must raise
    assert isinstance(m, Machine)


def test_every_field_documents_its_unit_or_choices():
    rows = field_docs()
    assert len(rows) > 40
    for name, unit, allowed, doc in rows:
        assert doc, name
        assert unit or "one of" in allowed or name in {"name", "description"}, name
    with open_preset("default") as f:
        raw = tomllib.load(f)
    assert "clock_ghz" in raw


def open_preset(name):
    from importlib import resources

    return resources.files("irflow.backends.sim").joinpath(f"presets/{name}.toml").open("rb")


def _to_toml(d, prefix=""):
    """Minimal TOML writer for the machine's nested dict (tables after scalars)."""
    scalars = {k: v for k, v in d.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in d.items() if isinstance(v, dict)}
    out = [f"[{prefix}]"] if prefix else []

    def lit(v):
        if isinstance(v, str):
            return '"' + v.replace('"', '\\"') + '"'
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(lit(x) for x in v) + "]"
        return repr(v)

    out += [f"{k} = {lit(v)}" for k, v in scalars.items()]
    for k, v in tables.items():
        out.append(_to_toml(v, f"{prefix}.{k}" if prefix else k))
    return "\n".join(out) + "\n"


def test_docs_list_every_field():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "machine.md").read_text()
    missing = [name for name, *_ in field_docs() if f"`{name}`" not in doc]
    assert not missing, f"docs/machine.md lacks {missing}: regenerate its field table"


def test_example_hardware_files_load():
    from pathlib import Path

    files = sorted((Path(__file__).resolve().parents[1] / "examples" / "hardware").glob("*.toml"))
    assert files
    for path in files:
        m = load_machine(path)
        assert m.name == path.stem and "modified" not in m.description


def test_parts_built_in_python_are_validated_too():
    from irflow.backends.sim.machine import CacheSpec

    with pytest.raises(MachineError, match=r"machine field 'ways' = 0 is out of range"):
        CacheSpec(size_bytes=1024, line_bytes=64, ways=0, hit_bytes_per_cycle=64.0,
                  replacement="lru", write_policy="write-back-allocate")
