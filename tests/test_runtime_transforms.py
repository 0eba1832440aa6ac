"""zoo.transforms: the model's own preprocessing, its image size saved in its file and used by predict."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import zoo
from zoo._core.images import to_rgb
from zoo._modelfile.read import read_metadata
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
    assert names[:3] == ["ToRGB", "RandomResizedCrop", "RandomHorizontalFlip"]


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
    assert zoo.transforms(model).transforms[1].interpolation.value == model.backbone.interpolation == "bicubic"


def _image_in(mode: str) -> Image.Image:
    """A 40 x 30 picture (a red square on grey) in PIL ``mode``."""
    from PIL import ImageDraw

    image = Image.new("RGB", (40, 30), (120, 120, 120))
    ImageDraw.Draw(image).rectangle([8, 6, 24, 20], fill=(220, 30, 30))
    if mode in ("I;16", "I", "F"):
        grey = np.asarray(image.convert("L"), dtype=np.uint16) * 257  # 16-bit: 255 becomes 65535
        return Image.fromarray(grey.astype({"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]))
    if mode == "RGBA":
        rgba = image.convert("RGBA")
        rgba.putalpha(Image.new("L", image.size, 255))
        return rgba
    return image.convert(mode) if mode != "P" else image.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)


MODES = ("RGBA", "P", "L", "LA", "I;16", "I", "F", "1", "CMYK", "YCbCr", "RGB")


@pytest.mark.parametrize("mode", MODES)
def test_transforms_take_pil_images_of_any_mode(mode):
    model = zoo.build("resnet18+cls2", img_size=32)
    image = _image_in(mode)
    assert image.mode == mode
    expected = zoo.transforms(model)(to_rgb(image))
    assert torch.equal(zoo.transforms(model)(image), expected)
    assert zoo.transforms(model, train=True)(image).shape == (3, 32, 32)
    if mode in ("L", "LA", "I;16", "I", "F", "1"):  # grey stays grey: three equal channels before normalising
        std, mean = (torch.tensor(v)[:, None, None] for v in (model.backbone.std, model.backbone.mean))
        back = expected * std + mean
        assert torch.allclose(back[0], back[1], atol=1e-5) and torch.allclose(back[1], back[2], atol=1e-5)


def test_transparent_pixels_are_laid_over_white_and_16_bit_white_stays_white():
    model = zoo.build("resnet18+cls2", img_size=32)
    white = zoo.transforms(model)(Image.new("RGB", (40, 30), (255, 255, 255)))
    clear = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    assert torch.allclose(zoo.transforms(model)(clear), white)
    assert torch.allclose(zoo.transforms(model)(Image.new("I;16", (40, 30), 65535)), white)
    palette = Image.new("P", (40, 30), 0)
    palette.info["transparency"] = 0
    assert torch.allclose(zoo.transforms(model)(palette), white)


def test_the_transform_pickles_for_data_loader_workers():
    model = zoo.build("resnet18+cls2", img_size=32)
    transform = pickle.loads(pickle.dumps(zoo.transforms(model)))
    assert transform(Image.new("RGBA", (40, 30), (255, 0, 0, 255))).shape == (3, 32, 32)
