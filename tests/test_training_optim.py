"""Parameter groups per stage, layer-wise decay, and an optimizer kept right through unfreezing."""
from __future__ import annotations

import warnings

import pytest
import torch

import zoo
from zoo.errors import ZooWarning
from zoo.training.optim import Schedule, add_unfrozen, param_groups


def _rates(groups):
    return {g["name"]: g["lr"] for g in groups}


def test_backbone_learns_at_a_multiple_of_the_heads_rate():
    model = zoo.build("resnet18+cls2", freeze="layer3")
    rates = _rates(param_groups(model, 0.1, backbone_lr=0.1))
    assert rates == {"heads": 0.1, "layer3": pytest.approx(0.01), "layer4": pytest.approx(0.01)}


def test_layer_decay_lowers_each_earlier_stage():
    model = zoo.build("resnet18+cls2")
    rates = _rates(param_groups(model, 1.0, layer_decay=0.5))
    assert rates["layer4"] == 1.0 and rates["layer3"] == 0.5 and rates["stem"] == 0.5 ** 4


def test_no_weight_decay_on_biases_and_norms():
    model = zoo.build("resnet18+cls2", freeze="all")
    groups = param_groups(model, 0.1, weight_decay=0.05)
    assert {(g["name"], g["weight_decay"]) for g in groups} == {("heads", 0.05), ("heads", 0.0)}
    assert all(p.ndim == 1 for g in groups if g["weight_decay"] == 0 for p in g["params"])


def test_an_optimizer_made_before_unfreezing_is_warned_of_and_can_be_completed():
    model = zoo.build("resnet18+cls2", freeze="all")
    optimizer = torch.optim.SGD(param_groups(model, 0.1), lr=0.1)
    zoo.freeze(model, "layer4")
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    with pytest.warns(ZooWarning, match="lacks .* unfrozen by freeze policy zoo/before:layer4"):
        optimizer.step()
    before = model.backbone.layer4[0].conv1.weight.detach().clone()
    assert add_unfrozen(optimizer, model, backbone_lr=0.1) > 0
    assert _rates(optimizer.param_groups[-2:]) == {"layer4": pytest.approx(0.01)}
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZooWarning)
        optimizer.step()
    assert not torch.equal(before, model.backbone.layer4[0].conv1.weight)


def test_warm_up_then_cosine_to_zero():
    schedule = Schedule("cosine", total_steps=10, warmup_steps=2)
    assert [round(schedule.factor(s), 3) for s in (0, 1, 2, 10)] == [0.333, 0.667, 1.0, 0.0]
    assert Schedule("step", 9, 0, step_every=3, gamma=0.1).factor(6) == pytest.approx(0.01)
