"""The decoder-only LLM family: presets, and the DSL `model` of each entry point.

The blocks are DSL (`decoder.irf.in`); this module writes the `model` that strings
them together for one preset and one entry point, then compiles the text like any
other zoo file:

- **prefill**: `input_ids` [1, S] -> `logits` [1, S, vocab] and, per layer i,
  `present.i.key` / `present.i.value` [1, kv_heads, S, head_dim] (the KV cache);
- **decode**: `input_ids` [1, 1] and `past.i.key` / `past.i.value` [1, kv_heads, L,
  head_dim] -> `logits` [1, 1, vocab] and the updated cache [1, kv_heads, L + 1, head_dim].

Weights are seeded by name (DSL rule), so the two entry points of one preset and seed
share every weight: the prefill's cache fed to decode continues the same model.

    >>> irflow.zoo.load("decoder-15m", entry="decode", cache=32)
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass

from xdsl.dialects.builtin import ModuleOp

from irflow.diagnostics import IrflowError

ENTRIES = ("prefill", "decode")


@dataclass(frozen=True)
class DecoderConfig:
    """The knobs of the Llama / Qwen / SmolLM line."""

    description: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied: bool
    max_positions: int = 2048
    rope_theta: float = 10000.0
    eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def param_count(self) -> int:
        kv = self.kv_heads * self.head_dim
        layer = (2 * self.hidden * self.hidden + 2 * self.hidden * kv
                 + 3 * self.hidden * self.intermediate + 2 * self.hidden)
        embed = self.vocab * self.hidden * (1 if self.tied else 2)
        return self.layers * layer + embed + self.hidden


PRESETS: dict[str, DecoderConfig] = {
    "decoder-15m": DecoderConfig(
        "Small Llama-style decoder for tests: 6 layers, hidden 384, 6 heads, 2 KV heads, "
        "tied embeddings, 15.7 M params", 6, 384, 6, 2, 1024, 16384, tied=True),
    "tinyllama-1b": DecoderConfig(
        "Decoder shaped like TinyLlama-1.1B: 22 layers, hidden 2048, 32 heads, 4 KV heads, "
        "SwiGLU 5632, vocab 32000, 1.1 B params (seeded weights)", 22, 2048, 32, 4, 5632,
        32000, tied=False),
}


def source(name: str, entry: str = "prefill", seq: int = 32, cache: int = 32) -> str:
    """The DSL text of preset `name`'s `entry` (`seq` prompt tokens for prefill, a cache of
    `cache` positions for decode)."""
    cfg = PRESETS[name]
    if entry not in ENTRIES:
        raise IrflowError(f"decoder entry must be one of {', '.join(ENTRIES)}, got '{entry}'")
    s, past = (seq, 0) if entry == "prefill" else (1, cache)
    if s < 1 or past < 0:
        raise IrflowError(f"{name}: expects seq >= 1 and cache >= 0, got seq {seq}, cache {cache}")
    if past + s > cfg.max_positions:
        raise IrflowError(f"{name}: KV cache of {past} + {s} new token(s) exceeds the model's "
                          f"maximum of {cfg.max_positions} positions")
    kv, d = cfg.kv_heads, cfg.head_dim
    ident = name.replace("-", "_")
    args = [f"input_ids: i64[1, {s}]"]
    if entry == "decode":
        for i in range(cfg.layers):
            args += [f"past.{i}.key: f32[1, {kv}, {past}, {d}]",
                     f"past.{i}.value: f32[1, {kv}, {past}, {d}]"]
    lines = [f"model {ident}_{entry}({', '.join(args)}) {{"]
    lines += [f"  embed_tokens.weight = parameter(shape=[{cfg.vocab}, {cfg.hidden}])",
              "  embed = gather(embed_tokens.weight, input_ids)"]
    for kind in ("cos", "sin"):
        lines.append(f'  rope.{kind} = rope_table(kind="{kind}", dim={d}, positions={s}, '
                     f"offset={past}, base={cfg.rope_theta!r})")
    x = "embed"
    outs = []
    for i in range(cfg.layers):
        cached = (f", past_k=past.{i}.key, past_v=past.{i}.value, cached=true"
                  if entry == "decode" else "")
        lines.append(f"  layers.{i}, present.{i}.key, present.{i}.value = decoder_layer({x}, "
                     f"rope.cos, rope.sin, heads={cfg.heads}, kv_heads={kv}, "
                     f"ffn={cfg.intermediate}, eps={cfg.eps!r}{cached})")
        x = f"layers.{i}"
        outs += [f"present.{i}.key", f"present.{i}.value"]
    lines.append(f"  norm = rms_norm({x}, eps={cfg.eps!r})")
    if cfg.tied:
        lines.append("  logits = tied_linear(norm, embed_tokens.weight)")
    else:
        lines.append(f"  lm_head = linear(norm, out={cfg.vocab}, bias=false)")
        lines.append("  logits = lm_head")
    lines.append(f"  return logits, {', '.join(outs)}")
    lines.append("}")
    blocks = importlib.resources.files(__package__).joinpath("decoder.irf.in").read_text()
    return blocks + "\n" + "\n".join(lines) + "\n"


def load(name: str, *, seed: int = 0, entry: str = "prefill", seq: int = 32,
         cache: int = 32) -> ModuleOp:
    """Compile preset `name`'s entry point with seeded weights, made lazily (on first
    read): building `tinyllama-1b` allocates nothing, and `quantize-groups` then holds one
    float tensor at a time."""
    from irflow.frontends.dsl import compile_source

    return compile_source(source(name, entry, seq, cache), f"{name}.{entry}.irf", seed=seed,
                          lazy=True)
