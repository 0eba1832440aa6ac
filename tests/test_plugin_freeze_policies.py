"""Freeze policies: what trains, what does not, and frozen BatchNorm that never drifts."""
from __future__ import annotations

import re

import pytest
import torch

import zoo
from zoo.errors import ZooError


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def total(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_freeze_before_layer4_trains_layer4_and_the_head():
    model = zoo.build("resnet50+cls10", freeze="layer4")
    assert (trainable(model), total(model)) == (14_985_226, 23_528_522)
    assert model.frozen_stages == ("stem", "layer1", "layer2", "layer3")
    assert model.freeze_policy == "zoo/before:layer4"


def test_none_trains_everything_and_all_trains_only_the_heads():
    free = zoo.build("resnet18+cls4", freeze="none")
    assert trainable(free) == total(free)
    fixed = zoo.build("resnet18+cls4", freeze="all")
    assert trainable(fixed) == 512 * 4 + 4
    assert all(not p.requires_grad for p in fixed.backbone.parameters())


def test_last_n_trains_the_last_n_stages():
    model = zoo.build("resnet18+cls4", freeze="last:2")
    assert model.frozen_stages == ("stem", "layer1", "layer2")
    expected = sum(p.numel() for p in (*model.backbone.layer3.parameters(), *model.backbone.layer4.parameters()))
    assert trainable(model) == expected + 512 * 4 + 4


def test_last_as_many_as_there_are_stages_freezes_nothing():
    assert zoo.build("resnet18+cls4", freeze="last:5").frozen_stages == ()


def test_last_more_than_there_are_stages_is_an_error_naming_how_many():
    with pytest.raises(ZooError, match=r"^freeze policy last:9: the backbone has 5 stages \(stem, layer1, layer2, "
                                       r"layer3, layer4\); N goes from 0 to 5$"):
        zoo.build("resnet18+cls4", freeze="last:9")


def test_a_policy_in_capitals_suggests_its_name():
    with pytest.raises(ZooError, match=r"^unknown freeze policy 'ALL' \(did you mean all\?\); policies: "):
        zoo.build("resnet18+cls4", freeze="ALL")


def test_cli_bad_freeze_values_are_one_line_and_exit_2():
    from click.testing import CliRunner

    from zoo.cli import cli

    for value in ("last:9", "ALL"):
        result = CliRunner().invoke(cli, ["build", "resnet18+cls2", f"--freeze={value}"])
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
        assert result.output.startswith("zoo: error: ")


def test_explicit_before_policy_equals_the_stage_shorthand():
    assert zoo.build("resnet18+cls4", freeze="before:layer3").frozen_stages == ("stem", "layer1", "layer2")


def test_unknown_stage_lists_the_backbone_stages():
    with pytest.raises(ZooError, match=r"resnet50 has no stage 'layer9'.*stages: stem, layer1, layer2, layer3, layer4"):
        zoo.build("resnet50+cls10", freeze="before:layer9")


def test_unknown_policy_names_policies_and_stages():
    with pytest.raises(ZooError, match=r"unknown freeze policy 'layer9'.*policies: .*all.*stem, layer1"):
        zoo.build("resnet18+cls2", freeze="layer9")


@pytest.mark.parametrize("text, message", [
    ("last", "freeze policy last needs an argument: last:N"),
    ("last:", "freeze policy last needs an argument: last:N"),
    ("last:-1", "freeze policy last:N: N must be a whole number >= 0, not '-1'"),
    ("last:x", "freeze policy last:N: N must be a whole number >= 0, not 'x'"),
    ("all:3", "freeze policy all takes no argument; write all"),
    ("none:1", "freeze policy none takes no argument; write none"),
    ("before", "freeze policy before needs an argument: before:STAGE"),
])
def test_policy_arguments_are_checked(text, message):
    with pytest.raises(ZooError, match=re.escape(message)):
        zoo.build("resnet18+cls2", freeze=text)


def _bn_state(module):
    return {name: buffer.clone() for name, buffer in module.named_buffers()}


def test_frozen_batchnorm_keeps_running_stats_through_a_training_step():
    torch.manual_seed(0)
    model = zoo.build("resnet18+cls3", freeze="layer4")
    model.train()  # the most reported freezing bug: train() must not wake frozen BatchNorm
    frozen_bn = model.backbone.layer3[0].bn1
    training_bn = model.backbone.layer4[0].bn1
    assert not frozen_bn.training and training_bn.training
    before_frozen, before_training = _bn_state(frozen_bn), _bn_state(training_bn)
    frozen_weights = {n: p.clone() for n, p in model.backbone.layer3.named_parameters()}
    head_weight = model.heads["cls3"].fc.weight.clone()

    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 64, 64)), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    optimizer.step()

    for name, value in _bn_state(frozen_bn).items():
        assert torch.equal(value, before_frozen[name]), name
    assert not torch.equal(training_bn.running_mean, before_training["running_mean"])
    for name, value in model.backbone.layer3.named_parameters():
        assert torch.equal(value, frozen_weights[name]) and value.grad is None, name
    assert not torch.equal(model.heads["cls3"].fc.weight, head_weight)


