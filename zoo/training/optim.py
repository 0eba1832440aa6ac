"""Parameter groups per stage, learning-rate schedules, and adding unfrozen parameters to an optimizer.

Heads learn at ``lr``; backbone stages at ``lr * backbone_lr`` and, with ``layer_decay`` (timm's
``param_groups_layer_decay``), each stage ``layer_decay`` times the rate of the stage after it. Only
trainable parameters are grouped; `add_unfrozen` brings in those a later `zoo.freeze` made trainable,
with the rate their stage would have had, so gradual unfreezing keeps the optimizer right.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zoo._core.build import freeze as apply_freeze
from zoo.errors import ZooError

if TYPE_CHECKING:
    import torch

    from zoo._core.model import ZooModel

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("constant", "step", "cosine")


def _rates(model: ZooModel, lr: float, backbone_lr: float, layer_decay: float | None) -> dict[str, float]:
    """The learning rate of each stage, and of the heads under the key ``"heads"``."""
    names = model.backbone.stage_names
    rates = {"heads": lr}
    for depth, name in enumerate(reversed(names)):
        rates[name] = lr * backbone_lr * ((layer_decay ** depth) if layer_decay else 1.0)
    return rates


def _owners(model: ZooModel) -> dict[int, str]:
    """Which group each parameter belongs to: its stage, ``heads``, or ``backbone`` for the rest."""
    owners = {id(p): "heads" for p in model.heads.parameters()}
    for name in model.backbone.stage_names:
        owners.update({id(p): name for p in model.backbone.stage_parameters(name)})
    return owners


def param_groups(model: ZooModel, lr: float, *, backbone_lr: float = 1.0, layer_decay: float | None = None,
                 weight_decay: float = 0.0, exclude: set[int] | None = None) -> list[dict[str, Any]]:
    """Optimizer parameter groups of the trainable parameters, one per stage plus the heads, each named.

    Biases and normalisation weights (1-d tensors) get no weight decay, as in timm and torchvision.
    """
    if lr <= 0 or backbone_lr < 0 or (layer_decay is not None and not 0 < layer_decay <= 1):
        raise ZooError(f"lr {lr:g} must be > 0, backbone_lr {backbone_lr:g} >= 0, layer_decay in (0, 1]")
    rates, owners, exclude = _rates(model, lr, backbone_lr, layer_decay), _owners(model), exclude or set()
    groups: dict[tuple[str, bool], dict[str, Any]] = {}
    for param in model.parameters():
        if not param.requires_grad or id(param) in exclude:
            continue
        owner = owners.get(id(param), "backbone")
        rate = rates.get(owner, lr * backbone_lr)
        decay = param.ndim > 1
        group = groups.setdefault((owner, decay), {"name": owner, "params": [], "lr": rate, "initial_lr": rate,
                                                   "weight_decay": weight_decay if decay else 0.0})
        group["params"].append(param)
    return list(groups.values())


def make_optimizer(name: str, groups: list[dict[str, Any]], *, momentum: float = 0.9) -> torch.optim.Optimizer:
    import torch

    if name == "sgd":
        return torch.optim.SGD(groups, lr=groups[0]["lr"] if groups else 0.01, momentum=momentum)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=groups[0]["lr"] if groups else 1e-3)
    raise ZooError(f"unknown optimizer {name!r}; choose {', '.join(OPTIMIZERS)}")


def add_unfrozen(optimizer: torch.optim.Optimizer, model: ZooModel, lr: float | None = None, *,
                 backbone_lr: float = 1.0, layer_decay: float | None = None, weight_decay: float | None = None) -> int:
    """Add the model's trainable parameters that ``optimizer`` lacks, grouped by stage; returns how many.

    ``lr`` defaults to the rate of the optimizer's ``heads`` group (or its first group).
    """
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if lr is None:
        first = next((g for g in optimizer.param_groups if g.get("name") == "heads"), optimizer.param_groups[0])
        lr = first.get("initial_lr", first["lr"])
    if weight_decay is None:
        weight_decay = max((g.get("weight_decay", 0.0) for g in optimizer.param_groups), default=0.0)
    added = 0
    for group in param_groups(model, lr, backbone_lr=backbone_lr, layer_decay=layer_decay,
                              weight_decay=weight_decay, exclude=held):
        optimizer.add_param_group(group)
        added += len(group["params"])
    return added


@dataclass(frozen=True)
class Schedule:
    """A learning-rate factor per step: linear warm-up, then constant, step decay or cosine to zero.

    Applied to every group's ``initial_lr`` (`apply`), so groups added while training are scheduled too.
    """

    kind: str = "cosine"
    total_steps: int = 1
    warmup_steps: int = 0
    step_every: int = 1  # steps between decays (step schedule)
    gamma: float = 0.1

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ZooError(f"unknown schedule {self.kind!r}; choose {', '.join(SCHEDULES)}")

    def factor(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        if self.kind == "step":
            return self.gamma ** ((step - self.warmup_steps) // max(1, self.step_every))
        if self.kind == "cosine":
            span = max(1, self.total_steps - self.warmup_steps)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - self.warmup_steps) / span)))
        return 1.0

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> None:
        factor = self.factor(step)
        for group in optimizer.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor


def parse_unfreeze(text: str | None, stages: tuple[str, ...]) -> list[tuple[int, str]]:
    """``3:layer4,6:layer3`` -> [(3, "layer4"), (6, "layer3")]: at the start of epoch 3, train from layer4 on."""
    if not text:
        return []
    plan = []
    for item in text.split(","):
        epoch, sep, stage = item.strip().partition(":")
        if not sep or not epoch.isdigit() or int(epoch) < 1:
            raise ZooError(f"--unfreeze {text}: write EPOCH:STAGE pairs such as 3:layer4,6:layer3")
        if stage not in stages and stage not in ("none", "all") and not stage.startswith("last:"):
            raise ZooError(f"--unfreeze {text}: no stage {stage!r}; stages: {', '.join(stages)}")
        plan.append((int(epoch), stage))
    return sorted(plan)


class Optimisation:
    """The optimizer, its schedule and the unfreezing plan kept in step: a stage the plan unfreezes at an
    epoch joins the optimizer with the rates its stage takes."""

    def __init__(self, model: ZooModel, config: Any, plan: list[tuple[int, str]], steps: int,
                 registry: Any = None) -> None:
        self.model, self.config, self.plan, self.registry = model, config, plan, registry
        self.groups = dict(backbone_lr=config.backbone_lr, layer_decay=config.layer_decay)
        self.optimizer = make_optimizer(config.optimizer, param_groups(
            model, config.lr, weight_decay=config.weight_decay, **self.groups), momentum=config.momentum)
        self.schedule = Schedule(config.schedule, config.epochs * steps, config.warmup * steps,
                                 max(1, config.epochs // 3) * steps)

    def unfreeze_at(self, epoch: int) -> None:
        for at, stage in self.plan:
            if at == epoch:
                policy = stage if stage.startswith(("last:", "none", "all")) else f"before:{stage}"
                apply_freeze(self.model, policy, self.registry)
                add_unfrozen(self.optimizer, self.model, self.config.lr, weight_decay=self.config.weight_decay,
                             **self.groups)
