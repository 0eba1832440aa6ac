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
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from zoo._runtime import machine as _machine
from zoo._runtime.opening import open_model
from zoo._runtime.timing import Timing, device_clock, interleave
from zoo.benchmark._memory import PeakMemory
from zoo.benchmark._report import BenchReport, Run
from zoo.benchmark._settings import Settings, resolve_settings
from zoo.errors import ZooError, ZooWarning

if TYPE_CHECKING:
    from torch import nn

    from zoo._registry.registry import Registry

@dataclass
class Candidate:
    """A model to time side by side with others: its label, the module, how to put it in training mode
    (None: ``module.train()``), and its own memory layout, compilation or precision where they differ
    from the settings'. Candidates that differ in layout must be separate modules; one that is the same
    network as another (a reference model) names it, so its FLOPs are counted once."""

    label: str
    module: Any
    set_train: Callable[[Any], None] | None = None
    channels_last: bool | None = None
    compile: bool | None = None
    precision: str | None = None
    same_network_as: str | None = None  # the label of a candidate with the same network and freezing: its FLOPs

    def options(self, settings: Settings) -> dict[str, Any]:
        """channels_last, compile and precision for this candidate: its own where set, else the settings';
        under ``--fast`` a training step stays compiled only if timing says that is faster."""
        own = {name: getattr(settings, name) if getattr(self, name) is None else getattr(self, name)
               for name in ("channels_last", "compile", "precision")}
        return {**own, "compile_if_faster": settings.fast and self.compile is None}


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


def _warm_up_and_count(workloads: list[Any], candidates: list[Candidate], mode: str, warmup: int, clock,
                       known: dict[tuple[str, str], float]) -> tuple[list[Any], list[float]]:
    """Warm every workload up; FLOPs per image counted once per network and mode (in the first warm-up
    step of an eager model, else in a pass of their own) and kept in ``known`` for a retry at a smaller
    batch. Returns (warm-up seconds, FLOPs) per workload."""
    seconds, flops = [], []
    for candidate, workload in zip(candidates, workloads):
        key = (candidate.same_network_as or candidate.label, mode)
        spent, counted = workload.warm_up(warmup, clock, counting=key not in known)
        if key not in known:
            known[key] = counted if counted is not None else workload.flops_per_image()
        seconds.append(spent)
        flops.append(known[key])
    return seconds, flops


def _measure(mode: str, candidates: list[Candidate], batch: int, img_size: int, settings: Settings, device,
             clock, memory, known: dict[tuple[str, str], float]) -> list[tuple[Any, float, int, str | None]]:
    """Warm every candidate up, then time them interleaved; returns (Timing, peak bytes, flops, (form,
    compiled)) for each: the form chosen by measuring, if any, and whether the timed step was compiled."""
    import torch

    from zoo.benchmark._workload import Workload

    torch._dynamo.reset()  # a fresh compile per mode: inference folds weights, training must not
    workloads = []
    for candidate in candidates:
        options = {"set_train": candidate.set_train} if candidate.set_train else {}
        workloads.append(Workload(candidate.module, mode, batch, img_size, device, **candidate.options(settings),
                                  **options))
    warmups, flops = _warm_up_and_count(workloads, candidates, mode, settings.warmup, clock, known)
    timings = [Timing(batch, settings.iters, seconds) for seconds in warmups]
    peaks = [0] * len(workloads)

    def track(index: int, run) -> float:
        memory.reset()
        seconds = run()
        peaks[index] = max(peaks[index], memory.peak())
        return seconds

    interleave([w.step for w in workloads], timings, settings.repeats, clock, track)
    forms = [(workload.form, workload.forward is not workload.model) for workload in workloads]
    for workload in workloads:
        workload.release()
    return list(zip(timings, peaks, flops, forms))


def _measure_fitting(mode, candidates, img_size, settings, device, clock, memory, known):
    """`_measure`, halving the batch while it runs out of memory; returns (results, batch, too big)."""
    batch, too_big = settings.batch_size, []
    while True:
        try:
            return _measure(mode, candidates, batch, img_size, settings, device, clock, memory, known), batch, too_big
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


