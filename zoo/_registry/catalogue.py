"""registry.toml: the declarative catalogue of provider preferences, aliases, presets and pinned weights.

The packaged file is read first; a user's file (``--registry FILE`` or ``ZOO_REGISTRY``) overlays it:
its ``prefer`` list replaces the packaged one, its aliases, presets and weights add to or replace theirs.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from zoo._registry.spec import parse
from zoo.errors import ZooError, suggest

PACKAGED = Path(__file__).resolve().parent.parent / "registry.toml"
_TABLES = {"resolve": {"prefer"}, "aliases": None, "presets": None, "weights": None}
_PRESET_KEYS = {"spec", "freeze", "description"}
_WEIGHTS_KEYS = {"path", "url", "sha256", "description"}
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Preset:
    name: str
    spec: str
    freeze: str | None = None
    description: str = ""
    source: str = ""


@dataclass(frozen=True)
class PinnedWeights:
    """``[weights.NAME]``: a file (``path``, relative to the registry file) or ``url``, and its sha256."""

    name: str
    sha256: str
    path: str = ""
    url: str = ""
    description: str = ""
    source: str = ""


@dataclass
class Catalogue:
    prefer: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    presets: dict[str, Preset] = field(default_factory=dict)
    weights: dict[str, PinnedWeights] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    prefer_source: str = ""  # the file whose ``prefer`` list is in force


def _line_of(text: str, key: str) -> int:
    """The first line mentioning ``key`` as a key or table name, for error messages."""
    pattern = re.compile(rf"^[ \t]*(\[+[ \t]*)?([\w.\-\"]*\.)?\"?{re.escape(key)}\"?[ \t]*[=\].]", re.M)
    match = pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else 1


def _read(path: Path) -> tuple[dict, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ZooError(f"registry file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ZooError(f"cannot read registry file {path}: {exc}") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = re.search(r"\s*\(at line (\d+), column \d+\)|\s*\(at end of document\)", message)
        line = int(where.group(1)) if where and where.group(1) else text.count("\n") + 1
        reason = message[: where.start()] if where else message
        raise ZooError(f"invalid registry file {path}, line {line}: {reason}") from None


def _overlay(catalogue: Catalogue, path: Path) -> None:
    data, text = _read(path)

    def fail(key: str, why: str) -> ZooError:
        return ZooError(f"invalid registry file {path}, line {_line_of(text, key)}: {why}")

    for table, value in data.items():
        if table not in _TABLES:
            raise fail(table, f"unknown table [{table}]{suggest(table, _TABLES)}; tables: {', '.join(_TABLES)}")
        if not isinstance(value, dict):
            raise fail(table, f"{table} must be a table")
    resolve = data.get("resolve", {})
    for key in resolve:
        if key != "prefer":
            raise fail(key, f"unknown key resolve.{key}; the only key is prefer")
    if "prefer" in resolve:
        prefer = resolve["prefer"]
        if not isinstance(prefer, list) or not all(isinstance(p, str) for p in prefer):
            raise fail("prefer", "resolve.prefer must be a list of namespace strings")
        catalogue.prefer = tuple(prefer)
        catalogue.prefer_source = str(path)
    for name, target in data.get("aliases", {}).items():
        if not isinstance(target, str):
            raise fail(name, f"alias {name} must be a string naming a backbone")
        catalogue.aliases[name] = target
    for name, body in data.get("presets", {}).items():
        if not isinstance(body, dict):
            raise fail(name, f"preset {name} must be a table with spec, freeze and description")
        unknown = set(body) - _PRESET_KEYS
        if unknown:
            key = sorted(unknown)[0]
            raise fail(key, f"preset {name} has unknown key {key!r}; keys: spec, freeze, description")
        if not all(isinstance(body.get(k, ""), str) for k in _PRESET_KEYS):
            raise fail(name, f"preset {name}: spec, freeze and description must be strings")
        if "spec" not in body:
            raise fail(name, f"preset {name} has no spec")
        try:
            parse(body["spec"])
        except ZooError as exc:
            raise fail(name, f"preset {name}: {exc}") from None
        catalogue.presets[name] = Preset(name, body["spec"], body.get("freeze"), body.get("description", ""), str(path))
    for name, body in data.get("weights", {}).items():
        catalogue.weights[name] = _pinned(name, body, path, fail)
    catalogue.sources.append(str(path))


def _pinned(name: str, body: object, path: Path, fail) -> PinnedWeights:
    if not isinstance(body, dict):
        raise fail(name, f"weights {name} must be a table with path or url, and sha256")
    unknown = sorted(set(body) - _WEIGHTS_KEYS)
    if unknown:
        raise fail(unknown[0], f"weights {name} has unknown key {unknown[0]!r}; keys: path, url, sha256, description")
    if not all(isinstance(v, str) for v in body.values()):
        raise fail(name, f"weights {name}: path, url, sha256 and description must be strings")
    if not body.get("path") and not body.get("url"):
        raise fail(name, f"weights {name} needs a path or a url")
    if not _SHA256.fullmatch(body.get("sha256", "")):
        raise fail(name, f"weights {name} needs sha256 = the file's sha256 as 64 lowercase hex digits")
    local = body.get("path", "")
    if local:
        local = str((path.parent / Path(local).expanduser()).resolve())
    return PinnedWeights(name, body["sha256"], local, body.get("url", ""), body.get("description", ""), str(path))


def load_catalogue(user_file: str | os.PathLike[str] | None = None) -> Catalogue:
    """The packaged catalogue overlaid with ``user_file``, or with ``$ZOO_REGISTRY`` when none is given."""
    catalogue = Catalogue()
    _overlay(catalogue, PACKAGED)
    user_file = user_file or os.environ.get("ZOO_REGISTRY") or None
    if user_file:
        _overlay(catalogue, Path(user_file))
    return catalogue
