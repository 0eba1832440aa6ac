"""The --out folder of predict and eval: made if missing, refused as one line if it is a file or unwritable."""
from __future__ import annotations

import os
from pathlib import Path

from zoo.errors import ZooError


def out_folder(out: str | os.PathLike[str], create: bool = True) -> Path:
    """``out`` as a folder to write in; with ``create=False`` only checked (a command that may write nothing
    leaves no empty folder behind): not a file, and its nearest existing folder writable."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ZooError(f"--out {folder} is a file; give a folder")
    if not create:
        existing = next(p for p in (folder.absolute(), *folder.absolute().parents) if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK):
            raise ZooError(f"cannot create --out folder {folder}: {existing} is not a writable folder")
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ZooError(f"cannot create --out folder {folder}: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK):
        raise ZooError(f"cannot write to --out folder {folder}: permission denied")
    return folder
