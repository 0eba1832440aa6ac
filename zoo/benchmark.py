"""Throughput of a zoo model: images per second, milliseconds per batch, peak memory, FLOPs, on CPU or GPU.

``zoo.bench("resnet50+cls10", mode="train", freeze="layer4")`` builds the model, warms it up, then times
whole loops of steps in several repeats and reports the median and the spread, with the model's counted
GFLOPs per image, what that achieves in GFLOP/s and how close that comes to a matrix multiply measured
in the same run. ``vs_reference=True`` times the same network built directly with torchvision or timm
in the same process, the two interleaved repeat by repeat, and reports the ratio.
"""
from __future__ import annotations

import gc
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.bench_report import BenchReport, Run
from zoo.bench_settings import Settings, resolve_settings
from zoo.errors import ZooError

if TYPE_CHECKING:
    from torch import nn

    from zoo.registry import Registry


@dataclass
class Candidate:
    """A model to time, with the function that puts it in training mode."""

    label: str
    module: Any
    set_train: Any = None


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in str(exc) or "out of memory" in str(exc))


def _free_memory(device) -> None:
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _refreeze(model: nn.Module, policy: str, registry: Registry | None) -> None:
    """Apply a freeze policy to a loaded model, as `zoo.build` applies it to a new one."""
    from zoo.registry import default_registry

    backbone = model.backbone
    part, argument = (registry or default_registry()).freeze_policy(policy, backbone.stage_names, model.spec)
    model.set_frozen(list(part.select(backbone.stage_names, argument)),
                     part.name if argument is None else f"{part.name}:{argument}")


def _load(target: str, freeze: str | None, registry: Registry | None) -> nn.Module:
    """A model from a spec or preset, or from an artifact file through ``zoo.load``."""
    import zoo

    if Path(target).is_file():
        load = getattr(zoo, "load", None)
        if load is None:
            raise ZooError(f"{target} is a file, and this zoo cannot load artifacts; give a SPEC such as resnet50+cls10")
        model = load(target, registry=registry)
        if freeze is not None:
            _refreeze(model, freeze, registry)
        return model
    from zoo.builder import build

    return build(target, freeze=freeze, registry=registry)


def _measure(mode: str, candidates: list[Candidate], batch: int, img_size: int, settings: Settings, device,
             clock, memory) -> list[tuple[Any, float, int]]:
    """Warm every candidate up, then time them interleaved; returns (Timing, peak bytes, flops) for each."""
    import torch

    from zoo.timing import Timing, interleave, warm_up
    from zoo.workload import Workload

    torch._dynamo.reset()  # a fresh compile per mode: inference folds weights, training must not
    workloads = []
    for candidate in candidates:
        options = {"set_train": candidate.set_train} if candidate.set_train else {}
        workloads.append(Workload(candidate.module, mode, batch, img_size, device, precision=settings.precision,
                                  channels_last=settings.channels_last, compile=settings.compile, **options))
    flops = [workload.flops_per_image() for workload in workloads]
    timings = []
    for workload in workloads:
        timings.append(Timing(batch, settings.iters, warm_up(workload.step, settings.warmup, clock)))
    peaks = [0] * len(workloads)

    def track(index: int, run) -> float:
        memory.reset()
        seconds = run()
        peaks[index] = max(peaks[index], memory.peak())
        return seconds

    interleave([w.step for w in workloads], timings, settings.repeats, clock, track)
    for workload in workloads:
        workload.release()
    return list(zip(timings, peaks, flops))


def _measure_fitting(mode, candidates, img_size, settings, device, clock, memory):
    """`_measure`, halving the batch while it runs out of memory; returns (results, batch, too big)."""
    batch, too_big = settings.batch_size, []
    while True:
        try:
            return _measure(mode, candidates, batch, img_size, settings, device, clock, memory), batch, too_big
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is handled, the rest re-raised
            if not is_out_of_memory(exc):
                raise
        too_big.append(batch)
        for candidate in candidates:
            for p in candidate.module.parameters():
                p.grad = None
        _free_memory(device)
        if batch == 1:
            raise ZooError(f"{mode}: even a batch of 1 does not fit in {device.type} memory")
        batch //= 2


def bench(
    target: str | nn.Module,
    *,
    device: str = "cpu",
    mode: str = "both",
    batch_size: int | None = None,
    img_size: int | None = None,
    freeze: str | None = None,
    precision: str | None = None,
    channels_last: bool | None = None,
    compile: bool | None = None,
    fast: bool = False,
    threads: int | None = None,
    warmup: int | None = None,
    iters: int | None = None,
    repeats: int | None = None,
    vs_reference: bool = False,
    registry: Registry | None = None,
) -> BenchReport:
    """Measure ``target`` (a spec, a preset, an artifact file, or an ``nn.Module``) on ``device``.

    None means the device's default (`DEFAULTS`); ``fast`` picks channels-last, ``torch.compile`` and,
    where the hardware has it, reduced precision. A batch that does not fit is halved until one does.

    >>> report = zoo.bench("resnet18+cls10", mode="infer", batch_size=8)  # doctest: +SKIP
    >>> report.run("infer").images_per_s  # doctest: +SKIP
    """
    settings = Settings(device, mode, batch_size, img_size, freeze, precision, channels_last, compile, fast,
                        threads, warmup, iters, repeats, vs_reference)
    settings, torch_device = resolve_settings(settings)
    import torch

    from zoo.machine import describe_machine, matmul_gflops
    from zoo.memory import PeakMemory
    from zoo.timing import device_clock
    from zoo.workload import DTYPES, count_params

    if threads is not None:
        torch.set_num_threads(threads)
    if torch_device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels once
    if isinstance(target, str):
        model = _load(target, freeze, registry)
        name = target
    else:
        model, name = target, type(target).__name__
        if freeze is not None:
            raise ZooError("freeze applies to a spec or an artifact; freeze a module yourself before timing it")
    model.to(torch_device)
    candidates = [Candidate("zoo", model)]
    if vs_reference:
        from zoo.baseline import reference_model

        provider, reference, set_train = reference_model(model)
        candidates.append(Candidate(provider, reference.to(torch_device), set_train))
    backbone = getattr(model, "backbone", None)
    size = settings.img_size or (backbone.input_size[-1] if backbone is not None else 224)
    machine = describe_machine(torch_device)
    matmul = matmul_gflops(torch_device, DTYPES[settings.precision])
    clock, memory = device_clock(torch_device), PeakMemory(torch_device)
    report = BenchReport(name, getattr(model, "spec", name), getattr(model, "freeze_policy", "none"), size,
                         {**asdict(settings), "threads": torch.get_num_threads(), "img_size": size}, machine, matmul)
    for run_mode in settings.modes:
        results, batch, too_big = _measure_fitting(run_mode, candidates, size, settings, torch_device, clock, memory)
        for candidate, (timing, peak, flops) in zip(candidates, results):
            params = list(candidate.module.parameters())
            gflops = flops / 1e9
            achieved = gflops * timing.median
            report.runs.append(Run(
                candidate.label, run_mode, batch, settings.batch_size, too_big, timing.summary(),
                round(peak / 2**20, 1), memory.source, count_params(params),
                count_params(p for p in params if p.requires_grad), round(gflops, 6), round(achieved, 2),
                round(achieved / matmul["gflops"], 4) if matmul["gflops"] else None,
            ))
    report.machine["loadavg_after"] = [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return report


