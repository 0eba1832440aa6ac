"""What a run and an evaluation report: top-k accuracy only where it can miss, and in the history the heads'
learning rate with the backbone's beside it where --backbone-lr makes it differ."""
from __future__ import annotations

import csv

import pytest
import torch
from drawn_data import class_folders

import zoo
from zoo.training.evaluation import ClassStatistics


@pytest.mark.parametrize(("spec", "reported"), [("resnet18+cls1", False), ("resnet18+cls2", False),
                                                 ("resnet18+cls5", False), ("resnet18+cls6", True)])
def test_top5_accuracy_is_reported_only_with_more_than_five_classes(spec, reported):
    head = next(iter(zoo.build(spec).heads.values()))
    statistics = ClassStatistics(head)
    torch.manual_seed(0)
    statistics.update(torch.randn(8, head.num_classes), torch.randint(0, max(head.num_classes, 2), (8,)))
    assert ("top5_accuracy" in statistics.compute(None)) is reported


def test_history_records_the_heads_and_the_backbones_learning_rates(tmp_path):
    data = class_folders(tmp_path / "shapes", per_class=2)
    out = tmp_path / "m.safetensors"
    run = {"epochs": 1, "batch_size": 4, "img_size": 32, "schedule": "constant", "progress": False}
    result = zoo.fit("resnet18+cls2", data, freeze="layer4", lr=0.02, backbone_lr=0.1, output=out, **run)
    row = result.history[0]
    assert row["lr"] == pytest.approx(0.02) and row["lr/backbone"] == pytest.approx(0.002)
    with open(tmp_path / "m.history.csv", newline="") as handle:
        first = next(csv.DictReader(handle))
    assert float(first["lr"]) == pytest.approx(0.02) and float(first["lr/backbone"]) == pytest.approx(0.002)
    assert (tmp_path / "m.curves.png").read_bytes()[:4] == b"\x89PNG"
    alike = zoo.fit("resnet18+cls2", data, freeze="layer4", lr=0.02, **run)
    assert alike.history[0]["lr"] == pytest.approx(0.02) and "lr/backbone" not in alike.history[0]
