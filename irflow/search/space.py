"""A search space, read from TOML: the model, its knobs, the objectives and constraints.

    >>> space = load_space("examples/search/digits_mixed.toml")
    >>> [k.name for k in space.knobs][:3]
    ['w_bits.conv1', 'a_bits.conv1', 'w_bits.conv2']
    >>> space.size
    64

Sections (docs/search.md has an example of each):

- `[model]` `source` = a zoo name, a `.irf`/`.onnx`/`.mlir` file, or a *family template*:
  an `.irf` whose text holds `${knob}` placeholders filled from `[architecture]`;
  `input_shape` (`"input=1x1x8x8"`, for ONNX), `weights` (`.npz`, for DSL models);
- `[data]` `kind` = `digits` (scikit-learn's bundled images: accuracy on held-out digits)
  or `random` (seeded inputs: accuracy is proxied by the output SQNR against float);
  `calibration` and `evaluation` sample counts, `seed`;
- `[architecture]`: `knob = [values]` substituted into a family template;
- `[compression]`: `per` = `model` | `layer` | `group` (`groups = {name = ["pattern", ...]}`)
  and the per-unit knobs `w_bits` (4, 8, or 32 = left float), `a_bits` (4, 8: the
  layer's input activations) and `sparsity` (`dense`, `2:4`, `magnitude:0.5`,
  `channel:0.25`); whole-model `calibration` (the `calibrate` method), `weight_clip` and
  `mapping` (`default` | `latency`: `tile{search=latency}` after quantize);
- `[machine]`: `base` preset and `"dotted.field" = [values]` (`pe_array.rows`,
  `cache.size_bytes`, `dram.bytes_per_cycle`, any field of docs/machine.md);
- `[objectives]` `minimize` / `maximize` = metric names (`METRICS`);
- `[constraints]` `max_accuracy_drop` (points vs float), `min_sqnr_db`, `max_latency_ms`,
  `max_cycles`, `max_energy_pj`, `max_model_bytes`;
- `[search]` `strategy` (grid | random | nsga2 | haq), `trials`, `population`, `seed`,
  `budgets` (haq: latency budgets as fractions of the space's w8a8 cycles), `settings`
  (haq: the per-layer choices besides w8a8, e.g. `["w4a4"]`; default every w × a);
- `[finetune]` (optional; digits data): `epochs`, `lr`, `optimizer`, `batch`, `samples`:
  each point is fine-tuned before lowering (`irflow.search.finetune`); without it,
  accuracy is post-training.

Every key is checked: an unknown one is a `SpaceError` with its file and line.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import string
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from irflow.diagnostics import IrflowError, SourceLoc, did_you_mean
from irflow.search.finetune import KEYS as FINETUNE_KEYS
from irflow.search.finetune import FinetuneSpec, FinetuneValueError, parse_finetune

# What a point's evaluation measures; objectives and constraints name these.
METRICS: tuple[str, ...] = ("cycles", "latency_ms", "energy_pj", "dram_bytes", "model_bytes",
                            "accuracy", "sqnr_db")
STRATEGIES: tuple[str, ...] = ("grid", "random", "nsga2", "haq")
DATA_KINDS: tuple[str, ...] = ("digits", "random")
W_BITS: tuple[int, ...] = (4, 8, 32)  # 32: the layer stays float
A_BITS: tuple[int, ...] = (4, 8)
SPARSITY_RE = re.compile(r"^(dense|\d+:\d+|magnitude:0?\.\d+|channel:0?\.\d+)$")
PER: tuple[str, ...] = ("model", "layer", "group")
CONSTRAINTS: dict[str, tuple[str, str]] = {  # key -> (metric, "max"/"min"/"drop")
    "max_accuracy_drop": ("accuracy", "drop"),
    "min_sqnr_db": ("sqnr_db", "min"),
    "max_latency_ms": ("latency_ms", "max"),
    "max_cycles": ("cycles", "max"),
    "max_energy_pj": ("energy_pj", "max"),
    "max_model_bytes": ("model_bytes", "max"),
}
SECTIONS: dict[str, tuple[str, ...] | None] = {  # None: any key (a knob name)
    "model": ("source", "input_shape", "weights"),
    "data": ("kind", "calibration", "evaluation", "seed"),
    "architecture": None,
    "compression": ("per", "groups", "w_bits", "a_bits", "sparsity", "calibration",
                    "weight_clip", "mapping"),
    "machine": None,
    "objectives": ("minimize", "maximize"),
    "constraints": tuple(CONSTRAINTS),
    "search": ("strategy", "trials", "population", "seed", "budgets",
               "settings"),
    "finetune": FINETUNE_KEYS,
}
COMPRESSION_KNOBS: tuple[str, ...] = ("w_bits", "a_bits", "sparsity")
# Whole-model quantization settings (one choice per point, whatever `per` says).
GLOBAL_KNOBS: dict[str, tuple[str, ...]] = {
    "calibration": ("minmax", "percentile", "mse", "entropy"),  # calibrate{method=...}
    "weight_clip": ("minmax", "mse"),  # quantize{weight-clip=...}
    # the tiling the simulator runs: "default" (tile's default, the balanced search whose
    # incumbent is the rule by bytes) or "latency"
    # (`tile{search=latency}` after quantize: the PE-array mapping search, docs/tiling.md;
    # same numerics, cycles as that search finds them; docs/search.md §6)
    "mapping": ("default", "latency"),
}


class SpaceError(IrflowError):
    """A search space that cannot be searched (unknown knob, empty space, bad value)."""


@dataclass(frozen=True)
class Knob:
    """One dimension: `name` (`w_bits.conv1`, `machine.pe_array.rows`, `arch.width`)
    and its choices, in the order the TOML lists them."""

    name: str
    values: tuple[Any, ...]

    @property
    def kind(self) -> str:
        return self.name.split(".", 1)[0] if self.name.startswith(("machine.", "arch.")) \
            else "compression"


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str  # "minimize" | "maximize"


@dataclass(frozen=True)
class Space:
    """A checked search space. Paths are absolute, so a worker elsewhere reads the same."""

    path: str
    text: str  # the TOML, as read (what a resumed run must match)
    source: str  # zoo name or absolute path
    input_shape: str = ""
    weights: str = ""
    data_kind: str = "random"
    calibration: int = 4
    evaluation: int = 4
    data_seed: int = 0
    per: str = "model"
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (group, patterns) when per=group
    layers: tuple[str, ...] = ()  # the model's contraction layers (per=layer units)
    knobs: tuple[Knob, ...] = ()
    fixed: tuple[tuple[str, Any], ...] = ()  # single-choice compression settings
    machine_base: str = "default"
    objectives: tuple[Objective, ...] = ()
    constraints: tuple[tuple[str, float], ...] = ()
    strategy: str = "nsga2"
    trials: int = 32
    population: int = 8
    seed: int = 0
    budgets: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
    haq_settings: tuple[tuple[int, int], ...] = ()  # (w, a) besides w8a8; () = every w × a
    finetune: FinetuneSpec | None = None  # None: post-training accuracy
    template: bool = False

    @property
    def size(self) -> int:
        n = 1
        for k in self.knobs:
            n *= len(k.values)
        return n

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    def knob(self, name: str) -> Knob:
        return next(k for k in self.knobs if k.name == name)

    def units(self) -> tuple[str, ...]:
        """What compression knobs are per: `model`, the layers, or the group names."""
        if self.per == "layer":
            return self.layers
        if self.per == "group":
            return tuple(g for g, _ in self.groups)
        return ("model",)

    def unit_layers(self, unit: str) -> tuple[str, ...]:
        """The layers a compression unit covers."""
        import fnmatch

        if self.per == "layer":
            return (unit,)
        if self.per == "group":
            patterns = dict(self.groups)[unit]
            return tuple(n for n in self.layers if any(fnmatch.fnmatchcase(n, p)
                                                       for p in patterns))
        return self.layers

    def grid(self) -> Iterator[dict[str, Any]]:
        """Every point, in knob order (the last knob varies fastest)."""
        names = [k.name for k in self.knobs]
        for values in itertools.product(*(k.values for k in self.knobs)):
            yield dict(zip(names, values))


def point_key(point: dict[str, Any]) -> str:
    """A stable id of a point (its knob values, canonical JSON, hashed)."""
    text = json.dumps(point, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------
# Reading


def _line_of(text: str, key: str, section: str | None = None) -> int:
    """The 1-based line where `key` is assigned (inside `[section]` if given), else 0."""
    current = None
    pat = re.compile(rf'^\s*"?{re.escape(key)}"?\s*=')
    for i, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^\s*\[([^\]]+)\]", line)
        if m:
            current = m.group(1).strip()
            if section is None and current == key:
                return i
            continue
        if pat.match(line) and (section is None or current == section):
            return i
    return 0


class _Reader:
    def __init__(self, path: Path, text: str):
        self.path, self.text = path, text

    def error(self, message: str, key: str | None = None, section: str | None = None
              ) -> SpaceError:
        line = _line_of(self.text, key, section) if key else 0
        where = SourceLoc(str(self.path), line, 1) if line else str(self.path)
        return SpaceError(message, where)

    def choices(self, section: str, key: str, value: Any) -> tuple[Any, ...]:
        values = tuple(value) if isinstance(value, list) else (value,)
        if not values:
            raise self.error(f"[{section}] {key} = []: a knob needs at least one value "
                             "(the space is empty)", key, section)
        if len(set(map(repr, values))) != len(values):
            raise self.error(f"[{section}] {key} lists a value twice: {list(values)}",
                             key, section)
        return values


def load_space(path: str | Path) -> Space:
    """Read and check a space file; raises `SpaceError` (one line, with file:line)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise SpaceError(f"cannot read search space: {e.strerror}", str(p)) from None
    return parse_space(text, p)


