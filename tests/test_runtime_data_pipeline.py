"""The data pipeline that feeds the device: uint8 images from the loaders' workers, made float and normalised on
the device to what the model's transform gives, worker counts from the machine, pinned memory for CUDA, and a
training loop that reads its loss once per epoch rather than once per step."""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw
from safetensors.torch import load_file

import zoo
from zoo.errors import ZooWarning
from drawn_data import class_folders
from zoo._runtime.data import Samples, default_workers, loader
from zoo._runtime.transforms import of_model, on_device

TORCH = str(Path(torch.__file__).parent)


def _images(count: int = 6) -> list[Image.Image]:
    """Drawn images of several sizes and modes, so that every one is resized (and some converted)."""
    images = []
    for index in range(count):
        size = (40 + 7 * index, 64 - 5 * index)
        image = Image.new("RGB", size, (30 * index % 256, 90, 200 - 20 * index))
        ImageDraw.Draw(image).ellipse([4, 4, size[0] // 2, size[1] - 6], fill=(250, 20 * index, 10))
        images.append(image.convert("L") if index == 2 else image.convert("RGBA") if index == 3 else image)
    return images


@pytest.fixture(scope="module")
def resnet():
    return zoo.build("resnet18+cls3", img_size=48)


def test_uint8_batch_normalised_on_the_device_equals_the_eval_transform(resnet):
    images = _images()
    expected = torch.stack([zoo.transforms(resnet)(image) for image in images])
    raw = torch.stack([of_model(resnet).eval_transform(as_uint8=True)(image) for image in images])
    assert raw.dtype == torch.uint8
    got = on_device(raw, of_model(resnet), torch.device("cpu"))
    assert got.dtype == torch.float32 and got.shape == expected.shape
    torch.testing.assert_close(got, expected.as_subclass(torch.Tensor), rtol=0, atol=1e-6)


def test_uint8_training_batch_equals_the_augmenting_transform_under_one_seed(resnet):
    images, preprocessing = _images(), of_model(resnet)
    torch.manual_seed(3)
    expected = torch.stack([zoo.transforms(resnet, train=True)(image) for image in images])
    torch.manual_seed(3)
    raw = torch.stack([preprocessing.train_transform(as_uint8=True)(image) for image in images])
    got = on_device(raw, preprocessing, "cpu", channels_last=True)
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, expected.as_subclass(torch.Tensor), rtol=0, atol=1e-6)


def test_whole_image_models_get_lists_of_unnormalised_images_of_any_size(resnet):
    whole = replace(of_model(resnet), whole=True)  # as a detection model's preprocessing is
    images = _images(3)
    raw = [whole.eval_transform(as_uint8=True)(image) for image in images]
    got = on_device(raw, whole, "cpu")
    assert [tuple(g.shape[-2:]) for g in got] == [image.size[::-1] for image in images]
    for image, tensor in zip(images, got):
        torch.testing.assert_close(tensor, whole.eval_transform()(image).as_subclass(torch.Tensor), rtol=0, atol=1e-6)
        assert 0.0 <= float(tensor.min()) and float(tensor.max()) <= 1.0


def test_float_batches_of_your_own_loader_are_only_moved(resnet):
    batch = torch.randn(2, 3, 48, 48)
    assert on_device(batch, of_model(resnet), "cpu") is batch


@pytest.mark.parametrize(("device", "cores", "expected"), [
    ("cuda", 16, 8), ("cuda:1", 4, 3), ("cuda", 1, 1), ("cpu", 2, 0), ("cpu", 4, 0), ("cpu", 16, 4), (None, 64, 8),
])
def test_worker_count_defaults_from_the_machine(monkeypatch, device, cores, expected):
    monkeypatch.setattr("zoo._runtime.data.usable_cpus", lambda: cores)
    assert default_workers(device) == expected


def test_loaders_pin_memory_for_cuda_and_keep_their_workers(monkeypatch, tmp_path):
    monkeypatch.setattr("zoo._runtime.data.usable_cpus", lambda: 12)
    samples = Samples([(tmp_path / "a.png", 0)])
    on_gpu = loader(samples, lambda image: image, 4, shuffle=False, whole=False, device=torch.device("cuda", 0))
    assert on_gpu.pin_memory and on_gpu.num_workers == 8 and on_gpu.persistent_workers
    on_cpu = loader(samples, lambda image: image, 4, shuffle=False, whole=False, device="cpu")
    assert not on_cpu.pin_memory and on_cpu.num_workers == 3
    asked = loader(samples, lambda image: image, 4, shuffle=False, whole=False, workers=0, device="cuda")
    assert asked.num_workers == 0 and not asked.persistent_workers


class _Reads:
    """Counts reads of a tensor's value to the host (on a GPU each one waits for the device) made by zoo's or a
    plugin's code inside the training batch loop (`train_one_epoch`), not inside validation (the sampler's
    host-side shuffling is torch's own and reads no device tensor)."""

    def __init__(self, monkeypatch) -> None:
        self.count = 0
        for name in ("__float__", "item", "__bool__", "tolist", "__int__"):
            original = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._counting(original))

    def _counting(self, original):
        def read(tensor, *args, **kwargs):
            frame, in_step, in_validation = sys._getframe(1), False, False
            if frame.f_code.co_filename.startswith(TORCH):
                return original(tensor, *args, **kwargs)
            while frame is not None:
                in_step |= frame.f_code.co_name == "train_one_epoch"
                in_validation |= frame.f_code.co_name == "validate"
                frame = frame.f_back
            if in_step and not in_validation:
                self.count += 1
            return original(tensor, *args, **kwargs)

        return read


