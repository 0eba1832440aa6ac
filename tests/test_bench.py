"""zoo.bench measures correctly: it warms up, counts, synchronises, reports FLOPs and memory, and copes
with a batch that does not fit. Tiny inputs keep it fast; nothing here asserts how fast the machine is."""
from __future__ import annotations

import copy
import os
import statistics
import warnings

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import zoo
from zoo._runtime.timing import Clock, Timing, device_clock, interleave, time_loop, warm_up
from zoo.benchmark._memory import PeakMemory
from zoo.benchmark._workload import Workload
from zoo.errors import ZooError, ZooWarning

TINY = {"img_size": 32, "batch_size": 2, "warmup": 1, "iters": 2, "repeats": 3}


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def step(self, name: str):
        return lambda: self.events.append(name)

    def sync(self) -> None:
        self.events.append("sync")


def test_warm_up_is_untimed_and_each_loop_runs_its_steps():
    recorder = Recorder()
    clock = Clock(recorder.sync)
    assert len(warm_up(recorder.step("w"), 3, clock)) == 3
    recorder.events.clear()
    seconds = time_loop(recorder.step("s"), 4, clock)
    assert seconds >= 0
    # the device is waited for at the edges of the loop only, so its queue stays full in between
    assert recorder.events == ["sync", "s", "s", "s", "s", "sync"]


def test_interleave_alternates_models_repeat_by_repeat():
    recorder = Recorder()
    timings = [Timing(2, 1), Timing(2, 1)]
    interleave([recorder.step("a"), recorder.step("b")], timings, 3, Clock())
    assert recorder.events == ["a", "b", "b", "a", "a", "b"]
    assert [len(t.repeat_seconds) for t in timings] == [3, 3]


def test_cuda_clock_synchronises_the_device(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    device = torch.device("cuda:0")
    device_clock(device).now()
    assert calls == [device]
    device_clock(torch.device("cpu")).now()
    assert calls == [device]


def test_timing_median_spread_and_ms_per_batch():
    timing = Timing(batch_size=4, iters=2, repeat_seconds=[1.0, 2.0, 4.0])
    assert timing.images_per_second == [8.0, 4.0, 2.0]
    assert timing.median == 4.0
    assert timing.ms_per_batch == 1000.0
    assert timing.spread == pytest.approx((8.0 - 2.0) / 4.0)


def test_bench_counts_warmup_and_timed_steps(monkeypatch):
    calls = []
    original = Workload.step
    monkeypatch.setattr(Workload, "step", lambda self: (calls.append(self.mode), original(self))[1])
    report = zoo.bench("resnet18+cls10", mode="both", **TINY)
    per_mode = TINY["warmup"] + TINY["iters"] * TINY["repeats"]
    assert calls == ["infer"] * per_mode + ["train"] * per_mode
    for mode in ("infer", "train"):
        run = report.run(mode)
        assert len(run.timing["repeats_images_per_s"]) == TINY["repeats"]
        assert len(run.timing["warmup_s"]) == TINY["warmup"]
        assert run.timing["images_per_s"] == pytest.approx(statistics.median(run.timing["repeats_images_per_s"]), rel=1e-3)
        # an odd number of repeats: the median batch time is the median rate's reciprocal
        assert run.timing["ms_per_batch"] * run.images_per_s == pytest.approx(1000 * TINY["batch_size"], rel=1e-2)
        assert run.peak_memory_mb > 0 and run.batch_size == TINY["batch_size"] and run.too_big == []


def test_flops_are_those_of_torch_flop_counter():
    report = zoo.bench("resnet18+cls10", mode="infer", **TINY)
    model = zoo.build("resnet18+cls10").eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.randn(1, 3, 32, 32))
    run = report.run("infer")
    assert run.gflops_per_image * 1e9 == pytest.approx(counter.get_total_flops(), rel=1e-4)
    assert run.achieved_gflops == pytest.approx(run.gflops_per_image * run.images_per_s, rel=1e-2)
    assert run.fraction_of_matmul == pytest.approx(run.achieved_gflops / report.matmul["gflops"], rel=1e-2)
    assert report.matmul["gflops"] > 0 and report.matmul["dtype"] == "float32"


