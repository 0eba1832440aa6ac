"""What a bug report needs to know about this machine: versions, CPU capability, CUDA and GPUs."""
from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from zoo._runtime import machine as _machine
from zoo._runtime.devices import choose_device, describe
from zoo._version import __version__
from zoo.contract import CONTRACT_VERSION
from zoo.errors import ZooError

PACKAGES = ("torch", "torchvision", "timm", "onnx", "onnxruntime", "onnxscript", "torchao", "safetensors",
            "pluggy", "click", "numpy", "pillow")
VARIABLES = ("ZOO_DEVICE", "ZOO_OFFLINE", "ZOO_REGISTRY", "ZOO_CACHE_DIR", "ZOO_DISABLE_PLUGINS", "ZOO_STRICT_PLUGINS")


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def cpu_capability(flags: set[str]) -> dict[str, bool]:
    """The vector and matrix extensions zoo's fast paths depend on, from the CPU's flags."""
    return {
        "avx2": "avx2" in flags,
        "avx512": "avx512f" in flags,
        "vnni": bool(flags & {"avx512_vnni", "avx_vnni"}),
        "amx": any(flag.startswith("amx") for flag in flags),
        "native_bf16": bool(flags & _machine.BF16_FLAGS),
        "int8_export": bool(flags & set(_machine.INT8_FLAGS)),
    }


def _cuda() -> dict[str, Any]:
    import torch

    available = torch.cuda.is_available()
    gpus = []
    for index in range(torch.cuda.device_count() if available else 0):
        props = torch.cuda.get_device_properties(index)
        gpus.append({"index": index, "name": props.name, "memory_gb": round(props.total_memory / 1024**3, 1),
                     "capability": f"{props.major}.{props.minor}"})
    return {"cuda_build": torch.version.cuda, "available": available, "gpus": gpus}


def _device() -> str:
    """What ``--device auto`` (or ``ZOO_DEVICE``) takes here, or why it cannot."""
    try:
        return describe(choose_device(None))
    except ZooError as error:
        return f"none: {error}"


def environment() -> dict[str, Any]:
    """zoo's, Python's and the libraries' versions, the CPU and what it can do, CUDA and its GPUs."""
    import torch

    flags = _machine.cpu_flags()
    return {
        "zoo": __version__,
        "contract": CONTRACT_VERSION,  # the plugin contract's own version (zoo.contract)
        "python": platform.python_version(),
        "platform": platform.platform(),
        "executable": sys.executable,
        "packages": {name: _version(name) for name in PACKAGES},
        "cpu": {"model": _machine.cpu_model(), "cores": os.cpu_count(), "usable": _machine.usable_cpus(),
                "torch_capability": torch.backends.cpu.get_cpu_capability(), **cpu_capability(flags)},
        "cuda": _cuda(),
        "device": _device(),
        "variables": {name: os.environ.get(name) for name in VARIABLES},
    }
