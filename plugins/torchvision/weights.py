"""torchvision's pretrained weights: its weight enums, read from torch.hub's checkpoint folder.

A tag is a member name (``IMAGENET1K_V2``, in any case), the enum's own spelling
(``ResNet50_Weights.IMAGENET1K_V2``, what zoo records in saved files), or ``coco`` for ResNet-50: the
whole COCO Faster R-CNN (``fasterrcnn_resnet50_fpn``), which ``resnet50+det91`` takes with its 91
class names as labels.
"""
from __future__ import annotations

from dataclasses import replace
from importlib.metadata import version
from typing import Any

from zoo import __version__
from zoo.errors import ZooError, suggest
from zoo.files import cached_json, torch_hub_file
from zoo.parts import WeightsFile

# Weights of a whole task model built on a backbone: tag -> (torchvision model, enum member).
TASK_WEIGHTS = {"resnet50": {"coco": ("fasterrcnn_resnet50_fpn", "COCO_V1")}}


def weights_tags(archs: tuple[str, ...]) -> dict[str, list[str]]:
    """Each architecture's tags, the default first; cached per torchvision version, so listing imports nothing."""

    def compute() -> dict[str, list[str]]:
        from torchvision.models import get_model_weights

        tags = {}
        for arch in archs:
            enum = get_model_weights(arch)
            tags[arch] = [enum.DEFAULT.name, *(m.name for m in enum if m is not enum.DEFAULT)]
            tags[arch] += list(TASK_WEIGHTS.get(arch, {}))
        return tags

    # keyed by zoo's version too: TASK_WEIGHTS is zoo's own
    cached = cached_json(f"torchvision-{version('torchvision')}-zoo-{__version__}-weights.json", compute)
    return cached if all(arch in cached for arch in archs) else compute()


def _member(arch: str, tag: str) -> Any:
    from torchvision.models import get_model_weights

    enum = get_model_weights(arch)
    tasks = TASK_WEIGHTS.get(arch, {})
    if tag == "default":
        return enum.DEFAULT
    if tag.lower() in tasks:
        model, member = tasks[tag.lower()]
        return getattr(get_model_weights(model), member)
    written_enum, dot, name = tag.rpartition(".")
    if dot:  # ResNet50_Weights.IMAGENET1K_V2, or the task model's FasterRCNN_ResNet50_FPN_Weights.COCO_V1
        owners = {enum.__name__.lower(): enum}
        owners.update({get_model_weights(model).__name__.lower(): get_model_weights(model) for model, _ in tasks.values()})
        owner = owners.get(written_enum.lower())
        if owner is None:
            raise ZooError(f"weights {tag} are not torchvision/{arch}'s: its weights are {enum.__name__}.*"
                           + (f" and {', '.join(tasks)}" if tasks else ""))
        member = next((m for m in owner if m.name.lower() == name.lower()), None)
        if member is None:
            raise ZooError(f"{owner.__name__} has no {name!r}{suggest(name.upper(), [m.name for m in owner])}; "
                           f"members: {', '.join(m.name for m in owner)}")
        return member
    member = next((m for m in enum if m.name.lower() == tag.lower()), None)
    if member is None:
        names = [m.name for m in enum]
        raise ZooError(f"torchvision/{arch} has no weights {tag!r}{suggest(tag.upper(), names)}; "
                       f"weights: imagenet (= {enum.DEFAULT.name}), {', '.join([*names, *tasks])}")
    return member


def _known(meta: dict[str, Any]) -> dict[str, Any]:
    """What `zoo info` shows of a weight enum's ``meta``: accuracy, file size, classes, parameters."""
    metrics = {f"{data} {name}": value for data, values in (meta.get("_metrics") or {}).items()
               for name, value in values.items()}
    imagenet = (meta.get("_metrics") or {}).get("ImageNet-1K", {})
    return {"top1": imagenet.get("acc@1"), "metrics": metrics, "size_mb": meta.get("_file_size"),
            "license": meta.get("license", ""), "classes": len(meta.get("categories") or ()) or None,
            "params": meta.get("num_params"), "recipe": meta.get("recipe", "")}


def pretrained(arch: str, tag: str) -> WeightsFile:
    """``default`` is the enum's DEFAULT; other tags as the module docstring says."""
    weights = _member(arch, tag)
    labels = tuple(weights.meta.get("categories") or ())
    found = torch_hub_file(f"torchvision/{type(weights).__name__}.{weights.name}", weights.url, labels)
    return replace(found, meta=_known(weights.meta))
