"""Helpers for testing plugins: an isolated registry holding the built-ins and the plugins you give.

Loaded automatically by pytest (entry point ``pytest11``)::

    def test_my_backbone(zoo_registry):
        registry = zoo_registry(my_plugin_module)
        model = zoo.build("mynet+cls3", registry=registry)
"""
from __future__ import annotations

from typing import Callable

import pytest

from zoo._catalogue import Catalogue, load_catalogue
from zoo._plugin_host import PluginHost
from zoo._registry import Registry


def isolated_registry(
    *plugins: object,
    builtins: bool = True,
    catalogue: Catalogue | None = None,
    strict: bool = True,
) -> Registry:
    """A registry of the built-in plugins (unless ``builtins=False``) and ``plugins``, nothing else.

    Third-party entry points, ``ZOO_DISABLE_PLUGINS`` and ``ZOO_REGISTRY`` are ignored; plugin
    failures raise (``strict``) so a test sees them.
    """
    manager = PluginHost(strict=strict, disabled=())
    if builtins:
        manager.load_entry_points(builtin_only=True)
    for plugin in plugins:
        manager.register(plugin, getattr(plugin, "__name__", type(plugin).__name__).rsplit(".", 1)[-1])
    if catalogue is None:
        catalogue = load_catalogue(None) if builtins else Catalogue()
    return Registry(catalogue, manager)


@pytest.fixture
def zoo_registry() -> Callable[..., Registry]:
    """A factory: ``zoo_registry(*plugins, builtins=True)`` returns an isolated `Registry`."""
    return isolated_registry
