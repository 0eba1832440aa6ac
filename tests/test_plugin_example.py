"""The installed example package (`tests/plugins/zoo-example`) is a complete plugin: its head trains
(`model.loss`, and `zoo train` from image folders), is measured (`model.metric()`) and answers `zoo predict`; its backbone hands the input
batch over as `Features.inputs`."""
from __future__ import annotations

import json

import pytest
import torch
from drawn_data import class_folders
from PIL import Image

import zoo
from zoo._registry.registry import Registry

ENV = {"ZOO_DISABLE_PLUGINS": "zoo-broken"}


@pytest.fixture
def registry(with_plugins, monkeypatch):
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "zoo-broken")
    return Registry.from_environment()


@pytest.fixture
def batch():
    torch.manual_seed(0)
    images = torch.rand(8, 3, 32, 32)
    return images, (images[:, 0].mean((1, 2)) > images[:, 2].mean((1, 2))).long()  # red-ish or blue-ish


def test_the_backbone_hands_over_the_input_batch(registry, batch):
    model = zoo.build("tinycnn:width=4+msp2", registry=registry)
    features = model.backbone(batch[0])
    assert features.inputs is batch[0]
    assert [tuple(t.shape) for t in features.stages.values()] == [(8, 4, 16, 16), (8, 8, 8, 8), (8, 16, 4, 4)]


def test_the_head_trains_through_model_loss(registry, batch, train_steps):
    model = zoo.build("tinycnn:width=4+msp2:dropout=0.1", freeze="first:1", registry=registry)
    losses = train_steps(model, *batch, steps=12, lr=1e-2)
    assert losses[-1] < losses[0]
    assert all(p.grad is None for p in model.backbone.s1.parameters())  # the frozen stage never got a gradient


def test_the_head_is_measured_through_model_metric(registry, batch):
    model = zoo.build("tinycnn:width=4+msp2", registry=registry).eval()
    images, targets = batch
    metric = model.metric()
    with torch.no_grad():
        for part in range(2):
            metric.update(model(images[part * 4:(part + 1) * 4]), targets[part * 4:(part + 1) * 4])
        expected = (model(images).argmax(1) == targets).float().mean().item()
    assert metric.compute() == {"accuracy": pytest.approx(expected)}


def test_zoo_predict_answers_with_the_heads_labels(registry, plugin_site, run_zoo, tmp_path):
    model = zoo.build("tinycnn:width=4+msp2", registry=registry)
    path = zoo.save(model, tmp_path / "tiny.safetensors", labels={"msp2": ["red", "blue"]})
    Image.new("RGB", (50, 40), (220, 20, 20)).save(tmp_path / "red.png")
    result = run_zoo("predict", str(path), str(tmp_path / "red.png"), "--json", env=ENV, site=plugin_site)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)[0]["outputs"]["msp2"]
    assert answer["label"] in ("red", "blue") and 0.5 <= answer["probability"] <= 1
    shown = run_zoo("predict", str(path), str(tmp_path / "red.png"), env=ENV, site=plugin_site)
    assert f"{answer['label']} {answer['probability']:.3f}" in shown.stdout


def test_zoo_train_teaches_the_example_head_from_folders(plugin_site, run_zoo, tmp_path):
    data = class_folders(tmp_path / "shapes", per_class=2)
    out = tmp_path / "tiny.safetensors"
    result = run_zoo("train", "tinycnn:width=4+msp2", str(data), "-o", str(out), "--epochs", "1", "-b", "4",
                     "--img-size", "32", "--json", env=ENV, site=plugin_site)
    assert result.returncode == 0, result.stderr
    trained = json.loads(result.stdout)
    assert len(trained["history"]) == 1 and "val/msp2/accuracy" in trained["history"][0]
    info = json.loads(run_zoo("info", str(out), "--json", env=ENV, site=plugin_site).stdout)
    assert info["labels"] == {"msp2": ["blue", "red"]} and info["input_size"] == [3, 32, 32]
