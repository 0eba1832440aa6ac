"""From a spec string to a model: resolve names through the registry, build, attach heads, freeze."""
from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from zoo._core.optimizer_check import watch
from zoo._core.recipe import LOSS_WEIGHT, Recipe, ResolvedHead, resolve
from zoo._core.weights import Weights, load_weights
from zoo._registry.plugin_checks import FeaturesCheck, build_backbone, build_head, origin, select_parameters, select_stages
from zoo._registry.registry import Registry, default_registry
from zoo._registry.spec import PartRef
from zoo.errors import ZooError

if TYPE_CHECKING:
    from zoo._core.model import ZooModel
    from zoo.parts import OptionValue

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
    .safetensors/.pth/.pt file (see `zoo._core.weights`); None keeps the fresh initialisation.

    >>> model = zoo.build("resnet50+cls10", freeze="layer4", weights="imagenet")  # doctest: +SKIP
    """
    registry = registry or default_registry()
    recipe = resolve(spec, freeze, registry)
    model = build_recipe(recipe, registry, weights=_spec_weights(recipe, weights))
    if img_size is not None:
        model.set_image_size(img_size)
    return model


def _spec_weights(recipe: Recipe, weights: Weights | None) -> Weights | None:
    """The weights a spec names with its backbone (``timm/resnet50.a1_in1k``), which ``weights`` may only repeat."""
    tag = recipe.weights_tag
    if tag is None or weights is None:
        return tag if weights is None else weights
    if isinstance(weights, str) and weights in (tag, f"{recipe.backbone.qualified_name}.{tag}"):
        return weights
    given = os.fspath(weights) if isinstance(weights, (str, os.PathLike)) else "a state dict"
    raise ZooError(f"{recipe.spec.backbone.ref} names its weights ({tag}) and --weights gives {given}: "
                   f"keep one, or build {recipe.backbone.qualified_name} with --weights {given}")


def build_recipe(recipe: Recipe, registry: Registry, *, weights: Weights | None = None) -> ZooModel:
    from zoo._core.model import ZooModel

    name = recipe.backbone.qualified_name
    backbone_entry = registry.entry("backbone", name)
    backbone = build_backbone(backbone_entry, {k: v for k, v in recipe.backbone_options.items() if v is not None})
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
        loss_weights[head.key] = options.pop(LOSS_WEIGHT.name, 1.0)  # reserved: no head declares its own
        heads[head.key] = build_head(registry.entry("head", head.part.qualified_name), backbone.feature_info,
                                     head.ref.size, options)
    model = ZooModel(backbone, heads, str(recipe.spec), loss_weights, recipe)
    model.registry = registry
    model.features_check = FeaturesCheck(origin(backbone_entry))
    freeze(model, recipe.freeze, registry)
    if weights is not None and load_weights(model, weights, recipe, registry).backbone_loaded:
        _backbone_pretrained(model)
    return model


def _backbone_pretrained(model: ZooModel) -> None:
    """Tell each head that the backbone holds pretrained weights. The options they settle go into the
    model's recipe and spec, which saving reads, so a saved model rebuilds the same modules."""
    from zoo.head import Head

    recipe = model.recipe
    heads: list[ResolvedHead] = []
    refs: list[PartRef] = []
    for resolved, ref in zip(recipe.heads, recipe.spec.heads):  # as given, and canonical
        head = model.heads[resolved.key]
        settled = dict(head.backbone_pretrained(model.backbone)) if isinstance(head, Head) else {}
        if settled:
            resolved = replace(resolved, ref=_with_options(resolved.ref, settled),
                               options={**resolved.options, **settled})
            ref = _with_options(ref, settled)
        heads.append(resolved)
        refs.append(ref)
    model.recipe = replace(recipe, spec=replace(recipe.spec, heads=tuple(refs)), heads=tuple(heads))
    model.spec = str(model.recipe.spec)


def _with_options(ref: PartRef, options: dict[str, OptionValue]) -> PartRef:
    return replace(ref, options=tuple({**dict(ref.options), **options}.items()))


def freeze(model: ZooModel, policy: str | None = None, registry: Registry | None = None) -> ZooModel:
    """Apply a freeze policy (``none`` when not given) to a built or loaded model, and return it.

    Freezing again replaces the previous policy, so ``all`` then ``layer4`` unfreezes step by step.
    """
    registry = registry or model.registry or default_registry()
    backbone = model.backbone
    name = (model.recipe or resolve(model.spec, registry=registry)).spec.backbone.ref
    part, argument = registry.freeze_policy(policy or "none", backbone.stage_names, name)
    entry = registry.entry("freeze", part.qualified_name)
    qualified = part.qualified_name  # saved and printed qualified, so another plugin's policy of the same name cannot take it
    label = qualified if argument is None else f"{qualified}:{argument}"
    frozen = [p for p in model.parameters() if not p.requires_grad]
    if part.chooses == "parameters":
        from zoo.freezing import stage_views

        names = [n for n, _ in backbone.named_parameters()]
        model.set_frozen((), label, select_parameters(entry, stage_views(backbone), names, argument))
    else:
        model.set_frozen(select_stages(entry, backbone.stage_names, argument), label)
    if model.recipe is not None:  # saving and re-freezing read the recipe: it names the policy in force
        model.recipe = replace(model.recipe, freeze=label)
    unfrozen = [p for p in frozen if p.requires_grad]
    if unfrozen:  # an optimizer made before would silently skip them: warn if one steps without them
        watch(model, unfrozen)
    return model
