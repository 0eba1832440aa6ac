"""Reading a whole task model's checkpoint from its reference implementation, keys and all.

A head declares where its weights sit in the reference model's state dict (`zoo.head.Head`'s
``reference_keys`` and ``reference_backbone``); the backbone declares its own ``reference_prefix``.
Together they rename, for example, torchvision's ``fasterrcnn_resnet50_fpn`` checkpoint onto
``resnet50+det91``::

    backbone.body.layer1.0.conv1.weight  ->  backbone.layer1.0.conv1.weight
    backbone.fpn.inner_blocks.0.0.weight ->  heads.det91.fpn.inner_blocks.0.0.weight
    rpn.head.conv.0.0.weight             ->  heads.det91.rpn.head.conv.0.0.weight
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from zoo.head import Head

if TYPE_CHECKING:
    from zoo._core.model import ZooModel

T = TypeVar("T")


def reference_key_map(model: ZooModel) -> Callable[[str], str | None] | None:
    """A function from a reference checkpoint's key to the model's key (None: no place for it), or None
    when no head of ``model`` declares reference keys."""
    rules: list[tuple[str, str]] = []
    for name, head in model.heads.items():
        if not isinstance(head, Head) or not (head.reference_keys or head.reference_backbone):
            continue
        if head.reference_backbone:
            rules.append((head.reference_backbone, f"backbone.{model.backbone.reference_prefix}"))
        rules.extend((source, f"heads.{name}.{target}") for source, target in head.reference_keys.items())
    if not rules:
        return None
    rules.sort(key=lambda rule: -len(rule[0]))  # the most specific prefix wins

    def rename(key: str) -> str | None:
        for source, target in rules:
            if key.startswith(source):
                return target + key[len(source):]
        return None

    return rename


def from_reference(model: ZooModel, state_dict: Mapping[str, T]) -> tuple[dict[str, T], list[str]]:
    """``state_dict`` renamed onto ``model``'s keys, and the keys that have no place in it.

    Raises ValueError when no head of ``model`` declares reference keys.
    """
    rename = reference_key_map(model)
    if rename is None:
        raise ValueError(f"no head of {model.spec} declares reference keys")
    renamed: dict[str, T] = {}
    unmatched: list[str] = []
    for key, value in state_dict.items():
        target = rename(key)
        if target is None:
            unmatched.append(key)
        else:
            renamed[target] = value
    return renamed, unmatched