def test_the_training_loop_reads_its_loss_once_per_epoch(tmp_path, monkeypatch):
    data = class_folders(tmp_path / "shapes", per_class=6)
    reads = _Reads(monkeypatch)
    result = zoo.fit("resnet18+cls2", data, epochs=2, batch_size=2, img_size=32, augment=False, workers=0,
                     progress=False, feature_cache=False)
    steps = sum(1 for _ in range(0, 12, 2))  # 12 training images, batches of 2
    assert steps > 2 and reads.count == 2  # one read per epoch, not one per step
    assert all(row["train/loss"] > 0 for row in result.history)


def test_the_loss_is_read_every_few_steps_for_a_long_epoch(tmp_path, monkeypatch):
    monkeypatch.setattr("zoo.training.epoch.LOSS_READ_EVERY", 2)
    data = class_folders(tmp_path / "shapes", per_class=6)
    reads = _Reads(monkeypatch)
    zoo.fit("resnet18+cls2", data, epochs=1, batch_size=2, img_size=32, augment=False, workers=0, progress=False,
            feature_cache=False)
    assert reads.count == 6 // 2 + 1  # 6 steps: a read after steps 2, 4 and 6, and the epoch's


def test_a_trained_model_runs_its_loaders_in_worker_processes(tmp_path):
    data = class_folders(tmp_path / "shapes", per_class=4)
    result = zoo.fit("resnet18+cls2", data, epochs=1, batch_size=4, img_size=32, workers=1, progress=False,
                     feature_cache=False)
    assert result.history[0]["images_per_s"] > 0 and result.history[0]["skipped"] == 0


def test_predict_decodes_in_worker_processes_and_answers_as_in_one(tmp_path, monkeypatch, resnet):
    folder = tmp_path / "photos"
    folder.mkdir()
    for index, image in enumerate(_images()):
        image.save(folder / f"{index}.png")
    (folder / "3.png").write_bytes(b"not a png")
    images = sorted(str(p) for p in folder.iterdir())
    with pytest.warns(ZooWarning, match="3.png"):
        alone = zoo.predict(resnet, images, batch_size=2, device="cpu", top_k=2)
    monkeypatch.setattr("zoo.inference.predict.default_workers", lambda device: 2)
    with pytest.warns(ZooWarning, match="3.png"):
        shared = zoo.predict(resnet, images, batch_size=2, device="cpu", top_k=2)
    assert [r.as_dict() for r in shared] == [r.as_dict() for r in alone]
    assert [r.error is not None for r in shared] == [Path(i).name == "3.png" for i in images]
    assert all(r.width and r.height for r in shared if r.error is None)


def test_the_feature_cache_built_in_worker_processes_holds_what_one_process_computes(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    data = class_folders(tmp_path / "shapes", per_class=6)
    alone = zoo.fit("resnet18+cls2", data, freeze="layer4", epochs=1, batch_size=4, img_size=32, progress=False)
    alone_file = Path(alone.feature_cache["file"])
    kept = load_file(alone_file)
    alone_file.unlink()
    monkeypatch.setattr("zoo.training.feature_cache.default_workers", lambda device: 2)
    shared = zoo.fit("resnet18+cls2", data, freeze="layer4", epochs=1, batch_size=4, img_size=32, progress=False)
    assert shared.feature_cache["built"] and shared.feature_cache["file"] == str(alone_file)
    found = load_file(alone_file)
    assert sorted(found) == sorted(kept) and all(torch.equal(found[name], kept[name]) for name in kept)