def parse_space(text: str, path: Path) -> Space:
    r = _Reader(path, text)
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        where = SourceLoc(str(path), int(m.group(1)), int(m.group(2))) if m else str(path)
        raise SpaceError(f"malformed search space: {msg}", where) from None
    for section, body in table.items():
        if section not in SECTIONS:
            hint = did_you_mean(section, SECTIONS) or f" (sections: {', '.join(SECTIONS)})"
            raise r.error(f"unknown section [{section}]{hint}", section)
        allowed = SECTIONS[section]
        if not isinstance(body, dict):
            raise r.error(f"'{section}' must be a table [{section}]", section)
        for key in body:
            if allowed is not None and key not in allowed:
                raise r.error(f"unknown knob '{key}' in [{section}]"
                              f"{did_you_mean(key, allowed)} (allowed: {', '.join(allowed)})",
                              key, section)
    base = path.resolve().parent
    model = table.get("model", {})
    if "source" not in model:
        raise r.error("[model] needs 'source': a zoo model, a model file or a family template",
                      "model")
    source = _source(str(model["source"]), base)
    template = source.endswith(".irf") and "${" in Path(source).read_text()
    weights = str(base / model["weights"]) if model.get("weights") else ""

    data = table.get("data", {})
    kind = data.get("kind", "random")
    if kind not in DATA_KINDS:
        raise r.error(f"[data] kind = '{kind}': expected one of {', '.join(DATA_KINDS)}",
                      "kind", "data")

    knobs: list[Knob] = []
    arch = table.get("architecture", {})
    if arch and not template:
        raise r.error("[architecture] knobs need a family template as [model] source (an .irf "
                      "with ${knob} placeholders)", "architecture")
    if template:
        names = set(re.findall(r"\$\{(\w+)\}", Path(source).read_text()))
        for key in arch:
            if key not in names:
                raise r.error(f"unknown knob '{key}' in [architecture]: the template "
                              f"{Path(source).name} has no ${{{key}}}"
                              f"{did_you_mean(key, names)}", key, "architecture")
        missing = sorted(names - set(arch))
        if missing:
            raise r.error(f"[architecture] gives no value for template placeholder(s) "
                          f"{', '.join('${' + m + '}' for m in missing)}", "architecture")
        knobs += [Knob(f"arch.{k}", r.choices("architecture", k, v)) for k, v in arch.items()]

    comp = table.get("compression", {})
    per = comp.get("per", "model")
    if per not in PER:
        raise r.error(f"[compression] per = '{per}': expected one of {', '.join(PER)}",
                      "per", "compression")
    if arch and per == "layer":
        raise r.error("per = 'layer' needs a fixed architecture (layers differ between family "
                      "members): use per = 'model' or 'group' with [architecture]", "per",
                      "compression")
    layers = _layers(source, model, weights, arch, template)
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    if per == "group":
        raw = comp.get("groups")
        if not isinstance(raw, dict) or not raw:
            raise r.error("[compression] per = 'group' needs groups = {name = [\"pattern\", "
                          "...]}", "per", "compression")
        groups = tuple((g, tuple([pats] if isinstance(pats, str) else pats))
                       for g, pats in raw.items())
    checks = {"w_bits": lambda v: v in W_BITS, "a_bits": lambda v: v in A_BITS,
              "sparsity": lambda v: isinstance(v, str) and bool(SPARSITY_RE.match(v))}
    expected = {"w_bits": f"one of {list(W_BITS)} (32: float)", "a_bits": f"one of {list(A_BITS)}",
                "sparsity": "'dense', 'N:M', 'magnitude:F' or 'channel:F' (F in (0, 1))"}
    fixed: list[tuple[str, Any]] = []
    space_partial = Space(str(path), text, source, per=per, groups=groups, layers=layers)
    for g, _ in groups:
        if not space_partial.unit_layers(g):
            raise r.error(f"[compression] group '{g}' matches no layer (layers: "
                          f"{', '.join(layers)})", "groups", "compression")
    for key in COMPRESSION_KNOBS:
        if key not in comp:
            continue
        values = r.choices("compression", key, comp[key])
        bad = [v for v in values if not checks[key](v)]
        if bad:
            raise r.error(f"[compression] {key} = {bad[0]!r}: expected {expected[key]}",
                          key, "compression")
        for unit in space_partial.units():
            name = key if per == "model" else f"{key}.{unit}"
            if len(values) == 1:
                fixed.append((name, values[0]))
            else:
                knobs.append(Knob(name, values))
    for key, allowed in GLOBAL_KNOBS.items():
        if key not in comp:
            continue
        values = r.choices("compression", key, comp[key])
        bad = [v for v in values if v not in allowed]
        if bad:
            raise r.error(f"[compression] {key} = {bad[0]!r}: expected one of "
                          f"{', '.join(allowed)}{did_you_mean(str(bad[0]), allowed)}",
                          key, "compression")
        if len(values) == 1:
            fixed.append((key, values[0]))
        else:
            knobs.append(Knob(key, values))
    if per != "model" and "w_bits" in comp:  # interleave per unit: w, a, sparsity of conv1, ...
        order = {u: i for i, u in enumerate(space_partial.units())}
        unit_knobs = [k for k in knobs if k.kind == "compression" and "." in k.name]
        unit_knobs.sort(key=lambda k: (order[k.name.split(".", 1)[1]],
                                       COMPRESSION_KNOBS.index(k.name.split(".", 1)[0])))
        knobs = [k for k in knobs if k not in unit_knobs] + unit_knobs

    mach = dict(table.get("machine", {}))
    machine_base = mach.pop("base", "default")
    from irflow.backends.sim.machine import PRESETS, field_docs

    fields_ = [f[0] for f in field_docs()]
    for key, value in mach.items():
        if key not in fields_:
            raise r.error(f"unknown knob '{key}' in [machine]{did_you_mean(key, fields_)} "
                          "(fields: docs/machine.md)", key, "machine")
        knobs.append(Knob(f"machine.{key}", r.choices("machine", key, value)))
    if "latency" in as_sequence(comp.get("mapping", ())) and any(
            k.kind == "machine" for k in knobs):
        raise r.error("[compression] mapping = 'latency' searches tilings for the base "
                      "machine: it cannot be combined with [machine] knobs", "mapping",
                      "compression")
    if machine_base not in PRESETS:
        raise r.error(f"[machine] base = '{machine_base}': expected a preset "
                      f"({', '.join(PRESETS)})", "base", "machine")

    objectives = _objectives(r, table.get("objectives", {}), kind)
    constraints = tuple((k, float(v)) for k, v in table.get("constraints", {}).items())
    for k, _ in constraints:
        if k == "max_accuracy_drop" and kind != "digits":
            raise r.error("max_accuracy_drop needs [data] kind = 'digits' (random data has no "
                          "labels: constrain min_sqnr_db instead)", k, "constraints")

    search = table.get("search", {})
    strategy = search.get("strategy", "nsga2")
    if strategy not in STRATEGIES:
        raise r.error(f"[search] strategy = '{strategy}': expected one of "
                      f"{', '.join(STRATEGIES)}{did_you_mean(strategy, STRATEGIES)}",
                      "strategy", "search")
    if not knobs and strategy != "haq":
        raise r.error("the space is empty: no knob has two or more values to choose from "
                      "(give a list, e.g. w_bits = [4, 8])")
    if strategy == "haq" and (per != "layer" or not {"w_bits"} <= set(comp)):
        raise r.error("strategy 'haq' chooses bits per layer: it needs [compression] per = "
                      "'layer' and w_bits (a_bits optional)", "strategy", "search")
    finetune = None
    if "finetune" in table:
        try:
            finetune = parse_finetune(table["finetune"])
        except FinetuneValueError as e:
            raise r.error(e.message, e.key, "finetune") from None
        if kind != "digits":
            raise r.error("[finetune] needs labelled data: [data] kind = 'digits' (random "
                          "data has no labels to train on)")
    for key in ("trials", "population"):
        if key in search and (not isinstance(search[key], int) or search[key] < 1):
            raise r.error(f"[search] {key} must be a positive integer, got {search[key]!r}",
                          key, "search")
    return Space(
        path=str(path.resolve()), text=text, source=source,
        input_shape=str(model.get("input_shape", "")), weights=weights, data_kind=kind,
        calibration=int(data.get("calibration", 100 if kind == "digits" else 4)),
        evaluation=int(data.get("evaluation", 360 if kind == "digits" else 4)),
        data_seed=int(data.get("seed", 0)), per=per, groups=groups, layers=layers,
        knobs=tuple(knobs), fixed=tuple(fixed), machine_base=machine_base,
        objectives=objectives, constraints=constraints, strategy=strategy,
        trials=int(search.get("trials", 32)), population=int(search.get("population", 8)),
        seed=int(search.get("seed", 0)),
        budgets=tuple(float(b) for b in search.get("budgets", (0.5, 0.6, 0.7, 0.8, 0.9))),
        finetune=finetune, template=template,
        haq_settings=_haq_settings(r, search, comp))


