"""Faster R-CNN over any backbone with features at several strides, from torchvision's own parts.

The backbone's last spatial stages (up to four, one per stride) feed a FeaturePyramidNetwork with a
max-pooled extra level; torchvision's FasterRCNN assembles the image transform, anchor generator,
region proposal network and RoI heads with its defaults, and this head runs them as torchvision's
GeneralizedRCNN does. On ResNet the strides are 4, 8, 16, 32 (+64), the anchors 32 to 512 pixels and
the module names those of ``fasterrcnn_resnet50_fpn``, whose checkpoint loads as it is through
``reference_keys`` (see `zoo._core.reference`).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from zoo.backbone import Backbone, FeatureInfo, Stage
from zoo.batchnorm import freeze_batchnorm
from zoo.drawing import color
from zoo.errors import ZooError
from zoo.head import DecodeContext, Head, reset_layers
from zoo.metrics import Metric

MAX_LEVELS = 4
ASPECT_RATIOS = (0.5, 1.0, 2.0)


def pyramid_levels(features: FeatureInfo) -> list[Stage]:
    """The stages the pyramid reads: for each stride the last stage with it, the deepest four."""
    by_stride: dict[int, Stage] = {}
    for stage in features.spatial_stages:
        by_stride[stage.stride] = stage
    return [by_stride[stride] for stride in sorted(by_stride)][-MAX_LEVELS:]


class DetectionHead(Head):
    inputs = "images"
    reference_backbone = "backbone.body."
    reference_keys = {"backbone.fpn.": "fpn.", "rpn.": "rpn.", "roi_heads.": "roi_heads."}

    def __init__(
        self,
        features: FeatureInfo,
        num_classes: int,
        *,
        channels: int = 256,
        min_size: int = 800,
        max_size: int = 1333,
        score_thresh: float = 0.05,
        nms: float = 0.5,
        detections: int = 100,
        frozen_bn: bool | None = None,
    ) -> None:
        super().__init__()
        levels = pyramid_levels(features)
        if len(levels) < 2:
            strides = sorted({s.stride for s in features.spatial_stages})
            raise ZooError(
                f"det{num_classes} needs features at two or more strides for its pyramid; this backbone's "
                f"spatial stages have stride {', '.join(map(str, strides)) or 'none'}: choose a CNN such as resnet50"
            )
        self.num_classes = num_classes
        self.frozen_bn = frozen_bn  # None: freeze the backbone's BatchNorm only once pretrained weights are in it
        self.levels = tuple(stage.name for stage in levels)
        strides = [stage.stride for stage in levels] + [2 * levels[-1].stride]
        self.fpn = FeaturePyramidNetwork([stage.channels for stage in levels], channels, extra_blocks=LastLevelMaxPool())
        placeholder = nn.Module()
        placeholder.out_channels = channels
        rcnn = FasterRCNN(
            placeholder,
            num_classes,
            min_size=min_size,
            max_size=max_size,
            rpn_anchor_generator=AnchorGenerator(tuple((8 * s,) for s in strides), (ASPECT_RATIOS,) * len(strides)),
            box_roi_pool=MultiScaleRoIAlign([str(i) for i in range(len(levels))], output_size=7, sampling_ratio=2),
            box_score_thresh=score_thresh,
            box_nms_thresh=nms,
            box_detections_per_img=detections,
            size_divisible=max(32, strides[-2]),
        )
        self.transform, self.rpn, self.roi_heads = rcnn.transform, rcnn.rpn, rcnn.roi_heads

    def attach(self, backbone: Backbone) -> None:
        """Normalise with the backbone's own mean and std; freeze its BatchNorm when asked (``frozen_bn=true``)."""
        self.transform.image_mean = list(backbone.mean)
        self.transform.image_std = list(backbone.std)
        if self.frozen_bn:
            freeze_batchnorm(backbone)

    def backbone_pretrained(self, backbone: Backbone) -> dict[str, bool]:
        """Freeze the backbone's BatchNorm as torchvision does for trained backbones (small detection batches
        would ruin its statistics), unless ``frozen_bn`` was given; an untrained backbone's BatchNorm keeps
        learning, since frozen at its initial values it could not (pytorch/vision#5443)."""
        if self.frozen_bn is not None:
            return {}
        self.frozen_bn = True
        freeze_batchnorm(backbone)
        return {"frozen_bn": True}

    def start_fresh(self) -> None:
        """Only the box predictor answers in labels: the pyramid and the proposals serve any classes."""
        reset_layers(self.roi_heads.box_predictor)

    def forward_images(
        self,
        backbone: Backbone,
        images: Sequence[torch.Tensor],
        targets: Sequence[Mapping[str, torch.Tensor]] | None = None,
    ) -> Any:
        """torchvision's convention: images in [0, 1] of any size; in training, targets with ``boxes``
        (x1, y1, x2, y2 in pixels) and ``labels`` (1..N-1; 0 is the background) give the loss dict,
        in evaluation a list of ``{"boxes", "labels", "scores"}`` in each image's own pixels."""
        images = list(images)
        if self.training:
            if targets is None:
                raise ZooError(
                    "a detection model in training mode needs targets: one {'boxes', 'labels'} per image; "
                    "call model.eval() to detect"
                )
            targets = [dict(target) for target in targets]
            _check_targets(images, targets, self.num_classes)
        original_sizes = [(int(image.shape[-2]), int(image.shape[-1])) for image in images]
        batch, targets = self.transform(images, targets)
        stages = backbone(batch.tensors).stages
        maps = self.fpn(OrderedDict((str(i), stages[name]) for i, name in enumerate(self.levels)))
        proposals, proposal_losses = self.rpn(batch, maps, targets)
        detections, detector_losses = self.roi_heads(maps, proposals, batch.image_sizes, targets)
        if self.training:
            return {**detector_losses, **proposal_losses}
        return self.transform.postprocess(detections, batch.image_sizes, original_sizes)

    def loss(self, output: Mapping[str, torch.Tensor], target: Any = None) -> torch.Tensor:
        """The sum of torchvision's losses, which the training-mode forward computed from the targets."""
        if not isinstance(output, Mapping):
            raise ZooError("detection losses come from the forward pass in training mode: call model.train() "
                           "and model(images, targets), then model.loss(outputs)")
        return sum(output.values())

    @torch.no_grad()
    def decode(self, output: Sequence[Mapping[str, torch.Tensor]], context: DecodeContext) -> list[dict[str, Any]]:
        answers = []
        for result in output:
            objects = []
            for box, label, score in zip(result["boxes"].tolist(), result["labels"].tolist(), result["scores"].tolist()):
                if score >= context.threshold:
                    objects.append({"label": context.label(label), "index": label, "score": round(score, 4),
                                    "box": [round(v, 2) for v in box]})
            answers.append({"objects": objects})
        return answers

    def metric(self) -> MeanAveragePrecision:
        return MeanAveragePrecision()

    def format(self, answer: dict[str, Any]) -> str:
        objects = answer["objects"]
        if not objects:
            return "no objects above the threshold"
        return "; ".join(f"{o['label']} {o['score']:.3f} [{', '.join(f'{v:.0f}' for v in o['box'])}]" for o in objects)

    def draw(self, canvas, answer: dict[str, Any]) -> None:
        for found in sorted(answer["objects"], key=lambda o: o["score"]):  # the best on top
            canvas.box(found["box"], f"{found['label']} {found['score']:.2f}", color(found["index"]))


