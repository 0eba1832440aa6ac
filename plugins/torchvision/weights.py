"""torchvision's pretrained weights: its weight enums, read from torch.hub's checkpoint folder."""
from __future__ import annotations

from zoo.errors import ZooError, suggest
from zoo.parts import WeightsFile
from zoo.files import torch_hub_file


def pretrained(arch: str, tag: str) -> WeightsFile:
    """``default`` is the enum's DEFAULT; other tags are member names (``IMAGENET1K_V1``), in any case."""
    from torchvision.models import get_model_weights

    enum = get_model_weights(arch)
    names = [member.name for member in enum]
    if tag == "default":
        weights = enum.DEFAULT
    else:
        weights = next((member for member in enum if member.name.lower() == tag.lower()), None)
        if weights is None:
            raise ZooError(f"torchvision/{arch} has no weights {tag!r}{suggest(tag.upper(), names)}; "
                           f"weights: imagenet (= {enum.DEFAULT.name}), {', '.join(names)}")
    labels = tuple(weights.meta.get("categories") or ())
    return torch_hub_file(f"torchvision/{type(weights).__name__}.{weights.name}", weights.url, labels)
