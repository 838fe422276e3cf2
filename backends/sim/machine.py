"""The simulated streaming accelerator, described by a TOML file (docs/machine.md).

A `Machine` is a frozen dataclass tree: PE array, vector unit, cache, DRAM, sparsity
support and an energy table. Every field carries its unit in its name or in its
metadata (`unit`), and its allowed range; both are checked at construction, so a
`Machine` that exists is valid. Presets ship in `presets/*.toml`:

    >>> m = load_machine("default")          # or a path to a .toml file, or None
    >>> m.pe_array.rows * m.pe_array.cols, m.cache.size_bytes, m.dram.bytes_per_cycle
    (256, 262144, 32.0)
    >>> m.peak_macs_per_cycle("fp32")
    64.0

A user file may start from a preset with `base = "default"` and override only what
it changes; without `base`, every field must be given. Unknown fields ("did you
mean ...?"), missing fields, wrong types and out-of-range values raise
`MachineError` naming the field's dotted path, the file and the allowed range.
The numbers and their sources are in `docs/machine.md`.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import Field, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, cast, get_type_hints

from irflow.backends.sim.cache import CacheGeometry
from irflow.backends.sim.mapping import (
    DATAFLOWS,
    FAMILY_LOOPS,
    Mapping,
    MappingError,
    parse_mapping,
)
from irflow.diagnostics import IrflowError, SourceLoc, did_you_mean

PRESETS: tuple[str, ...] = ("default", "micro", "server")
DTYPES: tuple[str, ...] = ("int4", "int8", "fp16", "bf16", "fp32")


class MachineError(IrflowError):
    """A machine description that is malformed or out of range."""


class _FieldError(MachineError):
    """A field check failed. Raised as is when a part is built in Python (naming the
    field); the TOML loader re-raises it with the dotted path and the file."""

    def __init__(self, name: str, detail: str):
        super().__init__(f"machine field '{name}' {detail}")
        self.path = [name]
        self.detail = detail


def _spec(
    unit: str,
    doc: str,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    choices: tuple[str, ...] | None = None,
    power_of_two: bool = False,
) -> Any:
    """A dataclass field with its unit, doc and allowed range in the metadata."""
    meta = {"unit": unit, "doc": doc, "lo": lo, "hi": hi, "lo_open": lo_open,
            "choices": choices, "power_of_two": power_of_two}
    return field(metadata=meta)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _range_text(meta: Any, is_int: bool, is_str: bool = False) -> str:
    if meta["choices"] is not None:
        return "one of " + ", ".join(repr(c) for c in meta["choices"])
    if is_str:
        return "a string"
    kind = "an integer" if is_int else "a number"
    if meta["power_of_two"]:
        kind = "a power-of-two integer"
    lo, hi = meta["lo"], meta["hi"]
    left = "(" if meta["lo_open"] else "["
    lo_s = "-inf" if lo is None else _num(lo)
    hi_s = "inf" if hi is None else _num(hi)
    return f"{kind} in {left}{lo_s}, {hi_s}]" + (f" {meta['unit']}" if meta["unit"] else "")


class _Validated:
    """Checks every field's type and range from its `spec` metadata after `__init__`."""

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for f in fields(cast(Any, self)):
            value = getattr(self, f.name)
            typ = hints[f.name]
            if isinstance(typ, type) and issubclass(typ, _Validated):
                if not isinstance(value, typ):
                    raise _FieldError(f.name, f"expected a table, got {value!r}")
                continue
            meta = f.metadata
            if not meta:
                continue
            object.__setattr__(self, f.name, _check_value(f, typ, value, meta))
        self.check()

    def check(self) -> None:
        """Cross-field constraints (override)."""


