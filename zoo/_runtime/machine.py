"""What machine a benchmark ran on, and how fast its matrix multiply is: the yardstick for every result.

A figure of images per second means little without the CPU, its threads, the torch build and the load
on the machine; a model's achieved GFLOP/s means more as a fraction of a matmul measured in the same run.
"""
from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path
from typing import Any

from zoo._runtime.timing import device_clock

CPUINFO = Path("/proc/cpuinfo")
MEMINFO = Path("/proc/meminfo")
# CPU flags (as /proc/cpuinfo spells them) with int8 dot products in hardware.
INT8_FLAGS = {"avx512_vnni": "AVX512-VNNI", "avx_vnni": "AVX-VNNI", "amx_int8": "AMX-INT8"}
# CPU flags that mean bf16 matrix work runs natively (x86 AVX512-BF16 or AMX, Arm's BF16 extension).
BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    fields: dict[str, str] = {}
    try:
        text = CPUINFO.read_text()
    except OSError:
        return fields
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_flags() -> set[str]:
    info = _cpuinfo()
    return set((info.get("flags") or info.get("Features") or "").split())


def cpu_model() -> str:
    info = _cpuinfo()
    return info.get("model name") or info.get("Model") or platform.processor() or platform.machine() or "unknown CPU"


def int8_capability(flags: set[str] | None = None) -> list[str]:
    """The CPU's int8 dot-product extensions (empty where it has none)."""
    flags = cpu_flags() if flags is None else flags
    return [name for flag, name in INT8_FLAGS.items() if flag in flags]


def native_bf16_cpu() -> bool:
    """True when this CPU does bf16 matrix work in hardware; without it bf16 is emulated and slower than fp32."""
    return bool(cpu_flags() & BF16_FLAGS)


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _memory_total_gb() -> float | None:
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except (OSError, ValueError):
        return None
    return None


def describe_machine(device: Any = "cpu") -> dict[str, Any]:
    """The machine as a benchmark reader needs it: CPU, threads, memory, torch build, GPU, load."""
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    flags = cpu_flags()
    description: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_native_bf16": bool(flags & BF16_FLAGS),
        "cpu_avx512": any(flag.startswith("avx512") for flag in flags),
        "cpu_isa": isa_tier(flags),
        "memory_gb": _memory_total_gb(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda_version": torch.version.cuda,
        "loadavg": [round(value, 2) for value in load],
    }
    if getattr(torch.device(device), "type", "cpu") == "cuda":
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        description.update({
            "gpu": torch.cuda.get_device_name(index),
            "gpu_memory_gb": round(props.total_memory / 1024**3, 1),
            "gpu_capability": f"{props.major}.{props.minor}",
            "gpu_bf16": torch.cuda.is_bf16_supported(),
            "cudnn": torch.backends.cudnn.version(),
            # fp32 convolutions may run as TF32 on tensor cores while the fp32 matmul yardstick does not
            "cudnn_tf32": torch.backends.cudnn.allow_tf32,
            "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
        })
    return description


def isa_tier(flags: set[str]) -> str:
    """The widest matrix instructions of an x86 CPU, which decide its figures: ``amx``, ``avx512-bf16`` ...

    Two CPUs sold under one name (``AMD EPYC``) can differ here by a factor of several in bf16, so results
    of each tier are kept apart.
    """
    if "amx_bf16" in flags or "amx_tile" in flags:
        return "amx"
    if "avx512_bf16" in flags:
        return "avx512-bf16"
    if "avx512f" in flags:
        return "avx512"
    if "avx2" in flags:
        return "avx2"
    return ""


def machine_slug(description: dict[str, Any]) -> str:
    """A folder name for a machine's results: ``amd-epyc-avx2-2cpu`` or ``nvidia-h100-80gb-hbm3``."""
    if description.get("gpu"):
        name = description["gpu"]
    else:
        tier = description.get("cpu_isa", "")
        name = f"{description['cpu']} {tier} {description['usable_cpus']}cpu"
    name = re.sub(r"\((r|tm)\)|\bcpu @.*|\bprocessor\b", " ", name.lower())
    return re.sub(r"[^a-z0-9]+", "-", name).strip("-") or "machine"


def _best_seconds(size: int, device: Any, dtype: Any, seconds: float) -> tuple[float, int]:
    """The least time of one ``size`` x ``size`` product, over at least three runs and ``seconds``."""
    import torch

    clock = device_clock(torch.device(device))
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    torch.mm(a, b)  # first touch: allocation and library start-up
    best, runs, deadline = float("inf"), 0, time.perf_counter() + seconds
    while runs < 3 or time.perf_counter() < deadline:
        start = clock.now()
        torch.mm(a, b)
        best = min(best, clock.now() - start)
        runs += 1
    return best, runs


_MEASURED: dict[tuple[str, str, int], dict[str, Any]] = {}


def matmul_gflops(device: Any = "cpu", dtype: Any = None, seconds: float = 0.5,
                  sizes: tuple[int, ...] = (256, 512, 1024, 2048, 4096), fresh: bool = False) -> dict[str, Any]:
    """The machine's matmul GFLOP/s: the best square product over ``sizes`` (caches favour some sizes).

    Sizes stop growing before one product would take over a second, so an emulated dtype (bf16 on a
    CPU without it is ~100x slower) stays short. Measured once per process, device, dtype and thread count
    unless ``fresh``: every report of one run then shares one yardstick.
    """
    import torch

    dtype = dtype or torch.float32
    key = (str(device), str(dtype), torch.get_num_threads())
    if key in _MEASURED and not fresh:
        return dict(_MEASURED[key])
    results = []
    for size in sizes:
        best, runs = _best_seconds(size, device, dtype, seconds)
        results.append({"gflops": round(2 * size**3 / best / 1e9, 2), "size": size, "runs": runs})
        if best * 8 > 1.0:  # the next size is eight times the work
            break
    measured = {**max(results, key=lambda r: r["gflops"]), "dtype": str(dtype).removeprefix("torch."),
                "by_size": {r["size"]: r["gflops"] for r in results}}
    _MEASURED[key] = measured
    return dict(measured)
