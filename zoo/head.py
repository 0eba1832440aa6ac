"""The contract of a task head: its module, its loss, its decoding into answers, and its metric.

A head plugin's builder (see `zoo.parts.HeadPart`) returns a `Head`. `zoo._model.ZooModel` calls
the four methods below and nothing else, so a third party's head works everywhere a built-in does:
training (``model.loss``), evaluation (``model.metric``) and ``zoo predict`` (``decode``, ``format``
and ``draw``)::

    class CountHead(Head):
        def __init__(self, features, size):
            super().__init__()
            self.fc = nn.Linear(features.num_features, 1)

        def forward(self, features):            # raw output for a batch
            return self.fc(features.pooled).squeeze(1)

        def loss(self, output, target):          # a scalar to minimise
            return F.l1_loss(output, target.float())

        def decode(self, output, context):       # one JSON-ready answer per image
            return [{"count": round(float(v), 1)} for v in output]

        def metric(self):                        # accumulates over batches
            return SampleMean(lambda output, target: {"mae": (output - target).abs()})

Most heads read `Features` (``inputs = "features"``). A head whose ``inputs`` is ``"images"`` (detection)
instead implements ``forward_images``: it receives the backbone and the images themselves, in [0, 1]
and of any size, runs the backbone on its own terms, and must be its model's only head.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from zoo.backbone import Backbone, Features

if TYPE_CHECKING:
    from zoo.drawing import Canvas
    from zoo.metrics import Metric


@dataclass(frozen=True)
class DecodeContext:
    """What decoding needs beyond the raw output.

    ``sizes`` are the (width, height) of each original image, so that answers are in its pixels;
    ``labels`` this head's class names (from the artifact or the caller), or None for indices.
    """

    sizes: tuple[tuple[int, int], ...]
    labels: tuple[str, ...] | None = None
    top_k: int = 5
    threshold: float = 0.5

    def label(self, index: int) -> str:
        """The name of class ``index``, or the index itself when no names are known."""
        if self.labels is not None and 0 <= index < len(self.labels):
            return self.labels[index]
        return str(index)


class Head(nn.Module):
    """Base class of task heads. Subclasses implement ``forward``, ``loss``, ``decode`` and ``metric``.

    ``reference_keys`` maps key prefixes of a reference implementation's whole-model state dict to
    prefixes inside this head (detection: ``{"rpn.": "rpn."}``); ``reference_backbone`` is the prefix
    under which that state dict holds the backbone (``"backbone.body."``). `zoo._reference` uses them to
    load, for example, torchvision's ``fasterrcnn_resnet50_fpn`` checkpoint as it is.
    """

    inputs: ClassVar[str] = "features"  # or "images": see the module docstring
    reference_keys: ClassVar[Mapping[str, str]] = {}
    reference_backbone: ClassVar[str | None] = None

    def attach(self, backbone: Backbone) -> None:
        """Called once when the model is composed, before freezing: read the backbone's input size,
        mean and std, or adapt it (detection may swap BatchNorm for FrozenBatchNorm2d, as torchvision does)."""

    def backbone_pretrained(self, backbone: Backbone) -> Mapping[str, Any]:
        """Called after pretrained weights were loaded into the backbone. Returns the head options this
        settled (detection: ``{"frozen_bn": True}``); zoo writes them into the model's recipe and spec,
        so that a saved model rebuilds the same modules."""
        return {}

    def start_fresh(self) -> None:
        """Initialise afresh the layers that answer in this head's labels. zoo calls it when a run's data has
        other labels than those the weights learned, which a kept classifier would have to unlearn. By default
        every layer of the head; a head whose other layers do not depend on the labels resets only its own."""
        reset_layers(self)

    def forward(self, features: Features) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_images(
        self, backbone: Backbone, images: Sequence[torch.Tensor], targets: Sequence[Mapping[str, Any]] | None = None
    ) -> Any:  # pragma: no cover - only heads with inputs == "images"
        raise NotImplementedError

    def loss(self, output: Any, target: Any) -> torch.Tensor:  # pragma: no cover - abstract
        """The scalar loss of a batch's raw ``output`` against its ``target``."""
        raise NotImplementedError

    def decode(self, output: Any, context: DecodeContext) -> list[dict[str, Any]]:  # pragma: no cover
        """One JSON-serialisable answer per image of the batch."""
        raise NotImplementedError

    def metric(self) -> Metric:  # pragma: no cover - abstract
        """A fresh metric accumulating this head's quality over batches (see `zoo.metrics`)."""
        raise NotImplementedError

    def format(self, answer: dict[str, Any]) -> str:
        """One line for people, used by ``zoo predict`` without ``--json``."""
        return json.dumps(answer)

    def draw(self, canvas: Canvas, answer: dict[str, Any]) -> None:
        """Mark ``answer`` on the original image (``zoo predict --out``); by default, its text as a caption.
        A head answering per pixel overlays its classes with ``canvas.mask(classes)``."""
        canvas.caption(self.format(answer))

    def report(self, result: Mapping[str, Any]) -> bytes | None:
        """A picture of this head's evaluation for ``zoo eval --out`` (``report-KEY.png``): PNG bytes, or None
        (the default) for none. ``result`` holds ``metrics`` (by their own names: ``miou``), ``images`` and,
        for classification heads, ``classes`` (per-class accuracy, confusion matrix, class names)."""
        return None


def reset_layers(module: nn.Module) -> None:
    """Every layer inside ``module`` back to its initial distribution (each one's own ``reset_parameters``)."""
    for layer in module.modules():
        reset = getattr(layer, "reset_parameters", None)
        if callable(reset):
            reset()