def _haq_settings(r: _Reader, search: dict[str, Any],
                  comp: dict[str, Any]) -> tuple[tuple[int, int], ...]:
    """`[search] settings = ["w4a4"]`: the (w, a) pairs haq measures besides w8a8, each
    within the space's w_bits × a_bits."""
    if "settings" not in search:
        return ()
    out = []
    ws = as_sequence(comp.get("w_bits", (8,)))
    acts = as_sequence(comp.get("a_bits", (8,)))
    for text in as_sequence(search["settings"]):
        m = re.fullmatch(r"w(\d+)a(\d+)", str(text))
        if not m or int(m[1]) not in ws or int(m[2]) not in acts or m[0] == "w8a8":
            raise r.error(f"[search] settings = {text!r}: expected 'wNaM' with N in w_bits "
                          f"{list(ws)} and M in a_bits {list(acts)}, other than w8a8",
                          "settings", "search")
        out.append((int(m[1]), int(m[2])))
    return tuple(out)


def _source(spec: str, base: Path) -> str:
    from irflow import zoo

    if spec in zoo.names():
        return spec
    p = (base / spec).resolve()
    if not p.exists():
        raise SpaceError(f"[model] source '{spec}' is neither a zoo model nor a file "
                         f"(looked for {p}){did_you_mean(spec, zoo.names(), clause=True)}")
    return str(p)


