"""The benchmarks/ suite runs end to end and writes its files; tiny sizes, so it says nothing of speed."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

import zoo

ROOT = Path(__file__).resolve().parent.parent


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_every_model_of_the_matrix_resolves(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from run_matrix import MATRIX

    specs = [entry.spec for entry in MATRIX]
    assert {"resnet18+cls10", "resnet50+cls10", "vgg16+cls10"} <= set(specs)
    assert any(spec.startswith("timm/") for spec in specs)
    for spec in specs:
        zoo.resolve(spec)


def test_matrix_writes_csv_json_markdown_and_machine(tmp_path):
    run("run_matrix.py", "--quick", "--models", "resnet18+cls10", "--out", str(tmp_path))
    with open(tmp_path / "matrix.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["mode"], r["freeze"]) for r in rows] == [
        ("infer", "any"), ("train", "zoo/none"), ("train", "zoo/before:layer4"), ("train", "zoo/all")]
    trainable = [int(r["trainable_params"]) for r in rows[1:]]
    assert trainable == sorted(trainable, reverse=True) and trainable[-1] == 5130
    data = json.loads((tmp_path / "matrix.json").read_text())
    assert len(data["reports"]) == 4 and data["machine"]["cpu"]
    assert "| resnet18+cls10 | train | zoo/before:layer4 |" in (tmp_path / "matrix.md").read_text()
    assert json.loads((tmp_path / "machine.json").read_text())["loadavg"]
    pytest.importorskip("matplotlib", reason="the plot needs the bench extra (matplotlib)")
    assert (tmp_path / "matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_targets_write_each_ratio(tmp_path):
    run("targets.py", "--quick", "--spec", "resnet18+cls10", "--only", "reference,freeze", "--out", str(tmp_path))
    results = json.loads((tmp_path / "targets.json").read_text())["results"]
    assert [(r["target"], r["mode"]) for r in results] == [("reference", "infer"), ("reference", "train"),
                                                           ("freeze", "train")]
    for r in results:  # one repeat each: the ratio of the repeat is the ratio of the medians
        assert r["ratio"] == pytest.approx(r["subject_images_per_s"] / r["baseline_images_per_s"], rel=1e-2)
        assert r["ratio_range"] == [r["ratio"], r["ratio"]]
    text = (tmp_path / "targets.md").read_text()
    assert "zoo-built over torchvision-built" in text and "--freeze=all over --freeze=none" in text


def test_an_unknown_target_is_refused():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "targets.py"), "--only", "speed"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "unknown target 'speed'" in result.stderr


def test_results_of_cpus_sold_under_one_name_are_kept_apart():
    from zoo._runtime.machine import isa_tier, machine_slug

    avx2 = {"cpu": "AMD EPYC", "usable_cpus": 2, "cpu_isa": isa_tier({"avx2", "fma"})}
    zen4 = {"cpu": "AMD EPYC", "usable_cpus": 2, "cpu_isa": isa_tier({"avx2", "avx512f", "avx512_bf16"})}
    spr = {"cpu": "Intel(R) Xeon(R) Platinum 8480+", "usable_cpus": 2,
           "cpu_isa": isa_tier({"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})}
    assert machine_slug(avx2) == "amd-epyc-avx2-2cpu"
    assert machine_slug(zen4) == "amd-epyc-avx512-bf16-2cpu"
    assert machine_slug(spr) == "intel-xeon-platinum-8480-amx-2cpu"
    assert machine_slug({"gpu": "NVIDIA H100 80GB HBM3", "cpu": "x", "usable_cpus": 2}) == "nvidia-h100-80gb-hbm3"
