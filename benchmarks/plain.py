"""The yardstick for ``--fast``: the torchvision or timm original of a zoo model, compiled the way a
plain script would, written out here without zoo's helper (`zoo._runtime.compiled`), so that a defect there shows.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class PlainCompiled(nn.Module):
    """``torch.compile(model)`` called under ``torch._inductor.config.patch(freezing=True)`` and no grad."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.compiled = None

    def forward(self, images: Any) -> Any:
        if self.compiled is None:
            self.compiled = torch.compile(self.model)
        with torch._inductor.config.patch(freezing=True), torch.no_grad():
            return self.compiled(images)


def compiled_reference(model: nn.Module) -> PlainCompiled:
    """The original network of ``model`` (same weights), to be compiled on its first call."""
    from zoo.benchmark._baseline import reference_model

    _, reference, _ = reference_model(model)
    return PlainCompiled(reference)
