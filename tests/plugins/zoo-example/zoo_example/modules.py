"""The example plugin's modules: what a backbone builder and a head builder return.

Import torch here, not in the plugin's entry module, so that `zoo list` never pays for it.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.backbone import Backbone, Features, Stage
from zoo.head import DecodeContext, Head
from zoo.metrics import SampleMean


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

    def forward(self, images: torch.Tensor) -> Features:
        outputs, x = {}, images
        for stage in self.stages:
            x = getattr(self, stage.name)(x)
            outputs[stage.name] = x
        return Features(outputs, x.mean((2, 3)), images)  # inputs: the batch as given, for heads that want it


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


class MultiScaleHead(Head):
    """Classifies from the pooled outputs of every spatial stage: the four methods every head implements."""

    def __init__(self, features, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.names = [stage.name for stage in features.spatial_stages]
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(sum(stage.channels for stage in features.spatial_stages), num_classes)

    def forward(self, features: Features) -> torch.Tensor:
        """Logits, shape (N, classes)."""
        return self.fc(self.dropout(torch.cat([features.stages[n].mean((2, 3)) for n in self.names], dim=1)))

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy against class indices."""
        return F.cross_entropy(output, target.long())

    @torch.no_grad()
    def decode(self, output: torch.Tensor, context: DecodeContext) -> list[dict[str, Any]]:
        """Per image, the most likely class (named when the model has labels) and its probability."""
        probabilities, indices = output.float().softmax(dim=1).max(dim=1)
        return [{"label": context.label(i), "index": i, "probability": round(p, 4)}
                for p, i in zip(probabilities.tolist(), indices.tolist())]

    def metric(self) -> SampleMean:
        """Accuracy over every image seen."""
        return SampleMean(lambda output, target: {"accuracy": (output.argmax(dim=1) == target.long()).float()})

    def format(self, answer: dict[str, Any]) -> str:
        return f"{answer['label']} {answer['probability']:.3f}"
