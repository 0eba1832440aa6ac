"""What a backbone plugin offers besides the backbone: weights tags (shown by `zoo info` with whether each
file is on this machine, each with its own preprocessing), aliases and presets. Through the installed
example package."""
from __future__ import annotations

import json
import warnings

import pytest
import torch
from safetensors.torch import save_file

import zoo
from zoo._registry.registry import Registry

ENV = {"ZOO_DISABLE_PLUGINS": "zoo-broken"}


@pytest.fixture
def registry(with_plugins, monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "zoo-broken")
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    return Registry.from_environment()


def put_weights(cache, name: str) -> dict[str, torch.Tensor]:
    torch.manual_seed(3)
    state = {k: v.clone() for k, v in zoo.build("tinycnn+msp2", registry=Registry.from_environment())
             .backbone.state_dict().items()}
    (cache / "zoo-example").mkdir(parents=True, exist_ok=True)
    save_file(state, cache / "zoo-example" / name)
    return state


def test_zoo_info_lists_weights_tags_and_which_are_on_this_machine(registry, plugin_site, run_zoo, tmp_path):
    put_weights(tmp_path / "cache", "tinycnn-gray_v1.safetensors")
    env = {**ENV, "ZOO_CACHE_DIR": str(tmp_path / "cache")}
    data = json.loads(run_zoo("info", "tinycnn", "--json", env=env, site=plugin_site).stdout)
    assert [(w["tag"], w["default"], w["on_this_machine"]) for w in data["weights"]] == \
        [("rgb_v1", True, False), ("gray_v1", False, True)]
    shown = run_zoo("info", "tinycnn", env=env, site=plugin_site)
    assert shown.returncode == 0 and "gray_v1" in shown.stdout


def test_weights_bring_their_preprocessing_into_the_model_and_its_file(registry, tmp_path):
    state = put_weights(tmp_path / "cache", "tinycnn-gray_v1.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the head starts fresh
        model = zoo.build("tinycnn+msp2+kp1", weights="gray_v1", registry=registry)
    assert torch.equal(model.backbone.s1[0].weight, state["s1.0.weight"])
    assert (model.backbone.mean, model.backbone.std) == ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    # the weights' input size is the model's one image size, and heads working in pixels are told
    assert model.image_size == (48, 48) and model.heads["kp1"].image_size == (48, 48)
    loaded = zoo.load(zoo.save(model, tmp_path / "gray.safetensors"), registry=registry)
    assert (loaded.backbone.mean, loaded.backbone.std) == ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert loaded.image_size == (48, 48) and loaded.heads["kp1"].image_size == (48, 48)
    plain = zoo.build("tinycnn+msp2", registry=registry)
    assert plain.backbone.mean != (0.5, 0.5, 0.5)  # only those weights change it


def test_imagenet_means_the_plugins_default_weights(registry):
    with pytest.raises(zoo.ZooError, match=r"weights zoo-example/tinycnn-rgb_v1: no file .*tinycnn-rgb_v1"):
        zoo.build("tinycnn+msp2", weights="imagenet", registry=registry)


def test_a_plugin_ships_aliases_and_presets(registry, plugin_site, run_zoo):
    assert registry.backbone("tiny").qualified_name == "example/tinycnn"
    model = zoo.build("tiny-probe", registry=registry)
    assert model.spec == "example/tinycnn+example/msp2" and model.freeze_policy.rpartition("/")[2] == "all"
    listed = json.loads(run_zoo("list", "tiny-probe", "--json", env=ENV, site=plugin_site).stdout)
    assert listed == [{"kind": "preset", "name": "tiny-probe", "usage": "example/tinycnn+example/msp2 --freeze=all",
                       "provider": "zoo-example", "plugin": "",
                       "description": "a linear probe on tinycnn's three stages"}]


def test_a_users_registry_file_wins_a_preset_name(with_plugins, monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "zoo-broken")
    mine = tmp_path / "mine.toml"
    mine.write_text('[presets.tiny-probe]\nspec = "resnet18+cls2"\n')
    registry = Registry.from_environment(mine)
    assert registry.presets["tiny-probe"].spec == "resnet18+cls2"
