"""`quantize`'s per-layer settings: what each contraction gets (bits, granularity, skip).

The pass's defaults, overridden per layer by a config file (`config=file.json|toml`,
`[layers."pattern"]` tables) or the inline `layers` option
(`"conv1:bits=4,act-bits=4;fc:bits=8"`); patterns are matched (fnmatch) against
`layer_name`, the weight's name without `.weight`. Every key and value is checked
here, with the option or file it came from in the message.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xdsl.ir import Operation

from irflow.diagnostics import PassError
from irflow.dialects import nn

WEIGHT_BITS = (4, 8)
ACT_BITS = (4, 8)
GRANULARITIES = ("per-channel", "per-tensor")


@dataclass(frozen=True)
class LayerSettings:
    bits: int
    granularity: str
    skip: bool = False
    act_bits: int | None = None  # of the layer's input activation (None: the pass's)


LAYER_KEYS = ("bits", "act_bits", "granularity", "skip")


def load_layer_config(path: str) -> dict[str, dict[str, Any]]:
    """`{"layers": {"pattern": {"bits": 8, "granularity": "per-tensor", "skip": false}}}`
    from a `.json` or `.toml` file; every key and value is checked."""
    p = Path(path)
    try:
        text = p.read_bytes()
        data = tomllib.loads(text.decode()) if p.suffix == ".toml" else json.loads(text)
    except OSError as e:
        raise PassError(f"cannot read config '{path}': {e.strerror}") from None
    except (ValueError, tomllib.TOMLDecodeError) as e:
        raise PassError(f"{path}: malformed config: {e}") from None
    if not isinstance(data, dict) or set(data) - {"layers"}:
        raise PassError(f"{path}: expected one table 'layers', got keys "
                        f"{sorted(data) if isinstance(data, dict) else type(data).__name__}")
    layers = data.get("layers", {})
    for pattern, entry in layers.items():
        _check_layer_entry(entry, f"{path}: layers.\"{pattern}\"")
    return layers


def _check_layer_entry(entry: Any, where: str) -> None:
    if not isinstance(entry, dict) or set(entry) - set(LAYER_KEYS):
        raise PassError(f"{where} expects keys {', '.join(LAYER_KEYS)}; got {entry}")
    check_bits(entry.get("bits", 8), f"{where}.bits")
    if entry.get("act_bits", 8) not in ACT_BITS:
        raise PassError(f"{where}.act_bits must be one of {list(ACT_BITS)}, "
                        f"got {entry['act_bits']}")
    check_granularity(entry.get("granularity", "per-channel"), f"{where}.granularity")


def parse_layers(text: str) -> dict[str, dict[str, Any]]:
    """The inline `layers` option, `"conv1:bits=4,act-bits=4;fc*:skip=true"` -> the same
    per-pattern tables a config file holds (each checked)."""
    out: dict[str, dict[str, Any]] = {}
    for item in filter(None, (t.strip() for t in text.split(";"))):
        pattern, colon, body = item.partition(":")
        entry: dict[str, Any] = {}
        for kv in filter(None, (t.strip() for t in body.split(","))):
            key, eq, value = kv.partition("=")
            key = key.strip().replace("-", "_")
            value = value.strip()
            if not eq or not value:
                raise PassError(f"option layers: expected 'key=value' in '{item}', got '{kv}'")
            entry[key] = (value == "true" if value in ("true", "false")
                          else int(value) if value.isdigit() else value)
        if not colon or not pattern.strip() or not entry:
            raise PassError(f"option layers expects 'pattern:key=value,...' items separated "
                            f"by ';', got '{item}'")
        _check_layer_entry(entry, f"option layers: '{pattern.strip()}'")
        out[pattern.strip()] = entry
    return out


def check_bits(bits: Any, where: str) -> None:
    if bits not in WEIGHT_BITS:
        raise PassError(f"{where} must be one of {list(WEIGHT_BITS)} "
                        f"(int4 or int8 weights), got {bits}")


def check_granularity(granularity: Any, where: str) -> None:
    if granularity not in GRANULARITIES:
        raise PassError(f"{where} must be one of {list(GRANULARITIES)}, "
                        f"got '{granularity}'")


_WEIGHT_SUFFIXES = frozenset({"weight", "bnfold", "q8", "q4"})


def layer_name(op: Operation) -> str:
    """The weight's store name without `.weight`, pass suffixes (`.bnfold`) and the
    `.N` of a renamed copy; else the op's location."""
    if len(op.operands) > 1:
        owner = op.operands[1].owner
        if isinstance(owner, nn.ConstantOp) and isinstance(owner.value, nn.WeightAttr):
            parts = owner.value.key.split(".")
            while len(parts) > 1 and (parts[-1] in _WEIGHT_SUFFIXES or parts[-1].isdigit()):
                parts.pop()  # conv1.weight.bnfold.1 -> conv1
            return ".".join(parts)
    from irflow.diagnostics import location_string

    return location_string(op.location) or op.name
