"""The registry: every part the plugins provide, under qualified names, and how bare names resolve.

A qualified name is ``namespace/name`` (``torchvision/resnet50``) and always works. A bare name
(``resnet50``) resolves to the single part of that name, or, when several namespaces offer it, to the
first in registry.toml's ``prefer`` list, else to the built-in one: a third-party plugin cannot take a
built-in's bare name away unless the user's ``prefer`` names its namespace. Two plugins providing the same qualified name is a warning
naming both distributions; the first loaded (built-ins first) keeps the name.
"""
from __future__ import annotations

import fnmatch
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from zoo._registry.catalogue import PACKAGED, Catalogue, Preset, load_catalogue
from zoo._registry.plugin_host import BUILTIN_DISTRIBUTION, PluginHost, PluginRecord
from zoo._registry.spec import INTEGER, PartRef
from zoo.errors import ZooError, ZooWarning, suggest
from zoo.parts import KIND_LABELS, KINDS, LISTED_KINDS, BackbonePart, FreezePolicyPart, HeadPart, Part

STAGE_SHORTHAND = "before"  # `--freeze=layer4` means `--freeze=before:layer4`


class AmbiguousName(ZooError):
    """A bare name that several plugins offer and nothing decides between."""


@dataclass(frozen=True)
class Entry:
    part: Part
    plugin: PluginRecord


