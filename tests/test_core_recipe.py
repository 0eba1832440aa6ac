"""A model keeps the recipe it was built from; a weights file is read for its header once and hashed once."""
from __future__ import annotations

import pytest

import zoo
import zoo._core.build
import zoo._core.saving
import zoo._core.weights
import zoo._modelfile.read
from zoo._core.recipe import Recipe


def _no_resolving(*args, **kwargs):
    raise AssertionError("the spec string was resolved again")


def test_the_model_keeps_its_recipe(tmp_path, monkeypatch):
    model = zoo.build("resnet18+cls2:dropout=0.5", freeze="layer4")
    assert isinstance(model.recipe, Recipe)
    assert str(model.recipe.spec) == model.spec == "torchvision/resnet18+zoo/cls2:dropout=0.5"
    monkeypatch.setattr(zoo._core.build, "resolve", _no_resolving)
    monkeypatch.setattr(zoo._core.saving, "resolve", _no_resolving)
    zoo.freeze(model, "all")
    path = zoo.save(model, tmp_path / "m.safetensors", labels=["a", "b"])
    monkeypatch.undo()
    loaded = zoo.load(path)
    assert loaded.recipe.spec == model.recipe.spec and loaded.freeze_policy == "zoo/all"


@pytest.fixture
def counted(monkeypatch):
    """Counts of header reads and file hashes made through zoo's file-reading functions."""
    counts = {"header": 0, "hash": 0}

    def counting(key, function):
        def wrapper(*args, **kwargs):
            counts[key] += 1
            return function(*args, **kwargs)
        return wrapper

    read_header, digests, sha256_file = zoo._modelfile.read.read_header, zoo._modelfile.read.digests, zoo._core.weights.sha256_file
    for module in (zoo._modelfile.read, zoo._core.weights, zoo._core.saving):
        monkeypatch.setattr(module, "read_header", counting("header", read_header))
    for module in (zoo._modelfile.read, zoo._core.weights):
        monkeypatch.setattr(module, "digests", counting("hash", digests))
    monkeypatch.setattr(zoo._core.weights, "sha256_file", counting("hash", sha256_file))
    return counts


def test_weights_from_a_saved_model_are_read_once(tmp_path, counted):
    path = zoo.save(zoo.build("resnet18+cls2"), tmp_path / "m.safetensors", labels=["a", "b"])
    model = zoo.build("resnet18+cls2", weights=path)
    assert model.labels == {"cls2": ["a", "b"]} and model.weights_report.layout == "zoo"
    assert counted == {"header": 1, "hash": 1}


def test_loading_a_saved_model_reads_its_header_once(tmp_path, counted):
    path = zoo.save(zoo.build("resnet18+cls2"), tmp_path / "m.safetensors")
    counted.update(header=0, hash=0)
    zoo.load(path)
    assert counted == {"header": 1, "hash": 1}


def test_refreezing_names_the_new_policy_in_the_recipe_and_the_saved_file(tmp_path):
    model = zoo.build("resnet18+cls2", freeze="layer4")
    zoo.freeze(model, "layer3")
    assert model.recipe.freeze == model.freeze_policy == "zoo/before:layer3"
    loaded = zoo.load(zoo.save(model, tmp_path / "m.safetensors"))
    assert loaded.recipe.freeze == loaded.freeze_policy == "zoo/before:layer3"
    assert loaded.frozen_stages == ("stem", "layer1", "layer2")
