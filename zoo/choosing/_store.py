"""Results kept per candidate under ``$ZOO_CACHE_DIR/choose/``, each file named by a fingerprint of what
decides it: quality by the backbone, its weights, the data, the head and the probes' settings; cost by the
backbone, the head, the device, the batch and the image size. A re-run, or a wider pattern, measures only what it has not seen.

A file that cannot be read is measured again; one that cannot be written is a warning, never a failure.
"""
from __future__ import annotations

import json
import warnings
from typing import Any

from zoo.errors import ZooWarning
from zoo.files import atomic_write_bytes, cache_dir


def _path(kind: str, key: str):
    return cache_dir() / "choose" / f"{kind}-{key}.json"


def recall(kind: str, key: str) -> dict[str, Any] | None:
    """What was measured before under ``key``, or None."""
    try:
        found = json.loads(_path(kind, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def keep(kind: str, key: str, result: dict[str, Any]) -> None:
    path = _path(kind, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(result, sort_keys=True).encode())
    except OSError as exc:
        warnings.warn(f"cannot keep zoo choose's results in {path.parent} ({exc.strerror or exc}); the next run "
                      "measures again", ZooWarning, stacklevel=2)