class Registry:
    def __init__(self, catalogue: Catalogue, manager: PluginHost) -> None:
        self.catalogue = catalogue
        self.manager = manager
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        self._bare: dict[str, dict[str, list[str]]] = {kind: {} for kind in KINDS}
        for plugin, part in manager.collect():
            self._add(plugin, part)
        manager.raise_failures()
        self._plugin_aliases, self._plugin_presets = self._shipped()
        self._check_prefer()

    @classmethod
    def from_environment(
        cls, registry_file: str | os.PathLike[str] | None = None, *, strict: bool | None = None
    ) -> Registry:
        """Entry-point plugins and the packaged catalogue overlaid with the user's file.

        ``strict`` (default: ``ZOO_STRICT_PLUGINS``) makes a failed plugin an error; `zoo plugins` passes
        False so that it can list every failure first.
        """
        catalogue = load_catalogue(registry_file)
        manager = PluginHost(strict=strict)
        manager.load_entry_points()
        return cls(catalogue, manager)

    def _add(self, plugin: PluginRecord, part: Part) -> None:
        entries = self._entries[part.kind]
        qualified = part.qualified_name
        if qualified in entries:
            first = entries[qualified].plugin
            warnings.warn(
                f"{KIND_LABELS[part.kind]} {qualified} is provided by both {first.distribution} "
                f"(plugin {first.name}) and {plugin.distribution} (plugin {plugin.name}); using "
                f"{first.distribution}'s. Set ZOO_DISABLE_PLUGINS={plugin.name} to silence this.",
                ZooWarning,
                stacklevel=2,
            )
            return
        entries[qualified] = Entry(part, plugin)
        self._bare[part.kind].setdefault(part.name, []).append(qualified)

    def _check_prefer(self) -> None:
        """A ``prefer`` entry no plugin answers to would silently decide nothing: warn, naming the known ones."""
        known = {e.part.namespace for entries in self._entries.values() for e in entries.values()}
        answers = known | {r.name for r in self.plugins} | {r.distribution for r in self.plugins}
        for namespace in self.catalogue.prefer:
            if namespace not in answers:
                where = self.catalogue.prefer_source or "registry.toml"
                warnings.warn(f"{where}: [resolve] prefer names {namespace!r}, which no plugin provides"
                              f"{suggest(namespace, known)}; namespaces: {', '.join(sorted(known))}",
                              ZooWarning, stacklevel=3)

    @property
    def plugins(self) -> list[PluginRecord]:
        return self.manager.records

    def _shipped(self) -> tuple[dict[str, str], dict[str, Preset]]:
        """The aliases and presets backbone parts ship (`BackbonePart.aliases`, ``presets``); first come keeps a name."""
        aliases: dict[str, str] = {}
        presets: dict[str, Preset] = {}
        for qualified, entry in self._entries["backbone"].items():
            part: BackbonePart = entry.part  # type: ignore[assignment]
            for alias in part.aliases:
                aliases.setdefault(alias, qualified)
            for preset in part.presets:
                presets.setdefault(preset.name, Preset(preset.name, preset.spec, preset.freeze, preset.description,
                                                       source=entry.plugin.distribution))
        return aliases, presets

    @property
    def presets(self) -> dict[str, Preset]:
        """registry.toml's presets, and those plugins ship (registry.toml wins a name)."""
        return {**self._plugin_presets, **self.catalogue.presets}

    def entries(self, kind: str) -> dict[str, Entry]:
        return self._entries[kind]

    def entry(self, kind: str, name: str, namespace: str | None = None) -> Entry:
        """The entry a (possibly qualified) name resolves to; `ZooError` with suggestions if none."""
        label = KIND_LABELS[kind]
        if namespace is None and "/" in name:
            namespace, name = name.rsplit("/", 1)
        if namespace is not None:
            qualified = f"{namespace}/{name}"
            if qualified in self._entries[kind]:
                return self._entries[kind][qualified]
            raise ZooError(f"unknown {label} {qualified!r}{suggest(qualified, self._entries[kind])}{self._not_loaded()}")
        if kind == "backbone" and name in self.catalogue.aliases:
            return self.entry(kind, self.catalogue.aliases[name])
        candidates = self._bare[kind].get(name, [])
        if len(candidates) == 1:
            return self._entries[kind][candidates[0]]
        if not candidates and kind == "backbone" and name in self._plugin_aliases:
            return self._entries[kind][self._plugin_aliases[name]]
        if not candidates:
            hint = suggest(name, self._bare[kind]) or (
                f" (try `zoo list --kind {kind}`)" if kind != "freeze" else ""
            )
            raise ZooError(f"unknown {label} {name!r}{hint}{self._not_loaded()}")
        for namespace in self.catalogue.prefer:
            qualified = f"{namespace}/{name}"
            if qualified in candidates:
                return self._entries[kind][qualified]
        builtin = [q for q in candidates if self._entries[kind][q].plugin.distribution == BUILTIN_DISTRIBUTION]
        if len(builtin) == 1:
            return self._entries[kind][builtin[0]]
        raise AmbiguousName(
            f"{label} {name!r} is ambiguous: {', '.join(candidates)}; "
            "use a qualified name or add a namespace to [resolve] prefer in registry.toml"
        )

    def tagged_backbone(self, name: str, namespace: str | None = None) -> tuple[Entry, str] | None:
        """``resnet50.a1_in1k``: a backbone written with its pretrained weights' tag, as timm's ``create_model``
        reads it; None when the name is not one. A bare name goes to the provider whose plugin knows the tag."""
        arch, dot, tag = name.rpartition(".")
        if not (dot and arch and tag):
            return None
        try:
            entry = self.entry("backbone", arch, namespace)
        except ZooError:
            return None
        if namespace is None and tag not in entry.part.weights_tags:  # type: ignore[union-attr]
            knowing = [q for q in self._bare["backbone"].get(arch, [])
                       if tag in self._entries["backbone"][q].part.weights_tags]  # type: ignore[union-attr]
            if len(knowing) == 1:
                entry = self._entries["backbone"][knowing[0]]
        part: BackbonePart = entry.part  # type: ignore[assignment]
        if part.pretrained is None:
            return None
        if part.weights_tags and tag not in part.weights_tags:
            raise ZooError(f"{part.qualified_name} has no pretrained tag {tag!r}{suggest(tag, part.weights_tags)}; "
                           f"tags: {', '.join(part.weights_tags)}")
        return entry, tag

    def _not_loaded(self) -> str:
        """For an unknown name: the plugins that failed or are disabled might have provided it."""
        missing = self.manager.not_loaded()
        return f"; not loaded: {missing} (see zoo plugins)" if missing else ""

    def backbone(self, ref: PartRef | str) -> BackbonePart:
        if isinstance(ref, str):
            return self.entry("backbone", ref).part  # type: ignore[return-value]
        return self.entry("backbone", ref.name, ref.namespace).part  # type: ignore[return-value]

    def head(self, ref: PartRef) -> HeadPart:
        part: HeadPart = self.entry("head", ref.name, ref.namespace).part  # type: ignore[assignment]
        if part.size == "required":
            if ref.size is None:
                raise ZooError(f"head {ref.name} needs a number of {part.size_label}: {part.usage}")
            if ref.size < part.min_size:
                raise ZooError(
                    f"head {ref.ref}: {ref.size} {part.size_label} is impossible; "
                    f"{part.name} needs at least {part.min_size}"
                )
        elif ref.size is not None:
            raise ZooError(f"head {part.name} takes no size; write {part.usage}")
        return part

    def freeze_policy(self, text: str, stages: Sequence[str], backbone: str = "the backbone") -> tuple[FreezePolicyPart, Any]:
        """The policy a ``--freeze`` value names and its checked argument. A bare stage name is ``before:STAGE``."""
        name, colon, argument = text.partition(":")
        if not colon and name in stages and not self._bare["freeze"].get(name):
            name, argument, colon = STAGE_SHORTHAND, text, ":"
        try:
            part: FreezePolicyPart = self.entry("freeze", name).part  # type: ignore[assignment]
        except ZooError as exc:  # the same type, so an ambiguous name stays ambiguous
            raise type(exc)(f"{exc}; policies: {', '.join(self._bare['freeze'])}, or a stage of {backbone}: {', '.join(stages)}") from None
        if part.argument == "none":
            if colon:
                raise ZooError(f"freeze policy {part.name} takes no argument; write {part.usage}")
            return part, None
        if not colon or not argument:
            raise ZooError(f"freeze policy {part.name} needs an argument: {part.usage}")
        if part.argument == "int":
            if not INTEGER.fullmatch(argument) or int(argument) < 0:
                raise ZooError(f"freeze policy {part.usage}: N must be a whole number >= 0, not {argument!r}")
            return part, int(argument)
        if argument not in stages:
            raise ZooError(f"{backbone} has no stage {argument!r}{suggest(argument, stages)}; stages: {', '.join(stages)}")
        return part, argument

    def find(self, pattern: str | None = None, kind: str | None = None, pretrained: bool = False) -> list[dict[str, Any]]:
        """Rows for `zoo list`: parts and presets whose bare or qualified name matches the wildcard.

        ``pretrained``: only backbones with pretrained weights (a backbone's row lists their tags, the default first).
        """
        if kind is not None and kind not in LISTED_KINDS:
            raise ZooError(f"unknown kind {kind!r}; kinds: {', '.join(LISTED_KINDS)}")

        def matches(*names: str) -> bool:
            return pattern is None or any(fnmatch.fnmatchcase(n, pattern) for n in names)

        rows: list[dict[str, Any]] = []
        for k in KINDS:
            if kind not in (None, k):
                continue
            for qualified, entry in self._entries[k].items():
                tags = list(getattr(entry.part, "weights_tags", ()))
                if matches(entry.part.name, qualified) and (tags or not pretrained):
                    usage = getattr(entry.part, "usage", entry.part.name)
                    rows.append({"kind": k, "name": qualified, "usage": usage, "provider": entry.plugin.distribution,
                                 "plugin": entry.plugin.name, "description": entry.part.description,
                                 **({"weights": tags} if k == "backbone" else {})})
        if kind in (None, "preset") and not pretrained:
            for name, preset in self.presets.items():
                if matches(name):
                    freeze = f" --freeze={preset.freeze}" if preset.freeze else ""
                    packaged = preset.source == str(PACKAGED)
                    rows.append({"kind": "preset", "name": name, "usage": f"{preset.spec}{freeze}",
                                 "provider": "registry.toml" if packaged else preset.source, "plugin": "",
                                 "description": preset.description})
        rank = {namespace: i for i, namespace in enumerate(self.catalogue.prefer)}
        kind_order = {k: i for i, k in enumerate(LISTED_KINDS)}

        def order(row: dict[str, Any]) -> tuple[int, int, str]:
            return (kind_order[row["kind"]], rank.get(row["name"].split("/")[0], len(rank)), row["name"])

        return sorted(rows, key=order)


_default: dict[str | None, Registry] = {}


def default_registry(registry_file: str | os.PathLike[str] | None = None) -> Registry:
    """The process-wide registry built from the environment, made once per registry file."""
    key = os.fspath(registry_file) if registry_file else os.environ.get("ZOO_REGISTRY")
    if key not in _default:
        _default[key] = Registry.from_environment(registry_file)
    return _default[key]
