"""zoo.fit trains real tiny models for every built-in head, saves the best and last epochs with what decides
what they compute, and zoo.evaluate reads them back."""
from __future__ import annotations

import json

import pytest
import torch
from drawn_data import age_gender_table, class_folders, coco, keypoint_table

import zoo


def test_classification_from_class_folders_learns_and_records_everything(tmp_path):
    data = class_folders(tmp_path / "shapes")
    out = tmp_path / "shapes.safetensors"
    result = zoo.fit("resnet18+cls2", data, epochs=3, batch_size=6, img_size=32, lr=0.02, output=out)
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    assert result.files["best"] == str(out) and (tmp_path / "shapes-last.safetensors").is_file()
    assert (tmp_path / "shapes.history.csv").read_text().startswith("epoch,lr,train/loss")
    assert json.loads((tmp_path / "shapes.history.json").read_text())[0]["images_per_s"] > 0
    assert (tmp_path / "shapes.curves.png").read_bytes()[:4] == b"\x89PNG"
    model = zoo.load(out)
    assert model.image_size == (32, 32) and model.labels == {"cls2": ["blue", "red"]}
    assert model.record["preprocessing"]["size"] == [32, 32]
    assert model.record["training"]["epoch"] == result.best_epoch and model.record["training"]["epochs"] == 3
    found = zoo.evaluate(out, data)
    assert found["metrics"]["cls2/accuracy"] == pytest.approx(result.metrics["cls2/accuracy"])
    assert found["metrics"]["cls2/accuracy"] >= 0.75


def test_best_epoch_is_the_one_kept(tmp_path):
    data = class_folders(tmp_path / "shapes", per_class=3)
    result = zoo.fit("resnet18+cls2", data, epochs=3, batch_size=6, img_size=32, lr=0.5, seed=1)
    losses = [row["val/loss"] for row in result.history]
    assert result.best_epoch == 1 + losses.index(min(losses))
    assert zoo.evaluate(result.model, data)["loss"] == pytest.approx(min(losses), rel=1e-4)


def test_keypoints_from_a_table_in_pixels(tmp_path):
    table = keypoint_table(tmp_path / "dots", suffix=".jsonl")
    result = zoo.fit("resnet18+kp1:hidden=32,channels=16", table, val=table, epochs=2, batch_size=4, img_size=32,
                     optimizer="adamw", lr=1e-3)
    assert "val/kp1/pixel_error" in result.history[-1]
    assert result.history[-1]["train/loss"] < result.history[0]["train/loss"] * 1.5


def test_age_and_gender_from_a_csv(tmp_path):
    table = age_gender_table(tmp_path / "faces")
    result = zoo.fit("resnet18+agegender:hidden=16", table, val_split=0.25, epochs=2, batch_size=4, img_size=32)
    assert {"val/agegender/age_mae", "val/agegender/gender_accuracy"} <= set(result.history[-1])


def test_detection_from_coco_json_names_its_labels(tmp_path):
    boxes = coco(tmp_path / "scenes", count=4)
    out = tmp_path / "boxes.safetensors"
    result = zoo.fit("resnet18+det2:min_size=64,max_size=64,channels=32", boxes, val=boxes, epochs=1,
                     batch_size=2, output=out, lr=0.005)
    assert "val/det2/map" in result.history[0]
    assert zoo.load(out).labels == {"det2": ["background", "box"]}
    assert "det2/map_50" in zoo.evaluate(out, boxes)["metrics"]


def test_multitask_from_one_table(tmp_path):
    table = keypoint_table(tmp_path / "dots")
    text = table.read_text().splitlines()
    table.write_text("\n".join([text[0] + ",label"] + [line + f",{i % 2}" for i, line in enumerate(text[1:])]) + "\n")
    result = zoo.fit("resnet18+cls2+kp1:hidden=16,channels=16", table, val=table, epochs=1, batch_size=4, img_size=32)
    assert {"val/cls2/accuracy", "val/kp1/pixel_error"} <= set(result.history[0])


def test_your_own_dataloader(tmp_path):
    torch.manual_seed(0)
    images, labels = torch.randn(8, 3, 32, 32), torch.tensor([0, 1] * 4)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=4)
    result = zoo.fit(zoo.build("resnet18+cls2"), loader, loader, epochs=1)
    assert result.history[0]["val/cls2/accuracy"] >= 0.0


def test_gradual_unfreezing_trains_the_stage_from_its_epoch(tmp_path):
    data = class_folders(tmp_path / "shapes", per_class=2)
    model = zoo.build("resnet18+cls2", freeze="all")
    before = model.backbone.layer4[0].conv1.weight.detach().clone()
    layer3 = model.backbone.layer3[0].conv1.weight.detach().clone()
    result = zoo.fit(model, data, epochs=2, batch_size=4, img_size=32, unfreeze="2:layer4", schedule="constant")
    assert result.model.freeze_policy == "zoo/before:layer4"
    assert not torch.equal(before, model.backbone.layer4[0].conv1.weight)
    assert torch.equal(layer3, model.backbone.layer3[0].conv1.weight)


def test_an_interrupted_run_writes_only_its_checkpoint(tmp_path):
    data = class_folders(tmp_path / "shapes", per_class=2)

    def interrupt(row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        zoo.fit("resnet18+cls2", data, epochs=2, batch_size=4, img_size=32, output=tmp_path / "m.safetensors",
                on_epoch=interrupt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.checkpoint.pt", "shapes"]


def test_the_best_epoch_is_chosen_by_validation_even_when_training_loss_disagrees(tmp_path):
    """Validation images coloured against their labels (red squares in val/blue, blue ones in val/red): the
    better the model learns the training images, the worse it does on validation, so the training loss falls
    while the validation loss rises and the best epoch is the first, not the last."""
    data = class_folders(tmp_path / "shapes", per_class=4)
    (data / "val" / "blue").rename(data / "val" / "swap")
    (data / "val" / "red").rename(data / "val" / "blue")
    (data / "val" / "swap").rename(data / "val" / "red")
    out = tmp_path / "m.safetensors"
    result = zoo.fit("resnet18+cls2", data, epochs=3, batch_size=4, img_size=32, lr=0.05, augment=False,
                     freeze="layer4", seed=1, output=out, progress=False)
    train = [row["train/loss"] for row in result.history]
    val = [row["val/loss"] for row in result.history]
    assert train == sorted(train, reverse=True) and val == sorted(val)  # they disagree at every epoch
    best = result.best_epoch
    assert best == 1 + val.index(min(val)) == 1 and best != 1 + train.index(min(train))
    chosen = {k[4:]: v for k, v in result.history[best - 1].items() if k.startswith("val/")}
    assert result.metrics == chosen
    saved = zoo.load(out)
    assert saved.record["metrics"] == chosen and saved.record["training"]["epoch"] == best
    assert zoo.evaluate(out, data / "val")["loss"] == pytest.approx(val[best - 1], rel=1e-4)
    assert zoo.evaluate(tmp_path / "m-last.safetensors", data / "val")["loss"] == pytest.approx(val[-1], rel=1e-4)
