"""What `zoo build` and `zoo info` print: parameters and what trains, stage by stage and head by head."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoo._core.model import ZooModel


def _count(parameters) -> tuple[int, int]:
    total = trainable = 0
    for p in parameters:
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return total, trainable


def model_summary(model: ZooModel) -> dict[str, Any]:
    backbone = model.backbone
    rows = []
    for stage in backbone.stages:
        total, trainable = _count(backbone.stage_parameters(stage.name))
        rows.append({"kind": "stage", "name": stage.name, "params": total, "trainable": trainable,
                     "trains": stage.name not in model.frozen_stages and (trainable > 0 or not total),
                     "channels": stage.channels, "stride": stage.stride})
    for name, head in model.heads.items():
        total, trainable = _count(head.parameters())
        rows.append({"kind": "head", "name": name, "params": total, "trainable": trainable, "trains": True,
                     "channels": None, "stride": None})
    total, trainable = _count(model.parameters())
    return {
        "spec": model.spec,
        "freeze": model.freeze_policy,
        "frozen_stages": list(model.frozen_stages),
        "total_params": total,
        "trainable_params": trainable,
        "input_size": list(backbone.input_size),
        "mean": list(backbone.mean),
        "std": list(backbone.std),
        "parts": rows,
    }
