"""zoo: compose pretrained backbones, task heads and freeze policies from one spec.

Importing zoo is light: torch, torchvision and timm are imported only when a model is built.
No submodule may share a name with a public function here (`zoo.build` the function lives in
`zoo._core.build`), since importing a submodule would replace the function on the package.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zoo._version import __version__
from zoo.errors import SpecError, ZooError, ZooNotice, ZooWarning
from zoo.hookspecs import hookimpl

__all__ = [
    "SpecError",
    "ZooError",
    "ZooNotice",
    "ZooWarning",
    "__version__",
    "bench",
    "build",
    "cache_entries",
    "choose",
    "clear_cache",
    "compile_for_inference",
    "evaluate",
    "export",
    "fit",
    "freeze",
    "hookimpl",
    "info",
    "list_parts",
    "load",
    "parse",
    "predict",
    "resolve",
    "save",
    "transforms",
]

if TYPE_CHECKING:
    from zoo._core.build import build, freeze
    from zoo._core.info import info
    from zoo._core.recipe import resolve
    from zoo._core.saving import load, save
    from zoo._registry.spec import parse
    from zoo._runtime.cache import cache_entries, clear_cache
    from zoo._runtime.compiled import compile_for_inference
    from zoo._runtime.transforms import transforms
    from zoo.benchmark import bench
    from zoo.choosing import choose
    from zoo.inference.export import export
    from zoo.inference.predict import predict
    from zoo.training.evaluation import evaluate
    from zoo.training.loop import fit

_LAZY = {
    "bench": ("zoo.benchmark", "bench"),
    "build": ("zoo._core.build", "build"),
    "cache_entries": ("zoo._runtime.cache", "cache_entries"),
    "clear_cache": ("zoo._runtime.cache", "clear_cache"),
    "choose": ("zoo.choosing", "choose"),
    "compile_for_inference": ("zoo._runtime.compiled", "compile_for_inference"),
    "export": ("zoo.inference.export", "export"),
    "freeze": ("zoo._core.build", "freeze"),
    "resolve": ("zoo._core.recipe", "resolve"),
    "info": ("zoo._core.info", "info"),
    "parse": ("zoo._registry.spec", "parse"),
    "predict": ("zoo.inference.predict", "predict"),
    "load": ("zoo._core.saving", "load"),
    "save": ("zoo._core.saving", "save"),
    "fit": ("zoo.training.loop", "fit"),
    "evaluate": ("zoo.training.evaluation", "evaluate"),
    "transforms": ("zoo._runtime.transforms", "transforms"),
}


def list_parts(pattern: str | None = None, kind: str | None = None, registry: Any = None,
               pretrained: bool = False) -> list[dict[str, Any]]:
    """Every backbone, head, freeze policy and preset matching a wildcard, as `zoo list --json` shows;
    ``pretrained``: only backbones with pretrained weights."""
    from zoo._registry.registry import default_registry

    return (registry or default_registry()).find(pattern, kind, pretrained)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
