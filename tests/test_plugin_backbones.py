"""Built-in backbones: faithful parameter counts, stages that cover every parameter, features per stage."""
from __future__ import annotations

import pytest
import torch
import torchvision

import zoo
from zoo.plugins.torchvision.plugin import RESNETS, VGGS


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def assert_stages_cover_every_parameter_once(backbone):
    owners: dict[int, str] = {}
    for stage in backbone.stage_names:
        for p in backbone.stage_parameters(stage):
            assert id(p) not in owners, f"parameter in both {owners[id(p)]} and {stage}"
            owners[id(p)] = stage
    assert set(owners) == {id(p) for p in backbone.parameters()}


@pytest.mark.parametrize(("spec", "published"), [("resnet50+cls1000", 25_557_032), ("vgg16+cls1000", 138_357_544)])
def test_parameter_counts_match_torchvision(spec, published):
    with torch.device("meta"):  # structure only: skips the slow weight initialisation
        assert count(zoo.build(spec)) == published


@pytest.mark.parametrize("arch", [*RESNETS, *VGGS])
def test_torchvision_backbones_match_the_original_without_its_classifier(arch):
    with torch.device("meta"):
        model = zoo.build(f"{arch}+cls1000")
        reference = getattr(torchvision.models, arch)(weights=None)
    assert count(model) == count(reference)
    assert set(model.state_dict()) >= {f"backbone.{k}" for k in reference.state_dict() if not k.startswith(("fc.", "classifier.6."))}
    assert_stages_cover_every_parameter_once(model.backbone)


@pytest.mark.parametrize("name", ["timm/resnet18", "timm/convnext_atto", "timm/efficientnet_b0", "timm/vit_tiny_patch16_224"])
def test_timm_stages_come_from_feature_info_and_cover_every_parameter(name):
    model = zoo.build(f"{name}+cls5")
    info = model.backbone.model.feature_info
    assert model.backbone.stage_names == tuple(f["module"] for f in info)
    assert [s.channels for s in model.backbone.stages] == [f["num_chs"] for f in info]
    assert_stages_cover_every_parameter_once(model.backbone)


@pytest.mark.parametrize("name", ["resnet18", "vgg11", "timm/resnet18", "timm/convnext_atto"])
def test_every_stage_output_has_its_declared_channels_and_stride(name):
    model = zoo.build(f"{name}+cls3").eval()
    with torch.inference_mode():
        features = model.backbone(torch.randn(2, 3, 64, 64))
    assert list(features.stages) == list(model.backbone.stage_names)
    for stage in model.backbone.stages:
        out = features.stages[stage.name]
        assert out.shape[1] == stage.channels, stage.name
        if stage.stride is not None:
            assert out.shape[-1] == 64 // stage.stride, stage.name
    assert features.pooled.shape == (2, model.backbone.num_features)


def test_vgg_pooled_feature_is_the_4096_wide_fully_connected_output():
    with torch.device("meta"):
        backbone = zoo.build("vgg16+cls2").backbone
    assert backbone.num_features == 4096
    assert backbone.stage_names == ("block1", "block2", "block3", "block4", "block5", "fc")


def test_resnet_forward_matches_torchvision_with_the_same_weights():
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None).eval()
    model = zoo.build("resnet18+cls1000").eval()
    state = {f"backbone.{k}": v for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    state.update({f"heads.cls1000.{k}": v for k, v in reference.state_dict().items() if k.startswith("fc.")})
    model.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), reference(x), rtol=0, atol=1e-5)


def test_backbone_defaults_describe_the_expected_input():
    backbone = zoo.build("resnet50+cls2").backbone
    assert backbone.input_size == (3, 224, 224)
    assert backbone.mean == pytest.approx((0.485, 0.456, 0.406))
    assert backbone.std == pytest.approx((0.229, 0.224, 0.225))
