"""zoo bench spends its time on the timed steps: the matmul yardstick is kept per machine, FLOPs are
counted once per network and mode inside a warm-up step, and a fresh yardstick's budget follows the
timed work. Tiny inputs; nothing here asserts how fast the machine is."""
from __future__ import annotations

import json

import pytest
import torch

import zoo
from zoo._runtime import machine
from zoo.benchmark import _runner, _workload

TINY = {"img_size": 32, "batch_size": 2, "warmup": 1, "iters": 2, "repeats": 2}


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """An empty cache directory and no yardstick measured in this process yet."""
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(machine, "_MEASURED", {})
    return tmp_path


def _products(monkeypatch) -> list[float]:
    """Records the time budget of every yardstick measurement."""
    budgets: list[float] = []
    original = machine._best_seconds

    def counted(size, device, dtype, seconds):
        budgets.append(seconds)
        return original(size, device, dtype, seconds)

    monkeypatch.setattr(machine, "_best_seconds", counted)
    return budgets


def test_yardstick_is_kept_on_disk_and_a_later_process_only_checks_it(own_cache, monkeypatch):
    budgets = _products(monkeypatch)
    first = machine.matmul_gflops(size=64, seconds=0.05)
    kept = list(own_cache.glob("torch-*-matmul-cpu-float32-*.json"))
    assert first["kept"] is False and len(kept) == 1 and budgets == [0.05]
    assert json.loads(kept[0].read_text())["gflops"] == first["gflops"]
    monkeypatch.setattr(machine, "_MEASURED", {})  # as a new process sees it
    again = machine.matmul_gflops(size=64, seconds=0.05)
    assert again["kept"] is True and budgets == [0.05, 0.0]  # three products, no budget
    assert again["gflops"] >= first["gflops"]
    assert [entry.kind for entry in zoo.cache_entries(root=own_cache)] == ["lists"]  # zoo cache clears it


def test_a_faster_check_replaces_the_kept_yardstick_and_a_slower_one_does_not(own_cache, monkeypatch):
    machine.matmul_gflops(size=64, seconds=0.0)
    path = next(own_cache.glob("torch-*-matmul-*.json"))
    path.write_text(json.dumps({**json.loads(path.read_text()), "gflops": 1e-6}))  # a busy moment was kept
    monkeypatch.setattr(machine, "_MEASURED", {})
    checked = machine.matmul_gflops(size=64)
    assert checked["gflops"] > 1e-6 and json.loads(path.read_text())["gflops"] == checked["gflops"]
    path.write_text(json.dumps({**json.loads(path.read_text()), "gflops": 1e12}))  # better than any check
    monkeypatch.setattr(machine, "_MEASURED", {})
    assert machine.matmul_gflops(size=64)["gflops"] == 1e12


def test_an_unreadable_kept_yardstick_is_measured_again(own_cache):
    machine.matmul_gflops(size=64, seconds=0.0)
    path = next(own_cache.glob("torch-*-matmul-*.json"))
    path.write_text("{not json")
    machine._MEASURED.clear()
    assert machine.matmul_gflops(size=64, seconds=0.0)["kept"] is False
    assert json.loads(path.read_text())["gflops"] > 0


def test_the_yardstick_size_fits_the_device_and_dtype(monkeypatch):
    assert machine.yardstick_size("cpu", torch.float32) == 1024
    monkeypatch.setattr(machine, "native_bf16_cpu", lambda: False)
    assert machine.yardstick_size("cpu", torch.bfloat16) == 256  # emulated: ~100x slower
    assert machine.yardstick_size("cuda", torch.bfloat16) == 8192


def test_a_fresh_yardstick_costs_a_twentieth_of_the_timed_work_at_most(own_cache, monkeypatch):
    budgets = _products(monkeypatch)
    report = zoo.bench("resnet18+cls10", mode="infer", **TINY)
    timed = sum(1 / rate * TINY["batch_size"] * TINY["iters"] for run in report.runs
                for rate in run.timing["repeats_images_per_s"])
    assert len(budgets) == 1 and budgets[0] <= max(0.02, timed / 20) * 1.01  # rates are reported rounded
    assert report.matmul["size"] == 1024 and report.matmul["gflops"] > 0


def test_flops_are_counted_once_per_network_and_mode_and_shared_with_the_reference(own_cache, monkeypatch):
    counted = []
    original = _workload.count_flops
    monkeypatch.setattr(_workload, "count_flops", lambda run: (counted.append(1), original(run))[1])
    monkeypatch.setattr(_workload.Workload, "flops_per_image",
                        lambda self: pytest.fail("an eager model's FLOPs come from its warm-up step"))
    report = zoo.bench("resnet18+cls10", mode="both", vs_reference=True, **TINY)
    assert len(counted) == 2  # infer and train, for the zoo model and torchvision's alike
    for mode in ("infer", "train"):
        ours, theirs = report.run(mode, "zoo"), report.run(mode, "torchvision")
        assert ours.gflops_per_image == theirs.gflops_per_image > 0
    assert 2.5 < report.run("train").gflops_per_image / report.run("infer").gflops_per_image < 3.5


def test_flops_counted_in_the_warm_up_match_a_pass_of_their_own():
    model = zoo.build("resnet18+cls10")
    for mode in ("infer", "train"):
        workload = _workload.Workload(model, mode, 2, 32, torch.device("cpu"))
        seconds, counted = workload.warm_up(2, _runner.device_clock("cpu"), counting=True)
        assert len(seconds) == 2 and counted == pytest.approx(workload.flops_per_image(), rel=1e-6)
        workload.release()
