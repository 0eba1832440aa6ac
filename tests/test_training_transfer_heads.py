"""Training from weights another run made: a head keeps what it learned only where the data has its labels;
one line says which, and a run from random weights says so too."""
from __future__ import annotations

import pytest
import torch
from drawn_data import class_folders

import zoo
from zoo.training.loop import fit

TINY = {"epochs": 1, "batch_size": 4, "img_size": 32, "freeze": "all", "progress": False}
STILL = 1e-12  # a learning rate that leaves the weights where the run began


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A file trained on blue and red, and two data sets: the same labels, and green with red."""
    root = tmp_path_factory.mktemp("transfer")
    same = class_folders(root / "blue-red", classes=("blue", "red"), per_class=2)
    other = class_folders(root / "green-red", classes=("green", "red"), per_class=2)
    out = root / "source.safetensors"
    with pytest.warns(zoo.ZooNotice, match="trains from random weights"):
        fit("resnet18+cls2", same, output=out, lr=0.05, **TINY)
    return out, same, other


def _head_after(source_file, data, **options):
    result = fit("resnet18+cls2", data, weights=source_file, lr=STILL, **{**TINY, **options})
    return result.model.heads["cls2"].fc.weight.detach(), result.model


def _file_head(source_file):
    return zoo.load(source_file).heads["cls2"].fc.weight.detach()


def test_a_head_that_learned_other_labels_starts_fresh_and_says_so(source):
    out, _, other = source
    with pytest.warns(zoo.ZooNotice, match="head cls2 starts fresh: its weights learned blue, red and the data "
                                           "has green, red"):
        head, model = _head_after(out, other)
    assert not torch.allclose(head, _file_head(out), atol=1e-3)
    assert torch.equal(model.backbone.state_dict()["conv1.weight"],
                       zoo.load(out).backbone.state_dict()["conv1.weight"])  # the backbone transfers
    assert model.labels == {"cls2": ["green", "red"]}


def test_a_head_that_learned_the_data_labels_keeps_its_weights(source):
    out, same, _ = source
    with pytest.warns(zoo.ZooNotice, match="head cls2 keeps its weights: they learned the data's labels"):
        head, _ = _head_after(out, same)
    assert torch.allclose(head, _file_head(out), atol=1e-6)


def test_keep_heads_keeps_a_head_that_learned_other_labels(source):
    out, _, other = source
    with pytest.warns(zoo.ZooNotice, match=r"head cls2 keeps its weights \(--keep-heads\), though they learned"):
        head, model = _head_after(out, other, keep_heads=True)
    assert torch.allclose(head, _file_head(out), atol=1e-6)
    assert model.record["training"]["keep_heads"] is True


def test_zoo_train_says_which_head_starts_fresh_and_that_random_weights_are_random(source, run_zoo, tmp_path):
    out, _, other = source
    args = ("--epochs", "1", "-b", "4", "--img-size", "32", "--freeze", "all")
    fresh = run_zoo("train", "resnet18+cls2", str(other), "--weights", str(out), "-o", str(tmp_path / "a.safetensors"),
                    *args)
    assert fresh.returncode == 0, fresh.stderr
    notes = [line for line in fresh.stderr.splitlines() if line.startswith("zoo: note: ")]
    assert len(notes) == 2 and "head cls2 starts fresh" in notes[0], fresh.stderr
    assert notes[1].startswith("zoo: note: training on "), fresh.stderr  # the device, named once
    kept = run_zoo("train", "resnet18+cls2", str(other), "--weights", str(out), "--keep-heads",
                   "-o", str(tmp_path / "b.safetensors"), *args)
    assert kept.returncode == 0 and "zoo: note: head cls2 keeps its weights (--keep-heads)" in kept.stderr
    scratch = run_zoo("train", "resnet18+cls2", str(other), "-o", str(tmp_path / "c.safetensors"), *args)
    assert scratch.returncode == 0, scratch.stderr
    assert "zoo: note: torchvision/resnet18+zoo/cls2 trains from random weights" in scratch.stderr
