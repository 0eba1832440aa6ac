"""zoo train, zoo eval and zoo predict on the same images: one model file read by every command, and every
mistake in the data one line with exit code 2 before training starts."""
from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from drawn_data import age_gender_table, class_folders, coco, keypoint_table

from zoo.cli import cli


def _without_notes(text: str) -> str:
    """What a command printed, less its ``zoo: note:`` lines: a note shows the first time its warning is raised
    in a process, so whether one shows here depends on which test ran before."""
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("zoo: note:"))


def zoo(*args) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return _without_notes(result.output)


def fails(*args) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    lines = [line for line in _without_notes(result.output).strip().splitlines() if not line.startswith("zoo: warning")]
    assert len(lines) == 1 and lines[0].startswith("zoo: error: "), result.output
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    data = class_folders(root / "shapes", classes=("blue", "green", "red"), per_class=4)
    out = root / "shapes.safetensors"
    text = zoo("train", "resnet18+cls3", data, "-o", out, "--epochs", 2, "-b", 6, "--img-size", 32, "--lr", 0.02,
               "--freeze", "layer3", "--backbone-lr", 0.1, "--warmup", 1, "--schedule", "step", "--seed", 3)
    return data, out, text


def test_train_prints_one_line_per_epoch_and_saves(trained):
    data, out, text = trained
    lines = text.strip().splitlines()
    assert lines[0].startswith("epoch 1: train/loss") and lines[1].startswith("epoch 2: ")
    assert "val/cls3/accuracy" in lines[0] and "img/s" in lines[0]
    assert lines[-1].startswith("saved: ") and str(out) in lines[-1], lines
    info = json.loads(zoo("info", out, "--json"))
    assert info["input_size"] == [3, 32, 32] and info["labels"] == {"cls3": ["blue", "green", "red"]}
    assert info["training"]["optimizer"] == "sgd" and info["training"]["backbone_lr"] == 0.1
    assert info["preprocessing"]["size"] == [32, 32] and set(info["metrics"]) >= {"loss", "cls3/accuracy"}


def test_eval_and_predict_agree_on_the_same_images(trained, tmp_path):
    data, out, _ = trained
    found = json.loads(zoo("eval", out, data, "--json", "--out", tmp_path))
    assert set(found["metrics"]) == {"cls3/accuracy"}  # top-5 of 3 classes would always be 1
    assert (tmp_path / "confusion-cls3.png").read_bytes()[:4] == b"\x89PNG"
    answers = json.loads(zoo("predict", out, data / "val", "-b", 5, "--json"))
    assert len(answers) == found["images"] == 12
    right = sum(a["outputs"]["cls3"]["label"] == a["image"].split("/")[-2] for a in answers)
    assert right / len(answers) == pytest.approx(found["metrics"]["cls3/accuracy"])
    per_class = found["classes"]["cls3"]["per_class_accuracy"]
    for name, accuracy in per_class.items():
        mine = [a for a in answers if a["image"].split("/")[-2] == name]
        assert sum(a["outputs"]["cls3"]["label"] == name for a in mine) / len(mine) == pytest.approx(accuracy)


def test_eval_fast_runs_compiled_and_gives_the_metrics_of_eval(trained, monkeypatch):
    import torch

    from zoo._runtime import compiled as _fast
    data, out, _ = trained
    plain = json.loads(zoo("eval", out, data, "--json"))
    monkeypatch.setattr(_fast, "native_bf16", lambda device: False)  # fp32 compiled: the same answers to float noise
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    fast = json.loads(zoo("eval", out, data, "--json", "--fast"))
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
    assert fast["classes"] == plain["classes"] and fast["images"] == plain["images"]
    assert fast["loss"] == pytest.approx(plain["loss"], rel=1e-4)
    torch._dynamo.reset()


def test_fast_commands_print_no_stray_torch_note(trained, run_zoo):
    """torch, built for CUDA, notes that it found no CUDA runtime when it first compiles on a CPU machine."""
    data, out, _ = trained
    done = run_zoo("eval", str(out), str(data), "--fast")
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout.startswith("torchvision/resnet18+zoo/cls3 on ")