def _check_targets(images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]], num_classes: int) -> None:
    if len(targets) != len(images):
        raise ZooError(f"{len(images)} images but {len(targets)} targets; give one target per image")
    for index, target in enumerate(targets):
        if "boxes" not in target or "labels" not in target:
            raise ZooError(f"target {index} needs 'boxes' (N, 4) and 'labels' (N,); it has {sorted(target)}")
        boxes, labels = target["boxes"], target["labels"]
        if boxes.ndim != 2 or boxes.shape[-1] != 4 or len(labels) != len(boxes):
            raise ZooError(f"target {index}: boxes must be (N, 4) with N labels, not {tuple(boxes.shape)} "
                           f"with {len(labels)} labels")
        degenerate = (boxes[:, 2:] <= boxes[:, :2]).any(dim=1)
        if degenerate.any():
            box = boxes[degenerate.nonzero()[0, 0]].tolist()
            raise ZooError(f"target {index}: box {box} has no area; boxes are (x1, y1, x2, y2) with x2 > x1, y2 > y1")
        if len(labels) and (labels.min() < 1 or labels.max() >= num_classes):
            raise ZooError(f"target {index}: labels must be 1..{num_classes - 1} (0 is the background), "
                           f"not {labels.tolist()}")


class MeanAveragePrecision(Metric):
    """COCO-style box mAP from torchmetrics (pycocotools backend): ``map``, ``map_50``, ``map_75``.

    Computed over what it was given alone: under torchrun, zoo gathers every process's outputs on rank 0 and
    computes there, so torchmetrics' own sync, waiting for the other processes to compute too, would hang.
    """

    def __init__(self) -> None:
        from torchmetrics.detection import MeanAveragePrecision as TorchmetricsMAP

        self._map = TorchmetricsMAP(iou_type="bbox", box_format="xyxy", backend="pycocotools", sync_on_compute=False)

    def update(self, output: Sequence[Mapping[str, torch.Tensor]], target: Sequence[Mapping[str, torch.Tensor]]) -> None:
        predictions = [{k: result[k].detach().cpu() for k in ("boxes", "scores", "labels")} for result in output]
        truths = [{k: t[k].detach().cpu() for k in ("boxes", "labels")} for t in target]
        self._map.update(predictions, truths)

    def compute(self) -> dict[str, float]:
        values = self._map.compute()
        return {name: float(values[name]) for name in ("map", "map_50", "map_75", "mar_100")}

    def reset(self) -> None:
        self._map.reset()
