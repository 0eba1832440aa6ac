"""Files for zoo and its plugins: where the cache is, writing so that an interrupted write leaves nothing
half-done, and where torch.hub keeps a downloaded checkpoint. Part of the plugin author's contract."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from zoo.parts import WeightsFile


def cache_dir() -> Path:
    """``$ZOO_CACHE_DIR``, else ``$XDG_CACHE_HOME/zoo``, else ``~/.cache/zoo``."""
    if os.environ.get("ZOO_CACHE_DIR"):
        return Path(os.environ["ZOO_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "zoo"


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``.

    The file gets the mode a plain ``open()`` would give it (a replaced file keeps its own), not
    the owner-only mode of the temporary file.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0o022)  # reading the umask means setting it; put it back at once
        os.umask(umask)
        return 0o666 & ~umask


def torch_hub_file(source: str, url: str, labels: tuple[str, ...] = ()) -> WeightsFile:
    """A file that torch.hub keeps under ``$TORCH_HOME/hub/checkpoints``, checked by the hash in its name.

    For plugins: torchvision's weight enums and timm's URL weights live there.
    """
    import torch.hub

    name = os.path.basename(urlparse(url).path)
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    match = torch.hub.HASH_REGEX.search(name)
    prefix = match.group(1) if match and len(match.group(1)) >= 8 else ""
    return WeightsFile(source, str(folder / name), prefix, url,
                       expected=f"put {name} (from {url}) in {folder}/", labels=labels)