def test_predict_takes_globs(trained):
    data, out, _ = trained
    answers = json.loads(zoo("predict", out, str(data / "val" / "red" / "*.png"), "--json"))
    assert len(answers) == 4


def test_train_refuses_to_overwrite_and_writes_nothing_on_bad_data(trained, tmp_path):
    data, out, _ = trained
    assert "exists; use --force" in fails("train", "resnet18+cls3", data, "-o", out)
    assert "has 3 classes (blue, green, red) and head cls5 has 5; use cls3" in fails(
        "train", "resnet18+cls5", data, "-o", tmp_path / "x.safetensors")
    assert not list(tmp_path.iterdir())


def test_train_json_and_quiet(tmp_path):
    data = class_folders(tmp_path / "d", per_class=2)
    result = json.loads(zoo("train", "resnet18+cls2", data, "-o", tmp_path / "m.safetensors", "--epochs", 1,
                            "-b", 4, "--img-size", 32, "--json"))
    assert result["best_epoch"] == 1 and len(result["history"]) == 1 and result["files"]["png"].endswith(".png")


def test_every_head_trains_from_the_command_line(tmp_path):
    points, faces, boxes = keypoint_table(tmp_path / "kp"), age_gender_table(tmp_path / "ag"), coco(tmp_path / "det", 4)
    common = ("--epochs", 1, "-b", 4, "--img-size", 32, "--quiet")
    zoo("train", "resnet18+kp1:hidden=16,channels=16", points, "--val", points, "-o", tmp_path / "kp.safetensors", *common)
    zoo("train", "resnet18+agegender:hidden=16", faces, "--val-split", 0.25, "-o", tmp_path / "ag.safetensors", *common)
    zoo("train", "resnet18+det2:min_size=64,max_size=64,channels=32", boxes, "--val", boxes,
        "-o", tmp_path / "det.safetensors", "--epochs", 1, "-b", 2, "--quiet")
    assert "kp1/pixel_error" in json.loads(zoo("eval", tmp_path / "kp.safetensors", points, "--json"))["metrics"]
    assert "agegender/age_mae" in json.loads(zoo("eval", tmp_path / "ag.safetensors", faces, "--json"))["metrics"]
    assert "det2/map" in json.loads(zoo("eval", tmp_path / "det.safetensors", boxes, "--json"))["metrics"]


@pytest.fixture
def folders(tmp_path):
    return class_folders(tmp_path / "shapes", per_class=2)


def test_data_mistakes_are_one_line(tmp_path, folders):
    out = tmp_path / "m.safetensors"
    assert "does not exist" in fails("train", "resnet18+cls2", tmp_path / "nowhere", "-o", out)
    (tmp_path / "empty").mkdir()
    assert "is empty" in fails("train", "resnet18+cls2", tmp_path / "empty", "-o", out)
    shutil.rmtree(folders / "val")
    assert "no val/" in fails("train", "resnet18+cls2", folders, "-o", out)
    for file in (folders / "train" / "red").iterdir():
        file.unlink()
    assert "has no images" in fails("train", "resnet18+cls2", folders, "-o", out, "--val-split", 0.5)


def test_one_class_is_refused_as_unable_to_train_a_classifier(tmp_path):
    data = class_folders(tmp_path / "one", classes=("red",), per_class=2)
    for spec in ("resnet18+cls1", "resnet18+cls2"):
        line = fails("train", spec, data, "-o", tmp_path / "m.safetensors")
        assert "has one class (red): one class cannot train a classifier" in line and "use cls" not in line
    assert not (tmp_path / "m.safetensors").exists()


def test_train_quiet_prints_nothing_at_all(tmp_path, run_zoo):
    data = class_folders(tmp_path / "d", per_class=2)
    done = run_zoo("train", "resnet18+cls2", str(data), "-o", str(tmp_path / "m.safetensors"), "--epochs", "1",
                   "-b", "4", "--img-size", "32", "--freeze", "layer4", "--quiet")
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "", (done.stdout, done.stderr)
    assert (tmp_path / "m.safetensors").is_file()