def _one_step(model) -> None:
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 64, 64)), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    optimizer.step()


def test_the_readme_flow_keeps_frozen_batchnorm_without_calling_train():
    torch.manual_seed(0)
    model = zoo.build("resnet18+cls3", freeze="layer4")  # as the README shows: build, then an optimizer step
    frozen_bn, training_bn = model.backbone.layer3[0].bn1, model.backbone.layer4[0].bn1
    before_frozen, before_training = _bn_state(frozen_bn), _bn_state(training_bn)
    _one_step(model)
    for name, value in _bn_state(frozen_bn).items():
        assert torch.equal(value, before_frozen[name]), name
    assert not torch.equal(training_bn.running_mean, before_training["running_mean"])


def test_freezing_a_model_already_training_puts_its_frozen_stages_in_eval():
    torch.manual_seed(0)
    model = zoo.build("resnet18+cls3").train()
    assert model.backbone.layer3.training
    zoo.freeze(model, "layer4")
    frozen_bn = model.backbone.layer3[0].bn1
    assert not frozen_bn.training and model.backbone.layer4.training
    before = _bn_state(frozen_bn)
    _one_step(model)
    for name, value in _bn_state(frozen_bn).items():
        assert torch.equal(value, before[name]), name


def test_dropout_inside_a_frozen_vgg_is_off_in_training_mode():
    torch.manual_seed(0)
    model = zoo.build("vgg11+cls2", freeze="all").train()
    assert any(isinstance(m, torch.nn.Dropout) for m in model.backbone.modules())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        first, second = model.backbone(x), model.backbone(x)
    torch.testing.assert_close(first, second, rtol=0, atol=0)


def test_all_keeps_every_backbone_module_in_eval_after_train():
    model = zoo.build("resnet18+cls2:dropout=0.5", freeze="all").train()
    assert not any(m.training for m in model.backbone.modules() if m is not model.backbone)
    assert all(m.training for m in model.heads.modules())
    model.eval()
    assert not any(m.training for m in model.modules())


def test_refreezing_releases_stages_that_are_no_longer_frozen():
    model = zoo.build("resnet18+cls2", freeze="all")
    model.set_frozen(["stem"], "before:layer1")
    assert model.frozen_stages == ("stem",)
    model.train()
    assert model.backbone.layer1.training and all(p.requires_grad for p in model.backbone.layer1.parameters())
    assert not model.backbone.bn1.training


def test_vgg_feature_extractor_freezes_the_fully_connected_stage_too():
    model = zoo.build("vgg11+cls2", freeze="all")
    assert model.frozen_stages[-1] == "fc"
    assert trainable(model) == 4096 * 2 + 2


def test_timm_parameters_outside_stage_modules_are_frozen_with_the_first_stage():
    model = zoo.build("timm/vit_tiny_patch16_224+cls2", freeze="all")
    assert trainable(model) == 192 * 2 + 2
    assert not model.backbone.model.pos_embed.requires_grad


def test_freezing_again_replaces_the_policy_for_progressive_unfreezing():
    model = zoo.build("resnet18+cls2", freeze="all")
    assert zoo.freeze(model, "layer4") is model
    assert model.frozen_stages == ("stem", "layer1", "layer2", "layer3") and model.freeze_policy == "zoo/before:layer4"
    zoo.freeze(model)
    assert model.frozen_stages == () and all(p.requires_grad for p in model.parameters())
    with pytest.raises(ZooError, match="resnet18 has no stage 'layer9'"):
        zoo.freeze(model, "before:layer9")
