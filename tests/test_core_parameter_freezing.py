"""Freeze policies that choose parameters (norm-only, bias-only, a stage but its norms) and hand-made freezes:
what trains, that frozen modules stay fixed, and that a saved file brings back exactly the same choice."""
from __future__ import annotations

import warnings

import pytest
import torch

import zoo
from zoo._registry.registry import Registry
from zoo.freezing import is_norm, stage_views


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def norm_parameters(module) -> int:
    return sum(p.numel() for m in module.modules() if is_norm(m) for p in m.parameters(recurse=False))


def saved_and_loaded(model, path, registry=None):
    zoo.save(model, path, registry=registry)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reproducing the file's choice is not a surprise worth a warning
        return zoo.load(path, registry=registry)


def test_a_hand_made_freeze_survives_save_and_load(tmp_path):
    model = zoo.build("resnet18+cls3")
    for p in model.parameters():
        p.requires_grad_(False)
    for p in [*model.heads.parameters(), *model.backbone.layer4[1].bn2.parameters()]:
        p.requires_grad_(True)
    assert trainable(model) == 512 * 3 + 3 + 2 * 512
    loaded = saved_and_loaded(model, tmp_path / "hand.safetensors")
    assert trainable(loaded) == trainable(model)
    assert loaded.frozen_parameters() == model.frozen_parameters()


def test_norms_trains_only_normalisation_layers_and_the_heads_and_survives_save_and_load(tmp_path):
    model = zoo.build("resnet18+cls3", freeze="norms")
    assert trainable(model) == norm_parameters(model.backbone) + 512 * 3 + 3
    model.train()
    assert model.backbone.layer1[0].bn1.training and not model.backbone.layer1[0].conv1.training
    before = model.backbone.layer1[0].bn1.running_mean.clone()
    model(torch.rand(2, 3, 32, 32))
    assert not torch.equal(before, model.backbone.layer1[0].bn1.running_mean)  # norms adapt
    loaded = saved_and_loaded(model, tmp_path / "norms.safetensors")
    assert loaded.freeze_policy.rpartition("/")[2] == "norms"
    assert loaded.frozen_parameters() == model.frozen_parameters()


def test_bias_trains_only_biases_and_the_heads():
    model = zoo.build("resnet18+cls3", freeze="bias")
    biases = sum(p.numel() for name, p in model.backbone.named_parameters() if name.endswith(".bias"))
    assert biases == norm_parameters(model.backbone) // 2  # resnet's convolutions have no bias
    assert trainable(model) == biases + 512 * 3 + 3


def test_a_module_whose_parameters_are_all_frozen_keeps_its_statistics():
    model = zoo.build("resnet18+cls3")
    bn = model.backbone.layer1[0].bn1
    bn.weight.requires_grad_(False)
    bn.bias.requires_grad_(False)
    model.train()
    before = bn.running_mean.clone()
    model(torch.rand(2, 3, 32, 32))
    assert not bn.training and torch.equal(before, bn.running_mean)


def test_refreezing_with_a_stage_policy_releases_a_parameter_choice():
    model = zoo.build("resnet18+cls3", freeze="norms")
    zoo.freeze(model, "none")
    assert trainable(model) == sum(p.numel() for p in model.parameters())
    model.train()
    assert model.backbone.layer1[0].conv1.training


def test_a_policy_sees_stages_with_modules_parameters_and_sizes():
    model = zoo.build("resnet18+cls3")
    views = stage_views(model.backbone)
    assert [v.name for v in views] == list(model.backbone.stage_names)
    assert sum(v.size for v in views) == sum(p.numel() for p in model.backbone.parameters())
    layer1 = views[1]
    assert "layer1.0.bn1.weight" in layer1.parameters and is_norm(layer1.owners["layer1.0.bn1.weight"])
    assert "layer1" in layer1.modules


def test_a_third_party_policy_freezes_a_stage_but_keeps_its_norms(with_plugins, monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "zoo-broken")
    registry = Registry.from_environment()
    model = zoo.build("tinycnn:width=4+cls2", freeze="keepnorms:s2", registry=registry)
    frozen = model.frozen_parameters()
    assert frozen == ["backbone.s2.0.weight", "backbone.s2.0.bias"]
    assert model.freeze_policy.rpartition("/")[2] == "keepnorms:s2"
    loaded = saved_and_loaded(model, tmp_path / "tiny.safetensors", registry)
    assert loaded.frozen_parameters() == frozen and loaded.freeze_policy == model.freeze_policy


def test_a_policy_choosing_unknown_parameters_is_refused(zoo_registry):
    from zoo import hookimpl
    from zoo.errors import ZooError
    from zoo.parts import FreezePolicyPart

    class Plugin:
        @hookimpl
        def zoo_freeze_policies(self):
            yield FreezePolicyPart("ghost", lambda stages, _: ["nowhere.weight"], chooses="parameters")

    with pytest.raises(ZooError, match=r"freeze policy .*ghost .*select chose .nowhere.weight., not among the backbone.s parameters"):
        zoo.build("resnet18+cls3", freeze="ghost", registry=zoo_registry(Plugin()))


def test_stage_groups_of_a_partly_frozen_backbone_hold_only_what_trains():
    from zoo.training.optim import param_groups

    model = zoo.build("resnet18+cls3", freeze="norms")
    groups = param_groups(model, 0.1, backbone_lr=0.1)
    held = [p for group in groups for p in group["params"]]
    assert all(p.requires_grad for p in held) and sum(p.numel() for p in held) == trainable(model)
    layer1 = [g for g in groups if g["name"] == "layer1"]
    assert layer1 and sum(p.numel() for g in layer1 for p in g["params"]) == norm_parameters(model.backbone.layer1)


def test_an_optimizer_made_before_a_parameter_policy_is_lifted_is_warned_about():
    model = zoo.build("resnet18+cls3", freeze="bias")
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    zoo.freeze(model, "none")
    model.loss(model(torch.rand(2, 3, 32, 32)), torch.tensor([0, 1])).backward()
    with pytest.warns(zoo.ZooWarning, match="lacks .* unfrozen by freeze policy .*none"):
        optimizer.step()
