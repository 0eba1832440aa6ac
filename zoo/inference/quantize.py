"""int8 for CPU inference: PT2E post-training quantization with the x86 inductor quantizer.

The graph is captured with ``torch.export`` (strict, so that a module called twice, such as the ReLU a
torchvision ResNet block reuses, gives two patterns the quantizer can fuse), observed on the user's own
images, and converted; ``torch.compile`` with inductor's freezing then lowers it to oneDNN int8 kernels.
Those are fast only where the CPU has VNNI (AVX512-VNNI, AVX-VNNI) or AMX, so anything else is refused.
PT2E lives in torchao since torch 2.9 (``torchao.quantization.pt2e``), no longer in ``torch.ao``.
"""
from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from zoo._core.images import check_size, open_image
from zoo._runtime import machine as _machine
from zoo._runtime.machine import int8_capability
from zoo._runtime.transforms import transforms
from zoo.errors import ZooError, ZooWarning

if TYPE_CHECKING:
    import torch
    from torch import nn

    from zoo._core.model import ZooModel

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
CALIBRATION_BATCH = 8
MAX_CALIBRATION_IMAGES = 512


def check_int8_request(kind: str, calibrate: str | os.PathLike[str] | None) -> None:
    """Refuse, before any work, an int8 export that cannot be made or would not be fast here."""
    if kind != "pt2":
        raise ZooError("--int8 writes a .pt2 file (torch.export, run with torch.compile); name the output FILE.pt2")
    if calibrate is None:
        raise ZooError("--int8 needs calibration images: --calibrate DIR, a folder of images like those the model "
                       "will see (a few dozen to a few hundred)")
    folder = Path(calibrate)
    if not folder.is_dir():
        raise ZooError(f"--calibrate {folder}: " + ("not a folder" if folder.exists() else "no such folder"))
    if not int8_capability():
        raise ZooError(f"--int8 needs a CPU with VNNI or AMX for int8 to be faster than fp32; this CPU "
                       f"({_machine.cpu_model()}) has neither: use the fp32 export")
    if importlib.util.find_spec("torchao") is None:
        raise ZooError("--int8 needs torchao (PT2E quantization): pip install 'zoo[export]'")


def calibration_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files in ``folder`` and below, in name order, at most `MAX_CALIBRATION_IMAGES`."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return files[:MAX_CALIBRATION_IMAGES]


def calibration_batches(folder: str | os.PathLike[str], model: ZooModel) -> list[torch.Tensor]:
    """The images of ``folder`` prepared by the model's own eval transform, in batches; unreadable ones are
    skipped."""
    import torch

    backbone, transform = model.backbone, transforms(model)
    images = []
    for file in calibration_files(folder):
        try:
            image = open_image(file)
            check_size(image, str(file), backbone)
        except ZooError as exc:
            warnings.warn(f"skipped for calibration: {exc}", ZooWarning, stacklevel=2)
            continue
        images.append(transform(image))
    if not images:
        raise ZooError(f"--calibrate {folder}: no image in it could be read "
                       f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    return [torch.stack(images[i:i + CALIBRATION_BATCH]) for i in range(0, len(images), CALIBRATION_BATCH)]


def quantize(graph: nn.Module, batches: list[torch.Tensor]) -> nn.Module:
    """``graph`` (an exported module) with int8 weights and activations, observed on ``batches``."""
    import torch
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

    quantizer = x86.X86InductorQuantizer()
    quantizer.set_global(x86.get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for batch in batches:
            prepared(batch)
    converted = convert_pt2e(prepared)
    move_exported_model_to_eval(converted)
    drop_unused_tensors(converted)
    return converted


def drop_unused_tensors(graph: torch.fx.GraphModule) -> None:
    """Delete the parameters and buffers ``graph`` no longer reads. convert_pt2e folds each weight into an int8
    constant but leaves the fp32 parameter on its module, and torch.export saves every parameter, read or not:
    the int8 file held both copies and was larger than the fp32 one."""
    used = {str(node.target) for node in graph.graph.nodes if node.op == "get_attr"}
    for node in graph.graph.nodes:
        if node.op == "call_module":  # a called module reads its own tensors
            called = graph.get_submodule(str(node.target))
            tensors = [*called.named_parameters(remove_duplicate=False), *called.named_buffers(remove_duplicate=False)]
            used |= {f"{node.target}.{name}" for name, _ in tensors}
    tensors = [*graph.named_parameters(remove_duplicate=False), *graph.named_buffers(remove_duplicate=False)]
    for name, _ in tensors:
        if name not in used:
            owner, _, attr = name.rpartition(".")
            delattr(graph.get_submodule(owner), attr)
    graph.delete_all_unused_submodules()

