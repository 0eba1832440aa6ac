"""Progress during an epoch: a tqdm bar on a terminal, nothing in a pipe (one line per epoch is printed)."""
from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any


def progress(iterable: Iterable[Any], total: int | None, description: str, enabled: bool | None = None,
             unit: str = "batch") -> Iterable[Any]:
    """``iterable`` wrapped in a bar on stderr when ``enabled`` (default: when stderr is a terminal)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=description, unit=unit, leave=False, file=sys.stderr)