def _prepare(settings: Settings):
    """Settings checked and filled, threads set; returns (settings, torch device)."""
    import torch

    settings, device = resolve_settings(settings)
    if settings.threads is not None:
        if settings.threads > _machine.usable_cpus():
            warnings.warn(f"{settings.threads} threads on {_machine.usable_cpus()} usable CPUs: the threads will compete",
                          ZooWarning, stacklevel=3)
        torch.set_num_threads(settings.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels once
    return settings, device


def _yardsticks(device, precisions: set[str], timed_seconds: float) -> dict[str, dict[str, Any]]:
    """A matmul per precision, kept per machine (`zoo._runtime.machine.matmul_gflops`); where none is kept
    yet, measured for at most a twentieth of the timed work, so the yardstick never costs more than the runs."""
    from zoo.benchmark._workload import DTYPES

    budget = min(_machine.YARDSTICK_SECONDS, max(0.02, timed_seconds / 20))
    return {precision: _machine.matmul_gflops(device, DTYPES[precision], seconds=budget) for precision in precisions}


def _run(candidates: Sequence[Candidate], settings: Settings, device, target: str) -> BenchReport:
    """Time every candidate in every mode of ``settings``, interleaved; the first is the subject."""
    import torch

    if settings.warmup < 1 and any(c.options(settings)["compile"] for c in candidates):
        raise ZooError("--compile needs --warmup 1 or more: the first step compiles the model")
    subject = candidates[0].module
    for candidate in candidates:
        candidate.module.to(device)
    backbone = getattr(subject, "backbone", None)
    size = settings.img_size or (backbone.input_size[-1] if backbone is not None else 224)
    machine = _machine.describe_machine(device)
    clock, memory, known = device_clock(device), PeakMemory(device), {}
    measured = []
    for mode in settings.modes:
        measured.append((mode, *_measure_fitting(mode, candidates, size, settings, device, clock, memory, known)))
    timed = sum(sum(timing.repeat_seconds) for _, results, _, _ in measured for timing, *_ in results)
    precisions = {settings.precision} | {c.options(settings)["precision"] for c in candidates}
    yardsticks = _yardsticks(device, precisions, timed)
    report = BenchReport(target, getattr(subject, "spec", target), getattr(subject, "freeze_policy", "none"), size,
                         {**asdict(settings), "threads": torch.get_num_threads(), "img_size": size}, machine,
                         yardsticks[settings.precision])
    for mode, results, batch, too_big in measured:
        for candidate, result in zip(candidates, results):
            report.runs.append(_run_record(candidate, settings, mode, batch, too_big, result, memory, yardsticks))
    report.machine["loadavg_after"] = [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return report


def _run_record(candidate: Candidate, settings: Settings, mode: str, batch: int, too_big: list[int], result,
                memory: PeakMemory, yardsticks: dict[str, dict[str, Any]]) -> Run:
    """One candidate's result in one mode, against a matmul in its own precision (a bf16 run over an fp32
    matmul would overstate it)."""
    from zoo.benchmark._workload import count_params

    timing, peak, flops, (form, compiled) = result
    own = candidate.options(settings)
    yardstick = yardsticks[own["precision"]]
    params = list(candidate.module.parameters())
    gflops = flops / 1e9
    achieved = gflops * timing.median
    return Run(
        candidate.label, mode, batch, settings.batch_size, too_big, timing.summary(),
        round(peak / 2**20, 1), memory.source, count_params(params),
        count_params(p for p in params if p.requires_grad), round(gflops, 6), _significant(achieved),
        _significant(achieved / yardstick["gflops"]) if yardstick["gflops"] else None, own["channels_last"],
        compiled, own["precision"], yardstick["gflops"], form,
    )


def _significant(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant figures: a slow machine's small figures keep their precision."""
    return float(f"{value:.{digits}g}")


def bench(
    target: str | nn.Module,
    *,
    device: str | None = None,
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

    None means the device's default (`zoo.benchmark._settings.DEFAULTS`); ``fast`` picks channels-last,
    ``torch.compile`` and, where the hardware has it, reduced precision. A batch that does not fit is
    halved until one does.

    >>> report = zoo.bench("resnet18+cls10", mode="infer", batch_size=8)  # doctest: +SKIP
    >>> report.run("infer").images_per_s  # doctest: +SKIP
    """
    settings, torch_device = _prepare(Settings(device, mode, batch_size, img_size, freeze, precision, channels_last,
                                               compile, fast, threads, warmup, iters, repeats, vs_reference))
    if isinstance(target, str):
        model = open_model(target, freeze=freeze, registry=registry, command="bench", warn_untrained=False)
        name = target
    else:
        model, name = target, type(target).__name__
        if freeze is not None:
            raise ZooError("freeze applies to a spec or an artifact; freeze a module yourself before timing it")
    candidates = [Candidate("zoo", model)]
    if vs_reference:
        from zoo.benchmark._baseline import reference_model

        if getattr(model, "recipe", None) is None:
            raise ZooError("--vs-reference compares a zoo model with its torchvision or timm original; "
                           f"a {type(model).__name__} has none")
        provider, reference, set_train = reference_model(model)
        candidates.append(Candidate(provider, reference, set_train, same_network_as="zoo"))
    return _run(candidates, settings, torch_device, name)


def compare(candidates: Sequence[Candidate], **settings: Any) -> BenchReport:
    """Time several models side by side, interleaved repeat by repeat; ratios are the first over the second.

    ``settings`` are `bench`'s keywords (device, mode, batch_size, ...); a candidate may set its own
    ``channels_last`` and ``compile``, so ``--fast`` and eager can be compared in one run::

        compare([Candidate("fast", zoo.build(spec), channels_last=True, compile=True),
                 Candidate("eager", zoo.build(spec))], mode="infer", batch_size=32)
    """
    if len(candidates) < 1 or len({c.label for c in candidates}) != len(candidates):
        raise ZooError("compare needs one or more candidates with distinct labels")
    resolved, device = _prepare(Settings(**settings))
    first = candidates[0]
    return _run(candidates, resolved, device, getattr(first.module, "spec", first.label))
