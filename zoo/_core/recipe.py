"""The resolved recipe: a spec with every name looked up in the registry and every option checked.

A model keeps the recipe it was built from (``model.recipe``), so saving, re-freezing and benchmarking
read it instead of parsing and resolving the spec string again.
"""
from __future__ import annotations

from dataclasses import dataclass

from zoo._registry.registry import Registry, default_registry
from zoo._registry.spec import ModelSpec, PartRef, parse
from zoo.errors import ZooError
from zoo.parts import LOSS_WEIGHT, BackbonePart, HeadPart, OptionValue, check_image_heads, resolve_options


@dataclass(frozen=True)
class ResolvedHead:
    ref: PartRef
    part: HeadPart
    options: dict[str, OptionValue]

    @property
    def key(self) -> str:
        """The head's name in the model and in its outputs: ``cls10``."""
        return f"{self.ref.name}{'' if self.ref.size is None else self.ref.size}"


@dataclass(frozen=True)
class Recipe:
    """A spec with every name resolved and every option checked; building it needs nothing else."""

    spec: ModelSpec  # canonical, with qualified names
    backbone: BackbonePart
    backbone_options: dict[str, OptionValue]
    heads: tuple[ResolvedHead, ...]
    freeze: str | None
    weights_tag: str | None = None  # the pretrained tag written in the spec (timm/resnet50.a1_in1k): build loads it

    @property
    def classifier_heads(self) -> tuple[ResolvedHead, ...]:
        """Heads that declare a classifier layer: they take a reference model's classifier (names: `zoo._core.labels`)."""
        return tuple(head for head in self.heads if head.part.classifier)


def _backbone(spec: ModelSpec, registry: Registry) -> tuple[BackbonePart, str | None]:
    """The spec's backbone, and the tag of its weights when written with it: ``timm/resnet50.a1_in1k`` is
    timm/resnet50 with those weights, as ``timm.create_model("resnet50.a1_in1k", pretrained=True)`` reads it."""
    try:
        return registry.backbone(spec.backbone), None
    except ZooError:
        tagged = registry.tagged_backbone(spec.backbone.name, spec.backbone.namespace)
        if tagged is None:
            raise
        return tagged[0].part, tagged[1]  # type: ignore[return-value]


def resolve(text: str, freeze: str | None = None, registry: Registry | None = None) -> Recipe:
    """Resolve a spec or preset name; the ``freeze`` argument overrides a preset's policy."""
    registry = registry or default_registry()
    preset = registry.presets.get(text.strip()) if isinstance(text, str) else None
    if preset is not None:
        text, freeze = preset.spec, freeze if freeze is not None else preset.freeze
    spec = parse(text)
    backbone, tag = _backbone(spec, registry)
    backbone_options = resolve_options(backbone.options, dict(spec.backbone.options), backbone.qualified_name)
    heads = []
    for ref in spec.heads:
        part = registry.head(ref)
        options = resolve_options((*part.options, LOSS_WEIGHT), dict(ref.options), ref.ref)
        if options.get(LOSS_WEIGHT.name, 0) < 0:
            raise ZooError(f"head {ref.ref}: loss weight {options[LOSS_WEIGHT.name]:g} is negative; "
                           "use weight=0 or more (0 leaves the head untrained)")
        heads.append(ResolvedHead(ref, part, options))
    keys = [head.key for head in heads]
    for key in keys:
        if keys.count(key) > 1:
            raise ZooError(f"head {key} appears twice in {text!r}; each head needs its own name")
    check_image_heads({head.key: head.part.inputs for head in heads}, spec.backbone.ref)
    canonical = ModelSpec(
        PartRef(backbone.name if tag is None else f"{backbone.name}.{tag}", backbone.namespace, None,
                spec.backbone.options),
        tuple(PartRef(h.part.name, h.part.namespace, h.ref.size, h.ref.options) for h in heads),
    )
    return Recipe(canonical, backbone, backbone_options, tuple(heads), freeze, tag)
