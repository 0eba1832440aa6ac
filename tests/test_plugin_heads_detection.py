"""Detection `det<N>`: torchvision's Faster R-CNN parts over ResNet, VGG and timm backbones.

resnet50+det91 is built once for the module: it is 41.8M parameters.
"""
from __future__ import annotations

import pytest
import torch
import torchvision
from torchvision.models.detection import FasterRCNN, fasterrcnn_resnet50_fpn
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops.misc import FrozenBatchNorm2d

import zoo
from zoo._core.reference import from_reference
from zoo._modelfile.read import read_metadata
from zoo.head import DecodeContext

SMALL = "min_size=128,max_size=256"  # torchvision's transform resizes to 800 px by default: slow on a CPU
# Random weights score little: keep every detection so that there are many to compare.
TORCHVISION = dict(min_size=128, max_size=256, box_score_thresh=0.0)


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, **TORCHVISION).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # BatchNorm statistics that are not the identity, so that they matter
        for module in model.backbone.body.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
                module.weight.uniform_(0.5, 1.5, generator=generator)
    return model


@pytest.fixture(scope="module")
def coco_layout(reference):
    """torchvision's model as ``fasterrcnn_resnet50_fpn`` builds it for the COCO weights: FrozenBatchNorm2d."""
    backbone = resnet_fpn_backbone(backbone_name="resnet50", weights=None, norm_layer=FrozenBatchNorm2d, trainable_layers=3)
    model = FasterRCNN(backbone, num_classes=91, **TORCHVISION)
    model.load_state_dict(reference.state_dict(), strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def model(reference):
    model = zoo.build(f"resnet50+det91:{SMALL},score_thresh=0.0,frozen_bn=true")  # as for COCO's weights
    state, unmatched = from_reference(model, reference.state_dict())
    assert unmatched == []
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return model.eval()


@pytest.fixture(scope="module")
def image():
    torch.manual_seed(2)
    return torch.rand(3, 96, 128)


def test_resnet50_det91_gives_torchvisions_boxes_labels_and_scores(model, coco_layout, image):
    with torch.no_grad():
        expected = coco_layout([image])[0]
        got = model([image])[0]
    assert len(expected["boxes"]) == 100  # torchvision's default detections per image
    assert torch.equal(got["labels"], expected["labels"])
    assert torch.equal(got["boxes"], expected["boxes"])
    assert torch.equal(got["scores"], expected["scores"])


def test_resnet50_det91_pyramid_matches_torchvisions_batchnorm_model(model, reference, image):
    """The untrained builder's BatchNorm2d and the FrozenBatchNorm2d here compute the same features."""
    with torch.no_grad():
        batch, _ = reference.transform([image])
        expected = reference.backbone(batch.tensors)
        head = model.heads["det91"]
        stages = model.backbone(batch.tensors).stages
        got = head.fpn({str(i): stages[name] for i, name in enumerate(head.levels)})
    assert list(got) == list(expected) == ["0", "1", "2", "3", "pool"]
    for name in expected:  # float32 rounding differs between the two BatchNorm forms, nothing more
        scale = expected[name].abs().max()
        assert (got[name] - expected[name]).abs().max() <= 1e-5 * scale


def test_resnet50_det91_has_torchvisions_keys_and_parameter_count(model, reference):
    own = set(model.state_dict())
    state, _ = from_reference(model, reference.state_dict())
    # torchvision's untrained builder uses BatchNorm2d; num_batches_tracked has no FrozenBatchNorm2d twin
    assert own == {k for k in state if not k.endswith("num_batches_tracked")}
    assert sum(p.numel() for p in model.parameters()) == 41_755_286  # torchvision's published count


def test_backbone_batchnorm_is_frozen_as_torchvision_does_for_detection(model):
    norms = [m for m in model.backbone.modules() if isinstance(m, (torch.nn.BatchNorm2d, FrozenBatchNorm2d))]
    assert norms and all(isinstance(m, FrozenBatchNorm2d) for m in norms)


def test_freeze_policy_applies_to_the_detection_backbone():
    with torch.device("meta"):
        model = zoo.build(f"resnet50+det3:{SMALL}", freeze="layer2")
    assert model.frozen_stages == ("stem", "layer1")
    assert not any(p.requires_grad for p in model.backbone.layer1.parameters())
    assert all(p.requires_grad for p in model.backbone.layer2.parameters())
    assert all(p.requires_grad for p in model.heads["det3"].parameters())


def test_training_step_returns_torchvisions_losses_and_trains_the_heads():
    torch.manual_seed(0)
    model = zoo.build(f"resnet18+det3:{SMALL}", freeze="all").train()
    images = [torch.rand(3, 96, 128), torch.rand(3, 80, 100)]
    targets = [
        {"boxes": torch.tensor([[10.0, 12.0, 60.0, 70.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.tensor([[5.0, 5.0, 40.0, 30.0], [50.0, 20.0, 90.0, 75.0]]), "labels": torch.tensor([2, 1])},
    ]
    losses = model(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    loss = model.loss(losses)
    assert torch.isfinite(loss) and torch.allclose(loss, sum(losses.values()))
    loss.backward()
    head = model.heads["det3"]
    assert head.roi_heads.box_predictor.cls_score.weight.grad is not None
    assert head.rpn.head.cls_logits.weight.grad is not None
    assert all(p.grad is None for p in model.backbone.parameters())


def test_decode_keeps_detections_above_the_threshold_with_label_names(model):
    output = [{"boxes": torch.tensor([[1.0, 2.0, 30.0, 40.0], [5.0, 5.0, 9.0, 9.0]]),
               "labels": torch.tensor([1, 3]), "scores": torch.tensor([0.9, 0.3])}]
    head = model.heads["det91"]
    labels = ("__background__", "person", "bicycle", "car")
    kept = head.decode(output, DecodeContext(((128, 96),), labels, threshold=0.5))
    assert kept == [{"objects": [{"label": "person", "index": 1, "score": 0.9, "box": [1.0, 2.0, 30.0, 40.0]}]}]
    both = head.decode(output, DecodeContext(((128, 96),), labels, threshold=0.2))
    assert [o["label"] for o in both[0]["objects"]] == ["person", "car"]


def test_map_metric_is_one_for_perfect_boxes_and_half_for_one_of_two(model):
    truth = [{"boxes": torch.tensor([[10.0, 10.0, 50.0, 50.0], [60.0, 60.0, 90.0, 90.0]]), "labels": torch.tensor([1, 1])}]
    metric = model.heads["det91"].metric()
    metric.update([{**truth[0], "scores": torch.tensor([0.9, 0.8])}], truth)
    assert metric.compute()["map"] == pytest.approx(1.0)
    metric.reset()
    metric.update([{"boxes": truth[0]["boxes"][:1], "labels": torch.tensor([1]), "scores": torch.tensor([0.9])}], truth)
    assert metric.compute()["map_50"] == pytest.approx(51 / 101)  # recall 0.5 at precision 1, COCO's 101 points


@pytest.mark.parametrize(("spec", "levels"), [
    ("vgg11+det5", ("block2", "block3", "block4", "block5")),
    ("timm/mobilenetv3_small_050+det5", None),
])
def test_detection_on_vgg_and_timm_backbones(spec, levels):
    torch.manual_seed(0)
    model = zoo.build(f"{spec}:min_size=96,max_size=128,score_thresh=0.0,frozen_bn=true").eval()
    head = model.heads["det5"]
    if levels:
        assert head.levels == levels
    strides = [model.backbone.stage(name).stride for name in head.levels]
    assert strides == sorted(set(strides)) and len(strides) >= 2
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.modules())
    with torch.no_grad():
        result = model([torch.rand(3, 64, 96)])[0]
    assert set(result) == {"boxes", "labels", "scores"} and len(result["boxes"]) > 0
    assert result["labels"].min() >= 1 and result["labels"].max() <= 4
    assert result["boxes"][:, 2].max() <= 96 and result["boxes"][:, 3].max() <= 64  # original image's pixels


@pytest.mark.parametrize(("spec", "message"), [
    ("resnet18+det1", "head det1: 1 classes incl. background is impossible; det needs at least 2"),
    ("resnet18+det91+cls10", "head det91 runs the backbone on whole images and cannot be combined with cls10"),
    ("resnet18+kp5+det3", "head det3 runs the backbone on whole images and cannot be combined with kp5"),
    ("timm/vit_tiny_patch16_224+det3", "needs features at two or more strides"),
])
def test_detection_mistakes_are_clear_errors(spec, message):
    with pytest.raises(zoo.ZooError, match=message):
        zoo.build(spec)


def test_training_without_targets_or_with_bad_boxes_is_a_clear_error():
    model = zoo.build(f"resnet18+det3:{SMALL}").train()
    image = torch.rand(3, 64, 64)
    with pytest.raises(zoo.ZooError, match="needs targets"):
        model([image])
    with pytest.raises(zoo.ZooError, match="has no area"):
        model([image], [{"boxes": torch.tensor([[10.0, 10.0, 5.0, 20.0]]), "labels": torch.tensor([1])}])
    with pytest.raises(zoo.ZooError, match=r"labels must be 1\.\.2"):
        model([image], [{"boxes": torch.tensor([[1.0, 1.0, 5.0, 20.0]]), "labels": torch.tensor([3])}])


def test_torchvisions_checkpoint_file_loads_through_weights(model, reference, tmp_path):
    """``--weights fasterrcnn_resnet50_fpn_coco-258fb6c6.pth`` as torchvision saves it (FrozenBatchNorm2d keys)."""
    path = tmp_path / "fasterrcnn_resnet50_fpn_coco.pth"
    torch.save({k: v for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")}, path)
    loaded = zoo.build(f"resnet50+det91:{SMALL}", weights=str(path))
    report = loaded.weights_report
    assert (report.layout, report.missing, report.unexpected, report.dropped) == ("task", [], [], [])
    expected = model.state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in loaded.state_dict().items())
    with pytest.warns(zoo.ZooWarning, match="dropped 4 tensor"):  # fine-tuning: a fresh box predictor
        finetune = zoo.build(f"resnet50+det3:{SMALL}", weights=str(path))
    assert finetune.weights_report.dropped == [f"roi_heads.box_predictor.{n}" for n in
                                               ("cls_score.weight", "cls_score.bias", "bbox_pred.weight", "bbox_pred.bias")]


def _norms(model):
    return [type(m) for m in model.backbone.modules() if isinstance(m, (torch.nn.BatchNorm2d, FrozenBatchNorm2d))]


def test_untrained_backbone_keeps_learning_batchnorm():
    model = zoo.build(f"resnet18+det3:{SMALL}")
    assert set(_norms(model)) == {torch.nn.BatchNorm2d}
    assert model.backbone.bn1.weight.requires_grad and "frozen_bn" not in model.spec


def test_batchnorm_is_frozen_when_asked_or_when_pretrained_weights_load_and_the_choice_is_saved(tmp_path):
    assert set(_norms(zoo.build(f"resnet18+det3:{SMALL},frozen_bn=true"))) == {FrozenBatchNorm2d}
    weights = tmp_path / "resnet18.pth"
    torch.save({k: v for k, v in torchvision.models.resnet18().state_dict().items() if not k.startswith("fc.")}, weights)
    pretrained = zoo.build(f"resnet18+det3:{SMALL}", weights=str(weights))
    assert set(_norms(pretrained)) == {FrozenBatchNorm2d}
    assert "frozen_bn=true" in pretrained.spec and str(pretrained.recipe.spec) == pretrained.spec
    assert pretrained.recipe.heads[0].options["frozen_bn"] is True  # the recipe, which saving reads
    assert torch.equal(pretrained.backbone.bn1.running_var, torchvision.models.resnet18().bn1.running_var)
    saved = zoo.save(pretrained, tmp_path / "det.safetensors")
    reloaded = zoo.load(saved)
    assert set(_norms(reloaded)) == {FrozenBatchNorm2d} and reloaded.spec == pretrained.spec
    assert read_metadata(saved)["heads"][0]["options"]["frozen_bn"] is True
    kept = zoo.build(f"resnet18+det3:{SMALL},frozen_bn=false", weights=str(weights))
    assert set(_norms(kept)) == {torch.nn.BatchNorm2d}
