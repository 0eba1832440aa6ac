"""What every backbone module offers: named stages, multi-stage features and a pooled vector.

Plugins subclass `Backbone`; heads receive `Features`. This module imports torch, so plugin entry
modules import it inside their builders only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Stage:
    """A named group of modules; freeze policies freeze whole stages.

    ``modules`` are module names inside the backbone, in forward order; ``parameters`` names
    parameters held outside those modules (a ViT's ``cls_token``). ``stride`` is the output's reduction
    of the input size, or None when the stage outputs a vector (VGG's fully connected layers).
    """

    name: str
    modules: tuple[str, ...]
    channels: int
    stride: int | None
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeatureInfo:
    """What a head may rely on when it is built."""

    stages: tuple[Stage, ...]
    num_features: int  # size of the pooled vector

    @property
    def spatial_stages(self) -> tuple[Stage, ...]:
        return tuple(stage for stage in self.stages if stage.stride is not None)


class Features(NamedTuple):
    """A backbone's output: every stage's output by name, the pooled vector, and the input batch."""

    stages: dict[str, torch.Tensor]
    pooled: torch.Tensor
    inputs: torch.Tensor


class Backbone(nn.Module):
    """Base class of backbones. Subclasses set the attributes below and implement ``forward``.

    ``reference_classifier`` is the key prefix of the classifier in the original model's state dict
    (``fc`` for torchvision's ResNet) and ``reference_prefix`` what to prepend to the original's other
    keys to get this module's keys, so that a user's torchvision or timm weights load as they are.
    """

    stages: tuple[Stage, ...] = ()
    num_features: int = 0
    input_size: tuple[int, int, int] = (3, 224, 224)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    interpolation: str = "bilinear"  # how its pretrained weights saw images resized: bilinear, bicubic or nearest
    reference_classifier: str = ""
    reference_prefix: str = ""

    @property
    def feature_info(self) -> FeatureInfo:
        return FeatureInfo(self.stages, self.num_features)

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(stage.name for stage in self.stages)

    def stage(self, name: str) -> Stage:
        return next(stage for stage in self.stages if stage.name == name)

    def stage_modules(self, name: str) -> list[nn.Module]:
        return [self.get_submodule(module) for module in self.stage(name).modules]

    def stage_parameters(self, name: str) -> list[nn.Parameter]:
        """Every parameter of a stage, each once."""
        found = {id(p): p for module in self.stage_modules(name) for p in module.parameters()}
        found.update({id(p): p for p in map(self.get_parameter, self.stage(name).parameters)})
        return list(found.values())

    def stage_size(self, name: str) -> int:
        return sum(p.numel() for p in self.stage_parameters(name))

    def reference_state_dict(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A whole original model's checkpoint as that model's own state dict, through the library's own
        loading (timm's per-model conversions); zoo then maps it onto this module. As it is by default."""
        return tensors

    def forward(self, x: torch.Tensor) -> Features:  # pragma: no cover - abstract
        raise NotImplementedError
