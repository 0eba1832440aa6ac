"""Finding, loading and calling plugins, one at a time, so that one broken plugin breaks nothing else.

Plugins come from the entry-point group ``zoo`` (built-ins included) or are registered in-process
(`zoo.testing`). ``ZOO_DISABLE_PLUGINS=a,b`` blocks plugins by plugin or distribution name before they
are imported; ``ZOO_STRICT_PLUGINS=1`` turns a failing plugin into an error instead of a listed status.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from zoo import hookspecs
from zoo.errors import ZooError
from zoo.parts import HOOK_KINDS, PART_TYPES, Part

GROUP = "zoo"
BUILTIN_DISTRIBUTION = "zoo"


@dataclass
class PluginRecord:
    """What `zoo plugins` shows: who provides a plugin, what it offers, and whether it works."""

    name: str
    distribution: str
    version: str
    module: str
    status: str = "ok"  # ok | error | disabled
    error: str = ""
    hooks: list[str] = field(default_factory=list)
    provides: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "status": self.status,
            "error": self.error,
            "hooks": self.hooks,
            "provides": self.provides,
        }


def _names_from_env(variable: str) -> set[str]:
    return {name.strip() for name in os.environ.get(variable, "").split(",") if name.strip()}


def strict_from_env() -> bool:
    return os.environ.get("ZOO_STRICT_PLUGINS", "").strip().lower() in ("1", "true", "yes")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().splitlines()[0]


def discover() -> list[EntryPoint]:
    """The group's entry points: the built-in distribution first, then the others by name."""
    found = entry_points(group=GROUP)

    def order(ep: EntryPoint) -> tuple[bool, str, str]:
        dist = ep.dist.name if ep.dist else ""
        return (dist != BUILTIN_DISTRIBUTION, dist.lower(), ep.name)

    return sorted(found, key=order)


class PluginHost:
    """Loads plugins into a pluggy manager and collects their parts, keeping a record of each."""

    def __init__(self, *, strict: bool | None = None, disabled: Iterable[str] | None = None) -> None:
        self.strict = strict_from_env() if strict is None else strict
        self.disabled = _names_from_env("ZOO_DISABLE_PLUGINS") if disabled is None else set(disabled)
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.records: list[PluginRecord] = []

    def _fail(self, record: PluginRecord, message: str) -> None:
        record.status, record.error = "error", message
        if self.strict:
            raise ZooError(f"plugin {record.name} ({record.distribution}) failed: {message}")

    def load_entry_points(self, builtin_only: bool = False) -> None:
        for ep in discover():
            dist = ep.dist.name if ep.dist else "unknown"
            if builtin_only and dist != BUILTIN_DISTRIBUTION:
                continue
            version = ep.dist.version if ep.dist else ""
            record = PluginRecord(ep.name, dist, version, ep.value)
            self.records.append(record)
            if ep.name in self.disabled or dist in self.disabled:
                record.status = "disabled"
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin is reported, never fatal unless strict
                self._fail(record, f"import failed: {_describe(exc)}")
                continue
            self._register(record, plugin)

    def register(self, plugin: object, name: str, distribution: str = "local", version: str = "") -> PluginRecord:
        """Register an already imported plugin object (used by tests and `zoo.testing`)."""
        record = PluginRecord(name, distribution, version, getattr(plugin, "__name__", repr(plugin)))
        self.records.append(record)
        self._register(record, plugin)
        return record

    def _register(self, record: PluginRecord, plugin: object) -> None:
        if self.pm.has_plugin(record.name):
            other = next(r for r in self.records if r.name == record.name and r is not record)
            self._fail(record, f"plugin name {record.name!r} is already used by {other.distribution}")
            return
        try:
            self.pm.register(plugin, name=record.name)
        except Exception as exc:
            self._fail(record, f"registration failed: {_describe(exc)}")
            return
        record.hooks = [h.name for h in self.pm.get_hookcallers(plugin) or []]

    def collect(self) -> list[tuple[PluginRecord, Part]]:
        """Call every hook of every working plugin; a plugin whose hook fails contributes nothing."""
        results: list[tuple[PluginRecord, Part]] = []
        for record in self.records:
            if record.status != "ok":
                continue
            parts = self._collect_one(record)
            if parts is None:
                continue
            for part in parts:
                record.provides.setdefault(part.kind, []).append(part.qualified_name)
                results.append((record, part))
        return results

    def _collect_one(self, record: PluginRecord) -> list[Part] | None:
        plugin = self.pm.get_plugin(record.name)
        parts: list[Part] = []
        for hook_name in sorted(HOOK_KINDS):
            impls = [i for i in getattr(self.pm.hook, hook_name).get_hookimpls() if i.plugin is plugin]
            kind = HOOK_KINDS[hook_name]
            for impl in impls:
                try:
                    returned = list(impl.function() or ())
                    for part in returned:
                        if not isinstance(part, PART_TYPES[kind]):
                            raise TypeError(f"returned {type(part).__name__}, expected {PART_TYPES[kind].__name__}")
                        parts.append(part if part.namespace else replace(part, namespace=record.name.lower()))
                except Exception as exc:
                    self._fail(record, f"{hook_name} failed: {_describe(exc)}")
                    return None
        return parts
