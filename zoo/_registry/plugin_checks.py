"""Calling plugin code, and checking what it returns against the contract.

A failure inside a plugin (a builder raising because an optional dependency is missing, a freeze policy
returning None, a head builder returning a plain ``nn.Linear``, a backbone without stages) becomes one
`PluginError` line naming the part, its plugin and its distribution: exit code 2 from the CLI, the plugin's
own traceback kept as the cause for ``ZOO_DEBUG=1`` / ``zoo --debug``. Checking here, when the part is
built, stops a broken part before it fails later as a shape error or a traceback in ``zoo predict``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from zoo._registry.plugin_host import one_line
from zoo.errors import ZooError
from zoo.parts import KIND_LABELS

if TYPE_CHECKING:
    import torch

    from zoo._registry.registry import Entry
    from zoo.backbone import Backbone, FeatureInfo, Features
    from zoo.head import Head


class PluginError(ZooError):
    """Plugin code failed or broke the contract; the message names the part, its plugin and distribution."""


def origin(entry: Entry) -> str:
    """``backbone example/tinycnn (plugin example, zoo-example 1.2.0)``: who to blame, in words."""
    plugin = entry.plugin
    return (f"{KIND_LABELS[entry.part.kind]} {entry.part.qualified_name} "
            f"(plugin {plugin.name}, {plugin.distribution} {plugin.version}".rstrip() + ")")


def call(entry: Entry, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, a plugin's code; any failure but a `ZooError` becomes a `PluginError`."""
    try:
        return function(*args, **kwargs)
    except ZooError:
        raise  # the plugin's own one-line message for the user
    except Exception as exc:
        raise PluginError(f"{origin(entry)}: {what} failed: {one_line(exc)}") from exc


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def build_backbone(entry: Entry, options: dict[str, Any]) -> Backbone:
    """The part's backbone, built and checked: a `Backbone` with stages, channels, strides and a feature width."""
    from zoo.backbone import Backbone, Stage

    backbone = call(entry, "its builder", entry.part.build, **options)
    where = origin(entry)
    if not isinstance(backbone, Backbone):
        raise PluginError(f"{where}: its builder returned {type(backbone).__name__}, not a zoo.backbone.Backbone")
    stages = backbone.stages
    if not isinstance(stages, (tuple, list)) or not stages or not all(isinstance(s, Stage) for s in stages):
        raise PluginError(f"{where}: the backbone declares no stages; set stages = (zoo.backbone.Stage(...), ...)")
    names = [stage.name for stage in stages]
    for stage in stages:
        if names.count(stage.name) > 1:
            raise PluginError(f"{where}: stage {stage.name!r} is declared twice")
        if not _positive_int(stage.channels):
            raise PluginError(f"{where}: stage {stage.name} has channels={stage.channels!r}; it must be a whole number > 0")
        if stage.stride is not None and not _positive_int(stage.stride):
            raise PluginError(f"{where}: stage {stage.name} has stride={stage.stride!r}; it must be a whole number > 0 or None")
        for module in stage.modules:
            try:
                backbone.get_submodule(module)
            except AttributeError:
                raise PluginError(f"{where}: stage {stage.name} names module {module!r}, which the backbone lacks") from None
        for parameter in stage.parameters:
            try:
                backbone.get_parameter(parameter)
            except AttributeError:
                raise PluginError(f"{where}: stage {stage.name} names parameter {parameter!r}, which the backbone lacks") from None
    if not _positive_int(backbone.num_features):
        raise PluginError(f"{where}: num_features={backbone.num_features!r}; it must be the pooled vector's width (> 0)")
    size = backbone.input_size
    if not isinstance(size, (tuple, list)) or len(size) != 3 or not all(map(_positive_int, size)):
        raise PluginError(f"{where}: input_size={size!r}; it must be (channels, height, width)")
    return backbone


_HEAD_METHODS = ("loss", "decode", "metric")


