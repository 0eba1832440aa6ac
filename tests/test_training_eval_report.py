"""`zoo eval --out`: a head adds its own picture to the report (`Head.report`), and a model whose heads have no
picture writes nothing and leaves no empty folder behind."""
from __future__ import annotations

import io
import types

import pytest
from drawn_data import class_folders, keypoint_table
from PIL import Image

import zoo
from zoo import hookimpl
from zoo.parts import HeadPart
from zoo.targets import TargetReader
from zoo.testing import isolated_registry

TOLD: list = []


def _bars_head(features, size):
    """Classifies, and draws its accuracy as a bar: a head with a report of its own."""
    import torch.nn.functional as F
    from torch import nn

    from zoo.drawing import Canvas
    from zoo.head import Head
    from zoo.metrics import SampleMean

    class Bars(Head):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(features.num_features, size)

        def forward(self, features):
            return self.fc(features.pooled)

        def loss(self, output, target):
            return F.cross_entropy(output, target)

        def decode(self, output, context):
            return [{"class": int(i)} for i in output.argmax(1)]

        def metric(self):
            return SampleMean(lambda output, target: {"hits": (output.argmax(1) == target).float()})

        def report(self, result):
            TOLD.append(result)
            picture = Image.new("RGB", (40, 10), (255, 255, 255))
            canvas = Canvas(picture)
            canvas.box((0, 2, 1 + 39 * result["metrics"]["hits"], 8), "")
            return canvas.png()

    return Bars()


PLUGIN = types.ModuleType("bars_plugin")
PLUGIN.ZOO_CONTRACT = "1.1"
PLUGIN.zoo_heads = hookimpl(lambda: [HeadPart("bars", _bars_head, "draws its accuracy", labels="classes",
                                              targets=TargetReader(("folders",)))])


def test_a_head_draws_its_own_picture_into_the_report(tmp_path):
    registry = isolated_registry(bars=PLUGIN)
    shapes = class_folders(tmp_path / "shapes", per_class=2)
    model = zoo.build("resnet18+bars2", registry=registry, img_size=32)
    TOLD.clear()
    result = zoo.evaluate(model, shapes / "val", batch_size=4, out=tmp_path / "report", registry=registry)
    assert TOLD == [{"metrics": {"hits": result["metrics"]["bars2/hits"]}, "images": 4}]
    written = tmp_path / "report" / "report-bars2.png"
    assert result["reports"] == {"bars2": str(written)}
    assert Image.open(io.BytesIO(written.read_bytes())).size == (40, 10)


def test_heads_without_a_picture_write_nothing_and_make_no_folder(tmp_path):
    table = keypoint_table(tmp_path / "points", count=4)
    out = tmp_path / "deep" / "report"
    result = zoo.evaluate(zoo.build("resnet18+kp1", img_size=32), table, batch_size=4, out=out)
    assert result["images"] == 4
    assert not (tmp_path / "deep").exists() and "reports" not in result


def test_an_out_path_that_is_a_file_is_refused_before_evaluating(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    with pytest.raises(zoo.ZooError, match=r"--out .*taken is a file; give a folder"):
        zoo.evaluate(zoo.build("resnet18+kp1", img_size=32), keypoint_table(tmp_path / "p", count=2), out=taken)
    assert taken.read_text() == "mine"
