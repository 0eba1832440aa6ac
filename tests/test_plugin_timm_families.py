"""timm models whose pooled vector is wider than their last stage (they pool after a head conv or MLP)
work with every pooled head; `benchmarks/timm_families.py` checks one model of every timm family."""
from __future__ import annotations

import pytest
import torch

import zoo

# tiny variants of families that pool after a head conv or MLP (timm's vgg11 too, but it is large)
POOL_AFTER_HEAD = [
    ("mobilenetv3_small_050", 64),
    ("ghostnet_050", 64),
    ("lcnet_035", 64),
    ("mambaout_femto", 64),
]


@pytest.mark.parametrize("name,size", POOL_AFTER_HEAD)
def test_pooled_heads_fit_models_that_pool_after_a_head_layer(name, size):
    model = zoo.build(f"timm/{name}+cls3+agegender").eval()
    with torch.no_grad():
        outputs = model(torch.randn(2, 3, size, size))
    assert outputs["cls3"].shape == (2, 3)
    assert outputs["agegender"]["age"].shape == (2,)
    assert model.backbone.num_features == model.backbone.model.head_hidden_size


@pytest.mark.parametrize("name", ["test_vit", "vit_tiny_patch16_224", "swin_tiny_patch4_window7_224"])
def test_vision_transformers_take_an_image_size_other_than_their_own(name, tmp_path):
    """Made for one size (224, or test_vit's 160), they run at 32 px, key points included, and save and load."""
    model = zoo.build(f"timm/{name}+cls3+kp2", img_size=32).eval()
    with torch.no_grad():
        outputs = model(torch.randn(2, 3, 32, 32))
    assert outputs["cls3"].shape == (2, 3) and outputs["kp2"].shape == (2, 2, 2)
    zoo.save(model, tmp_path / "m.safetensors")
    again = zoo.load(tmp_path / "m.safetensors").eval()
    with torch.no_grad():
        assert torch.equal(again(torch.ones(1, 3, 32, 32))["cls3"], model(torch.ones(1, 3, 32, 32))["cls3"])


@pytest.mark.parametrize("name,size,shape", [("twins_svt_small", 224, (1, 512, 49)),  # tokens, channels second
                                             ("crossvit_tiny_240", 240, (1, 288))])  # branches: the pooled vector
def test_models_without_intermediates_give_their_one_stage_channels_second(name, size, shape):
    model = zoo.build(f"timm/{name}+cls3").eval()
    with torch.no_grad():
        features = model.backbone(torch.randn(1, 3, size, size))
        outputs = model(torch.randn(1, 3, size, size))
    assert tuple(features.stages["features"].shape) == shape and outputs.shape == (1, 3)
