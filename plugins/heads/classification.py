"""The classification head: the seeds' replaced ``fc`` / ``classifier[6]``, or Keras' Dense-ReLU-Dropout-Dense.

With one class (``cls1``) it is a binary classifier: one logit, binary cross-entropy, and a probability
for class 1 (the Keras recipe's sigmoid output).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.backbone import Features
from zoo.head import DecodeContext, Head
from zoo.metrics import SampleMean


class ClassificationHead(Head):
    def __init__(self, in_features: int, num_classes: int, hidden: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.hidden = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(inplace=True)) if hidden else nn.Identity()
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.fc = nn.Linear(hidden or in_features, num_classes)

    def forward(self, features: Features) -> torch.Tensor:
        return self.fc(self.dropout(self.hidden(features.pooled)))

    @property
    def binary(self) -> bool:
        return self.num_classes == 1

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Class probabilities, shape (N, classes); for one logit, the columns are class 0 and class 1."""
        if self.binary:
            p = torch.sigmoid(logits[:, 0])
            return torch.stack([1 - p, p], dim=1)
        return logits.softmax(dim=1)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy on class indices; binary cross-entropy on 0/1 targets for one logit."""
        if self.binary:
            return F.binary_cross_entropy_with_logits(output[:, 0], target.float().reshape(-1))
        return F.cross_entropy(output, target.long())

    @torch.no_grad()
    def decode(self, output: torch.Tensor, context: DecodeContext) -> list[dict[str, Any]]:
        probabilities = self.probabilities(output.float())
        k = max(1, min(context.top_k, probabilities.shape[1]))
        values, indices = probabilities.topk(k, dim=1)
        answers = []
        for row_values, row_indices in zip(values.tolist(), indices.tolist()):
            top = [{"label": context.label(i), "index": i, "probability": round(p, 4)}
                   for p, i in zip(row_values, row_indices)]
            answers.append({"label": top[0]["label"], "probability": top[0]["probability"], "top_k": top})
        return answers

    def metric(self) -> SampleMean:
        return SampleMean(self._accuracy)

    def _accuracy(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        predicted = self.probabilities(output.float()).argmax(dim=1)
        return {"accuracy": (predicted == target.reshape(-1).long()).float()}

    def format(self, answer: dict[str, Any]) -> str:
        return ", ".join(f"{t['label']} {t['probability']:.3f}" for t in answer["top_k"])