def test_frozen_stages_are_not_trained_and_cost_no_backward():
    model = zoo.build("resnet18+cls10", freeze="all")
    before = copy.deepcopy(model.state_dict())
    frozen = zoo.bench(model, mode="train", **TINY).run("train")
    after = model.state_dict()
    backbone_keys = [k for k in before if k.startswith("backbone.")]
    head_keys = [k for k in before if k.startswith("heads.")]
    # the timed optimizer steps moved the head and left every backbone tensor, running stats included
    assert all(torch.equal(before[k], after[k]) for k in backbone_keys)
    assert any(not torch.equal(before[k], after[k]) for k in head_keys)
    full = zoo.bench("resnet18+cls10", mode="train", freeze="none", **TINY).run("train")
    assert frozen.trainable_params == 5130 < full.trainable_params == full.params == frozen.params
    # no backward through the backbone: the training step's FLOPs are those of a forward pass and a bit
    forward = zoo.bench("resnet18+cls10", mode="infer", **TINY).run("infer").gflops_per_image
    assert frozen.gflops_per_image < 1.01 * forward < full.gflops_per_image


class FitsUpTo(nn.Module):
    """A real model that behaves as if memory held at most ``limit`` images."""

    def __init__(self, limit: int, error=torch.OutOfMemoryError) -> None:
        super().__init__()
        self.model = zoo.build("resnet18+cls10")
        self.backbone = self.model.backbone
        self.limit, self.error = limit, error

    def forward(self, x):
        if x.shape[0] > self.limit:
            raise self.error(f"CUDA out of memory. Tried to allocate a batch of {x.shape[0]}")
        return self.model(x)


def test_a_batch_that_does_not_fit_is_halved_until_one_does():
    report = zoo.bench(FitsUpTo(5), mode="both", **{**TINY, "batch_size": 16})
    for mode in ("infer", "train"):
        run = report.run(mode)
        assert (run.requested_batch_size, run.too_big, run.batch_size) == (16, [16, 8], 4)
    from zoo.cli._format import format_report

    assert "batch 16, 8 did not fit in memory; 4 is the largest of the halvings that fit" in format_report(report)


def test_cpu_allocator_failure_counts_as_out_of_memory():
    class CpuAllocatorError(RuntimeError):
        def __init__(self, message):
            super().__init__("DefaultCPUAllocator: can't allocate memory: " + message)

    run = zoo.bench(FitsUpTo(1, CpuAllocatorError), mode="infer", **{**TINY, "batch_size": 4}).run("infer")
    assert (run.too_big, run.batch_size) == ([4, 2], 1)


def test_nothing_fits_is_a_clear_error_and_other_errors_pass_through():
    with pytest.raises(ZooError, match="even a batch of 1 does not fit"):
        zoo.bench(FitsUpTo(0), mode="infer", **TINY)
    with pytest.raises(ValueError, match="not memory"):
        zoo.bench(FitsUpTo(0, lambda message: ValueError("not memory")), mode="infer", **TINY)


def _resident_bytes() -> int:
    line = next(x for x in open("/proc/self/status") if x.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the resident set from /proc")
def test_peak_memory_sees_a_large_allocation():
    import gc
    import mmap

    gc.collect()
    memory = PeakMemory(torch.device("cpu"))
    memory.reset()
    resident = _resident_bytes()
    # fresh anonymous pages, touched: a tensor could reuse pages the allocator already holds
    block = mmap.mmap(-1, 64 * 2**20)
    block.write(b"\x01" * len(block))
    assert memory.peak() >= resident + 60 * 2**20
    block.close()


def test_threads_are_set_and_reported():
    previous = torch.get_num_threads()
    try:
        report = zoo.bench("resnet18+cls10", mode="infer", threads=1, **TINY)
        assert torch.get_num_threads() == 1 and report.settings["threads"] == 1
        assert report.machine["torch_threads"] == 1
    finally:
        torch.set_num_threads(previous)


def test_report_describes_the_machine_and_serialises():
    import json

    report = zoo.bench("resnet18+cls10", mode="infer", **TINY)
    data = json.loads(json.dumps(report.as_dict()))
    assert data["spec"] == "torchvision/resnet18+zoo/cls10"
    assert {"cpu", "usable_cpus", "torch", "torch_threads", "loadavg", "cpu_native_bf16"} <= set(data["machine"])
    run = data["runs"][0]
    assert {"images_per_s", "images_per_s_min", "images_per_s_max", "spread", "ms_per_batch", "peak_memory_mb",
            "params", "trainable_params", "gflops_per_image", "achieved_gflops", "fraction_of_matmul"} <= set(run)


def test_defaults_follow_the_device_and_the_backbone():
    from zoo.benchmark._settings import Settings, resolve_settings

    settings, device = resolve_settings(Settings(mode="infer"))
    assert (settings.batch_size, settings.warmup, settings.iters, settings.repeats) == (32, 1, 2, 3)
    assert device.type == "cpu"
    report = zoo.bench("resnet18+cls10", mode="infer", batch_size=1, warmup=0, iters=1, repeats=1)
    assert report.img_size == 224 and report.settings["img_size"] == 224


def test_fast_on_a_cpu_without_native_bf16_keeps_fp32(monkeypatch):
    from zoo._runtime import machine
    from zoo.benchmark._settings import Settings, resolve_settings

    monkeypatch.setattr(machine, "native_bf16_cpu", lambda: False)
    settings, _ = resolve_settings(Settings(fast=True))
    assert (settings.precision, settings.channels_last, settings.compile) == ("fp32", True, True)
    settings, _ = resolve_settings(Settings(fast=True, compile=False, channels_last=False))
    assert (settings.channels_last, settings.compile) == (False, False)
    monkeypatch.setattr(machine, "native_bf16_cpu", lambda: True)
    assert resolve_settings(Settings(fast=True))[0].precision == "bf16"


def test_bf16_on_a_cpu_without_it_warms_it_is_emulated(monkeypatch):
    from zoo._runtime import machine
    from zoo.benchmark._settings import Settings, resolve_settings

    monkeypatch.setattr(machine, "native_bf16_cpu", lambda: False)
    with pytest.warns(ZooWarning, match="no native bf16"):
        resolve_settings(Settings(precision="bf16"))


def test_bf16_autocast_runs_on_cpu():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ZooWarning)
        report = zoo.bench("resnet18+cls10", mode="infer", precision="bf16", **{**TINY, "repeats": 1})
    assert report.settings["precision"] == "bf16" and report.matmul["dtype"] == "bfloat16"
    assert report.run("infer").images_per_s > 0