def _objectives(r: _Reader, table: dict[str, Any], kind: str) -> tuple[Objective, ...]:
    out: list[Objective] = []
    if not table:
        table = {"minimize": ["cycles"],
                 "maximize": ["accuracy" if kind == "digits" else "sqnr_db"]}
    for direction in ("minimize", "maximize"):
        names = table.get(direction, [])
        for m in [names] if isinstance(names, str) else names:
            if m not in METRICS:
                raise r.error(f"unknown objective '{m}'{did_you_mean(m, METRICS)} "
                              f"(metrics: {', '.join(METRICS)})", direction, "objectives")
            if m == "accuracy" and kind != "digits":
                raise r.error("objective 'accuracy' needs [data] kind = 'digits' (random "
                              "data has no labels: use sqnr_db)", direction, "objectives")
            out.append(Objective(m, direction))
    if not out:
        raise r.error("[objectives] names no metric", "objectives")
    return tuple(out)


def _layers(source: str, model: dict[str, Any], weights: str, arch: dict[str, Any],
            template: bool) -> tuple[str, ...]:
    """The contraction layers of the model (of the family's first member)."""
    from irflow.search.recipe import contraction_layers, load_float_model

    first = {k: (v[0] if isinstance(v, list) and v else v) for k, v in arch.items()}
    module = load_float_model(source, str(model.get("input_shape", "")), weights,
                              first if template else {})
    return tuple(contraction_layers(module))


