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
