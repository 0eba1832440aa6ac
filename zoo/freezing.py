"""What a parameter-choosing freeze policy sees: the backbone's stages with their modules and parameters.

A `zoo.parts.FreezePolicyPart` with ``chooses="parameters"`` gets a tuple of `StageView` and returns the
names of the backbone parameters to freeze (names as in ``backbone.named_parameters()``), for
norm-only or bias-only tuning, "train the top N% of parameters" or "freeze a stage but keep its norms".
`parameters_where` turns a predicate into such names. This module imports torch, so plugin entry
modules import it inside their ``select`` only.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from torch import nn

NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm,
    nn.LocalResponseNorm,
)


@dataclass(frozen=True)
class StageView:
    """One stage: its modules and its parameters by their names in the backbone, each parameter once."""

    name: str
    modules: dict[str, nn.Module]
    parameters: dict[str, nn.Parameter]
    owners: dict[str, nn.Module]  # the module that holds each parameter directly

    @property
    def size(self) -> int:
        """How many numbers the stage's parameters hold."""
        return sum(p.numel() for p in self.parameters.values())


def is_norm(module: nn.Module) -> bool:
    """True for a normalisation layer: BatchNorm (timm's with activation too), GroupNorm, LayerNorm, InstanceNorm."""
    return isinstance(module, NORM_TYPES)


def stage_views(backbone: nn.Module) -> tuple[StageView, ...]:
    """The stages of a `zoo.backbone.Backbone` as a freeze policy sees them."""
    owners = {f"{prefix}.{name}" if prefix else name: module
              for prefix, module in backbone.named_modules() for name, _ in module.named_parameters(recurse=False)}
    ids = {id(p): name for name, p in backbone.named_parameters()}
    views = []
    for stage in backbone.stages:
        modules = {name: backbone.get_submodule(name) for name in stage.modules}
        chosen = {ids[id(p)]: p for p in backbone.stage_parameters(stage.name)}
        views.append(StageView(stage.name, modules, chosen, {name: owners[name] for name in chosen}))
    return tuple(views)


def parameters_where(
    stages: Iterable[StageView], predicate: Callable[[str, nn.Parameter, nn.Module], bool]
) -> list[str]:
    """Names of the parameters for which ``predicate(name, parameter, owning_module)`` is true."""
    return [name for stage in stages for name, p in stage.parameters.items() if predicate(name, p, stage.owners[name])]
