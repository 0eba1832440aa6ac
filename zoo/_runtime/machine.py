"""What machine a benchmark ran on, and how fast its matrix multiply is: the yardstick for every result.

A figure of images per second means little without the CPU, its threads, the torch build and the load
on the machine; a model's achieved GFLOP/s means more as a fraction of a matmul measured in the same run.
"""
from __future__ import annotations

import json
import os
import platform
import re
import time
from pathlib import Path
from typing import Any

from zoo._runtime.timing import device_clock
from zoo.files import atomic_write_bytes, cache_dir

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


YARDSTICK_SECONDS = 0.5  # the most a fresh yardstick measures for; a bench passes less for short runs
_MEASURED: dict[str, dict[str, Any]] = {}


def yardstick_size(device: Any, dtype: Any) -> int:
    """One product size per device and dtype, big enough to reach the machine's peak and short to run:
    a few milliseconds on a GPU (8192^2 in bf16 is ~1 TFLOP), ~10 ms on a CPU, where emulated bf16
    (~100x slower than fp32) gets a smaller one."""
    import torch

    kind = getattr(torch.device(device), "type", "cpu")
    half = dtype in (torch.bfloat16, torch.float16)
    if kind == "cuda":
        return 8192 if half else 4096
    if kind == "cpu" and half and not native_bf16_cpu():
        return 256
    return 2048 if kind == "mps" else 1024


def _yardstick_key(device: Any, dtype: Any, size: int) -> str:
    """What decides a yardstick: the machine (host, CPU or GPU), device, dtype, threads, torch, size."""
    import hashlib

    import torch

    kind = getattr(torch.device(device), "type", "cpu")
    chip = torch.cuda.get_device_name(torch.device(device)) if kind == "cuda" else cpu_model()
    words = [platform.node(), chip, str(device), str(dtype), str(torch.get_num_threads()), torch.__version__, str(size)]
    return hashlib.sha256("|".join(words).encode()).hexdigest()[:16]


def _yardstick_file(key: str, device: Any, dtype: Any) -> Path:
    """``torch-<version>-matmul-<device>-<dtype>-<key>.json`` in the cache: listed and cleared by ``zoo cache``."""
    import torch

    what = re.sub(r"[^A-Za-z0-9]+", "-", f"matmul {device} {str(dtype).removeprefix('torch.')}").strip("-")
    return cache_dir() / f"torch-{torch.__version__}-{what}-{key}.json"


def _read_kept(path: Path) -> dict[str, Any] | None:
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return kept if isinstance(kept, dict) and isinstance(kept.get("gflops"), (int, float)) else None


def _keep(path: Path, measured: dict[str, Any]) -> None:
    """Written atomically; an unwritable cache only costs the next run a measurement."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(measured).encode())
    except OSError:
        pass


def _measure(size: int, device: Any, dtype: Any, seconds: float) -> dict[str, Any]:
    best, runs = _best_seconds(size, device, dtype, seconds)
    return {"gflops": round(2 * size**3 / best / 1e9, 2), "size": size, "runs": runs,
            "dtype": str(dtype).removeprefix("torch."), "measured_at": round(time.time())}


def matmul_gflops(device: Any = "cpu", dtype: Any = None, seconds: float = YARDSTICK_SECONDS,
                  size: int | None = None, fresh: bool = False) -> dict[str, Any]:
    """The machine's matmul GFLOP/s: the best of ``size`` x ``size`` products (`yardstick_size` by default)
    over ``seconds``, at least three.

    Kept per machine, device, dtype, thread count and torch version: in the process, and on disk in the
    zoo cache (``"kept": true``), where each later process only checks it with three products and keeps
    the faster, so a busy moment does not stay the yardstick and a second bench costs milliseconds.
    ``fresh`` measures for ``seconds`` again and replaces what was kept.
    """
    import torch

    dtype = dtype or torch.float32
    size = size or yardstick_size(device, dtype)
    key = _yardstick_key(device, dtype, size)
    if not fresh and key in _MEASURED:
        return dict(_MEASURED[key])
    path = _yardstick_file(key, device, dtype)
    kept = None if fresh else _read_kept(path)
    measured = _measure(size, device, dtype, 0.0 if kept else seconds)
    if kept is None or measured["gflops"] > kept["gflops"]:
        _keep(path, measured)
    _MEASURED[key] = {**measured, "kept": False} if kept is None else {**max(kept, measured, key=_gflops), "kept": True}
    return dict(_MEASURED[key])


def _gflops(measured: dict[str, Any]) -> float:
    return float(measured["gflops"])
