from __future__ import annotations

import torch
from torch import nn

from zoo.backbone import Backbone, Features, Stage


class Stageless(Backbone):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.num_features = 8

    def forward(self, x: torch.Tensor) -> Features:
        out = self.conv(x)
        return Features({}, out.mean((2, 3)), x)


class Liar(Backbone):
    """Declares two stages of 8 and 16 channels; ``fault`` says which promise its features break."""

    def __init__(self, fault: str) -> None:
        super().__init__()
        self.fault = fault
        self.input_size = (3, 32, 32)
        self.a = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.b = nn.Conv2d(8, 8 if fault == "channels" else 16, 3, stride=2, padding=1)
        self.stages = (Stage("a", ("a",), 8, 2), Stage("b", ("b",), 16, 4))
        self.num_features = 8 if fault == "channels" else 16

    def forward(self, x: torch.Tensor) -> Features:
        a = self.a(x)
        b = self.b(a)
        stages = {"a": a, "b": b}
        if self.fault == "keys":
            stages = {"first": a, "b": b}
        if self.fault == "flat":
            stages["b"] = b.mean((2, 3))
        return Features(stages, b.mean((2, 3)), b if self.fault == "inputs" else x)
