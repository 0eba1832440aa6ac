"""zoo train under torchrun: two CPU processes (gloo) each train on their share of the images, and rank 0 alone
writes the one model file; more processes than training images is one clear line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from drawn_data import class_folders

import zoo

TORCHRUN = str(Path(sys.executable).with_name("torchrun"))


def _torchrun(processes: int, *args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([TORCHRUN, "--standalone", "--nproc-per-node", str(processes), "-m", "zoo", "train",
                           *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=900)


def test_two_processes_train_one_model_written_once(tmp_path):
    data = class_folders(tmp_path / "shapes", per_class=4)
    done = _torchrun(2, "resnet18+cls2", data, "-o", "m.safetensors", "--epochs", 2, "-b", 2, "--img-size", 32, "--freeze", "layer4",
                     "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)  # one JSON document: rank 1 printed nothing
    assert [row["epoch"] for row in result["history"]] == [1, 2]
    names = {p.name for p in tmp_path.iterdir()} - {"m.curves.png"}  # the curves need matplotlib
    assert names == {"m-last.safetensors", "m.history.csv", "m.history.json", "m.safetensors", "shapes"}
    model = zoo.load(tmp_path / "m.safetensors")
    assert model.record["training"]["train_images"] == 8 and model.freeze_policy == "zoo/before:layer4"


def test_more_processes_than_training_images_is_one_clear_line(tmp_path):
    data = class_folders(tmp_path / "shapes", per_class=1)
    done = _torchrun(3, "resnet18+cls2", data, "-o", "m.safetensors", "--img-size", 32, cwd=tmp_path)
    assert done.returncode != 0
    assert "zoo: error: 3 processes but only 2 training images; use at most 2 processes" in done.stderr
    assert "Traceback" not in done.stderr.split("zoo: error:")[0]
