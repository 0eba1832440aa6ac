"""The classification head: the seeds' replaced ``fc`` / ``classifier[6]``, or Keras' Dense-ReLU-Dropout-Dense."""
from __future__ import annotations

import torch
from torch import nn

from zoo.backbone import Features


class ClassificationHead(nn.Module):
    def __init__(self, in_features: int, num_classes: int, hidden: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(inplace=True)) if hidden else nn.Identity()
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.fc = nn.Linear(hidden or in_features, num_classes)

    def forward(self, features: Features) -> torch.Tensor:
        return self.fc(self.dropout(self.hidden(features.pooled)))
