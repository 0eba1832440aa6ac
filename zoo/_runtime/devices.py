"""Which device a command runs on, decided in one place for train, eval, predict, bench and export --check.

``auto`` (the default) takes CUDA when it works, then Apple's MPS, else the CPU, as timm's train.py and
Lightning do; ``ZOO_DEVICE`` replaces the default; a name the user gives is checked before anything runs, so
``--device cuda`` where there is none, or ``--device gpu``, is one line. Under torchrun each process takes the
GPU of its ``LOCAL_RANK``: ``cuda`` means "my GPU", and ``auto`` does too when the GPUs are there.
"""
from __future__ import annotations

import difflib
import os
import warnings
from typing import TYPE_CHECKING

from zoo.errors import ZooError, ZooNotice

if TYPE_CHECKING:
    import torch

AUTO = "auto"
KINDS = ("cpu", "cuda", "mps")
ENVIRONMENT = "ZOO_DEVICE"
_ALIASES = {"gpu": "cuda", "nvidia": "cuda", "metal": "mps", "apple": "mps", "host": "cpu"}


def requested(text: str | None) -> str:
    """What was asked for: the option, else ``ZOO_DEVICE``, else ``auto``."""
    return (text or os.environ.get(ENVIRONMENT) or AUTO).strip()


def choose_device(text: str | None = None) -> torch.device:
    """The device ``text`` names (or the default), checked: an unknown name or one this machine lacks raises."""
    import torch

    asked = requested(text)
    origin = f"{ENVIRONMENT}={asked}" if not text and os.environ.get(ENVIRONMENT) else f"--device {asked}"
    if asked.lower() == AUTO:
        return _automatic(torch)
    try:
        device = torch.device(asked)
    except (RuntimeError, TypeError, ValueError):
        raise ZooError(f"{origin}: unknown device{_suggestion(asked)}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type not in KINDS:
        raise ZooError(f"{origin}: zoo runs on cpu, cuda or mps, not {device.type}; use auto to take the best one")
    if device.type == "cuda":
        return _cuda(torch, device, origin)
    if device.type == "mps" and not _mps_available(torch):
        raise ZooError(f"{origin}: MPS is not available here (it needs Apple silicon and a torch built for it); "
                       "use --device cpu")
    return device


def _automatic(torch) -> torch.device:
    if torch.cuda.is_available() and torch.cuda.device_count() > 0:
        return _cuda(torch, torch.device("cuda"), "--device auto")
    if _mps_available(torch):
        return torch.device("mps")
    return torch.device("cpu")


def _cuda(torch, device: torch.device, origin: str) -> torch.device:
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a build without CUDA"
        raise ZooError(f"{origin}: CUDA is not available here (torch {torch.__version__}, {build}, no GPU visible); "
                       "use --device cpu")
    count = torch.cuda.device_count()
    index = device.index
    if index is None:
        index = int(os.environ.get("LOCAL_RANK", "0"))  # under torchrun: this process's GPU
        if index >= count:
            raise ZooError(f"{origin}: this process has LOCAL_RANK {index} but there are {count} CUDA device(s); "
                           "start at most one process per GPU (--nproc-per-node gpu)")
    elif index >= count:
        raise ZooError(f"{origin}: there are {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return torch.device("cuda", index)


def _mps_available(torch) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _suggestion(asked: str) -> str:
    lowered = asked.lower().split(":")[0]
    guess = _ALIASES.get(lowered) or next(iter(difflib.get_close_matches(lowered, (AUTO, *KINDS), n=1)), None)
    return f" {asked!r} (did you mean {guess}?)" if guess else f" {asked!r}"


def describe(device: torch.device) -> str:
    """The device as people read it: ``cuda:0 (NVIDIA H200)``, ``cpu (2 threads)``."""
    import torch

    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)


def announce(device: torch.device, doing: str) -> None:
    """One note naming where the work runs (``training on cuda:0 (NVIDIA H200)``), said once the inputs are
    checked, so that a bad input is still one line; ``zoo train --quiet`` leaves it out."""
    warnings.warn(f"{doing} on {describe(device)}", ZooNotice, stacklevel=3)
