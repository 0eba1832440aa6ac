"""A timm model without its classifier; stages come from timm's own ``feature_info``."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

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


# Vision transformers are made for one image size (their position embedding's grid); built with this, they take
# other sizes (whole patches: a multiple of 16 for a patch-16 ViT), the embedding resampled, and load their
# weights unchanged.
ANY_IMAGE_SIZE = {"dynamic_img_size": True}


def _create(name: str) -> torch.nn.Module:
    """timm's model without its classifier, taking any image size where the model can (ViTs, Swin, ...)."""
    try:
        return timm.create_model(name, pretrained=False, num_classes=0, **ANY_IMAGE_SIZE)
    except TypeError:  # a model without those options (a CNN: it takes any size already)
        return timm.create_model(name, pretrained=False, num_classes=0)


def _channels_first(final: Any, pooled: torch.Tensor, channels: int) -> torch.Tensor:
    """The one stage of a model without intermediates, channels second as zoo's stages are: its map as it is,
    its tokens (N, L, C) as (N, C, L), or, where it gives several branches (a list), the pooled vector."""
    if isinstance(final, torch.Tensor) and final.dim() >= 2 and final.shape[1] == channels:
        return final
    if isinstance(final, torch.Tensor) and final.dim() == 3 and final.shape[2] == channels:
        return final.transpose(1, 2)
    return pooled


class TimmBackbone(Backbone):
    reference_prefix = "model."

    def __init__(self, name: str) -> None:
        super().__init__()
        self.arch = name
        self.model = _create(name)
        cfg = self.model.pretrained_cfg or {}
        self.reference_classifier = cfg.get("classifier") or ""
        self.input_size = tuple(cfg.get("input_size", (3, 224, 224)))
        self.mean = tuple(cfg.get("mean", self.mean))
        self.std = tuple(cfg.get("std", self.std))
        interpolation = cfg.get("interpolation")
        self.interpolation = interpolation if interpolation in ("bilinear", "bicubic", "nearest") else "bilinear"
        # the pooled vector is what forward_head(pre_logits=True) returns; models that pool after a head
        # conv or MLP (MobileNetV3, GhostNet, timm's VGG) make it wider than the last stage: head_hidden_size
        self.num_features = getattr(self.model, "head_hidden_size", None) or self.model.num_features
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
            self.stages = (Stage("features", everything, self.model.num_features, None, direct),)

    def reference_state_dict(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The checkpoint through timm's own pretrained loading, so the model's ``filter_fn`` converts it
        (original-format checkpoints, position embeddings of another size); strict, or as it is when timm
        cannot load it whole (zoo then names what is missing)."""
        classifier = self.reference_classifier
        weight = tensors.get(f"{classifier}.weight") if classifier else None
        classes = int(weight.shape[0]) if weight is not None and weight.ndim >= 1 else 0
        overlay = {"state_dict": dict(tensors), "num_classes": classes}
        try:
            with torch.device("cpu"):
                model = timm.create_model(self.arch, pretrained=True, num_classes=classes, pretrained_cfg_overlay=overlay)
        except Exception:  # noqa: BLE001 - any failure: zoo fits the tensors itself and names what does not fit
            return tensors
        return model.state_dict()

    def forward(self, x: torch.Tensor) -> Features:
        if self._intermediates:
            final, outputs = self.model.forward_intermediates(x)
            if len(outputs) != len(self.stages):
                raise RuntimeError(f"timm returned {len(outputs)} intermediates for {len(self.stages)} stages")
            return Features(dict(zip(self.stage_names, outputs)), self.model.forward_head(final, pre_logits=True), x)
        final = self.model.forward_features(x)
        pooled = self.model.forward_head(final, pre_logits=True)
        return Features({"features": _channels_first(final, pooled, self.stages[0].channels)}, pooled, x)