def _check_value(f: Field[Any], typ: Any, value: Any, meta: Any) -> Any:
    if typ == tuple[str, ...]:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise _FieldError(f.name, f"= {value!r}: expected a list of strings")
        allowed = meta["choices"]
        for v in value:
            if allowed is not None and v not in allowed:
                raise _FieldError(f.name, f"= {value!r}: entries must be {_range_text(meta, 0)}")
        return tuple(value)
    if typ is str or meta["choices"] is not None:
        if not isinstance(value, str) or (meta["choices"] and value not in meta["choices"]):
            raise _FieldError(f.name, f"= {value!r}: expected {_range_text(meta, False, True)}")
        return value
    is_int = typ is int
    ok_type = isinstance(value, int) if is_int else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type or (not is_int and not math.isfinite(value)):
        raise _FieldError(f.name, f"= {value!r}: expected {_range_text(meta, is_int)}")
    lo, hi = meta["lo"], meta["hi"]
    bad = (lo is not None and (value <= lo if meta["lo_open"] else value < lo)) or (
        hi is not None and value > hi
    )
    if meta["power_of_two"] and (value <= 0 or value & (value - 1)):
        bad = True
    if bad:
        raise _FieldError(f.name, f"= {value!r} is out of range: expected "
                          f"{_range_text(meta, is_int)}")
    return value if is_int else float(value)


# --------------------------------------------------------------------------- parts


@dataclass(frozen=True)
class DtypeRates(_Validated):
    """MACs per PE per cycle, by operand data type (fractions: a MAC takes several cycles)."""

    int4: float = _spec("MAC/PE/cycle", "4-bit integer operands", 0, 64, lo_open=True)
    int8: float = _spec("MAC/PE/cycle", "8-bit integer operands", 0, 64, lo_open=True)
    fp16: float = _spec("MAC/PE/cycle", "IEEE half operands", 0, 64, lo_open=True)
    bf16: float = _spec("MAC/PE/cycle", "bfloat16 operands", 0, 64, lo_open=True)
    fp32: float = _spec("MAC/PE/cycle", "IEEE single operands", 0, 64, lo_open=True)


@dataclass(frozen=True)
class DtypeEnergies(_Validated):
    """Energy of one operation, picojoules, by operand data type."""

    int4: float = _spec("pJ", "4-bit integer operands", 0, 1e4)
    int8: float = _spec("pJ", "8-bit integer operands", 0, 1e4)
    fp16: float = _spec("pJ", "IEEE half operands", 0, 1e4)
    bf16: float = _spec("pJ", "bfloat16 operands", 0, 1e4)
    fp32: float = _spec("pJ", "IEEE single operands", 0, 1e4)


@dataclass(frozen=True)
class PsumBits(_Validated):
    """Width of a partial sum (the PE's accumulator and a spilled partial sum), by
    operand data type."""

    int4: int = _spec("bits", "4-bit integer operands", 8, 64)
    int8: int = _spec("bits", "8-bit integer operands", 8, 64)
    fp16: int = _spec("bits", "IEEE half operands", 8, 64)
    bf16: int = _spec("bits", "bfloat16 operands", 8, 64)
    fp32: int = _spec("bits", "IEEE single operands", 8, 64)


@dataclass(frozen=True)
class MappingOverrides(_Validated):
    """Explicit spatial mappings per op family, replacing the dataflow's ("" = the
    dataflow's own): `"rows=c*r*s cols=f stationary=weight"` (docs/simulator.md §2.1)."""

    conv2d: str = _spec("mapping", "conv2d mapping over loops n g f oh ow c r s "
                        "(\"\": the dataflow's)")
    matmul: str = _spec("mapping", "matmul/linear mapping over loops b m n k "
                        "(\"\": the dataflow's)")

    def check(self) -> None:
        for family in FAMILY_LOOPS:
            text = getattr(self, family)
            if text:
                try:
                    parse_mapping(text, family)
                except MappingError as e:
                    raise _FieldError(family, f"= {text!r}: {e}") from None


