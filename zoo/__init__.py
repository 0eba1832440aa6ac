"""zoo: compose pretrained backbones, task heads and freeze policies from one spec.

Importing zoo is light: torch, torchvision and timm are imported only when a model is built.
No submodule may share a name with a public function here (`zoo.build` the function lives in
`zoo._builder`), since importing a submodule would replace the function on the package.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zoo.errors import SpecError, ZooError, ZooNotice, ZooWarning
from zoo._version import __version__
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
    from zoo._artifact import load, save
    from zoo._export import export
    from zoo.benchmark import bench
    from zoo._builder import build, freeze
    from zoo._cache import cache_entries, clear_cache
    from zoo.choosing import choose
    from zoo._recipe import resolve
    from zoo._describe import info
    from zoo._fast import compile_for_inference
    from zoo._prediction import predict
    from zoo._spec import parse
    from zoo.training.evaluation import evaluate
    from zoo.training.loop import fit
    from zoo.training.transforms import transforms

_LAZY = {
    "bench": ("zoo.benchmark", "bench"),
    "build": ("zoo._builder", "build"),
    "cache_entries": ("zoo._cache", "cache_entries"),
    "clear_cache": ("zoo._cache", "clear_cache"),
    "choose": ("zoo.choosing", "choose"),
    "compile_for_inference": ("zoo._fast", "compile_for_inference"),
    "export": ("zoo._export", "export"),
    "freeze": ("zoo._builder", "freeze"),
    "resolve": ("zoo._recipe", "resolve"),
    "info": ("zoo._describe", "info"),
    "parse": ("zoo._spec", "parse"),
    "predict": ("zoo._prediction", "predict"),
    "load": ("zoo._artifact", "load"),
    "save": ("zoo._artifact", "save"),
    "fit": ("zoo.training.loop", "fit"),
    "evaluate": ("zoo.training.evaluation", "evaluate"),
    "transforms": ("zoo.training.transforms", "transforms"),
}


def list_parts(pattern: str | None = None, kind: str | None = None, registry: Any = None,
               pretrained: bool = False) -> list[dict[str, Any]]:
    """Every backbone, head, freeze policy and preset matching a wildcard, as `zoo list --json` shows;
    ``pretrained``: only backbones with pretrained weights."""
    from zoo._registry import default_registry

    return (registry or default_registry()).find(pattern, kind, pretrained)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
