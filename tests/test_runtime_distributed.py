"""zoo train, eval, predict and choose under torchrun: two CPU processes (gloo) share the images out; rank 0 alone writes
the one model file and prints, and what it prints is what one process computes over every image; more processes
than images is one clear line."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from drawn_data import class_folders, coco
from PIL import Image

import zoo
from zoo.cli import cli

TORCHRUN = str(Path(sys.executable).with_name("torchrun"))
pytestmark = [pytest.mark.distributed, pytest.mark.slow]


def _torchrun(processes: int, command: str, *args, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([TORCHRUN, "--standalone", "--nproc-per-node", str(processes), "-m", "zoo", command,
                           *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def _alone(*args) -> str:
    """What one process (this one) prints for ``zoo ARGS`` on stdout (its notes go to stderr)."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


def _one_clear_line(done: subprocess.CompletedProcess) -> str:
    """The one ``zoo: error:`` line of a failed torchrun; every process exited with 2, without a traceback of
    zoo's (torchrun adds its own report of the failed processes, a traceback of torchrun's included)."""
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("zoo: error:")]
    assert len(errors) == 1, done.stderr[-3000:]
    assert set(re.findall(r"exitcode\s*:\s*(\d+)", done.stderr)) == {"2"}, done.stderr[-3000:]
    assert str(Path(zoo.__file__).parent) not in done.stderr, done.stderr[-3000:]  # no frame of zoo's code
    return errors[0]


@pytest.fixture(scope="module")
def answering(tmp_path_factory):
    """A saved resnet18+cls3 whose answers differ from image to image, and nine images (an odd number, so
    the processes' shares differ). A fresh head answers one class for every image, so its weights are
    scaled up and its bias centres each class's logit over the nine images."""
    root = tmp_path_factory.mktemp("answering")
    data = class_folders(root / "shapes", classes=("blue", "green", "red"), per_class=3, splits=("",))
    torch.manual_seed(0)
    model = zoo.build("resnet18+cls3", img_size=32).eval()
    transform = zoo.transforms(model)
    images = torch.stack([transform(Image.open(p).convert("RGB")) for p in sorted(data.rglob("*.png"))])
    head = model.heads["cls3"].fc
    with torch.no_grad():
        head.weight.mul_(100)
        head.bias.sub_(model(images).mean(dim=0))
        assert len(set(model(images).argmax(dim=1).tolist())) == 3
    return root, data, zoo.save(model, root / "varied.safetensors", labels=["blue", "green", "red"])