@pytest.mark.parametrize(("options", "message"), [
    ({"compile": True, "warmup": 0}, "--compile needs --warmup 1 or more"),
    ({"precision": "fp16"}, "--precision fp16 needs a GPU"),
    ({"device": "tpu"}, "unknown device 'tpu'"),
    ({"mode": "eval"}, "mode 'eval' is not one of infer, train, both"),
    ({"batch_size": -1}, "--batch-size must be a whole number of 1 or more, not -1"),
    ({"img_size": 0}, "--img-size must be a whole number of 1 or more, not 0"),
    ({"iters": 0}, "--iters must be a whole number of 1 or more, not 0"),
    ({"threads": 0}, "--threads must be a whole number of 1 or more, not 0"),
])
def test_bad_settings_are_zoo_errors(options, message):
    with pytest.raises(ZooError, match=message):
        zoo.bench("resnet18+cls10", **options)


def test_a_plain_module_has_no_reference_and_takes_no_freeze_policy():
    with pytest.raises(ZooError, match="a Linear has none"):
        zoo.bench(nn.Linear(4, 2), vs_reference=True)
    with pytest.raises(ZooError, match="freeze a module yourself"):
        zoo.bench(nn.Linear(4, 2), freeze="all")


def test_more_threads_than_cpus_is_warned(monkeypatch):
    from zoo._runtime import machine
    previous = torch.get_num_threads()
    monkeypatch.setattr(machine, "usable_cpus", lambda: 1)
    try:
        with pytest.warns(ZooWarning, match="2 threads on 1 usable CPUs"):
            zoo.bench("resnet18+cls10", mode="infer", threads=2, **{**TINY, "repeats": 1})
    finally:
        torch.set_num_threads(previous)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown where CUDA is missing")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(ZooError, match="CUDA is not available here .* use --device cpu"):
        zoo.bench("resnet18+cls10", device="cuda")


def test_compiled_inference_and_training_are_compiled_and_say_so():
    from torch._dynamo.utils import counters

    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    counters.clear()
    report = zoo.bench(model, mode="both", compile=True, channels_last=True, img_size=16, batch_size=2, warmup=1,
                       iters=1, repeats=1)
    assert report.settings["compile"] and report.settings["channels_last"]
    assert report.run("infer").images_per_s > 0 and report.run("infer").form == "fp32"
    assert counters["stats"]["unique_graphs"] >= 2  # dynamo captured a graph for each mode: it really compiled
    assert counters["inductor"]["mkldnn_linear_weight_pack_matcher_count"] >= 1  # inference froze the weights


def test_compare_times_candidates_side_by_side_with_their_own_setup():
    from zoo.benchmark import Candidate, compare

    report = compare([Candidate("frozen", zoo.build("resnet18+cls10", freeze="all"), channels_last=True),
                      Candidate("fine-tuned", zoo.build("resnet18+cls10"))], mode="train", **TINY)
    frozen, tuned = report.run("train", "frozen"), report.run("train", "fine-tuned")
    assert (frozen.channels_last, tuned.channels_last) == (True, False)
    paired = [a / b for a, b in zip(frozen.timing["repeats_images_per_s"], tuned.timing["repeats_images_per_s"])]
    assert report.ratios["train"] == pytest.approx(statistics.median(paired), rel=1e-3)
    assert report.ratio_ranges["train"] == pytest.approx([min(paired), max(paired)], rel=1e-3)
    assert report.pair("train") == ("frozen", "fine-tuned")
    with pytest.raises(ZooError, match="distinct labels"):
        compare([Candidate("a", nn.Linear(2, 2)), Candidate("a", nn.Linear(2, 2))])


