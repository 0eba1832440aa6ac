"""What zoo keeps under ``$ZOO_CACHE_DIR``, and clearing it: `cache_entries` and `clear_cache` (``zoo cache``).

Each file is recognised by where zoo writes it: ``features/`` (the feature cache, its model and data read from
the file's own header), ``choose/`` (``zoo choose``'s measurements), ``weights/`` (downloads of registry.toml's
``[weights]``), ``<package>-<version>-<what>.json`` (what plugins list: timm's model list, torchvision's
weights; `zoo.files.cached_json`) and the temporary files of an interrupted
write (once an hour old: a younger one may be a write under way). Anything else found there is listed as ``other`` and never removed, so a cache directory pointed at the
wrong folder loses nothing. Nothing outside the cache directory is touched, symbolic links are not followed
(nor removed), and a weights file that registry.toml names by ``path`` elsewhere stays where it is. Reading the
list imports no torch.
"""
from __future__ import annotations

import json
import os
import re
import struct
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from zoo.errors import ZooError
from zoo.files import cache_dir

KINDS = ("features", "choose", "weights", "lists", "partial", "other")
REMOVABLE = frozenset(KINDS) - {"other"}
_LIST = re.compile(r"(?P<package>[A-Za-z][\w.]*)-(?P<version>\d[\w.+]*)-(?P<what>.+)\.json")
_PARTIAL = re.compile(r"\..+\.(tmp|part)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
PARTIAL_GRACE_S = 3600.0  # a temporary file younger than this may be a write under way: it is left alone


@dataclass
class CacheEntry:
    """One file of the cache: what it is, for which model and data (``about``), its size and age."""

    path: str
    kind: str
    about: str
    bytes: int
    age_s: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_age(text: str) -> float:
    """``7d`` -> seconds: a number and one of s, m, h, d, w (``--older-than``)."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text or "")
    if not found:
        raise ZooError(f"--older-than {text!r}: give a number and a unit, such as 12h, 7d or 2w (s, m, h, d, w)")
    return float(found.group(1)) * _UNITS[found.group(2)]


def _kind(relative: Path) -> str:
    """The kind of a file by where zoo writes it; ``other`` for a file zoo does not make."""
    name, top = relative.name, relative.parts[0]
    if _PARTIAL.fullmatch(name):
        return "partial"
    if len(relative.parts) == 1:
        return "lists" if _LIST.fullmatch(name) else "other"
    if len(relative.parts) != 2 or name.startswith("."):
        return "other"
    if top == "features" and name.endswith(".safetensors"):
        return "features"
    if top == "choose" and name.endswith(".json"):
        return "choose"
    return "weights" if top == "weights" else "other"


def _header(path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, read from its JSON header alone; empty if it has none."""
    try:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > 100_000_000:
                return {}
            header = json.loads(handle.read(length))
    except (OSError, ValueError, struct.error):
        return {}
    found = header.get("__metadata__") if isinstance(header, dict) else None
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _about(path: Path, kind: str) -> str:
    """For which model and data an entry is, as far as its name and header tell."""
    if kind == "features":
        meta = _header(path)
        if not meta.get("model"):
            return f"feature cache {path.stem[:12]} (written before entries named their model)"
        views = f", {meta['views']} augmented views" if meta.get("views", "0") != "0" else ""
        return f"{meta['model']} on {meta.get('data', '?')} ({meta.get('images', '?')} images{views})"
    if kind == "lists":
        found = _LIST.fullmatch(path.name)
        return f"{found['package']} {found['version']}: {found['what'].replace('-', ' ')} list"  # type: ignore[index]
    if kind == "choose":
        return f"zoo choose {path.stem.split('-', 1)[0]} measurements"
    if kind == "weights":
        return f"downloaded weights {path.name}"
    if kind == "partial":
        return "left by an interrupted write"
    return "not made by zoo (never removed)"


def cache_entries(kind: str | None = None, root: str | os.PathLike[str] | None = None) -> list[CacheEntry]:
    """Every file under the cache directory (or ``root``), by kind then path; ``kind`` keeps one kind."""
    if kind is not None and kind not in KINDS:
        raise ZooError(f"no cache entry kind {kind!r}; kinds: {', '.join(KINDS)}")
    base = Path(root) if root is not None else cache_dir()
    if not base.is_dir():
        return []
    now, entries = time.time(), []
    for folder, folders, files in os.walk(base):  # os.walk does not follow links to folders
        folders[:] = [d for d in folders if not os.path.islink(os.path.join(folder, d))]
        for name in files:
            path = Path(folder, name)
            if path.is_symlink():
                continue
            found = _kind(path.relative_to(base))
            if kind not in (None, found):
                continue
            try:
                stat = path.stat()
            except OSError:  # removed while we looked
                continue
            entries.append(CacheEntry(str(path), found, _about(path, found), stat.st_size, max(0.0, now - stat.st_mtime)))
    return sorted(entries, key=lambda e: (KINDS.index(e.kind), e.path))


def clear_cache(kind: str | None = None, older_than: str | float | None = None,
                root: str | os.PathLike[str] | None = None) -> list[CacheEntry]:
    """Remove the cache files zoo made (of ``kind``; last written more than ``older_than`` ago: seconds or
    ``7d``) and return them; ``other`` files and links are never removed. Empty folders left behind go too."""
    if kind == "other":
        raise ZooError("files zoo did not make are never removed; delete them yourself if you mean to")
    age = parse_age(older_than) if isinstance(older_than, str) else older_than
    base = (Path(root) if root is not None else cache_dir()).resolve()
    removed = []
    for entry in cache_entries(kind, base):
        if entry.kind not in REMOVABLE or (age is not None and entry.age_s < age):
            continue
        if entry.kind == "partial" and entry.age_s < PARTIAL_GRACE_S:
            continue
        path = Path(entry.path)
        if path.is_symlink() or base not in path.resolve().parents:
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ZooError(f"cannot remove {path}: {exc.strerror or exc}") from None
        removed.append(entry)
    _remove_empty_folders(base, {Path(e.path).parent for e in removed})
    return removed


def _remove_empty_folders(base: Path, folders: set[Path]) -> None:
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
        if folder != base and base in folder.parents:
            try:
                folder.rmdir()
            except OSError:  # not empty, or already gone
                pass
