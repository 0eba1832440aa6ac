"""Reading a saved model file: its safetensors header, zoo's metadata in it, and its tensors. No model.

A zoo model file is a safetensors file whose header holds, under the key ``zoo``, JSON metadata
(canonical spec, freeze policy, heads, labels, preprocessing, the plugins and versions that made it, where
the weights came from), so `read_metadata` needs neither torch nor the model. ``content_sha256`` covers
the tensor bytes, so a damaged file is refused rather than loaded. This module sits below everything
that builds, loads or measures a model, and `model_file` answers for every command whether an argument
names a saved model file or a spec.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo._modelfile.metadata_check import check_metadata
from zoo._untrusted import one_line
from zoo.errors import ZooError

if TYPE_CHECKING:
    import torch

FORMAT = "zoo.artifact/1"
METADATA_KEY = "zoo"
SUFFIX = ".safetensors"
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit
_REQUIRED = ("spec", "freeze", "frozen_stages", "plugins", "content_sha256")
RECORDED = ("preprocessing", "training", "metrics")  # optional: what training and zoo.transforms add


@dataclass(frozen=True)
class Header:
    tensors: dict[str, dict[str, Any]]  # name -> dtype, shape, data_offsets
    metadata: dict[str, str]
    data_start: int  # where the tensor bytes begin
    size: int


def read_header(path: str | os.PathLike[str]) -> Header:
    """The safetensors header, checked against the file's size, so truncation is caught before loading."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else 0
            raw = handle.read(length) if 0 < length <= min(_MAX_HEADER, size - 8) else b""
    except FileNotFoundError:
        raise ZooError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise ZooError(f"{path} is a folder, not a safetensors file") from None
    except OSError as exc:
        raise ZooError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not raw:
        if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":  # a zip or pickle checkpoint
            raise ZooError(f"{path} is not a safetensors file: it looks like a PyTorch checkpoint; "
                           "name it .pth and pass it with --weights")
        if size >= 8 and 0 < length <= _MAX_HEADER:
            raise ZooError(f"{path} is truncated or not a safetensors file: its header claims {length:,} bytes "
                           f"and the file holds {size:,}")
        raise ZooError(f"{path} is not a safetensors file")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ZooError(f"{path} is not a safetensors file or is damaged: its header is not JSON") from None
    if not isinstance(header, dict):
        raise ZooError(f"{path} is damaged: its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ZooError(f"{path} is damaged: its metadata is not a table of strings")
    end = 0
    for name, entry in header.items():
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] or not isinstance(entry.get("shape"), list)):
            raise ZooError(f"{path} is damaged: tensor '{one_line(name, 80)}' has no valid shape and offsets")
        end = max(end, offsets[1])
    data = size - 8 - length
    if end > data:
        raise ZooError(f"{path} is truncated: its tensors need {end:,} bytes after the header and it holds {data:,}")
    if end < data:
        raise ZooError(f"{path} is damaged: {data - end:,} bytes follow its last tensor")
    return Header(header, metadata, 8 + length, size)