@dataclass(frozen=True)
class PEArray(_Validated):
    """The systolic MAC array that runs matmul/conv tiles."""

    rows: int = _spec("PEs", "rows of the PE array", 1, 1024)
    cols: int = _spec("PEs", "columns of the PE array", 1, 1024)
    dataflow: str = _spec("", "which operand stays in the PEs and which loops go on rows "
                          "and columns (ws: weights, rows = reduction, cols = output "
                          "channels; os: outputs; is: inputs)", choices=tuple(DATAFLOWS))
    stationary_words_per_pe: int = _spec(
        "words", "stationary-operand registers per PE (>= 2: the next fold's operand "
        "loads while the current fold computes)", 1, 1024)
    psum_words_per_pe: int = _spec(
        "words", "partial-sum registers per PE (os: >= 2 drains a fold's outputs while "
        "the next fold accumulates)", 1, 1024)
    load_words_per_cycle: int = _spec(
        "words/cycle", "outputs drained out of the array per cycle (os); stationary "
        "operands shifted in per cycle when load_bytes_per_cycle = 0", 1, 1 << 20)
    load_bytes_per_cycle: float = _spec(
        "bytes/cycle", "width of the stationary-operand load path (ws weights, is "
        "inputs), carrying values at their stored width (packed int4: 2 per byte); "
        "0 = load_words_per_cycle whole words", 0, 1 << 20)
    macs_per_pe_per_cycle: DtypeRates
    psum_bits: PsumBits
    mapping: MappingOverrides


@dataclass(frozen=True)
class VectorCycles(_Validated):
    """Cycles one vector lane spends per element, by op kind (`LayerTrace.vector_kind`)."""

    add: float = _spec("cycles/element", "add, sub (also residual adds)", 0, 1e4, lo_open=True)
    mul: float = _spec("cycles/element", "mul, div by constant, scale", 0, 1e4, lo_open=True)
    relu: float = _spec("cycles/element", "relu, relu6, clip", 0, 1e4, lo_open=True)
    sigmoid: float = _spec("cycles/element", "sigmoid, tanh (exp + divide)", 0, 1e4, lo_open=True)
    gelu: float = _spec("cycles/element", "gelu, silu", 0, 1e4, lo_open=True)
    maxpool: float = _spec("cycles/element", "max pooling, per input element read", 0, 1e4,
                          lo_open=True)
    avgpool: float = _spec("cycles/element", "average / global-average pooling, per input "
                          "element", 0, 1e4, lo_open=True)
    softmax: float = _spec("cycles/element", "softmax: max, exp, sum, divide", 0, 1e4,
                          lo_open=True)
    layernorm: float = _spec("cycles/element", "layernorm: mean, variance, normalize, affine",
                            0, 1e4, lo_open=True)
    batchnorm: float = _spec("cycles/element", "unfolded batchnorm: scale and shift", 0, 1e4,
                            lo_open=True)
    quantize: float = _spec("cycles/element", "quantize / dequantize / requantize", 0, 1e4,
                           lo_open=True)
    copy: float = _spec("cycles/element", "layout copies (transpose, concat, slice)", 0, 1e4,
                       lo_open=True)


VECTOR_KINDS: tuple[str, ...] = tuple(f.name for f in fields(VectorCycles))


@dataclass(frozen=True)
class VectorUnit(_Validated):
    """SIMD unit for elementwise ops, pooling, softmax, layernorm."""

    lanes: int = _spec("lanes", "elements processed per cycle at 1 cycle/element", 1, 65536)
    cycles_per_element: VectorCycles


@dataclass(frozen=True)
class CacheSpec(_Validated):
    """The one on-chip cache: set-associative, LRU, write-back, write-allocate."""

    size_bytes: int = _spec("bytes", "capacity", 64, 1 << 34, power_of_two=True)
    line_bytes: int = _spec("bytes", "line size", 4, 4096, power_of_two=True)
    ways: int = _spec("lines/set", "associativity", 1, 1024)
    hit_bytes_per_cycle: float = _spec("bytes/cycle", "bandwidth of hits into the stream "
                                      "buffers", 0, 1 << 20, lo_open=True)
    replacement: str = _spec("", "replacement policy (only LRU is modelled)", choices=("lru",))
    write_policy: str = _spec("", "write-back with write-allocate (the only policy modelled)",
                             choices=("write-back-allocate",))

    def check(self) -> None:
        if self.size_bytes % (self.line_bytes * self.ways):
            raise _FieldError("ways", f"= {self.ways}: size_bytes ({self.size_bytes}) must be a "
                              f"multiple of line_bytes × ways ({self.line_bytes} × {self.ways})")

    @property
    def sets(self) -> int:
        return self.geometry.sets

    @property
    def geometry(self) -> CacheGeometry:
        return CacheGeometry(self.size_bytes, self.line_bytes, self.ways)


