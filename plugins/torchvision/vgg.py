"""torchvision's VGG: five convolution blocks, then the fully connected layers up to the classifier.

The last linear layer (``classifier.6``) is what a head replaces, so the pooled feature is the
4096-wide output of ``fc``, as in the seeds' recipes that swap ``classifier[6]``.
"""
from __future__ import annotations

import torch
import torchvision
from torch import nn

from zoo.backbone import Backbone, Features, Stage


class VGGBackbone(Backbone):
    reference_classifier = "classifier.6"

    def __init__(self, arch: str) -> None:
        super().__init__()
        net = getattr(torchvision.models, arch)(weights=None)
        self.features = net.features
        self.avgpool = net.avgpool
        self.classifier = nn.Sequential(*list(net.classifier.children())[:6])
        self.num_features = net.classifier[6].in_features
        stages, modules, channels = [], [], 0
        self._block_ends: list[int] = []
        for index, layer in enumerate(self.features):
            modules.append(f"features.{index}")
            if isinstance(layer, nn.Conv2d):
                channels = layer.out_channels
            if isinstance(layer, nn.MaxPool2d):
                stages.append(Stage(f"block{len(stages) + 1}", tuple(modules), channels, 2 ** (len(stages) + 1)))
                self._block_ends.append(index)
                modules = []
        stages.append(Stage("fc", ("avgpool", "classifier"), self.num_features, None))
        self.stages = tuple(stages)

    def forward(self, x: torch.Tensor) -> Features:
        stages = {}
        out = x
        start = 0
        for stage, end in zip(self.stages, self._block_ends):
            for index in range(start, end + 1):
                out = self.features[index](out)
            stages[stage.name] = out
            start = end + 1
        pooled = self.classifier(torch.flatten(self.avgpool(out), 1))
        stages["fc"] = pooled
        return Features(stages, pooled, x)
