"""Key points `kp<K>`: K (x, y) in [0, 1], L1 loss, decoded to the original image's pixels, pixel error."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo.head import DecodeContext, Head
from zoo.testing import isolated_registry


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return zoo.build("resnet18+kp5")


def test_kp_outputs_k_points_in_zero_one_from_the_last_stage(model):
    head = model.heads["kp5"]
    assert isinstance(head, Head) and head.stage == "layer4"
    output = model.eval()(torch.rand(2, 3, 64, 64))
    assert output.shape == (2, 5, 2)
    assert output.min() >= 0 and output.max() <= 1


def test_kp_reads_the_stage_its_option_names():
    model = zoo.build("resnet18+kp3:stage=layer3,channels=16,grid=3,hidden=32")
    head = model.heads["kp3"]
    assert head.stage == "layer3" and head.conv[0].in_channels == 256  # layer3 of resnet18
    assert head.fc[1].in_features == 16 * 3 * 3
    assert model.eval()(torch.rand(1, 3, 64, 48)).shape == (1, 3, 2)


def test_kp_loss_is_l1_by_default_and_configurable(model):
    output, target = torch.rand(2, 5, 2), torch.rand(2, 5, 2)
    head = model.heads["kp5"]
    assert torch.allclose(head.loss(output, target), F.l1_loss(output, target))
    assert torch.allclose(head.loss(output, target.reshape(2, 10)), F.l1_loss(output, target))
    mse = zoo.build("resnet18+kp5:loss=mse").heads["kp5"]
    assert torch.allclose(mse.loss(output, target), F.mse_loss(output, target))


def test_kp_decodes_to_pixels_of_each_original_image(model):
    output = torch.tensor([[[0.5, 0.25], [0.0, 1.0]], [[0.1, 0.9], [1.0, 0.0]]])
    answers = model.heads["kp5"].decode(output, DecodeContext(sizes=((640, 480), (100, 50))))
    assert answers == [{"keypoints": [[320.0, 120.0], [0.0, 480.0]]}, {"keypoints": [[10.0, 45.0], [100.0, 0.0]]}]


def test_kp_metric_is_mean_pixel_error_over_batches():
    head = zoo.build("resnet18+kp5").heads["kp5"]
    assert head.image_size == (224, 224)  # from resnet18's input size, before any forward pass
    metric = head.metric()
    target = torch.zeros(1, 2, 2)
    metric.update(torch.tensor([[[3 / 224, 4 / 224], [0.0, 0.0]]]), target)  # errors 5 px and 0 px
    metric.update(torch.tensor([[[0.0, 10 / 224], [0.0, 0.0]]]), target)  # errors 10 px and 0 px
    assert metric.compute()["pixel_error"] == pytest.approx(15 / 4)
    sized = head.metric(size=(100, 50))
    sized.update(torch.tensor([[[0.1, 0.2]]]), torch.zeros(1, 1, 2))
    assert sized.compute()["pixel_error"] == pytest.approx((10**2 + 10**2) ** 0.5)


def test_kp_trains_a_real_step_down(train_steps):
    torch.manual_seed(1)
    model = zoo.build("resnet18+kp5", freeze="all")  # the seeds' fixed feature extractor
    losses = train_steps(model, torch.rand(2, 3, 64, 64), torch.rand(2, 5, 2))
    assert losses[-1] < losses[0]


def test_kp_on_vgg_and_timm_backbones():
    for spec in ("vgg11+kp4", "timm/resnet10t+kp4"):
        model = zoo.build(spec).eval()
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 4, 2)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("resnet18+kp0", "head kp0: 0 points is impossible; kp needs at least 1"),
        ("resnet18+kp3:stage=layer9", "no spatial stage 'layer9'"),
        ("resnet18+kp3:loss=huber", "unknown loss 'huber'; losses: l1, mse, smooth_l1"),
    ],
)
def test_kp_mistakes_are_clear_errors(spec, message):
    with pytest.raises(zoo.ZooError, match=message):
        zoo.build(spec)


class _Flat:
    """A plugin whose backbone has no spatial stage at all."""

    @zoo.hookimpl
    def zoo_backbones(self):
        from zoo.parts import BackbonePart

        yield BackbonePart("flat", _build_flat, "one linear stage", namespace="flat")


def _build_flat():
    from torch import nn

    from zoo.backbone import Backbone, Features, Stage

    class Flat(Backbone):
        def __init__(self) -> None:
            super().__init__()
            self.input_size = (3, 8, 8)
            self.fc = nn.Linear(192, 16)
            self.stages = (Stage("fc", ("fc",), 16, None),)
            self.num_features = 16

        def forward(self, x):
            pooled = self.fc(x.flatten(1))
            return Features({"fc": pooled}, pooled, x)

    return Flat()


def test_kp_refuses_a_backbone_without_spatial_stages():
    registry = isolated_registry(_Flat())
    with pytest.raises(zoo.ZooError, match="head kp2 needs a spatial stage and flat/flat has none"):
        zoo.build("flat+kp2", registry=registry)


def test_kp_metric_reports_pixels_of_the_images_evaluated(model):
    images = torch.rand(2, 3, 64, 48)  # height 64, width 48: not the backbone's 224
    output = model.eval()(images)
    target = output.detach() + torch.tensor([3 / 48, 4 / 64])  # every point 3 px right and 4 px down
    metric = model.metric()
    metric.update(output, target)
    assert metric.compute()["pixel_error"] == pytest.approx(5.0)
