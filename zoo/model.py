"""The composed model: one backbone, one or more heads, and the stages a freeze policy froze."""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from zoo.backbone import Backbone
from zoo.errors import ZooError


class ZooModel(nn.Module):
    """``model(x)`` returns the head's output, or a dict of outputs by head name for several heads.

    Frozen stages have ``requires_grad=False`` and stay in eval mode through ``model.train()``, so
    their BatchNorm running statistics and dropout never change: a frozen part is a fixed function.
    """

    def __init__(self, backbone: Backbone, heads: dict[str, nn.Module], spec: str) -> None:
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleDict(heads)
        self.spec = spec
        self.freeze_policy = "none"
        self.frozen_stages: tuple[str, ...] = ()

    def forward(self, x: torch.Tensor):
        features = self.backbone(x)
        outputs = {name: head(features) for name, head in self.heads.items()}
        if len(outputs) == 1:
            return next(iter(outputs.values()))
        return outputs

    def set_frozen(self, stages: Iterable[str], policy: str) -> None:
        """Freeze exactly ``stages`` (and unfreeze every other parameter)."""
        stages = tuple(stages)
        unknown = [s for s in stages if s not in self.backbone.stage_names]
        if unknown:
            raise ZooError(f"no stage {unknown[0]!r}; stages: {', '.join(self.backbone.stage_names)}")
        frozen = set(stages)
        self.frozen_stages = tuple(s for s in self.backbone.stage_names if s in frozen)
        self.freeze_policy = policy
        for p in self.parameters():
            p.requires_grad_(True)
        for stage in self.frozen_stages:
            for p in self.backbone.stage_parameters(stage):
                p.requires_grad_(False)
        self.train(self.training)

    def _frozen_modules(self) -> list[nn.Module]:
        return [m for stage in self.frozen_stages for m in self.backbone.stage_modules(stage)]

    def train(self, mode: bool = True) -> ZooModel:
        super().train(mode)
        for module in self._frozen_modules():
            module.eval()
        return self
