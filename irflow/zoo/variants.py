"""Depth knobs of the zoo's CNN and encoder: `zoo.load("bert-base", layers=6)` keeps the
first 6 of BERT-base's 12 encoder layers (the same weights: names seed them), and
`zoo.load("resnet18", blocks=(3, 4, 6, 3))` builds ResNet-34 from resnet18.irf's basic
blocks (21,797,672 parameters, as torchvision's). The variants are source rewrites of
the `.irf` files, so they are not zoo names of their own (the zoo-wide tests stay lean);
`bench/bench_workloads.py`'s growth table uses them."""

from __future__ import annotations

from collections.abc import Sequence

from irflow.diagnostics import IrflowError

BERT_LAYERS = 12
RESNET_PLANES = (64, 128, 256, 512)


def bert_source(text: str, layers: int) -> str:
    """bert-base.irf with only its first `layers` encoder layers."""
    if not 1 <= layers <= BERT_LAYERS:
        raise IrflowError(f"bert-base: layers={layers} is outside 1..{BERT_LAYERS}")
    lines = [ln for ln in text.splitlines()
             if not any(ln.startswith(f"  encoder.layer.{i} =")
                        for i in range(layers, BERT_LAYERS))]
    return "\n".join(lines).replace(f"last_hidden_state = encoder.layer.{BERT_LAYERS - 1}",
                                    f"last_hidden_state = encoder.layer.{layers - 1}")


def resnet_source(text: str, blocks: Sequence[int]) -> str:
    """resnet18.irf with `blocks[i]` basic blocks in stage i + 1 ((2, 2, 2, 2) is
    ResNet-18, (3, 4, 6, 3) ResNet-34)."""
    if len(blocks) != 4 or any(b < 1 for b in blocks):
        raise IrflowError(f"resnet18: blocks={tuple(blocks)} must be 4 counts >= 1")
    head, tail = text.split("  layer1.0 = ")[0], text.split("  avgpool = ")[1]
    body, prev = [], "maxpool"
    for stage, (n, planes) in enumerate(zip(blocks, RESNET_PLANES), 1):
        for b in range(n):
            stride = ", stride=2" if b == 0 and stage > 1 else ""
            body.append(f"  layer{stage}.{b} = basic({prev}, planes={planes}{stride})")
            prev = f"layer{stage}.{b}"
    tail = tail.replace("global_avg_pool(layer4.1)", f"global_avg_pool({prev})")
    return head + "\n".join(body) + "\n  avgpool = " + tail
