"""A third party's head training from a table: its reader is told the head's key, options, the table's folder
and the image size, batches its own targets when they differ in shape, a head reading every stage trains
without a feature cache being built and thrown away, and `--resume`'s data fingerprint sees every byte of a
target and the files targets name."""
from __future__ import annotations

import csv
import os
import types
import warnings
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

import zoo
from zoo import hookimpl
from zoo.parts import HeadPart, Option
from zoo.targets import TargetReader
from zoo.testing import isolated_registry
from zoo.training.checkpoint import data_fingerprint
from zoo.training.feature_cache import frozen_prefix

RUN = dict(epochs=1, batch_size=3, img_size=32, augment=False, seed=0, lr=0.01)
SEEN: list = []  # (key, options, folder, image_size) per target read


def _coverage_head(features, size, column="mask"):
    """Predicts how much of the image its mask covers; the targets are masks of each image's own size."""
    import torch
    from torch import nn

    from zoo.head import Head
    from zoo.metrics import SampleMean

    class Coverage(Head):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(features.num_features, 1)

        def forward(self, features):
            return torch.sigmoid(self.fc(features.pooled)).squeeze(1)

        def loss(self, output, target):
            return (output - _fractions(target, output)).abs().mean()

        def decode(self, output, context):
            return [{"coverage": float(v)} for v in output]

        def metric(self):
            return SampleMean(lambda output, target: {"error": (output - _fractions(target, output)).abs()})

    return Coverage()


def _fractions(masks, like):
    import torch

    return torch.stack([mask.float().mean() for mask in masks]).to(like.device)


def _read_mask(row, context):
    import torch

    SEEN.append((context.key, dict(context.options), context.folder, context.image_size))
    with Image.open(context.path(row[context.options["column"]])) as mask:
        if mask.size != context.image_size:
            raise ValueError(f"mask {mask.size} is not the image's size {context.image_size}")
        return torch.frombuffer(bytearray(mask.convert("L").tobytes()), dtype=torch.uint8).reshape(mask.size[::-1]) > 0


def _stages_head(features, size):
    """Reads every spatial stage (as a feature pyramid does): the mean of each, then one linear layer."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from zoo.head import Head
    from zoo.metrics import SampleMean

    class Stages(Head):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(sum(stage.channels for stage in features.spatial_stages), size)

        def forward(self, features):
            return self.fc(torch.cat([t.mean((2, 3)) for t in features.stages.values() if t.dim() == 4], 1))

        def loss(self, output, target):
            return F.cross_entropy(output, target)

        def decode(self, output, context):
            return [{"class": int(i)} for i in output.argmax(1)]

        def metric(self):
            return SampleMean(lambda output, target: {"accuracy": (output.argmax(1) == target).float()})

    return Stages()


PLUGIN = types.ModuleType("coverage_plugin")
PLUGIN.ZOO_CONTRACT = "1.1"
PLUGIN.zoo_heads = hookimpl(lambda: [
    HeadPart("cover", _coverage_head, "mask coverage", size="none", options=(Option("column", str, "mask"),),
             targets=TargetReader(("table",), table_columns=lambda c: [c.options["column"]],
                                  read_target=_read_mask, collate=list, spatial=True)),
    HeadPart("pyr", _stages_head, "reads every stage", needs="stages", labels="classes",
             targets=TargetReader(("folders",))),
])


@pytest.fixture
def registry():
    return isolated_registry(cover=PLUGIN)


def _masks_table(root: Path, count: int = 6) -> Path:
    """Images of different sizes, each with a mask file under masks/ (relative in the table) of its size."""
    (root / "masks").mkdir(parents=True)
    rows = []
    for i in range(count):
        size = (40 + 4 * i, 36 + 2 * i)
        image, mask = Image.new("RGB", size, (30, 30, 30)), Image.new("L", size, 0)
        box = [4, 4, 8 + 3 * i, 8 + 2 * i]
        ImageDraw.Draw(image).rectangle(box, fill=(240, 240, 240))
        ImageDraw.Draw(mask).rectangle(box, fill=255)
        image.save(root / f"{i}.png")
        mask.save(root / "masks" / f"{i}.png")
        rows.append({"image": f"{i}.png", "outline": f"masks/{i}.png"})
    with open(root / "masks.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["image", "outline"])
        writer.writeheader()
        writer.writerows(rows)
    return root / "masks.csv"


def test_a_table_reader_is_told_key_options_folder_and_image_size_and_collates_its_own(tmp_path, registry):
    table = _masks_table(tmp_path / "data")
    SEEN.clear()
    result = zoo.fit("resnet18+cover:column=outline", table, val_split=0.5, registry=registry, **RUN)
    assert {(key, options["column"], folder) for key, options, folder, _ in SEEN} == {
        ("cover", "outline", table.parent)}
    assert sorted({size for *_, size in SEEN}) == [(40 + 4 * i, 36 + 2 * i) for i in range(6)]
    assert "val/cover/error" in result.history[-1]  # masks of six shapes went through one batch: collated as a list


def test_columns_follow_the_heads_options(tmp_path, registry):
    table = _masks_table(tmp_path / "data")
    with pytest.raises(zoo.ZooError, match=r"masks\.csv lacks column\(s\) mask;"):
        zoo.fit("resnet18+cover", table, val_split=0.5, registry=registry, **RUN)


def test_a_head_reading_every_stage_trains_without_a_cache_built_and_thrown_away(tmp_path, registry, monkeypatch):
    from drawn_data import class_folders

    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    shapes = class_folders(tmp_path / "shapes", per_class=3)
    model = zoo.build("resnet18+pyr2", freeze="layer3", registry=registry)
    assert frozen_prefix(model) is None
    assert frozen_prefix(zoo.build("resnet18+cls2", freeze="layer3")) is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = zoo.fit(model, shapes, registry=registry, **RUN)
    assert [str(w.message) for w in caught if "cache" in str(w.message)] == []
    assert result.feature_cache is None
    assert not (tmp_path / "cache" / "features").exists()


def _samples(items):
    from zoo._runtime.data import Samples

    return Samples(items)


def test_the_data_fingerprint_sees_a_change_deep_inside_a_large_target(tmp_path):
    import torch

    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    mask = torch.zeros(64, 64, dtype=torch.uint8)
    changed = mask.clone()
    changed[32, 32] = 1
    assert repr(mask) == repr(changed)  # what a repr-based fingerprint compared
    assert data_fingerprint([_samples([(image, mask)])]) != data_fingerprint([_samples([(image, changed)])])
    assert data_fingerprint([_samples([(image, {"m": mask})])]) == data_fingerprint([_samples([(image, {"m": mask.clone()})])])


def test_the_data_fingerprint_sees_a_changed_file_a_target_names(tmp_path):
    image, mask = tmp_path / "a.png", tmp_path / "mask.png"
    Image.new("RGB", (8, 8)).save(image)
    Image.new("L", (8, 8), 0).save(mask)
    before = data_fingerprint([_samples([(image, {"mask": str(mask)})])])
    Image.new("L", (8, 8), 255).save(mask)
    os.utime(mask, ns=(1, 1))
    assert data_fingerprint([_samples([(image, {"mask": str(mask)})])]) != before
    assert data_fingerprint([_samples([(image, mask)])]) != data_fingerprint([_samples([(image, image)])])