def zoo_metadata(header: Header, path: Path) -> dict[str, Any] | None:
    text = header.metadata.get(METADATA_KEY)
    if text is None:
        return None
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError):
        raise ZooError(f"{path} is damaged: its zoo metadata is not JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ZooError(f"{path}: unknown artifact format '{one_line(found, 60)}'; this zoo reads {FORMAT}")
    absent = [key for key in _REQUIRED if key not in meta]
    if absent or not isinstance(meta["spec"], str) or not isinstance(meta["plugins"], list):
        raise ZooError(f"{path} is damaged: its zoo metadata lacks {', '.join(absent) or 'a valid spec'}")
    check_metadata(meta, path)
    return meta


def is_artifact(path: str | os.PathLike[str]) -> bool:
    return zoo_metadata(read_header(path), Path(path)) is not None


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """An artifact's metadata, read from the header alone: no torch, no model."""
    path = Path(path)
    return required_metadata(read_header(path), path)


def required_metadata(header: Header, path: Path) -> dict[str, Any]:
    """The zoo metadata of a header already read; a safetensors file without it is an error."""
    meta = zoo_metadata(header, path)
    if meta is None:
        raise ZooError(f"{path} is a safetensors file without zoo metadata: load it with --weights {path}")
    return meta


def digests(path: Path, data_start: int) -> tuple[str, str]:
    """sha256 of the whole file and of its tensor bytes, in one pass."""
    whole, data = hashlib.sha256(), hashlib.sha256()
    with open(path, "rb") as handle:
        head = handle.read(data_start)
        whole.update(head)
        for block in iter(lambda: handle.read(1 << 20), b""):
            whole.update(block)
            data.update(block)
    return whole.hexdigest(), data.hexdigest()


def read_tensors(
    path: str | os.PathLike[str], header: Header | None = None, sha256s: tuple[str, str] | None = None
) -> tuple[dict[str, torch.Tensor], str]:
    """The tensors of a safetensors file and the file's sha256; a zoo artifact's content hash is checked.

    A caller that has already read the header, or hashed the file with `digests`, passes them in, so
    the file is read for its header once and hashed once.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    header = header or read_header(path)
    meta = zoo_metadata(header, path)
    file_sha, data_sha = sha256s or digests(path, header.data_start)
    if meta is not None and meta["content_sha256"] != data_sha:
        raise ZooError(f"{path} is damaged: its tensor bytes do not match the checksum saved with them")
    try:
        return load_file(path, device="cpu"), file_sha
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ZooError(f"{path} is damaged: {str(exc).splitlines()[0]}") from None


def describe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What `zoo info FILE.safetensors` prints: the metadata and the file's size, without building."""
    path = Path(path)
    header = read_header(path)
    meta = zoo_metadata(header, path)
    if meta is None:
        raise ZooError(f"{path} is a safetensors file without zoo metadata ({len(header.tensors)} tensors); "
                       f"use it with zoo build SPEC --weights {path}")
    facts = {"kind": "artifact", "file": str(path), "bytes": header.size, "tensors": len(header.tensors)}
    return {**facts, **{key: value for key, value in meta.items() if key not in facts}}


# --- a saved model file or a spec? -------------------------------------------------------------------

WEIGHTS_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")  # what a file of tensors is named

_AS_WEIGHTS = {  # per command: how to use a file of weights that is not a saved zoo model
    "build": "use it as weights: zoo build SPEC --weights {path}",
    "predict": "use it as weights: zoo predict SPEC --weights {path} IMAGE...",
    "info": "zoo info reads saved zoo models; use it as weights: zoo build SPEC --weights {path}",
    "bench": "zoo bench measures a saved zoo model or a SPEC: save one first with "
             "zoo build SPEC --weights {path} -o model.safetensors",
    "train": "use it as weights: zoo train SPEC DATA --weights {path} -o model.safetensors",
    "eval": "use it as weights: zoo eval SPEC DATA --weights {path}",
    "transforms": "give the spec it was made for instead: zoo.transforms(SPEC)",
    "export": "use it as weights: zoo export SPEC --weights {path} -o FILE.onnx",
    "choose": "use it as weights: zoo choose DATA BACKBONE --weights BACKBONE={path}",
}


def model_file(target: str | os.PathLike[str], command: str) -> Path | None:
    """The saved zoo model file that ``target`` names, or None when ``target`` is a spec or a preset.

    A name ending in a weights file's suffix is a file (a spec never ends so); it must exist and be a
    zoo model file, else the error says how this command can use it instead.

    Every command that takes a model asks this one function, so each gives the same answer; ``command``
    (build, predict, info, bench, train, eval, transforms, export) picks the advice for a file that exists but
    holds only weights.
    """
    text = os.fspath(target)
    path = Path(text).expanduser()
    if path.suffix.lower() not in WEIGHTS_SUFFIXES:  # saved models end in .safetensors; specs never do
        return None
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ZooError(f"model file {text} {what}; give a saved model (zoo build SPEC -o FILE{SUFFIX}) "
                       "or a spec such as resnet50+cls10")
    advice = _AS_WEIGHTS[command].format(path=text)
    if path.suffix.lower() != SUFFIX:
        raise ZooError(f"{text} is not a saved zoo model (those are {SUFFIX} files); {advice}")
    header = read_header(path)
    if zoo_metadata(header, path) is None:
        raise ZooError(f"{text} is a safetensors file without zoo metadata ({len(header.tensors)} tensors); {advice}")
    return path
