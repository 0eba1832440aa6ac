"""Several heads on one backbone: outputs per head, loss = weighted sum, metrics per head."""
from __future__ import annotations

import pytest
import torch

import zoo


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return zoo.build("resnet18+cls10+kp5:weight=10+agegender:weight=0.5", freeze="layer4")


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(1)
    images = torch.rand(2, 3, 64, 64)
    targets = {
        "cls10": torch.tensor([3, 7]),
        "kp5": torch.rand(2, 5, 2),
        "agegender": {"age": torch.tensor([20.0, 70.0]), "gender": torch.tensor([0, 1])},
    }
    return images, targets


def test_outputs_come_per_head_from_one_backbone_pass(model, batch):
    calls = []
    hook = model.backbone.register_forward_hook(lambda *_: calls.append(1))
    try:
        outputs = model.eval()(batch[0])
    finally:
        hook.remove()
    assert calls == [1]
    assert set(outputs) == {"cls10", "kp5", "agegender"}
    assert outputs["cls10"].shape == (2, 10) and outputs["kp5"].shape == (2, 5, 2)


def test_loss_is_the_weighted_sum_of_the_heads_losses(model, batch):
    images, targets = batch
    outputs = model.eval()(images)
    assert model.loss_weights == {"cls10": 1.0, "kp5": 10.0, "agegender": 0.5}
    each = {key: head.loss(outputs[key], targets[key]) for key, head in model.heads.items()}
    expected = each["cls10"] + 10 * each["kp5"] + 0.5 * each["agegender"]
    assert torch.allclose(model.loss(outputs, targets), expected)
    assert all(torch.allclose(model.losses(outputs, targets)[k], v) for k, v in each.items())


def test_weights_live_in_the_canonical_spec(model):
    assert model.spec == "torchvision/resnet18+zoo/cls10+zoo/kp5:weight=10+zoo/agegender:weight=0.5"
    assert zoo.build(model.spec).loss_weights == model.loss_weights


def test_a_head_weighted_zero_needs_no_target_and_adds_nothing(batch):
    model = zoo.build("resnet18+cls10+kp5:weight=0").eval()
    images, targets = batch
    outputs = model(images)
    only_cls = {"cls10": targets["cls10"]}
    assert torch.allclose(model.loss(outputs, only_cls), model.heads["cls10"].loss(outputs["cls10"], targets["cls10"]))


def test_loss_weights_can_be_changed_but_never_negative(batch):
    model = zoo.build("resnet18+cls10+kp5").eval()
    model.set_loss_weights({"kp5": 3})
    assert model.loss_weights == {"cls10": 1.0, "kp5": 3.0}
    for weights, message in [({"kp5": -1.0}, "loss weight -1.0 is invalid; a weight must be a number >= 0"),
                             ({"kp9": 1.0}, "no head 'kp9' to weight; heads: cls10, kp5"),
                             ({"kp5": float("nan")}, "loss weight nan is invalid")]:
        with pytest.raises(zoo.ZooError, match=message):
            model.set_loss_weights(weights)
    with pytest.raises(zoo.ZooError, match="targets lack head kp5"):
        model.loss(model(batch[0]), {"cls10": batch[1]["cls10"]})


def test_negative_weight_in_a_spec_is_a_clear_error():
    with pytest.raises(zoo.ZooError, match="head kp5: loss weight -2 is negative; use weight=0 or more"):
        zoo.resolve("resnet18+cls10+kp5:weight=-2")


def test_a_training_step_trains_every_head_and_the_unfrozen_stage(model, batch):
    images, targets = batch
    model.train()
    model.zero_grad()
    model.loss(model(images), targets).backward()
    for key in model.heads:
        assert all(p.grad is not None for p in model.heads[key].parameters()), key
    assert all(p.grad is not None for p in model.backbone.layer4.parameters())
    assert all(p.grad is None for p in model.backbone.layer3.parameters())


def test_metrics_are_reported_per_head(model, batch):
    images, targets = batch
    metric = model.metric()
    metric.update(model.eval()(images), targets)
    assert set(metric.compute()) == {"cls10/accuracy", "kp5/pixel_error", "agegender/age_mae", "agegender/gender_accuracy"}


def test_decode_answers_every_head_per_image(model, batch):
    answers = model.decode(model.eval()(batch[0]), [(640, 480), (32, 32)], top_k=3)
    assert len(answers) == 2 and set(answers[0]) == {"cls10", "kp5", "agegender"}
    assert len(answers[0]["cls10"]["top_k"]) == 3
    assert all(0 <= x <= 640 and 0 <= y <= 480 for x, y in answers[0]["kp5"]["keypoints"])
