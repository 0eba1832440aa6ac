"""What a benchmark measures and how: the choices a user makes, checked, with the device's defaults.

Every mistake (a device that is not there, fp16 on a CPU, a batch of zero) is a `ZooError` naming what
would be right, raised before a model is built.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

from zoo._runtime import machine as _machine
from zoo._runtime.devices import choose_device
from zoo.errors import ZooError, ZooWarning

MODES = ("infer", "train", "both")
PRECISIONS = ("fp32", "bf16", "fp16")
# Defaults by device: a CPU step of resnet50 at batch 32 takes seconds, a GPU step milliseconds.
DEFAULTS = {
    "cpu": {"batch_size": 32, "warmup": 1, "iters": 2, "repeats": 3},
    "cuda": {"batch_size": 256, "warmup": 10, "iters": 20, "repeats": 5},
    "mps": {"batch_size": 64, "warmup": 5, "iters": 10, "repeats": 3},
}


@dataclass(frozen=True)
class Settings:
    """What to measure and how; `resolve_settings` fills what was left as None from the device's defaults."""

    device: str | None = None  # auto: CUDA, then MPS, else the CPU (zoo._runtime.devices)
    mode: str = "both"
    batch_size: int | None = None
    img_size: int | None = None
    freeze: str | None = None
    precision: str | None = None
    channels_last: bool | None = None
    compile: bool | None = None
    fast: bool = False
    threads: int | None = None
    warmup: int | None = None
    iters: int | None = None
    repeats: int | None = None
    vs_reference: bool = False

    @property
    def modes(self) -> tuple[str, ...]:
        return ("infer", "train") if self.mode == "both" else (self.mode,)


def _check_numbers(settings: Settings) -> None:
    """Sizes and counts, checked before anything heavy is imported."""
    if settings.mode not in MODES:
        raise ZooError(f"mode {settings.mode!r} is not one of {', '.join(MODES)}")
    if settings.precision is not None and settings.precision not in PRECISIONS:
        raise ZooError(f"precision {settings.precision!r} is not one of {', '.join(PRECISIONS)}")
    at_least = {"--batch-size": (settings.batch_size, 1), "--img-size": (settings.img_size, 1),
                "--threads": (settings.threads, 1), "--iters": (settings.iters, 1), "--repeats": (settings.repeats, 1),
                "--warmup": (settings.warmup, 0)}
    for name, (value, minimum) in at_least.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
            raise ZooError(f"{name} must be a whole number of {minimum} or more, not {value!r}")


def _fastest_precision(device) -> str:
    import torch

    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if _machine.native_bf16_cpu() else "fp32"


def resolve_settings(settings: Settings):
    """Check every choice, fill the defaults, and apply ``fast``; returns (settings, torch.device)."""
    _check_numbers(settings)
    device = choose_device(settings.device)
    if settings.fast:
        settings = replace(
            settings,
            precision=settings.precision or _fastest_precision(device),
            channels_last=True if settings.channels_last is None else settings.channels_last,
            compile=True if settings.compile is None else settings.compile,
        )
    defaults = DEFAULTS[device.type]
    settings = replace(
        settings,
        device=str(device),
        precision=settings.precision or "fp32",
        channels_last=bool(settings.channels_last),
        compile=bool(settings.compile),
        **{key: getattr(settings, key) if getattr(settings, key) is not None else value
           for key, value in defaults.items()},
    )
    _check_precision(settings.precision, device)
    if settings.compile and settings.warmup < 1:
        raise ZooError("--compile needs --warmup 1 or more: the first step compiles the model")
    return settings, device


def _check_precision(precision: str, device) -> None:
    import torch

    if device.type == "cpu" and precision == "fp16":
        raise ZooError("--precision fp16 needs a GPU (--device cuda); on CPU use fp32, or bf16 where the CPU has it")
    if device.type == "cuda" and precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise ZooError(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bf16; use fp16 or fp32")
    if device.type == "cpu" and precision == "bf16" and not _machine.native_bf16_cpu():
        warnings.warn("this CPU has no native bf16 (AVX512-BF16 or AMX): bf16 is emulated and slower than fp32",
                      ZooWarning, stacklevel=3)


