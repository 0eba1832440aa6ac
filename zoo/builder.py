"""From a spec string to a model: resolve names through the registry, build, attach heads, freeze."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zoo.errors import ZooError
from zoo.parts import BackbonePart, HeadPart, Option, OptionValue, check_image_heads, resolve_options
from zoo.registry import Registry, default_registry
from zoo.spec import ModelSpec, PartRef, parse

if TYPE_CHECKING:
    from zoo.model import ZooModel
    from zoo.weights import Weights

# Every head takes ``weight=``: its share of the model's loss (``resnet50+cls10+kp5:weight=10``).
LOSS_WEIGHT = Option("weight", float, 1.0, "this head's weight in the model's loss (0 or more)")


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

    @property
    def classifier_heads(self) -> tuple[ResolvedHead, ...]:
        """Heads that declare a classifier layer: they take a reference model's classifier and labels."""
        return tuple(head for head in self.heads if head.part.classifier)


def resolve(text: str, freeze: str | None = None, registry: Registry | None = None) -> Recipe:
    """Resolve a spec or preset name; the ``freeze`` argument overrides a preset's policy."""
    registry = registry or default_registry()
    preset = registry.presets.get(text.strip()) if isinstance(text, str) else None
    if preset is not None:
        text, freeze = preset.spec, freeze if freeze is not None else preset.freeze
    spec = parse(text)
    backbone = registry.backbone(spec.backbone)
    backbone_options = resolve_options(backbone.options, dict(spec.backbone.options), backbone.qualified_name)
    heads = []
    for ref in spec.heads:
        part = registry.head(ref)
        declared = part.options if any(o.name == LOSS_WEIGHT.name for o in part.options) else (*part.options, LOSS_WEIGHT)
        options = resolve_options(declared, dict(ref.options), ref.ref)
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
        PartRef(backbone.name, backbone.namespace, None, spec.backbone.options),
        tuple(PartRef(h.part.name, h.part.namespace, h.ref.size, h.ref.options) for h in heads),
    )
    return Recipe(canonical, backbone, backbone_options, tuple(heads), freeze)


def build(
    spec: str,
    *,
    freeze: str | None = None,
    weights: Weights | None = None,
    registry: Registry | None = None,
    img_size: int | None = None,
) -> ZooModel:
    """Build ``backbone+head[+head...]`` with a freeze policy (``none`` when not given).

    ``img_size``: the square image size the model is for (default: the backbone's); saved with it.

    ``weights``: ``imagenet``, a tag of the backbone's plugin, a name pinned in registry.toml, or a
    .safetensors/.pth/.pt file (see `zoo.weights`); None keeps the fresh initialisation.

    >>> model = zoo.build("resnet50+cls10", freeze="layer4", weights="imagenet")  # doctest: +SKIP
    """
    registry = registry or default_registry()
    recipe = resolve(spec, freeze, registry)
    model = build_recipe(recipe, registry, weights=weights)
    if img_size is not None:
        model.set_image_size(img_size)
    return model


def build_recipe(recipe: Recipe, registry: Registry, *, weights: Weights | None = None) -> ZooModel:
    from zoo.backbone import Backbone
    from zoo.model import ZooModel

    name = recipe.backbone.qualified_name
    backbone = recipe.backbone.build(**{k: v for k, v in recipe.backbone_options.items() if v is not None})
    if not isinstance(backbone, Backbone):
        raise ZooError(f"backbone {name} built a {type(backbone).__name__}, not a zoo.backbone.Backbone")
    heads: dict[str, Any] = {}
    loss_weights: dict[str, float] = {}
    for head in recipe.heads:
        if head.part.needs == "stages" and len(backbone.feature_info.spatial_stages) < 2:
            raise ZooError(
                f"head {head.key} needs multi-stage features and {name} has "
                f"{len(backbone.feature_info.spatial_stages)} spatial stage(s)"
            )
        if head.part.needs == "stage" and not backbone.feature_info.spatial_stages:
            raise ZooError(f"head {head.key} needs a spatial stage and {name} has none; choose a CNN backbone")
        options = {k: v for k, v in head.options.items() if v is not None}
        if not any(o.name == LOSS_WEIGHT.name for o in head.part.options):
            loss_weights[head.key] = options.pop(LOSS_WEIGHT.name, 1.0)
        heads[head.key] = head.part.build(backbone.feature_info, head.ref.size, **options)
    model = ZooModel(backbone, heads, str(recipe.spec), loss_weights)
    freeze(model, recipe.freeze, registry)
    if weights is not None:
        from zoo.weights import load_weights

        load_weights(model, weights, recipe, registry)
    return model


def freeze(model: ZooModel, policy: str | None = None, registry: Registry | None = None) -> ZooModel:
    """Apply a freeze policy (``none`` when not given) to a built or loaded model, and return it.

    Freezing again replaces the previous policy, so ``all`` then ``layer4`` unfreezes step by step.
    """
    registry = registry or default_registry()
    backbone = model.backbone
    name = parse(model.spec).backbone.ref
    part, argument = registry.freeze_policy(policy or "none", backbone.stage_names, name)
    selected = list(part.select(backbone.stage_names, argument))
    unknown = [s for s in selected if s not in backbone.stage_names]
    if unknown:
        raise ZooError(f"freeze policy {part.qualified_name} chose unknown stages {unknown} for {name}")
    frozen = [p for p in model.parameters() if not p.requires_grad]
    model.set_frozen(selected, part.name if argument is None else f"{part.name}:{argument}")
    unfrozen = [p for p in frozen if p.requires_grad]
    if unfrozen:  # an optimizer made before would silently skip them: warn if one steps without them
        from zoo.optimizer_check import watch

        watch(model, unfrozen)
    return model