@pytest.mark.parametrize("groups", [1, 4, 16])
def test_grouped_convolution_backward_is_counted_once_per_weight(groups):
    from zoo.benchmark._flops import count_flops

    conv = nn.Conv2d(16, 16, 3, padding=1, groups=groups)
    x = torch.randn(2, 16, 8, 8, requires_grad=True)
    forward = count_flops(lambda: conv(x))
    # the input's gradient and the weight's gradient each cost one forward pass
    assert count_flops(lambda: conv(x).sum().backward()) == 3 * forward
    assert count_flops(lambda: conv(x.detach()).sum().backward()) == 2 * forward
    if groups == 1:  # where torch's own counter is right, the two agree
        counter = FlopCounterMode(display=False)
        with counter:
            conv(x).sum().backward()
        assert counter.get_total_flops() == 3 * forward


def test_depthwise_network_training_costs_about_three_forward_passes():
    report = zoo.bench("timm/efficientnet_b0+cls10", **TINY)
    ratio = report.run("train").gflops_per_image / report.run("infer").gflops_per_image
    assert 2.5 < ratio < 3.5


def test_matmul_yardstick_is_measured_once_per_process():
    from zoo._runtime.machine import matmul_gflops

    first = matmul_gflops(size=64, seconds=0.05, fresh=True)
    assert first["gflops"] > 0 and first["size"] == 64 and first["runs"] >= 3 and first["dtype"] == "float32"
    assert matmul_gflops(size=64) == first  # the same yardstick for every report of the run


@pytest.fixture
def one_gpu(monkeypatch):
    """torch.cuda as it answers on a machine with one GPU; only the settings are checked with it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Test GPU")
    return monkeypatch


@pytest.mark.parametrize(("bf16", "expected"), [(True, "bf16"), (False, "fp16")])
def test_fast_on_a_gpu_picks_its_reduced_precision(one_gpu, bf16, expected):
    from zoo.benchmark._settings import Settings, resolve_settings

    one_gpu.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)
    settings, device = resolve_settings(Settings(device="cuda", fast=True))
    assert device.type == "cuda" and settings.precision == expected
    assert (settings.channels_last, settings.compile) == (True, True)
    assert (settings.batch_size, settings.warmup, settings.iters, settings.repeats) == (256, 10, 20, 5)


def test_gpu_settings_are_checked(one_gpu):
    from zoo.benchmark._settings import Settings, resolve_settings

    one_gpu.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    with pytest.raises(ZooError, match="there are 1 CUDA device"):
        resolve_settings(Settings(device="cuda:1"))
    with pytest.raises(ZooError, match="Test GPU has no bf16; use fp16 or fp32"):
        resolve_settings(Settings(device="cuda", precision="bf16"))
    assert resolve_settings(Settings(device="cuda", precision="fp16"))[0].precision == "fp16"


def test_gpu_memory_is_the_allocator_peak(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: calls.append(("reset", device)))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: calls.append(("peak", device)) or 123)
    device = torch.device("cuda:0")
    memory = PeakMemory(device)
    memory.reset()
    assert memory.peak() == 123 and calls == [("reset", device), ("peak", device)]
    assert memory.source == "cuda max_memory_allocated"


def test_each_run_is_measured_against_a_matmul_in_its_own_precision(monkeypatch):
    from zoo._runtime import machine
    from zoo.benchmark import Candidate, compare

    yardsticks = {"float32": 100.0, "bfloat16": 400.0}
    monkeypatch.setattr(machine, "matmul_gflops", lambda device="cpu", dtype=None, **_: {
        "gflops": yardsticks[str(dtype).removeprefix("torch.")], "size": 64, "dtype": str(dtype).removeprefix("torch.")})

    def small():
        return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))

    report = compare([Candidate("bf16", small(), precision="bf16"), Candidate("fp32", small())], mode="infer", **TINY)
    fast, eager = report.run("infer", "bf16"), report.run("infer", "fp32")
    assert fast.fraction_of_matmul == pytest.approx(fast.achieved_gflops / 400.0, rel=1e-2)
    assert eager.fraction_of_matmul == pytest.approx(eager.achieved_gflops / 100.0, rel=1e-2)
    assert (fast.matmul_gflops, eager.matmul_gflops) == (400.0, 100.0)
    from zoo.cli._format import format_report

    assert "bf16 400" in format_report(report)
