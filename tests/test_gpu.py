"""The CUDA paths, end to end: training, the feature cache, eval, predict --fast, bench, export --check and
torchrun with NCCL, each on the GPU. Skipped where there is none; ``make gpu-check`` runs them.

``ZOO_GPU_TEST_DEVICE=cpu`` runs the same tests on the CPU (gloo for torchrun), to check them on a machine
without a GPU before they are taken to one.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from drawn_data import class_folders
from zoo.cli import cli

DEVICE = os.environ.get("ZOO_GPU_TEST_DEVICE", "cuda")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(DEVICE.startswith("cuda") and not torch.cuda.is_available(), reason="no CUDA device here"),
]


def _zoo(*args) -> dict:
    """``zoo ARGS --json``, checked, as data."""
    result = CliRunner().invoke(cli, [*map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A resnet18 fine-tuned one epoch on the device: (its file, its data, what zoo train said)."""
    root = tmp_path_factory.mktemp("gpu")
    data = class_folders(root / "shapes", per_class=8)
    output = root / "shapes.safetensors"
    result = _zoo("train", "resnet18+cls2", data, "-o", output, "--img-size", 32, "--epochs", 1, "-b", 4,
                  "--device", DEVICE, "--no-feature-cache")
    return output, data, result


def test_one_epoch_trains_on_the_device_and_records_it(trained):
    output, _, result = trained
    assert result["device"].startswith(DEVICE)
    assert all(row["device"].startswith(DEVICE) for row in result["history"])
    assert _zoo("info", output)["training"]["device"].startswith(DEVICE)


def test_auto_takes_the_gpu_where_there_is_one(trained, tmp_path):
    _, data, _ = trained
    env = {key: value for key, value in os.environ.items() if key != "ZOO_DEVICE"}
    done = subprocess.run([sys.executable, "-m", "zoo", "train", "resnet18+cls2", str(data), "-o",
                           str(tmp_path / "auto.safetensors"), "--img-size", "32", "--epochs", "1", "-b", "4",
                           "--no-feature-cache"], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert f"zoo: note: training on {expected}" in done.stderr


def test_the_feature_cache_is_built_on_the_device(trained, tmp_path):
    _, data, _ = trained
    result = _zoo("train", "resnet18+cls2", data, "-o", tmp_path / "frozen.safetensors", "--freeze", "all",
                  "--img-size", 32, "--epochs", 2, "-b", 4, "--device", DEVICE)
    assert result["feature_cache"] and result["feature_cache"]["built"]
    assert result["device"].startswith(DEVICE)


def test_eval_on_the_device(trained):
    output, data, _ = trained
    result = _zoo("eval", output, data, "--device", DEVICE)
    assert result["device"].startswith(DEVICE) and result["images"] == 16


def test_predict_fast_on_the_device_agrees_with_the_cpu(trained):
    output, data, _ = trained
    images = sorted(str(p) for p in (data / "val").rglob("*.png"))
    fast = _zoo("predict", output, *images, "--device", DEVICE, "--fast", "--top-k", 1)
    plain = _zoo("predict", output, *images, "--device", "cpu", "--top-k", 1)
    assert len(fast) == len(plain) == len(images)
    for a, b in zip(fast, plain):
        a, b = a["outputs"]["cls2"], b["outputs"]["cls2"]
        # bf16 keeps about three digits: the same probability, and the same class unless it is a near tie
        assert abs(a["probability"] - b["probability"]) < 0.03, (a, b)
        assert a["label"] == b["label"] or abs(b["probability"] - 0.5) < 0.03, (a, b)


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_bench_on_the_device(mode):
    report = _zoo("bench", "resnet18+cls10", "--device", DEVICE, "--mode", mode, "-b", 8, "--img-size", 64,
                  "--warmup", 1, "--iters", 2, "--repeats", 1)
    assert report["settings"]["device"].startswith(DEVICE)
    assert report["runs"][0]["images_per_s"] > 0


def test_export_check_from_a_model_on_the_device(trained, tmp_path):
    output, _, _ = trained
    report = _zoo("export", output, "-o", tmp_path / "model.pt2", "--check", "--device", DEVICE)
    assert report["check"]["device"].startswith(DEVICE)
    assert report["check"]["max_difference"] <= report["check"]["tolerance"]


@pytest.mark.distributed
def test_torchrun_one_process_trains_with_nccl(trained, tmp_path):
    _, data, _ = trained
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1",
                           "-m", "zoo", "train", "resnet18+cls2", str(data), "-o", str(tmp_path / "ddp.safetensors"),
                           "--img-size", "32", "--epochs", "1", "-b", "4", "--device", DEVICE, "--json"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["device"].startswith(DEVICE)
    processes = _zoo("info", tmp_path / "ddp.safetensors")["training"]["processes"]
    assert processes == {"count": 1, "backend": "nccl" if DEVICE.startswith("cuda") else "gloo"}