@dataclass(frozen=True)
class Dram(_Validated):
    """Off-chip memory."""

    bytes_per_cycle: float = _spec("bytes/cycle", "sustained bandwidth", 0, 1 << 20, lo_open=True)
    latency_cycles: int = _spec("cycles", "latency of the first access of a burst", 0, 1 << 20)


@dataclass(frozen=True)
class Sparsity(_Validated):
    """What the PE array does with pruned weights."""

    structured: tuple[str, ...] = _spec("", "N:M patterns the PE array skips zeros for",
                                       choices=("2:4", "1:4", "4:8"))
    structured_mac_cycle_factor: float = _spec(
        "×", "MAC cycles of a structured-sparse layer relative to dense (0.5 for 2:4)",
        0, 1, lo_open=True)
    unstructured_format: str = _spec("", "storage of unstructured-sparse weights (compute "
                                    "stays dense)", choices=("dense", "bitmap", "csr"))


@dataclass(frozen=True)
class Energy(_Validated):
    """Energy per event, pJ (45 nm, Horowitz ISSCC 2014; see docs/machine.md)."""

    mac_pj: DtypeEnergies
    vector_op_pj: DtypeEnergies
    cache_pj_per_64bit: float = _spec("pJ/64 bit", "one 64-bit cache access", 0, 1e6)
    dram_pj_per_32bit: float = _spec("pJ/32 bit", "one 32-bit DRAM access", 0, 1e7)


