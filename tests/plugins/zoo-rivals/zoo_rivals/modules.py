from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo.backbone import Features
from zoo.head import Head
from zoo.metrics import SampleMean


class RivalHead(Head):
    """A linear classifier over the pooled features, with its loss, decoding and accuracy."""

    def __init__(self, features, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(features.num_features, num_classes)

    def forward(self, features: Features) -> torch.Tensor:
        return self.fc(features.pooled)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, target)

    def decode(self, output, context):
        return [{"class": context.label(int(row.argmax()))} for row in output]

    def metric(self):
        return SampleMean(lambda output, target: {"accuracy": (output.argmax(1) == target).float()})
