"""torchvision's ResNet without its classifier; module names kept, so its state dict loads as is."""
from __future__ import annotations

import torch
import torchvision

from zoo.backbone import Backbone, Features, Stage

LAYERS = ("layer1", "layer2", "layer3", "layer4")


class ResNetBackbone(Backbone):
    reference_classifier = "fc"

    def __init__(self, arch: str) -> None:
        super().__init__()
        net = getattr(torchvision.models, arch)(weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.avgpool = net.avgpool
        self.num_features = net.fc.in_features
        stages = [Stage("stem", ("conv1", "bn1", "relu", "maxpool"), self.conv1.out_channels, 4)]
        for index, name in enumerate(LAYERS):
            last_block = getattr(self, name)[-1]
            channels = (last_block.bn3 if hasattr(last_block, "bn3") else last_block.bn2).num_features
            modules = (name, "avgpool") if name == LAYERS[-1] else (name,)
            stages.append(Stage(name, modules, channels, 4 * 2**index))
        self.stages = tuple(stages)

    def forward(self, x: torch.Tensor) -> Features:
        out = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        stages = {"stem": out}
        for name in LAYERS:
            out = getattr(self, name)(out)
            stages[name] = out
        return Features(stages, torch.flatten(self.avgpool(out), 1), x)
