"""The zoo's depth knobs (irflow/zoo/variants.py): ResNet-34 from resnet18's blocks,
BERT-base with fewer encoder layers."""

from __future__ import annotations

import pytest

from irflow import zoo
from irflow.analysis import param_count, total_macs
from irflow.diagnostics import IrflowError


def test_resnet34_is_torchvisions():
    m = zoo.load("resnet18", blocks=(3, 4, 6, 3))
    assert param_count(m) == 21_797_672  # torchvision.models.resnet34
    assert total_macs(m) == 3_663_761_408


def test_bert_layers_drop_whole_encoder_layers():
    per_layer = 4 * (768 * 768 + 768) + 2 * 768 * 3072 + 3072 + 768 + 4 * 768
    m = zoo.load("bert-base", layers=2)
    assert param_count(m) == 109_482_240 - 10 * per_layer == 38_603_520


@pytest.mark.parametrize("name,opts,match", [
    ("bert-base", {"layers": 13}, "layers=13 is outside 1..12"),
    ("resnet18", {"blocks": (2, 2, 2)}, "must be 4 counts"),
    ("lenet5", {"layers": 2}, "takes no options"),
])
def test_bad_knobs_are_named(name, opts, match):
    with pytest.raises(IrflowError, match=match):
        zoo.load(name, **opts)
