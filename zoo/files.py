"""Files for zoo and its plugins: where the cache is, writing so that an interrupted write leaves nothing
half-done, downloads checked before they are kept, and where torch.hub keeps a downloaded checkpoint.
Part of the plugin author's contract."""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from zoo.errors import ZooError
from zoo.parts import WeightsFile


def cache_dir() -> Path:
    """``$ZOO_CACHE_DIR``, else ``$XDG_CACHE_HOME/zoo``, else ``~/.cache/zoo``."""
    if os.environ.get("ZOO_CACHE_DIR"):
        return Path(os.environ["ZOO_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "zoo"


def check_new_file(path: Path, force: bool, suffix: str) -> Path:
    """``path`` may be written: a file name (not a folder) in an existing folder, not a file we would lose."""
    if path.is_dir():
        raise ZooError(f"output {path} is a folder; name a file such as {path / ('model' + suffix)}")
    if not path.parent.is_dir():
        raise ZooError(f"cannot write {path}: the folder {path.parent} does not exist")
    if path.exists() and not force:
        raise ZooError(f"{path} exists; use --force (force=True) to replace it")
    return path


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


def cached_json(name: str, compute: Callable[[], Any], *, required: tuple[str, ...] = ()) -> Any:
    """``compute()``, kept in the cache as ``name`` (put the versions it depends on in the name).

    Plugins list what they offer from here without importing torch; a cache that is unreadable, or a
    mapping lacking a ``required`` key (an older format), is computed again; an unwritable one only costs speed.
    """
    path = cache_dir() / name
    try:
        data = json.loads(path.read_text())
        if not required or (isinstance(data, dict) and all(key in data for key in required)):
            return data
    except (OSError, ValueError):
        pass
    data = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(data).encode())
    except OSError:
        pass
    return data


DOWNLOAD_TIMEOUT = 30.0


def open_url(url: str, timeout: float = DOWNLOAD_TIMEOUT) -> IO[bytes]:
    """The one place zoo opens a URL (tests replace it); ``file://`` URLs read local files."""
    import urllib.request

    return urllib.request.urlopen(url, timeout=timeout)  # noqa: S310


def download(url: str, path: str | os.PathLike[str], sha256: str = "", *, progress: IO[str] | None = None) -> Path:
    """Fetch ``url`` into ``path``, showing progress on stderr; kept only when its sha256 starts with ``sha256``.

    The bytes go to a temporary file beside ``path`` and are hashed on the way; only a download that
    completed and matched is renamed into place, so a broken or wrong one leaves nothing behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    digest = hashlib.sha256()
    shown = _Progress(path.name, url, progress or sys.stderr)
    try:
        with os.fdopen(fd, "wb") as out, open_url(url) as response:
            total = getattr(response, "headers", None) and response.headers.get("Content-Length")
            shown.start(int(total) if total and str(total).isdigit() else None)
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
                shown.advance(len(block))
        found = digest.hexdigest()
        if not found.startswith(sha256):
            raise ZooError(f"the download from {url} has sha256 {found[:16]}..., expected {sha256}...; it was not kept")
        shown.done(found)
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class _Progress:
    """``name: 42% (10.2 of 24.4 MB)`` on one line that updates in a terminal; a line per quarter otherwise."""

    def __init__(self, name: str, url: str, stream: IO[str]) -> None:
        self.name, self.url, self.stream = name, url, stream
        self.total: int | None = None
        self.received = 0
        self.shown = -1
        self.live = bool(getattr(stream, "isatty", lambda: False)())

    def start(self, total: int | None) -> None:
        self.total = total
        size = f" ({total / 1e6:.1f} MB)" if total else ""
        self.stream.write(f"zoo: downloading {self.name}{size} from {self.url}\n")
        self.stream.flush()

    def advance(self, count: int) -> None:
        self.received += count
        if not self.total:
            return
        percent = min(100, 100 * self.received // self.total)
        step = percent if self.live else percent // 25 * 25
        if step != self.shown:
            self.shown = step
            end = "\r" if self.live and percent < 100 else "\n"
            self.stream.write(f"zoo: {self.name}: {percent}% ({self.received / 1e6:.1f} of {self.total / 1e6:.1f} MB){end}")
            self.stream.flush()

    def done(self, sha256: str) -> None:
        self.stream.write(f"zoo: {self.name}: {self.received / 1e6:.1f} MB, sha256 {sha256[:16]}... checked\n")
        self.stream.flush()


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
