"""From a spec string to a model: resolve names through the registry, build, attach heads, freeze."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zoo._recipe import LOSS_WEIGHT, Recipe, resolve
from zoo._registry import Registry, default_registry
from zoo._weights import Weights, load_weights
from zoo.errors import ZooError

if TYPE_CHECKING:
    from zoo._model import ZooModel

def build(
    spec: str,
    *,
    freeze: str | None = None,
    weights: Weights | None = None,
    registry: Registry | None = None,
) -> ZooModel:
    """Build ``backbone+head[+head...]`` with a freeze policy (``none`` when not given).

    ``weights``: ``imagenet``, a tag of the backbone's plugin, a name pinned in registry.toml, or a
    .safetensors/.pth/.pt file (see `zoo._weights`); None keeps the fresh initialisation.

    >>> model = zoo.build("resnet50+cls10", freeze="layer4", weights="imagenet")  # doctest: +SKIP
    """
    registry = registry or default_registry()
    recipe = resolve(spec, freeze, registry)
    return build_recipe(recipe, registry, weights=weights)


def build_recipe(recipe: Recipe, registry: Registry, *, weights: Weights | None = None) -> ZooModel:
    from zoo.backbone import Backbone
    from zoo._model import ZooModel

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
        loss_weights[head.key] = options.pop(LOSS_WEIGHT.name, 1.0)
        heads[head.key] = head.part.build(backbone.feature_info, head.ref.size, **options)
    model = ZooModel(backbone, heads, str(recipe.spec), loss_weights, recipe)
    model.registry = registry
    freeze(model, recipe.freeze, registry)
    if weights is not None:
        load_weights(model, weights, recipe, registry)
    return model


def freeze(model: ZooModel, policy: str | None = None, registry: Registry | None = None) -> ZooModel:
    """Apply a freeze policy (``none`` when not given) to a built or loaded model, and return it.

    Freezing again replaces the previous policy, so ``all`` then ``layer4`` unfreezes step by step.
    """
    registry = registry or model.registry or default_registry()
    backbone = model.backbone
    name = (model.recipe or resolve(model.spec, registry=registry)).spec.backbone.ref
    part, argument = registry.freeze_policy(policy or "none", backbone.stage_names, name)
    label = part.name if argument is None else f"{part.name}:{argument}"
    if part.chooses == "parameters":
        from zoo.freezing import stage_views

        chosen = list(part.select(stage_views(backbone), argument))
        known = dict(backbone.named_parameters())
        unknown = [p for p in chosen if p not in known]
        if unknown:
            raise ZooError(f"freeze policy {part.qualified_name} chose unknown parameters {unknown[:3]} for {name}")
        model.set_frozen((), label, chosen)
        return model
    selected = list(part.select(backbone.stage_names, argument))
    unknown = [s for s in selected if s not in backbone.stage_names]
    if unknown:
        raise ZooError(f"freeze policy {part.qualified_name} chose unknown stages {unknown} for {name}")
    model.set_frozen(selected, label)
    return model
