"""Age and gender from one pooled feature: the seeds' multi-task recipe.

A shared hidden layer feeds two outputs of different types: the age in years (a sigmoid scaled to
``max_age``) and one gender logit. The loss is ``age_weight`` times the L1 error of age / max_age
plus ``gender_weight`` times binary cross-entropy, so that neither dominates by its units.
Gender 1 is ``labels[1]`` ("female"), 0 is ``labels[0]`` ("male").
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.backbone import Features
from zoo.head import DecodeContext, Head
from zoo.metrics import SampleMean

GENDERS = ("male", "female")


class AgeGenderHead(Head):
    def __init__(
        self,
        in_features: int,
        *,
        hidden: int = 256,
        dropout: float = 0.4,
        max_age: float = 100.0,
        age_weight: float = 1.0,
        gender_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.max_age = max_age
        self.age_weight = age_weight
        self.gender_weight = gender_weight
        self.hidden = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.age = nn.Linear(hidden, 1)
        self.gender = nn.Linear(hidden, 1)

    def forward(self, features: Features) -> dict[str, torch.Tensor]:
        """``{"age": years (N,), "gender": logit (N,)}``."""
        h = self.hidden(features.pooled)
        return {"age": self.max_age * torch.sigmoid(self.age(h)[:, 0]), "gender": self.gender(h)[:, 0]}

    def loss(self, output: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> torch.Tensor:
        """``target``: ``{"age": years (N,), "gender": 0/1 (N,)}``."""
        age = F.l1_loss(output["age"] / self.max_age, target["age"].to(output["age"].dtype).reshape(-1) / self.max_age)
        gender = F.binary_cross_entropy_with_logits(output["gender"], target["gender"].to(output["gender"].dtype).reshape(-1))
        return self.age_weight * age + self.gender_weight * gender

    @torch.no_grad()
    def decode(self, output: dict[str, torch.Tensor], context: DecodeContext) -> list[dict[str, Any]]:
        labels = context.labels if context.labels is not None and len(context.labels) == 2 else GENDERS
        answers = []
        for age, p in zip(output["age"].tolist(), torch.sigmoid(output["gender"].float()).tolist()):
            index = int(p >= 0.5)
            answers.append({"age": round(age, 1), "gender": labels[index], "p_gender": round(p if index else 1 - p, 4)})
        return answers

    def metric(self) -> SampleMean:
        return SampleMean(self._errors)

    @staticmethod
    def _errors(output: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        age_error = (output["age"].double() - target["age"].double().reshape(-1)).abs()
        predicted = (output["gender"] >= 0).long()
        return {"age_mae": age_error, "gender_accuracy": (predicted == target["gender"].reshape(-1).long()).double()}

    def format(self, answer: dict[str, Any]) -> str:
        return f"age {answer['age']:.1f}, {answer['gender']} ({answer['p_gender']:.2f})"
