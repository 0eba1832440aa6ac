"""Every timm model as a backbone, ``timm/<name>``, with its pretrained tags.

timm's model list and each model's pretrained tags are read once per timm version and cached (importing
timm takes seconds), so listing stays fast without importing it.
"""
from __future__ import annotations

from functools import partial
from importlib.metadata import version
from typing import Any

from zoo import hookimpl
from zoo.files import cached_json
from zoo.parts import BackbonePart
from zoo.plugins.timm.families import describe
from zoo.plugins.timm.weights import pretrained

ZOO_CONTRACT = "1.1"  # the zoo.contract version these parts are written against


def _build(name: str):
    from zoo.plugins.timm.model import TimmBackbone

    return TimmBackbone(name)


def _read_timm() -> dict[str, Any]:
    import timm
    from timm.models import get_arch_pretrained_cfgs

    tags = {}
    for arch in timm.list_models(pretrained=True, include_tags=False):
        tags[arch] = [name.partition(".")[2] for name in get_arch_pretrained_cfgs(arch)]  # the default first
    modules = {name: module for module in timm.list_modules() for name in timm.list_models(module=module)}
    return {"models": timm.list_models(), "pretrained": tags, "modules": modules}


def catalogue() -> dict[str, Any]:
    """timm's model names, each one's pretrained tags and module (its family), from the cache for the installed
    timm version."""
    return cached_json(f"timm-{version('timm')}-models.json", _read_timm, required=("models", "pretrained", "modules"))


@hookimpl
def zoo_backbones():
    found = catalogue()
    tags, modules = found["pretrained"], found["modules"]
    for name in found["models"]:
        known = tuple(tags.get(name, ()))  # a model timm has no weights for offers none
        yield BackbonePart(name, partial(_build, name), describe(modules.get(name, "")), tags=("timm",),
                           pretrained=partial(pretrained, name) if known else None, weights_tags=known)
