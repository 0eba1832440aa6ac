"""A timm model without its classifier; stages come from timm's own ``feature_info``."""
from __future__ import annotations

from dataclasses import replace

import timm
import torch
from torch import nn

from zoo.backbone import Backbone, Features, Stage


def _stage_modules(model: nn.Module, feature_modules: list[str], prefix: str) -> list[list[str]] | None:
    """Module names for each stage, in forward order.

    A stage is its feature module plus the modules registered between it and the previous stage
    (the stem joins the first stage); modules after the last stage (a final norm) join the last.
    """
    groups: list[list[str]] = [[] for _ in feature_modules]
    pending: list[str] = []
    current = 0

    def walk(module: nn.Module, prefix: str) -> None:
        nonlocal current, pending
        for child_name, child in module.named_children():
            name = f"{prefix}{child_name}"
            if current < len(feature_modules) and name == feature_modules[current]:
                groups[current].extend([*pending, name])
                pending = []
                current += 1
            elif any(f.startswith(name + ".") for f in feature_modules[current:]):
                walk(child, name + ".")
            else:
                pending.append(name)

    walk(model, prefix)
    if current != len(feature_modules):
        return None
    groups[-1].extend(pending)
    return groups


class TimmBackbone(Backbone):
    reference_prefix = "model."

    def __init__(self, name: str) -> None:
        super().__init__()
        self.model = timm.create_model(name, pretrained=False, num_classes=0)
        cfg = self.model.pretrained_cfg or {}
        self.reference_classifier = cfg.get("classifier") or ""
        self.input_size = tuple(cfg.get("input_size", (3, 224, 224)))
        self.mean = tuple(cfg.get("mean", self.mean))
        self.std = tuple(cfg.get("std", self.std))
        interpolation = cfg.get("interpolation")
        self.interpolation = interpolation if interpolation in ("bilinear", "bicubic", "nearest") else "bilinear"
        self.num_features = self.model.num_features
        info = list(getattr(self.model, "feature_info", None) or [])
        groups = _stage_modules(self.model, [f"model.{f['module']}" for f in info], "model.") if info else None
        self._intermediates = groups is not None and hasattr(self.model, "forward_intermediates")
        if self._intermediates:
            stages = [Stage(f["module"], tuple(group), f["num_chs"], f["reduction"]) for f, group in zip(info, groups)]
            # parameters held by the model itself (cls_token, pos_embed) sit at the input: the first stage
            direct = tuple(f"model.{name}" for name, _ in self.model.named_parameters(recurse=False))
            stages[0] = replace(stages[0], parameters=direct)
            self.stages = tuple(stages)
        else:
            everything = tuple(f"model.{name}" for name, _ in self.model.named_children())
            direct = tuple(f"model.{name}" for name, _ in self.model.named_parameters(recurse=False))
            self.stages = (Stage("features", everything, self.num_features, None, direct),)

    def forward(self, x: torch.Tensor) -> Features:
        if self._intermediates:
            final, outputs = self.model.forward_intermediates(x)
            if len(outputs) != len(self.stages):
                raise RuntimeError(f"timm returned {len(outputs)} intermediates for {len(self.stages)} stages")
            stages = dict(zip(self.stage_names, outputs))
        else:
            final = self.model.forward_features(x)
            stages = {"features": final}
        return Features(stages, self.model.forward_head(final, pre_logits=True), x)
