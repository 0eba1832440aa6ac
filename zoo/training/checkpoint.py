"""Resuming a run: after every epoch the whole state of training (model, optimizer, schedule position, random
states, epoch, history, best epoch so far) goes into ``NAME.checkpoint.pt`` beside the output, written atomically,
so that Ctrl-C, ``kill -9`` or a full disk lose at most the current epoch, and ``--resume`` continues to the same
result as an uninterrupted run.

A checkpoint records what it belongs to (spec, freeze policy, data files, settings, zoo version); resuming with
anything else is refused, naming what differs.
"""
from __future__ import annotations

import hashlib
import io
import os
import random
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo._version import __version__
from zoo.errors import ZooError, ZooWarning
from zoo.files import atomic_write_bytes

if TYPE_CHECKING:
    import torch

    from zoo._runtime.data import Samples

# settings that change how fast a run goes, not what it computes
NOT_IN_IDENTITY = ("workers",)


def checkpoint_path(output: Path) -> Path:
    """Where a run saving ``output`` keeps its checkpoint: beside it, named after it."""
    return Path(f"{output.with_suffix('')}.checkpoint.pt")


def data_fingerprint(samples: Iterable[Samples]) -> str:
    """A hash of the data a run reads: every image's path, size and modification time, every target's whole
    content (a tensor's every byte, not its ``repr``, which torch shortens) and the files targets name."""
    digest = hashlib.sha256()
    for part in samples:
        for path, target in part.items:
            digest.update(f"{path}|{_file_stamp(path)}|".encode())
            _feed(digest, target)
            digest.update(b"\n")
        digest.update(repr(sorted(part.labels.items())).encode())
    return digest.hexdigest()


def _file_stamp(path: Any) -> str:
    """A file's size and modification time (ns): what tells that an image or a mask changed, without reading it."""
    try:
        stat = os.stat(path)
    except OSError:
        return "missing"
    return f"{stat.st_size}|{stat.st_mtime_ns}"


def _feed(digest: Any, value: Any) -> None:
    """Hash ``value`` whole: tensors and arrays by dtype, shape and bytes; containers item by item; a path (a
    `Path`, or a string naming a file) by its size and modification time too, as images are."""
    if hasattr(value, "detach") and hasattr(value, "dtype"):  # a torch tensor
        import torch

        flat = value.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"T{value.dtype}{tuple(value.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    elif hasattr(value, "tobytes") and hasattr(value, "dtype"):  # a numpy array
        digest.update(f"A{value.dtype}{value.shape}".encode() + value.tobytes())
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            digest.update(f"K{key!r}".encode())
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    elif isinstance(value, (str, os.PathLike)) and _names_file(value):
        digest.update(f"F{os.fspath(value)}|{_file_stamp(value)}".encode())
    else:
        digest.update(f"V{value!r}".encode())


def _names_file(value: str | os.PathLike[str]) -> bool:
    try:
        return os.path.isfile(value)
    except (OSError, ValueError):
        return False


def identity(spec: str, freeze: str, data: str, settings: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint belongs to; a resumed run must match every entry."""
    kept = {k: v for k, v in settings.items() if k not in NOT_IN_IDENTITY}
    return {"spec": spec, "freeze": freeze, "data": data, "zoo version": __version__, "settings": kept}


def _difference(saved: dict[str, Any], wanted: dict[str, Any]) -> str | None:
    for key in ("zoo version", "spec", "freeze", "data"):
        if saved.get(key) != wanted.get(key):
            if key == "data":
                return "the data (its files changed, or it is another data set)"
            return f"the {key} ({saved.get(key)} in the checkpoint, {wanted.get(key)} now)"
    old, new = saved.get("settings", {}), wanted.get("settings", {})
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            return f"the setting {key} ({old.get(key)} in the checkpoint, {new.get(key)} now)"
    return None


def random_states(generator: torch.Generator | None) -> dict[str, Any]:
    """Python's, NumPy's and torch's random states (and the data loader's shuffling generator)."""
    import numpy as np
    import torch

    kind, keys, position, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(), "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), position, has_gauss, cached],
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        states["loader"] = generator.get_state()
    return states


def restore_random_states(states: dict[str, Any], generator: torch.Generator | None) -> None:
    import numpy as np
    import torch

    random.setstate(_tuples(states["python"]))
    torch.set_rng_state(states["torch"])
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if generator is not None and "loader" in states:
        generator.set_state(states["loader"])


def _tuples(value: Any) -> Any:
    """random.setstate wants tuples where a round trip may give lists."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


class Checkpoints:
    """The checkpoint of one run: written after each epoch, read back by ``--resume``, removed when done.
    Under torchrun every process reads it to resume, and only the one that ``writes`` (rank 0) writes it."""

    def __init__(self, path: Path, belongs_to: dict[str, Any], writes: bool = True) -> None:
        self.path, self.belongs_to, self.writes = path, belongs_to, writes
        self.saved_epoch: int | None = None

    def save(self, epoch: int, state: dict[str, Any]) -> bool:
        """Write atomically; a failed write (a full disk) warns and keeps the previous checkpoint."""
        import torch

        if not self.writes:
            self.saved_epoch = epoch  # written by rank 0
            return True
        buffer = io.BytesIO()
        torch.save({"belongs_to": self.belongs_to, "epoch": epoch, **state}, buffer)
        try:
            atomic_write_bytes(self.path, buffer.getvalue())
        except OSError as exc:
            kept = f"the checkpoint of epoch {self.saved_epoch} is kept" if self.saved_epoch else "no checkpoint"
            warnings.warn(f"could not write the checkpoint {self.path} ({exc.strerror or exc}); {kept}",
                          ZooWarning, stacklevel=2)
            return False
        self.saved_epoch = epoch
        return True

    def load(self) -> dict[str, Any]:
        """The saved state, after checking that it belongs to this run."""
        import torch

        if not self.path.is_file():
            raise ZooError(f"nothing to resume: {self.path} does not exist")
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated or foreign file: say so in one line
            raise ZooError(f"{self.path} is not a zoo checkpoint ({type(exc).__name__})") from None
        if not isinstance(state, dict) or "belongs_to" not in state:
            raise ZooError(f"{self.path} is not a zoo checkpoint")
        differs = _difference(state["belongs_to"], self.belongs_to)
        if differs:
            raise ZooError(f"cannot resume from {self.path}: it belongs to another run; {differs} differs")
        self.saved_epoch = state["epoch"]
        return state

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def where(self) -> str:
        """Where the last good state is, for a message."""
        if self.saved_epoch is None:
            return "no checkpoint was written"
        return f"the checkpoint of epoch {self.saved_epoch} is kept in {self.path} (continue with --resume)"


class StoppedTraining(KeyboardInterrupt):
    """Ctrl-C during `zoo.fit`; carries where the checkpoint is for the command's message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