def render_template(text: str, values: dict[str, Any], where: str) -> str:
    """A family template's DSL text with `${knob}` replaced by the point's values."""
    try:
        return string.Template(text).substitute({k: str(v) for k, v in values.items()})
    except (KeyError, ValueError) as e:
        raise SpaceError(f"template: cannot fill {e}", where) from None


@dataclass(frozen=True)
class Unit:
    """The compression settings of one unit (model, layer or group) at a point."""

    w_bits: int = 8
    a_bits: int = 8
    sparsity: str = "dense"
    layers: tuple[str, ...] = field(default=())


def unit_settings(space: Space, point: dict[str, Any]) -> list[Unit]:
    """Each unit's settings at `point` (knob values, else the fixed ones, else defaults)."""
    values = {**dict(space.fixed), **point}
    out = []
    for unit in space.units():
        def get(key: str, default: Any, unit: str = unit) -> Any:
            return values.get(key if space.per == "model" else f"{key}.{unit}", default)

        out.append(Unit(get("w_bits", 8), get("a_bits", 8), get("sparsity", "dense"),
                        space.unit_layers(unit)))
    return out


def global_setting(space: Space, point: dict[str, Any], key: str) -> str:
    """A whole-model setting (`GLOBAL_KNOBS`) at `point`: its knob value, else the fixed
    one, else the default (the first allowed value)."""
    return point.get(key, dict(space.fixed).get(key, GLOBAL_KNOBS[key][0]))


def knob_values(point: dict[str, Any], kind: str) -> dict[str, Any]:
    """`{"pe_array.rows": 8}` from a point's `machine.*` (or `arch.*`) knobs."""
    prefix = kind + "."
    return {k[len(prefix):]: v for k, v in point.items() if k.startswith(prefix)}


def as_sequence(x: Any) -> Sequence[Any]:
    return x if isinstance(x, list | tuple) else [x]


__all__ = ["Space", "Knob", "Objective", "SpaceError", "Unit", "METRICS", "STRATEGIES",
           "CONSTRAINTS", "load_space", "parse_space", "point_key", "unit_settings",
           "knob_values", "render_template", "global_setting", "GLOBAL_KNOBS"]
