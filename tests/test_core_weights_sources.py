"""The weights spellings users copy, and timm's checkpoints loaded through timm's own loading."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file

import zoo
from zoo.errors import ZooError
from zoo.parts import WeightsFile
from zoo.testing import isolated_registry

X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def registry():
    return isolated_registry()


@pytest.fixture(autouse=True)
def offline(no_network, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    yield tmp_path
    assert no_network == []


def logits(model: torch.nn.Module, x: torch.Tensor = X) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


def hf_cache(root: Path, repo: str, data: bytes, filename: str = "model.safetensors") -> Path:
    """A home-made Hugging Face cache: the blob named by its sha256, a snapshot linking to it, refs/main."""
    folder = root / "hub" / f"models--{repo.replace('/', '--')}"
    blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True)
    blob.write_bytes(data)
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = folder / "snapshots" / commit / filename
    snapshot.parent.mkdir(parents=True)
    snapshot.symlink_to(os.path.relpath(blob, snapshot.parent))
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)
    return snapshot


# --- spellings ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("weights", ["timm/resnet18.a1_in1k", "hf-hub:timm/resnet18.a1_in1k", "resnet18.a1_in1k"])
def test_timm_name_and_tag_in_one_load_from_the_hub_cache(weights, offline, tmp_path, registry):
    reference = timm.create_model("resnet18", pretrained=False)
    save_file(reference.state_dict(), tmp_path / "w.safetensors")
    hf_cache(offline / "hf", "timm/resnet18.a1_in1k", (tmp_path / "w.safetensors").read_bytes())
    model = zoo.build("timm/resnet18+cls1000", weights=weights, registry=registry)
    torch.testing.assert_close(logits(model), logits(reference), atol=1e-5, rtol=0)
    assert model.weights_report.source == "timm/resnet18.a1_in1k"


@pytest.mark.parametrize("spec, weights, message", [
    ("resnet18+cls2", "hf-hub:timm/resnet18.a1_in1k", "belong to backbone timm/resnet18, not torchvision/resnet18: "
                                                       "build timm/resnet18\\+zoo/cls2"),
    ("timm/resnet50+cls2", "timm/resnet18.a1_in1k", "belong to backbone timm/resnet18, not timm/resnet50"),
    ("timm/resnet50+cls2", "resnet18.a1_in1k", "belong to backbone timm/resnet18, not timm/resnet50"),
    ("timm/resnet18+cls2", "hf-hub:someone/resnet18-finetuned", "no pretrained config of timm/resnet18 lives at "
                                                                 "hf-hub:someone/resnet18-finetuned"),
    ("timm/resnet18+cls2", "a1_in1kk", "no pretrained tag 'a1_in1kk' \\(did you mean a1_in1k"),
    ("resnet50+cls2", "ResNet18_Weights.IMAGENET1K_V1", "not torchvision/resnet50's: its weights are ResNet50_Weights"),
    ("resnet50+cls2", "ResNet50_Weights.IMAGENET1K_V3", "ResNet50_Weights has no 'IMAGENET1K_V3' \\(did you mean"),
])
def test_a_spelling_naming_other_weights_says_whose_they_are(spec, weights, message, registry):
    with pytest.raises(ZooError, match=message):
        zoo.build(spec, weights=weights, registry=registry)


@pytest.mark.parametrize("weights", ["ResNet50_Weights.IMAGENET1K_V2", "torchvision/ResNet50_Weights.IMAGENET1K_V2",
                                     "imagenet1k_v2", "imagenet"])
def test_torchvision_enum_spellings_name_the_same_file_offline(weights, offline, registry):
    folder = offline / "torch" / "hub" / "checkpoints"
    with pytest.raises(ZooError, match=rf"^weights torchvision/ResNet50_Weights.IMAGENET1K_V2 are not on this machine "
                                       rf"and ZOO_OFFLINE is set; put resnet50-11ad3fa6.pth \(from .*\) in {folder}/$"):
        zoo.build("resnet50+cls10", weights=weights, registry=registry)


def test_the_source_a_saved_file_records_is_a_weights_value_again(offline, tmp_path, registry):
    reference = timm.create_model("resnet18", pretrained=False)
    save_file(reference.state_dict(), tmp_path / "w.safetensors")
    hf_cache(offline / "hf", "timm/resnet18.a1_in1k", (tmp_path / "w.safetensors").read_bytes())
    first = zoo.build("timm/resnet18+cls1000", weights="imagenet", registry=registry)
    again = zoo.build("timm/resnet18+cls1000", weights=first.weights_report.source, registry=registry)
    assert again.weights_report.sha256 == first.weights_report.sha256


def test_coco_for_det91_offline_names_torchvisions_faster_rcnn_file(offline, registry):
    folder = offline / "torch" / "hub" / "checkpoints"
    with pytest.raises(ZooError, match=rf"FasterRCNN_ResNet50_FPN_Weights.COCO_V1 are not on this machine .*; "
                                       rf"put fasterrcnn_resnet50_fpn_coco-258fb6c6.pth \(from .*\) in {folder}/$"):
        zoo.build("resnet50+det91", weights="coco", registry=registry)


def test_coco_for_det91_loads_torchvisions_detector_and_its_class_names(offline, tmp_path, registry, monkeypatch):
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights, fasterrcnn_resnet50_fpn

    reference = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    path = tmp_path / "fasterrcnn_resnet50_fpn_coco.pth"
    # as torchvision publishes it: FrozenBatchNorm2d, so no num_batches_tracked
    torch.save({k: v for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")}, path)

    def local(source, url, labels=()):  # the same file torch.hub would keep, without its published hash
        return WeightsFile(source, str(path), "", url, labels=labels)

    monkeypatch.setattr("zoo.plugins.torchvision.weights.torch_hub_file", local)
    model = zoo.build("resnet50+det91:min_size=64,max_size=64", weights="coco", registry=registry)
    assert model.weights_report.source == "torchvision/FasterRCNN_ResNet50_FPN_Weights.COCO_V1"
    assert model.weights_report.missing == [] and model.weights_report.unexpected == []
    assert model.labels["det91"] == FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]
    assert model.labels["det91"][1] == "person"


# --- checkpoints cleaned as timm cleans them ---------------------------------------------------------------

def test_a_compiled_models_state_dict_loads(tmp_path, registry):
    source = zoo.build("resnet18+cls3", registry=registry)
    torch.save(torch.compile(source).state_dict(), tmp_path / "compiled.pth")  # keys start with _orig_mod.
    model = zoo.build("resnet18+cls3", weights=str(tmp_path / "compiled.pth"), registry=registry)
    assert model.weights_report.layout == "zoo" and model.weights_report.missing == []
    torch.testing.assert_close(logits(model), logits(source), atol=0, rtol=0)


def test_ema_weights_are_preferred_and_wrapper_prefixes_removed(tmp_path, registry):
    trained, ema = timm.create_model("resnet18"), timm.create_model("resnet18")
    checkpoint = {"epoch": 9, "state_dict": {f"module.{k}": v for k, v in trained.state_dict().items()},
                  "state_dict_ema": {f"_orig_mod.module.{k}": v for k, v in ema.state_dict().items()}}
    torch.save(checkpoint, tmp_path / "checkpoint.pth.tar"[:-4])
    model = zoo.build("timm/resnet18+cls1000", weights=str(tmp_path / "checkpoint.pth"), registry=registry)
    torch.testing.assert_close(logits(model), logits(ema), atol=1e-5, rtol=0)


# --- timm's own loading, after zoo found and hashed the file -----------------------------------------------

def vit_at(size: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=size)


def test_timm_checkpoint_converted_by_timms_filter_fn(tmp_path, registry):
    """A ViT trained at 128 px: timm's checkpoint_filter_fn resamples its position embedding to 224 px."""
    torch.save(vit_at(128).state_dict(), tmp_path / "vit-128.pth")
    model = zoo.build("timm/vit_tiny_patch16_224+cls1000", weights=str(tmp_path / "vit-128.pth"), registry=registry)
    expected = timm.create_model("vit_tiny_patch16_224", pretrained=True,
                                 pretrained_cfg_overlay={"file": str(tmp_path / "vit-128.pth")})
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(logits(model, x), logits(expected, x), atol=1e-5, rtol=0)
    assert model.weights_report.layout == "reference" and model.weights_report.missing == []


def test_timm_tag_from_the_hub_cache_goes_through_timms_loading(offline, tmp_path, registry):
    save_file(vit_at(128).state_dict(), tmp_path / "w.safetensors")
    data = (tmp_path / "w.safetensors").read_bytes()
    hf_cache(offline / "hf", "timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k", data)
    model = zoo.build("timm/vit_tiny_patch16_224+cls1000", weights="augreg_in21k_ft_in1k", registry=registry)
    assert model.weights_report.sha256 == hashlib.sha256(data).hexdigest()
    pos_embed = model.backbone.model.pos_embed
    assert pos_embed.shape == (1, 197, 192) and not torch.equal(pos_embed, vit_at(224).pos_embed)


def test_cli_a_timm_tag_that_does_not_exist_is_one_line_offering_close_ones():
    from click.testing import CliRunner

    from zoo.cli import cli

    result = CliRunner().invoke(cli, ["build", "timm/resnet18+cls2", "--weights", "hf-hub:timm/resnet18.a1_in1kk"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zoo: error: timm/resnet18 has no pretrained tag 'a1_in1kk' "
                                                   "(did you mean a1_in1k")
