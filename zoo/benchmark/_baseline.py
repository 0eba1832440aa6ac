"""The same architecture built directly with torchvision or timm, to time a zoo model against.

``resnet50+cls10`` is ``torchvision.models.resnet50(num_classes=10)``; ``timm/efficientnet_b0+cls10`` is
``timm.create_model("efficientnet_b0", num_classes=10)``. The baseline takes the zoo model's weights with
a strict load, which proves the two are the same network, and the zoo model's freezing is mirrored:
the same parameters stop requiring grad, the same modules stay in eval mode while training.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from zoo.errors import ZooError

if TYPE_CHECKING:
    from torch import nn

    from zoo._core.model import ZooModel

PROVIDERS = ("torchvision", "timm")


def _check_comparable(model: ZooModel) -> tuple[str, str, int]:
    spec = model.recipe.spec  # the canonical spec it was built from
    heads = spec.heads
    plain = len(heads) == 1 and heads[0].name == "cls" and heads[0].namespace == "zoo" and all(
        (key == "dropout" and not value) or (key == "weight") for key, value in heads[0].options)
    if not plain:
        raise ZooError(f"--vs-reference compares a backbone with one plain classification head "
                       f"(resnet50+cls10); {model.spec} has no torchvision or timm counterpart")
    if spec.backbone.namespace not in PROVIDERS:
        raise ZooError(f"--vs-reference builds the model with torchvision or timm; {spec.backbone.ref} comes "
                       f"from {spec.backbone.namespace}: choose a torchvision/ or timm/ backbone")
    return spec.backbone.namespace, spec.backbone.name, heads[0].size


def _reference_key(model: ZooModel, key: str) -> str:
    """The baseline's name for one of the zoo model's parameters or buffers."""
    backbone = model.backbone
    if key.startswith("backbone."):
        return key.removeprefix("backbone.").removeprefix(backbone.reference_prefix)
    head = next(iter(model.heads))
    return f"{backbone.reference_classifier}." + key.removeprefix(f"heads.{head}.fc.")


def reference_model(model: ZooModel) -> tuple[str, nn.Module, Callable[[nn.Module], None]]:
    """(provider, the directly built model holding ``model``'s weights, a function putting it in training
    mode as ``model.train()`` does: frozen modules stay in eval)."""
    provider, name, classes = _check_comparable(model)
    if provider == "torchvision":
        import torchvision

        reference = torchvision.models.get_model(name, weights=None, num_classes=classes)
    else:
        import timm

        reference = timm.create_model(name, pretrained=False, num_classes=classes)
    state = {_reference_key(model, key): value for key, value in model.state_dict().items()}
    missing, unexpected = reference.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"{provider} {name} is not the architecture of {model.spec}: "
                           f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    for key, parameter in model.named_parameters():
        reference.get_parameter(_reference_key(model, key)).requires_grad_(parameter.requires_grad)
    prefix = model.backbone.reference_prefix
    frozen = [module.removeprefix(prefix) for stage in model.frozen_stages
              for module in model.backbone.stage(stage).modules]

    def set_train(net: nn.Module) -> None:
        net.train()
        for module in frozen:
            net.get_submodule(module).eval()

    return provider, reference, set_train
