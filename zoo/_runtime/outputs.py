"""The --out folder of predict and eval: made if missing, refused as one line if it is a file or unwritable."""
from __future__ import annotations

import os
from pathlib import Path

from zoo.errors import ZooError


def out_folder(out: str | os.PathLike[str]) -> Path:
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ZooError(f"--out {folder} is a file; give a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ZooError(f"cannot create --out folder {folder}: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK):
        raise ZooError(f"cannot write to --out folder {folder}: permission denied")
    return folder