def build_head(entry: Entry, features: FeatureInfo, size: int | None, options: dict[str, Any]) -> Head:
    """The part's head, built and checked as strictly as a backbone: a `Head` implementing the whole contract."""
    from zoo.head import Head

    head = call(entry, "its builder", entry.part.build, features, size, **options)
    where = origin(entry)
    if not isinstance(head, Head):
        raise PluginError(f"{where}: its builder returned {type(head).__name__}, not a zoo.head.Head "
                          "(forward, loss, decode, metric)")
    if head.inputs != entry.part.inputs:
        raise PluginError(f"{where}: the head reads {head.inputs!r} and its part declares inputs={entry.part.inputs!r}")
    runs = "forward_images" if head.inputs == "images" else "forward"
    missing = [name for name in (runs, *_HEAD_METHODS) if getattr(type(head), name) is getattr(Head, name)]
    if missing:
        raise PluginError(f"{where}: the head does not implement {', '.join(missing)} of zoo.head.Head")
    return head


def select_stages(entry: Entry, stages: Sequence[str], argument: Any) -> list[str]:
    """The stage names a freeze policy chooses, checked to be names of this backbone's stages."""
    selected, where = _selected(entry, "stage names", stages, argument)
    unknown = [s for s in selected if s not in stages]
    if unknown:
        raise PluginError(f"{where}: select chose {', '.join(map(repr, unknown))}, not among the stages: {', '.join(stages)}")
    return selected


def select_parameters(entry: Entry, views: Sequence[Any], known: Sequence[str], argument: Any) -> list[str]:
    """The backbone parameter names a ``chooses="parameters"`` policy picks from its `StageView`s, checked
    to be names of this backbone's parameters."""
    selected, where = _selected(entry, "parameter names", views, argument)
    names = set(known)
    unknown = [p for p in selected if not isinstance(p, str) or p not in names]
    if unknown:
        shown = ", ".join(map(repr, unknown[:3])) + (" ..." if len(unknown) > 3 else "")
        raise PluginError(f"{where}: select chose {shown}, not among the backbone's parameters")
    return selected


def _selected(entry: Entry, what: str, given: Sequence[Any], argument: Any) -> tuple[list[Any], str]:
    """A policy's ``select`` called on ``given``, its answer as a list (or one line if it is not iterable)."""
    chosen = call(entry, "select", entry.part.select, given, argument)
    where = origin(entry)
    try:
        return list(chosen), where
    except TypeError:
        raise PluginError(f"{where}: select returned {type(chosen).__name__}, not an iterable of {what}") from None


class FeaturesCheck:
    """Checks a backbone's first `Features` against what it declares; later batches are not checked."""

    def __init__(self, where: str) -> None:
        self.where = where

    def __call__(self, backbone: Backbone, features: Features, inputs: torch.Tensor) -> None:
        import torch

        from zoo.backbone import Features

        where = f"{self.where}: its forward"
        if not isinstance(features, Features):
            raise PluginError(f"{where} returned {type(features).__name__}, not zoo.backbone.Features")
        declared = list(backbone.stage_names)
        if sorted(features.stages) != sorted(declared):
            raise PluginError(f"{where} gave stages {', '.join(features.stages) or 'none'}; "
                              f"it declares {', '.join(declared)}")
        for stage in backbone.stages:
            output = features.stages[stage.name]
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            if stage.stride is not None and (not isinstance(output, torch.Tensor) or output.dim() != 4):
                raise PluginError(f"{where} gave stage {stage.name} as {shape}; a stage with a stride (/{stage.stride}) "
                                  "is N, C, H, W")
            if not isinstance(output, torch.Tensor) or output.dim() < 2 or output.shape[1] != stage.channels:
                raise PluginError(f"{where} gave stage {stage.name} as {shape}; it declares {stage.channels} channels")
        pooled = features.pooled
        if not isinstance(pooled, torch.Tensor) or pooled.dim() != 2 or pooled.shape[1] != backbone.num_features:
            shape = tuple(pooled.shape) if isinstance(pooled, torch.Tensor) else type(pooled).__name__
            raise PluginError(f"{where} gave pooled features {shape}; it declares (N, {backbone.num_features})")
        if features.inputs is not inputs:
            raise PluginError(f"{where} gave Features.inputs that is not the input batch; pass the batch it was called with")