def test_eval_on_two_processes_gives_the_metrics_of_one(answering):
    root, data, model = answering
    args = [model, data, "-b", 2, "--json", "--out", root / "confusion"]  # 5 batches: 3 for rank 0, 2 for rank 1
    done = _torchrun(2, "eval", *args, cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    shared = json.loads(done.stdout)  # one JSON document: rank 1 printed nothing
    alone = json.loads(_alone("eval", *args))
    assert shared == alone
    predicted = [sum(column) for column in zip(*shared["classes"]["cls3"]["confusion_matrix"])]
    assert shared["images"] == 9 and sum(1 for count in predicted if count) > 1
    assert Path(shared["classes"]["cls3"]["confusion_png"]).read_bytes()[:4] == b"\x89PNG"


def test_detection_eval_on_two_processes_gives_the_map_of_one(tmp_path):
    """torchmetrics' mAP, computed on rank 0 alone, must not wait for the other process to compute too."""
    boxes = coco(tmp_path / "det", 5)
    torch.manual_seed(0)
    model = zoo.save(zoo.build("resnet18+det2:min_size=64,max_size=64,channels=32"), tmp_path / "det.safetensors",
                     labels=["background", "box"])
    args = [model, boxes, "-b", 2, "--json"]  # batches of 2, 2 and 1 images
    done = _torchrun(2, "eval", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    shared = json.loads(done.stdout)
    assert shared == json.loads(_alone("eval", *args))
    assert shared["images"] == 5 and shared["metrics"]["det2/map_50"] > 0


def test_predict_on_two_processes_answers_every_image_in_order(answering):
    root, data, model = answering
    done = _torchrun(2, "predict", model, data, "-b", 2, "--json", "--out", root / "drawn2", cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    shared = json.loads(done.stdout)
    alone = json.loads(_alone("predict", model, data, "-b", 2, "--json", "--out", root / "drawn1"))

    def drawn_by_name(answers):
        return [{**answer, "drawn": Path(answer["drawn"]).name} for answer in answers]

    assert drawn_by_name(shared) == drawn_by_name(alone)
    assert len({answer["outputs"]["cls3"]["label"] for answer in shared}) > 1
    assert sorted(p.name for p in (root / "drawn2").iterdir()) == sorted(Path(a["drawn"]).name for a in shared)
    assert len(shared) == 9


def test_two_processes_train_one_model_written_once(tmp_path):
    """With --fast too: the processes agree on one training form, and none compiles."""
    data = class_folders(tmp_path / "shapes", per_class=4)
    done = _torchrun(2, "train", "resnet18+cls2", data, "-o", "m.safetensors", "--epochs", 2, "-b", 2,
                     "--img-size", 32, "--freeze", "layer4", "--fast", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)  # one JSON document: rank 1 printed nothing
    assert [row["epoch"] for row in result["history"]] == [1, 2]
    assert result["form"]["channels_last"] and not result["form"]["compiled"]
    names = {p.name for p in tmp_path.iterdir()} - {"m.curves.png"}  # the curves need matplotlib
    assert names == {"m-last.safetensors", "m.history.csv", "m.history.json", "m.safetensors", "shapes"}
    model = zoo.load(tmp_path / "m.safetensors")
    assert model.record["training"]["train_images"] == 8 and model.freeze_policy == "zoo/before:layer4"


def test_a_run_stopped_in_one_process_resumes_on_two(tmp_path):
    """Every process reads the checkpoint, so none starts over; with --fast all go on in the form the run began
    with (one process measuring while another does not would leave them waiting on each other)."""
    data = class_folders(tmp_path / "shapes", per_class=4)

    def stop(row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        zoo.fit("resnet18+cls2", data, output=tmp_path / "m.safetensors", epochs=3, batch_size=2, img_size=32,
                freeze="layer4", fast=True, progress=False, on_epoch=stop)
    done = _torchrun(2, "train", "resnet18+cls2", data, "-o", "m.safetensors", "--epochs", 3, "-b", 2, "--img-size", 32,
                     "--freeze", "layer4", "--fast", "--resume", "--json", cwd=tmp_path, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert [row["epoch"] for row in result["history"]] == [1, 2, 3]
    assert not (tmp_path / "m.checkpoint.pt").exists() and (tmp_path / "m.safetensors").is_file()


def test_two_processes_report_train_and_val_metrics_over_every_image(tmp_path):
    """A head that answers "blue" for every image, on 3 blue and 5 red images: accuracy 3/8 over all of them,
    which neither process's share of 4 can give (0, 1/4, 1/2 or 3/4). Validation on the saved model's weights
    (layer4's BatchNorm statistics are rank 0's) gives what one process gives. A learning rate of 1e-6 keeps
    the answers as they are; BatchNorm's statistics still follow each process's own batches."""
    data = class_folders(tmp_path / "shapes", per_class=5)
    for split in ("train", "val"):
        for i in (3, 4):
            (data / split / "blue" / f"{i}.png").unlink()
    torch.manual_seed(0)
    model = zoo.build("resnet18+cls2", img_size=32)
    with torch.no_grad():
        model.heads["cls2"].fc.bias.copy_(torch.tensor([10.0, -10.0]))  # blue wins; the loss still follows the features
    zoo.save(model, tmp_path / "blue.safetensors", labels=["blue", "red"])
    done = _torchrun(2, "train", "blue.safetensors", data, "-o", "m.safetensors", "--epochs", 1, "-b", 2,
                     "--lr", 1e-6, "--freeze", "layer4", "--no-augment", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    row = json.loads(done.stdout)["history"][0]
    assert row["train/cls2/accuracy"] == 3 / 8
    assert row["val/cls2/accuracy"] == 3 / 8  # batches [b b] [r r] on rank 0 alone would give 1/2
    alone = zoo.evaluate(tmp_path / "m-last.safetensors", data, batch_size=2)
    assert (row["val/loss"], row["val/cls2/accuracy"]) == (alone["loss"], alone["metrics"]["cls2/accuracy"])


def test_more_processes_than_training_images_is_one_clear_line(tmp_path):
    data = class_folders(tmp_path / "shapes", per_class=1)
    done = _torchrun(3, "train", "resnet18+cls2", data, "-o", "m.safetensors", "--img-size", 32, cwd=tmp_path)
    assert _one_clear_line(done) == "zoo: error: 3 processes but only 2 training images; use at most 2 processes"


def test_more_processes_than_images_to_evaluate_or_predict_is_one_clear_line(answering, tmp_path):
    _, _, model = answering
    data = class_folders(tmp_path / "two", classes=("blue", "red"), per_class=1, splits=("",))
    assert _one_clear_line(_torchrun(3, "eval", model, data, cwd=tmp_path)) == (
        "zoo: error: 3 processes but only 2 images to evaluate; use at most 2 processes")
    assert _one_clear_line(_torchrun(3, "predict", model, data, cwd=tmp_path)) == (
        "zoo: error: 3 processes but only 2 images to predict; use at most 2 processes")


def test_two_processes_count_every_image_in_the_training_loss_and_rate(tmp_path):
    """The training loss, the images counted and the rate are sums over the processes, not one process's: with
    the backbone frozen (no BatchNorm batch statistics) and a learning rate too small to move the head, each
    image's loss is the same whichever process and batch it falls in, so two processes report the mean loss of
    one process over the same eight images, and the rate counts all eight (images_per_s times seconds)."""
    data = class_folders(tmp_path / "shapes", per_class=4)
    args = ["resnet18+cls2", data, "--epochs", 1, "-b", 2, "--img-size", 32, "--freeze", "all", "--lr", 1e-9,
            "--no-augment", "--no-feature-cache", "--json"]
    done = _torchrun(2, "train", *args, "-o", "two.safetensors", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    shared = json.loads(done.stdout)["history"][0]
    alone = json.loads(_alone("train", *args, "-o", tmp_path / "one.safetensors"))["history"][0]

    def counted(row):
        return row["images_per_s"] * row["seconds"]

    assert counted(alone) == pytest.approx(8, rel=0.01)
    assert counted(shared) == pytest.approx(8, rel=0.01)  # 4 per process: one process's count would be 4
    assert shared["skipped"] == alone["skipped"] == 0
    assert shared["train/loss"] == pytest.approx(alone["train/loss"], rel=1e-5)
    assert shared["train/cls2/accuracy"] == alone["train/cls2/accuracy"]


def test_zoo_choose_on_two_processes_shares_the_candidates_and_ranks_as_one(tmp_path, monkeypatch):
    """Each process measures its share of the candidates (fresh caches: nothing is read back), rank 0 alone
    prints, and every candidate's quality is what one process finds."""
    data = class_folders(tmp_path / "shapes", per_class=6, splits=("",))
    args = ["choose", data, "resnet18", "timm/test_convnext", "timm/test_efficientnet", "--allow-random",
            "--img-size", 32, "-b", 4, "--json"]
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "alone-cache"))
    alone = json.loads(_alone(*args))
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "shared-cache"))
    done = _torchrun(2, *map(str, args), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    shared = json.loads(done.stdout)  # one JSON document: rank 1 printed nothing

    def quality(found):
        return {row["name"]: (row["accuracy"], row["knn_accuracy"]) for row in found["candidates"]}

    assert len(quality(shared)) == 3 and quality(shared) == quality(alone)
    assert all(row["measured"]["quality"] for row in shared["candidates"])


def test_two_processes_name_every_unreadable_training_image(tmp_path):
    """Each process reads its share of the images; the history names the unreadable files of both."""
    data = class_folders(tmp_path / "shapes", per_class=20)
    broken = sorted((data / "train").rglob("*.png"))[::10]
    for path in broken:
        path.write_bytes(b"not an image")
    done = _torchrun(2, "train", "resnet18+cls2", data, "--epochs", 1, "-b", 4, "--img-size", 32, "--freeze", "all",
                     "--no-feature-cache", "--json", "-o", "m.safetensors", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    row = json.loads(done.stdout)["history"][0]
    assert row["skipped"] == len(broken) == 4
    assert sorted(row["unreadable"]) == sorted(str(path) for path in broken)
