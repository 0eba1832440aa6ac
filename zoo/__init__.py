"""zoo: compose pretrained backbones, task heads and freeze policies from one spec.

Importing zoo is light: torch, torchvision and timm are imported only when a model is built.
No submodule may share a name with a public function here (`zoo.build` the function lives in
`zoo.builder`), since importing a submodule would replace the function on the package.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zoo.errors import SpecError, ZooError, ZooWarning
from zoo.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "SpecError",
    "ZooError",
    "ZooWarning",
    "__version__",
    "bench",
    "build",
    "evaluate",
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
    from zoo.artifact import load, save
    from zoo.benchmark import bench
    from zoo.builder import build, freeze, resolve
    from zoo.describe import info
    from zoo.prediction import predict
    from zoo.spec import parse
    from zoo.training.evaluation import evaluate
    from zoo.training.loop import fit
    from zoo.training.transforms import transforms

_LAZY = {
    "bench": ("zoo.benchmark", "bench"),
    "build": ("zoo.builder", "build"),
    "freeze": ("zoo.builder", "freeze"),
    "resolve": ("zoo.builder", "resolve"),
    "info": ("zoo.describe", "info"),
    "parse": ("zoo.spec", "parse"),
    "predict": ("zoo.prediction", "predict"),
    "load": ("zoo.artifact", "load"),
    "save": ("zoo.artifact", "save"),
    "fit": ("zoo.training.loop", "fit"),
    "evaluate": ("zoo.training.evaluation", "evaluate"),
    "transforms": ("zoo.training.transforms", "transforms"),
}


def list_parts(pattern: str | None = None, kind: str | None = None, registry: Any = None) -> list[dict[str, Any]]:
    """Every backbone, head, freeze policy and preset matching a wildcard, as `zoo list --json` shows."""
    from zoo.registry import default_registry

    return (registry or default_registry()).find(pattern, kind)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
