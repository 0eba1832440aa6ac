"""A weights file laid out as the Hugging Face cache keeps it, for tests that load timm weights offline."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hf_cache(root: Path, repo: str, data: bytes, blob_name: str | None = None) -> Path:
    """The cache's layout under ``root``: the blob named by its sha256 (or ``blob_name``), a snapshot linking to
    it, refs/main naming the snapshot; returns the snapshot's file."""
    folder = root / "hub" / f"models--{repo.replace('/', '--')}"
    blob = folder / "blobs" / (blob_name or hashlib.sha256(data).hexdigest())
    blob.parent.mkdir(parents=True)
    blob.write_bytes(data)
    snapshot = folder / "snapshots" / COMMIT / "model.safetensors"
    snapshot.parent.mkdir(parents=True)
    snapshot.symlink_to(os.path.relpath(blob, snapshot.parent))
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(COMMIT)
    return snapshot
