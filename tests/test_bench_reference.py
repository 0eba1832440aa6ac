"""--vs-reference times the same network built directly with torchvision or timm, frozen alike."""
from __future__ import annotations

import pytest
import torch

import zoo
from zoo.benchmark._baseline import reference_model
from zoo.errors import ZooError


@pytest.mark.parametrize(("spec", "provider"), [
    ("resnet18+cls10", "torchvision"),
    ("vgg11+cls3", "torchvision"),
    ("timm/resnet18+cls4", "timm"),
    ("timm/efficientnet_b0+cls4", "timm"),
])
def test_baseline_is_the_same_network_with_the_same_weights(spec, provider):
    model = zoo.build(spec).eval()
    name, reference, _ = reference_model(model)
    assert name == provider
    reference.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(reference(x), model(x), rtol=1e-5, atol=1e-5)
    assert sum(p.numel() for p in reference.parameters()) == sum(p.numel() for p in model.parameters())


def test_baseline_mirrors_the_freeze_policy():
    model = zoo.build("resnet50+cls10", freeze="layer4")
    _, reference, set_train = reference_model(model)
    trainable = sum(p.numel() for p in reference.parameters() if p.requires_grad)
    assert trainable == 14_985_226 == sum(p.numel() for p in model.parameters() if p.requires_grad)
    set_train(reference)
    assert not reference.layer3.training and not reference.bn1.training and reference.layer4.training
    assert reference.fc.training


def test_bench_vs_reference_interleaves_and_reports_the_ratio():
    report = zoo.bench("resnet18+cls10", mode="both", vs_reference=True, img_size=32, batch_size=2, warmup=1,
                       iters=1, repeats=3)
    assert [(r.mode, r.model) for r in report.runs] == [
        ("infer", "zoo"), ("infer", "torchvision"), ("train", "zoo"), ("train", "torchvision")]
    for mode in ("infer", "train"):
        zoo_rates = report.run(mode).timing["repeats_images_per_s"]
        torchvision_rates = report.run(mode, "torchvision").timing["repeats_images_per_s"]
        paired = sorted(a / b for a, b in zip(zoo_rates, torchvision_rates))
        assert len(paired) == 3 and report.ratios[mode] == pytest.approx(paired[1], rel=1e-3)
        assert report.run(mode).gflops_per_image == pytest.approx(report.run(mode, "torchvision").gflops_per_image)
    from zoo.cli._format import format_report

    assert "infer: zoo / torchvision = " in format_report(report)


@pytest.mark.parametrize(("spec", "message"), [
    ("resnet18+cls10:hidden=8", "no torchvision or timm counterpart"),
    ("resnet18+cls10+cls2", "no torchvision or timm counterpart"),
])
def test_specs_without_a_counterpart_are_refused(spec, message):
    with pytest.raises(ZooError, match=message):
        zoo.bench(spec, vs_reference=True, img_size=32, batch_size=2)
