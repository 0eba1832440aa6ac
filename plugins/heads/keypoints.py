"""The key point head: K (x, y) points regressed in [0, 1] relative to the input image.

As in the seeds' facial key point model, it reads one spatial stage (the last, by default) rather
than the pooled vector, which has lost where things are: a 3x3 convolution, a small pooled grid, then
two linear layers and a sigmoid.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.backbone import Backbone, Features
from zoo.head import DecodeContext, Head
from zoo.metrics import SampleMean

LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss, "smooth_l1": F.smooth_l1_loss}


class KeypointHead(Head):
    def __init__(
        self,
        in_channels: int,
        num_points: int,
        stage: str,
        *,
        channels: int = 256,
        grid: int = 2,
        hidden: int = 512,
        dropout: float = 0.5,
        loss: str = "l1",
    ) -> None:
        super().__init__()
        self.num_points = num_points
        self.stage = stage
        self.loss_function = LOSSES[loss]
        # (width, height) of the images the metric measures in: the backbone's input size until a forward
        # pass sees a batch, then that batch's size, so errors are in pixels of the images evaluated
        self.image_size = (224, 224)
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(grid)
        )
        self.fc = nn.Sequential(
            nn.Flatten(), nn.Linear(channels * grid * grid, hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden, 2 * num_points),
        )

    def attach(self, backbone: Backbone) -> None:
        _, height, width = backbone.input_size
        self.image_size = (width, height)

    def forward(self, features: Features) -> torch.Tensor:
        """Shape (N, K, 2): x then y of each point, as fractions of the input's width and height."""
        if not torch.compiler.is_compiling():
            self.image_size = (int(features.inputs.shape[-1]), int(features.inputs.shape[-2]))
        x = self.fc(self.conv(features.stages[self.stage]))
        return torch.sigmoid(x).view(-1, self.num_points, 2)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """L1 (or the ``loss`` option) between relative coordinates; ``target`` is (N, K, 2) or (N, 2K)."""
        return self.loss_function(output, target.to(output.dtype).reshape(output.shape))

    @torch.no_grad()
    def decode(self, output: torch.Tensor, context: DecodeContext) -> list[dict[str, Any]]:
        answers = []
        for points, (width, height) in zip(output.float(), context.sizes):
            pixels = points * points.new_tensor([width, height])
            answers.append({"keypoints": [[round(x, 2), round(y, 2)] for x, y in pixels.tolist()]})
        return answers

    def metric(self, size: tuple[int, int] | None = None) -> SampleMean:
        """Mean distance between predicted and true points, in pixels of an image of ``size`` (width,
        height): unless given, of the images this head last ran on (the backbone's input size before any)."""

        def pixel_error(output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
            scale = output.new_tensor(size or self.image_size, dtype=torch.float64)
            difference = (output.double() - target.double().reshape(output.shape)) * scale
            return {"pixel_error": difference.norm(dim=-1)}

        return SampleMean(pixel_error)

    def format(self, answer: dict[str, Any]) -> str:
        return " ".join(f"({x:.1f}, {y:.1f})" for x, y in answer["keypoints"])

    def draw(self, canvas, answer: dict[str, Any]) -> None:
        canvas.points(answer["keypoints"])