def test_zoo_fit_and_zoo_train_share_one_default_number_of_epochs():
    from zoo.training import DEFAULT_EPOCHS
    from zoo.training.loop import Settings

    epochs = next(p for p in cli.commands["train"].params if p.name == "epochs")
    assert Settings().epochs == epochs.default == DEFAULT_EPOCHS == 5


def test_table_mistakes_are_one_line(tmp_path):
    out = tmp_path / "m.safetensors"
    points = keypoint_table(tmp_path / "kp", count=4)
    assert "lacks column(s) x1, y1" in fails("train", "resnet18+kp2", points, "--val", points, "-o", out)
    assert "no validation split" in fails("train", "resnet18+kp1", points, "-o", out)
    lines = points.read_text().splitlines()
    points.write_text("\n".join(lines + ["missing.png,3,3"]) + "\n")
    assert "1 row(s) point at missing images, first points.csv:6" in fails(
        "train", "resnet18+kp1", points, "--val", points, "-o", out)
    points.write_text("\n".join(lines[:2] + ["dot1.png,500,3"]) + "\n")
    assert "point 0 (500, 3) lies outside the" in fails("train", "resnet18+kp1", points, "--val", points, "-o", out)
    faces = age_gender_table(tmp_path / "ag", count=2)
    assert "cannot learn from a table" in fails("train", "resnet18+det3", faces, "--val", faces, "-o", out)
    boxes = coco(tmp_path / "det", 2)
    assert "1 categories and head det3 has 3 classes counting the background; use det2" in fails(
        "train", "resnet18+det3", boxes, "--val", boxes, "-o", out)
    assert "--unfreeze 2:layer9: no stage 'layer9'" in fails(
        "train", "resnet18+kp1", points, "--val", points, "-o", out, "--unfreeze", "2:layer9", "--epochs", 2)
    assert not out.exists()


def test_unreadable_images_are_skipped_and_counted(tmp_path):
    data = class_folders(tmp_path / "shapes", per_class=10)
    (data / "train" / "red" / "0.png").write_bytes(b"not an image")
    text = zoo("train", "resnet18+cls2", data, "-o", tmp_path / "m.safetensors", "--epochs", 1, "-b", 4,
               "--img-size", 32)
    assert "1 unreadable skipped" in text
    for name in ("1", "2", "3"):
        (data / "train" / "red" / f"{name}.png").write_bytes(b"not an image")
    assert "4 of 20 images of" in fails("train", "resnet18+cls2", data, "-o", tmp_path / "n.safetensors",
                                        "--epochs", 1, "-b", 4, "--img-size", 32)


def test_a_batch_left_with_one_image_by_unreadable_files_is_skipped(tmp_path):
    """BatchNorm cannot train on one image: a batch that unreadable files leave with one is passed over."""
    data = class_folders(tmp_path / "shapes", per_class=10)
    (data / "train" / "red" / "0.png").write_bytes(b"not an image")
    (data / "train" / "blue" / "0.png").write_bytes(b"not an image")
    text = zoo("train", "resnet18+cls2", data, "-o", tmp_path / "m.safetensors", "--epochs", 2, "-b", 2,
               "--img-size", 32, "--no-feature-cache")
    assert "2 unreadable skipped" in text
    history = json.loads((tmp_path / "m.history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2] and all(row["skipped"] == 2 for row in history)


def test_train_and_eval_read_names_from_the_registry_overlay(tmp_path):
    """A preset defined only in the user's --registry file is known to zoo train and zoo eval too."""
    overlay = tmp_path / "mine.toml"
    overlay.write_text('[presets.shapes-probe]\nspec = "resnet18+cls3"\nfreeze = "all"\n', encoding="utf-8")
    data = class_folders(tmp_path / "shapes", classes=("blue", "green", "red"), per_class=3)
    out = tmp_path / "probe.safetensors"
    zoo("--registry", overlay, "train", "shapes-probe", data, "-o", out, "--epochs", 1, "-b", 6, "--img-size", 32,
        "--quiet")
    assert json.loads(zoo("info", out, "--json"))["freeze"] == "zoo/all"
    result = CliRunner().invoke(cli, ["--registry", str(overlay), "eval", "shapes-probe", str(data), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["images"] == 9  # the val/ folder
