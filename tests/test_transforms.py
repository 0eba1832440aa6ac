"""zoo.transforms: the model's own preprocessing, its image size saved in its file and used by predict."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import zoo
from zoo._modelfile import read_metadata
from zoo.cli import cli


def test_eval_transform_follows_the_model_image_size_and_statistics():
    model = zoo.build("resnet18+cls2", img_size=48)
    image = Image.new("RGB", (100, 60), (255, 0, 0))
    x = zoo.transforms(model)(image)
    assert x.shape == (3, 48, 48)
    assert x[0, 0, 0].item() == pytest.approx((1 - 0.485) / 0.229, abs=1e-3)
    assert zoo.transforms(model, train=True)(image).shape == (3, 48, 48)
    assert zoo.transforms(model, crop_pct=0.875)(image).shape == (3, 48, 48)


def test_keypoint_models_train_without_crops_or_flips():
    model = zoo.build("resnet18+kp2", img_size=32)
    names = [type(t).__name__ for t in zoo.transforms(model, train=True).transforms]
    assert "RandomResizedCrop" not in names and "RandomHorizontalFlip" not in names
    names = [type(t).__name__ for t in zoo.transforms(zoo.build("resnet18+cls2"), train=True).transforms]
    assert names[:2] == ["RandomResizedCrop", "RandomHorizontalFlip"]


def test_build_img_size_is_saved_and_predict_uses_it(tmp_path):
    out = tmp_path / "small.safetensors"
    result = CliRunner().invoke(cli, ["build", "resnet18+cls2", "--img-size", "64", "-o", str(out)])
    assert result.exit_code == 0, result.output
    info = json.loads(CliRunner().invoke(cli, ["info", str(out), "--json"]).output)
    assert info["input_size"] == [3, 64, 64]
    model = zoo.load(out)
    assert model.image_size == (64, 64)
    assert zoo.transforms(out)(Image.new("RGB", (300, 200))).shape == (3, 64, 64)
    seen = []
    model.backbone.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    image = tmp_path / "a.png"
    Image.new("RGB", (200, 100), (0, 200, 0)).save(image)
    zoo.predict(model, [image])
    assert seen == [(1, 3, 64, 64)]


def test_a_file_without_preprocessing_keeps_working(tmp_path):
    model = zoo.build("resnet18+cls2")
    path = zoo.save(model, tmp_path / "old.safetensors")
    assert "preprocessing" not in read_metadata(path)
    assert zoo.transforms(path)(Image.new("RGB", (50, 50))).shape == (3, 224, 224)


def test_keypoint_head_learns_in_the_pixels_of_the_model_size():
    model = zoo.build("resnet18+kp1", img_size=64).eval()
    assert model.heads["kp1"].image_size == (64, 64)
    with torch.inference_mode():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1, 2)


def test_timm_backbones_bring_their_interpolation():
    model = zoo.build("timm/resnet18+cls2")
    assert zoo.transforms(model).transforms[0].interpolation.value == model.backbone.interpolation == "bicubic"
