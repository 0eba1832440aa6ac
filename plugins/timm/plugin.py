"""Every timm model as a backbone, ``timm/<name>``.

timm's model list is read once per timm version and cached (importing timm takes seconds), so listing
stays fast without importing it.
"""
from __future__ import annotations

import json
from functools import partial
from importlib.metadata import version

from zoo import hookimpl
from zoo.files import atomic_write_bytes, cache_dir
from zoo.parts import BackbonePart
from zoo.plugins.timm.weights import pretrained


def _build(name: str):
    from zoo.plugins.timm.model import TimmBackbone

    return TimmBackbone(name)


def model_names() -> list[str]:
    """timm's model names, from the cache for the installed timm version when it is there."""
    path = cache_dir() / f"timm-{version('timm')}-models.json"
    try:
        return json.loads(path.read_text())["models"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    import timm

    names = timm.list_models()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps({"models": names}).encode())
    except OSError:
        pass  # an unwritable cache only costs speed
    return names


@hookimpl
def zoo_backbones():
    for name in model_names():
        yield BackbonePart(name, partial(_build, name), "timm model", tags=("timm",), pretrained=partial(pretrained, name))
