"""Finding, loading and calling plugins, one at a time, so that one broken plugin breaks nothing else.

Plugins come from the entry-point group ``zoo`` (built-ins included) or are registered in-process
(`zoo.testing`). ``ZOO_DISABLE_PLUGINS=a,b`` blocks plugins by plugin or distribution name before they
are imported (a name that matches nothing is a warning); ``ZOO_STRICT_PLUGINS=1`` turns a failing plugin
into an error once every plugin has been tried, instead of a listed status. Each hook of a plugin is called
on its own, so one failing hook keeps the plugin's working ones. Each plugin's import is timed, and a plugin
that imports torch while loading is marked: it makes every `zoo list` wait for torch.
"""
from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from zoo import contract, hookspecs
from zoo.errors import ZooError, ZooWarning, suggest
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
    load_ms: float = 0.0  # importing the plugin's module
    imports_torch: bool = False  # torch was first imported while the plugin loaded
    contract: str = ""  # the zoo.contract version the plugin targets (ZOO_CONTRACT; 1.0 when it names none)
    note: str = ""  # one line when it targets another contract version than this zoo's

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
            "load_ms": round(self.load_ms, 1),
            "imports_torch": self.imports_torch,
            "contract": self.contract,
            "note": self.note,
        }


def _names_from_env(variable: str) -> set[str]:
    return {name.strip() for name in os.environ.get(variable, "").split(",") if name.strip()}


def strict_from_env() -> bool:
    return os.environ.get("ZOO_STRICT_PLUGINS", "").strip().lower() in ("1", "true", "yes")


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
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
        self.loaded: list[PluginRecord] = []  # registered with pluggy: their hooks are called

    def _fail(self, record: PluginRecord, message: str) -> None:
        record.status, record.error = "error", f"{record.error}; {message}" if record.error else message

    def raise_failures(self) -> None:
        """In strict mode, every failed plugin in one `ZooError`; called once every plugin has been tried."""
        failed = [f"plugin {r.name} ({r.distribution}) failed: {r.error}" for r in self.records if r.status == "error"]
        if self.strict and failed:
            raise ZooError("; ".join(failed))

    def not_loaded(self) -> str:
        """'badhook (zoo-broken, failed), timm (zoo, disabled)': the plugins whose parts are missing, for hints."""
        return ", ".join(f"{r.name} ({r.distribution}, {'failed' if r.status == 'error' else r.status})"
                         for r in self.records if r.status != "ok")

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
            torch_before, start = "torch" in sys.modules, time.perf_counter()
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin is reported, never fatal unless strict
                self._fail(record, f"import failed: {one_line(exc)}")
                continue
            finally:
                record.load_ms = 1000 * (time.perf_counter() - start)
                record.imports_torch = not torch_before and "torch" in sys.modules
            self._register(record, plugin)
        if not builtin_only:
            self._warn_unknown_disabled()

    def _warn_unknown_disabled(self) -> None:
        known = {r.name for r in self.records} | {r.distribution for r in self.records}
        for name in sorted(self.disabled - known):
            warnings.warn(f"ZOO_DISABLE_PLUGINS names {name!r}, which is no installed plugin or distribution"
                          f"{suggest(name, known)}; `zoo plugins` lists them", ZooWarning, stacklevel=3)

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
        if not self._check_contract(record, plugin):
            return
        try:
            self.pm.register(plugin, name=record.name)
        except Exception as exc:
            self._fail(record, f"registration failed: {one_line(exc)}")
            return
        record.hooks = [h.name for h in self.pm.get_hookcallers(plugin) or []]
        self.loaded.append(record)

    def _check_contract(self, record: PluginRecord, plugin: object) -> bool:
        """Record the contract version ``plugin`` targets; False (and a failed record) when zoo cannot load it."""
        try:
            record.contract = contract.declared(plugin)
        except ValueError as exc:
            self._fail(record, str(exc))
            return False
        verdict, line = contract.compatibility(record.contract)
        if verdict == "error":
            self._fail(record, line)
            return False
        record.note = line
        if contract.before(contract.CONTRACT_VERSION, record.contract):
            warnings.warn(f"plugin {record.name} ({record.distribution}) {line}", ZooWarning, stacklevel=4)
        return True

    def collect(self) -> list[tuple[PluginRecord, Part]]:
        """Call every hook of every loaded plugin; a hook that fails contributes nothing, the others do."""
        results: list[tuple[PluginRecord, Part]] = []
        for record in self.loaded:
            for part in self._collect_one(record):
                record.provides.setdefault(part.kind, []).append(part.qualified_name)
                results.append((record, part))
        return results

    def _impls(self, record: PluginRecord, hook_name: str) -> list[Any]:
        plugin = self.pm.get_plugin(record.name)
        return [i for i in getattr(self.pm.hook, hook_name).get_hookimpls() if i.plugin is plugin]

    def _collect_one(self, record: PluginRecord) -> list[Part]:
        parts: list[Part] = []
        for hook_name in sorted(HOOK_KINDS):
            kind = HOOK_KINDS[hook_name]
            for impl in self._impls(record, hook_name):
                try:
                    returned = list(impl.function() or ())
                    for part in returned:
                        if not isinstance(part, PART_TYPES[kind]):
                            raise TypeError(f"returned {type(part).__name__}, expected {PART_TYPES[kind].__name__}")
                except Exception as exc:  # this hook's parts are dropped; the plugin's other hooks still count
                    self._fail(record, f"{hook_name} failed: {one_line(exc)}")
                    continue
                parts += [replace(part, namespace=part.namespace or record.name.lower(), contract=record.contract)
                          for part in returned]
        self._flag_untagged_weights(record, parts)
        return parts

    def _flag_untagged_weights(self, record: PluginRecord, parts: list[Part]) -> None:
        """A backbone offering weights under no tag shows none: a warning and a note in `zoo plugins`."""
        for part in parts:
            line = getattr(part, "untagged_weights", "")
            if line and line not in record.note:
                record.note = f"{record.note}; {line}" if record.note else line
                warnings.warn(f"plugin {record.name} ({record.distribution}): {line}", ZooWarning, stacklevel=5)

    def collect_commands(self, group: Any, reserved: Iterable[str] = ()) -> dict[str, Any]:
        """Commands the ``zoo_commands`` hooks add to a scratch click ``group``, by name.

        A hook that fails adds none of its commands; a command named like a ``reserved`` (built-in) one or
        like another plugin's is left out with a warning.
        """
        taken, added = set(reserved), {}
        for record in self.loaded:
            for impl in self._impls(record, "zoo_commands"):
                before = dict(group.commands)
                try:
                    impl.function(cli=group)
                except Exception as exc:
                    self._fail(record, f"zoo_commands failed: {one_line(exc)}")
                    continue
                finally:
                    new = {n: c for n, c in group.commands.items() if n not in before}
                    group.commands.clear()
                    group.commands.update(before)
                for name, command in new.items():
                    if name in taken:
                        warnings.warn(f"plugin {record.name} ({record.distribution}) adds command {name!r}, which "
                                      "zoo or another plugin already has; it is left out", ZooWarning, stacklevel=2)
                        continue
                    taken.add(name)
                    added[name] = command
                    record.provides.setdefault("command", []).append(name)
        return added
