"""Helpers for testing plugins: an isolated registry holding the built-ins and the plugins you give.

Loaded automatically by pytest (entry point ``pytest11``)::

    def test_my_backbone(zoo_registry, tmp_path):
        registry = zoo_registry(my_plugin_module)       # or zoo_registry(mynet=my_plugin_module)
        model = zoo.build("mynet+cls3", registry=registry)
        zoo.save(model, tmp_path / "m.safetensors")     # the model remembers its registry

A plugin is named as an install names it: by the entry point that declares it (its parts are then
``mynet/...``, with the distribution and version recorded in saved files), or by the keyword given.

The conformance kit runs every part an installed distribution provides through the contract, each check a
test of its own::

    class TestConformance(ConformanceSuite):
        distribution = "zoo-mynet"
        rows = {"reg": {"t0": "0.1", "t1": "0.5", "t2": "0.9"}}   # one table row per head that reads tables

or, without a test file, ``pytest --zoo-conformance zoo-mynet`` (``zoo-mynet=mynet/*`` for some parts only).
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

import pytest

from zoo._registry.catalogue import Catalogue, load_catalogue
from zoo._registry.plugin_host import PluginHost, discover
from zoo._registry.registry import Registry
from zoo.conformance import checks, run_checks
from zoo.errors import ZooError


def _as_installed(plugin: object) -> tuple[str, str, str]:
    """(name, distribution, version) of the entry point that declares ``plugin``, or its module's name."""
    module = getattr(plugin, "__name__", "")
    for ep in discover():
        if module and ep.value.partition(":")[0].strip() == module:
            return ep.name, ep.dist.name if ep.dist else "local", ep.dist.version if ep.dist else ""
    return (module or type(plugin).__name__).rsplit(".", 1)[-1], "local", ""


def isolated_registry(
    *plugins: object,
    builtins: bool = True,
    catalogue: Catalogue | None = None,
    strict: bool = True,
    **named: object,
) -> Registry:
    """A registry of the built-in plugins (unless ``builtins=False``) and ``plugins``, nothing else.

    A plugin given by position is named by the entry point that declares it, as an install names it;
    ``name=plugin`` names it explicitly. Third-party entry points, ``ZOO_DISABLE_PLUGINS`` and
    ``ZOO_REGISTRY`` are ignored; plugin failures raise (``strict``) so a test sees them.
    """
    manager = PluginHost(strict=strict, disabled=())
    if builtins:
        manager.load_entry_points(builtin_only=True)
    for plugin in plugins:
        manager.register(plugin, *_as_installed(plugin))
    for name, plugin in named.items():
        manager.register(plugin, name)
    if catalogue is None:
        catalogue = load_catalogue(None) if builtins else Catalogue()
    return Registry(catalogue, manager)


@pytest.fixture
def zoo_registry() -> Callable[..., Registry]:
    """A factory: ``zoo_registry(*plugins, builtins=True, **named)`` returns an isolated `Registry`."""
    return isolated_registry


class ConformanceSuite:
    """Inherit it, name your ``distribution``: one test per check of every part it provides (`zoo.conformance`).

    ``parts`` narrows the parts by name pattern; ``rows`` gives one table row per head that reads tables;
    ``specs`` what to write after the backbone for a head, when its smallest form is slow (``det3:min_size=64``).
    """

    distribution: str = ""
    parts: tuple[str, ...] = ("*",)
    rows: Mapping[str, Mapping[str, Any]] = {}
    specs: Mapping[str, str] = {}

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "conformance_check" in metafunc.fixturenames:
            found = checks(self.distribution, registry=self.registry(), parts=self.parts, rows=self.rows,
                           specs=self.specs)
            metafunc.parametrize("conformance_check", found, ids=[check.id for check in found])

    def registry(self) -> Registry:
        """The installed plugins, as `zoo` itself finds them; override to check in-process plugins."""
        return Registry.from_environment(strict=False)

    def test_part_follows_the_contract(self, conformance_check: Any, tmp_path: Any) -> None:
        (result,) = run_checks([conformance_check])
        if not result.ok:
            pytest.fail(result.line(), pytrace=False)
        if result.message.startswith("skipped: "):
            pytest.skip(result.message.removeprefix("skipped: "))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("zoo").addoption(
        "--zoo-conformance", action="append", default=[], metavar="DISTRIBUTION[=PATTERN,...]",
        help="Also run the conformance kit on the parts an installed distribution provides (all, or those matching "
             "the patterns); repeat for several. A class inheriting zoo.testing.ConformanceSuite does the same "
             "from a test file.")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[Any]) -> None:
    """``--zoo-conformance DIST[=PATTERN,...]``: the kit's tests for each distribution named, after the others."""
    asked = config.getoption("zoo_conformance", default=[])
    if not asked:
        return
    module = pytest.Module.from_parent(session, path=Path(__file__))
    for text in asked:
        name, _, patterns = text.partition("=")
        suite = type(f"TestConformance[{text}]", (ConformanceSuite,),
                     {"distribution": name, "parts": tuple(patterns.split(",")) if patterns else ("*",)})
        collector = pytest.Class.from_parent(module, name=suite.__name__)
        collector.obj = suite  # made here, not found in the module
        try:
            items.extend(collector.collect())
        except ZooError as exc:  # no such distribution: pytest's one line for a bad option
            raise pytest.UsageError(f"--zoo-conformance {text}: {exc}") from None