@dataclass(frozen=True)
class Machine(_Validated):
    """A whole simulated machine. Build with `load_machine`."""

    name: str = _spec("", "preset or file name shown in reports")
    description: str = _spec("", "one line for humans")
    clock_ghz: float = _spec("GHz", "clock frequency (converts cycles to ms)", 0, 100,
                            lo_open=True)
    pe_array: PEArray
    vector: VectorUnit
    cache: CacheSpec
    dram: Dram
    sparsity: Sparsity
    energy: Energy

    @property
    def pes(self) -> int:
        return self.pe_array.rows * self.pe_array.cols

    def macs_per_pe_per_cycle(self, dtype: str) -> float:
        return float(getattr(self.pe_array.macs_per_pe_per_cycle, _dtype(dtype)))

    def peak_macs_per_cycle(self, dtype: str) -> float:
        """MACs the whole PE array completes per cycle for operands of `dtype`."""
        return self.pes * self.macs_per_pe_per_cycle(dtype)

    def mapping(self, family: str) -> Mapping:
        """The spatial mapping of op family `family` ("conv2d", "matmul"): the explicit
        `pe_array.mapping` entry if given, else the dataflow's."""
        text = getattr(self.pe_array.mapping, family) or DATAFLOWS[self.pe_array.dataflow][
            family]
        return parse_mapping(text, family)

    def psum_bytes(self, dtype: str) -> float:
        """Bytes of one partial sum for operands of `dtype` (int8: int32, 4)."""
        return getattr(self.pe_array.psum_bits, _dtype(dtype)) / 8

    def vector_cycles_per_element(self, kind: str) -> float:
        if kind not in VECTOR_KINDS:
            hint = did_you_mean(kind, VECTOR_KINDS)
            raise MachineError(f"unknown vector op kind {kind!r}{hint}; known: "
                               + ", ".join(VECTOR_KINDS))
        return float(getattr(self.vector.cycles_per_element, kind))

    @property
    def cache_line_pj(self) -> float:
        """Energy of one cache line access (line_bytes / 8 64-bit accesses)."""
        return self.cache.line_bytes / 8 * self.energy.cache_pj_per_64bit

    @property
    def dram_pj_per_byte(self) -> float:
        return self.energy.dram_pj_per_32bit / 4

    def cycles_to_ms(self, cycles: float) -> float:
        return cycles / (self.clock_ghz * 1e6)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (TOML/JSON-ready), fields in declaration order."""
        return _to_dict(self)


def _dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise MachineError(f"unknown operand data type {dtype!r}; known: " + ", ".join(DTYPES))
    return dtype


def _to_dict(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = _to_dict(v) if isinstance(v, _Validated) else (
            list(v) if isinstance(v, tuple) else v)
    return out


# --------------------------------------------------------------------------- loading


def _build(cls: type, table: Any, path: str) -> Any:
    """Construct dataclass `cls` from a TOML table, or raise `_FieldError` with the path."""
    if not isinstance(table, dict):
        raise _FieldError(path, f"expected a table [{path}], got {table!r}")
    hints = get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    for key in table:
        if key not in names:
            err = _FieldError(key, "unknown field" + did_you_mean(key, names)
                              + "; fields here: " + ", ".join(names))
            err.path = [path, key] if path else [key]
            raise err
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        sub = f"{path}.{f.name}" if path else f.name
        if f.name not in table:
            if f.metadata:
                rng = _range_text(f.metadata, hints[f.name] is int, hints[f.name] is str)
                what = f"missing field ({f.metadata['doc']}, {rng})"
            else:
                what = "missing table"
            err = _FieldError(f.name, what)
            err.path = [sub]
            raise err
        typ = hints[f.name]
        if isinstance(typ, type) and issubclass(typ, _Validated):
            kwargs[f.name] = _build(typ, table[f.name], sub)
        else:
            kwargs[f.name] = table[f.name]
    try:
        return cls(**kwargs)
    except _FieldError as e:
        if path:
            e.path = [path, *e.path]
        raise


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        loc: SourceLoc | str = SourceLoc(where, int(m.group(1)), int(m.group(2))) if m else where
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        raise MachineError(f"malformed machine description: {msg}", loc) from None


def _preset_text(name: str) -> str:
    return resources.files("irflow.backends.sim").joinpath(f"presets/{name}.toml").read_text()


def machine_from_toml(text: str, where: str = "<machine>") -> Machine:
    """Parse and validate a machine description given as TOML text."""
    table = _read_toml(text, where)
    base = table.pop("base", None)
    if base is not None:
        if base not in PRESETS:
            raise MachineError(f"field 'base' = {base!r}: expected one of "
                               + ", ".join(repr(p) for p in PRESETS) + did_you_mean(str(base),
                                                                                    PRESETS),
                               where)
        preset = _read_toml(_preset_text(base), f"preset {base}")
        preset["name"] = Path(where).stem if where.endswith(".toml") else f"{base}*"
        preset["description"] = f"{preset['description']} (as modified by {where})"
        table = _merge(preset, table)
    table.setdefault("name", Path(where).stem if where.endswith(".toml") else where)
    table.setdefault("description", "")
    try:
        return _build(Machine, table, "")
    except _FieldError as e:
        dotted = ".".join(p for p in e.path if p)
        raise MachineError(f"machine field '{dotted}' {e.detail}", where) from None


def load_machine(spec: str | Path | None = None) -> Machine:
    """A machine from a preset name (`PRESETS`), a `.toml` path, or None (the default)."""
    if spec is None:
        spec = "default"
    if isinstance(spec, str) and spec in PRESETS:
        return machine_from_toml(_preset_text(spec), f"preset {spec}")
    p = Path(spec)
    if p.suffix != ".toml" and not p.exists():
        raise MachineError(f"unknown machine {str(spec)!r}: expected a preset ("
                           + ", ".join(PRESETS) + ") or a .toml file"
                           + did_you_mean(str(spec), PRESETS))
    try:
        text = p.read_text()
    except OSError as e:
        raise MachineError(f"cannot read machine description: {e.strerror}", str(p)) from None
    return machine_from_toml(text, str(p))


def field_docs(cls: type = Machine, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(dotted name, unit, allowed range, doc) for every leaf field — for docs and `--help`."""
    hints = get_type_hints(cls)
    rows: list[tuple[str, str, str, str]] = []
    for f in fields(cls):
        name = f"{prefix}{f.name}"
        typ = hints[f.name]
        if isinstance(typ, type) and issubclass(typ, _Validated):
            rows += field_docs(typ, name + ".")
        else:
            m = f.metadata
            rows.append((name, m["unit"], _range_text(m, typ is int, typ is str), m["doc"]))
    return rows
