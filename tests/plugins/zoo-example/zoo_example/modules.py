from __future__ import annotations

import torch
from torch import nn

from zoo.backbone import Backbone, Features, Stage


class TinyCNN(Backbone):
    def __init__(self, width: int, act: str = "relu") -> None:
        super().__init__()
        self.input_size = (3, 32, 32)
        widths = (width, width * 2, width * 4)
        blocks, channels = [], 3
        for out in widths:
            blocks.append(nn.Sequential(nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.BatchNorm2d(out),
                                        nn.GELU() if act == "gelu" else nn.ReLU()))
            channels = out
        self.s1, self.s2, self.s3 = blocks
        self.stages = tuple(Stage(f"s{i + 1}", (f"s{i + 1}",), c, 2 ** (i + 1)) for i, c in enumerate(widths))
        self.num_features = widths[-1]

    def forward(self, x: torch.Tensor) -> Features:
        outputs = {}
        for stage in self.stages:
            x = getattr(self, stage.name)(x)
            outputs[stage.name] = x
        return Features(outputs, x.mean((2, 3)), x)


class FlatNet(Backbone):
    def __init__(self) -> None:
        super().__init__()
        self.input_size = (3, 8, 8)
        self.fc = nn.Linear(3 * 8 * 8, 16)
        self.stages = (Stage("fc", ("fc",), 16, None),)
        self.num_features = 16

    def forward(self, x: torch.Tensor) -> Features:
        out = self.fc(torch.flatten(x, 1))
        return Features({"fc": out}, out, x)


class MultiScaleHead(nn.Module):
    def __init__(self, features, num_classes: int) -> None:
        super().__init__()
        self.names = [stage.name for stage in features.spatial_stages]
        self.fc = nn.Linear(sum(stage.channels for stage in features.spatial_stages), num_classes)

    def forward(self, features: Features) -> torch.Tensor:
        return self.fc(torch.cat([features.stages[n].mean((2, 3)) for n in self.names], dim=1))
