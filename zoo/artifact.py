"""Artifacts: one safetensors file holding a model's weights and all that is needed to rebuild it.

The metadata (canonical spec, freeze policy, heads, labels, preprocessing, the plugins and versions that
made it, where the weights came from) sits in the safetensors header under the key ``zoo`` as JSON, so
`read_metadata` needs neither torch nor the model. ``content_sha256`` covers the tensor bytes, so a
damaged file is refused rather than loaded. Saving is atomic and never replaces a file unless forced.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from zoo.errors import ZooError, ZooWarning

if TYPE_CHECKING:
    import torch

    from zoo.builder import Recipe
    from zoo.model import ZooModel
    from zoo.registry import Registry

FORMAT = "zoo.artifact/1"
METADATA_KEY = "zoo"
SUFFIX = ".safetensors"
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit
_REQUIRED = ("spec", "freeze", "frozen_stages", "plugins", "content_sha256")
RECORDED = ("preprocessing", "training", "metrics")  # optional: what training and zoo.transforms add

Labels = Union[Sequence[str], Mapping[str, Sequence[str]], str, "os.PathLike[str]"]


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
    except (UnicodeDecodeError, ValueError):
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
            raise ZooError(f"{path} is damaged: tensor {name!r} has no valid shape and offsets")
        end = max(end, offsets[1])
    data = size - 8 - length
    if end > data:
        raise ZooError(f"{path} is truncated: its tensors need {end:,} bytes after the header and it holds {data:,}")
    if end < data:
        raise ZooError(f"{path} is damaged: {data - end:,} bytes follow its last tensor")
    return Header(header, metadata, 8 + length, size)


def _metadata(header: Header, path: Path) -> dict[str, Any] | None:
    text = header.metadata.get(METADATA_KEY)
    if text is None:
        return None
    try:
        meta = json.loads(text)
    except ValueError:
        raise ZooError(f"{path} is damaged: its zoo metadata is not JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ZooError(f"{path}: unknown artifact format {found!r}; this zoo reads {FORMAT}")
    absent = [key for key in _REQUIRED if key not in meta]
    if absent or not isinstance(meta["spec"], str) or not isinstance(meta["plugins"], list):
        raise ZooError(f"{path} is damaged: its zoo metadata lacks {', '.join(absent) or 'a valid spec'}")
    return meta


def is_artifact(path: str | os.PathLike[str]) -> bool:
    return _metadata(read_header(path), Path(path)) is not None


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """An artifact's metadata, read from the header alone: no torch, no model."""
    path = Path(path)
    meta = _metadata(read_header(path), path)
    if meta is None:
        raise ZooError(f"{path} is a safetensors file without zoo metadata: load it with --weights {path}")
    return meta


def _digests(path: Path, data_start: int) -> tuple[str, str]:
    """sha256 of the whole file and of its tensor bytes, in one pass."""
    whole, data = hashlib.sha256(), hashlib.sha256()
    with open(path, "rb") as handle:
        head = handle.read(data_start)
        whole.update(head)
        for block in iter(lambda: handle.read(1 << 20), b""):
            whole.update(block)
            data.update(block)
    return whole.hexdigest(), data.hexdigest()


def read_tensors(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], str]:
    """The tensors of a safetensors file and the file's sha256; a zoo artifact's content hash is checked."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    header = read_header(path)
    meta = _metadata(header, path)
    file_sha, data_sha = _digests(path, header.data_start)
    if meta is not None and meta["content_sha256"] != data_sha:
        raise ZooError(f"{path} is damaged: its tensor bytes do not match the checksum saved with them")
    try:
        return load_file(path, device="cpu"), file_sha
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ZooError(f"{path} is damaged: {str(exc).splitlines()[0]}") from None


# --- saving ----------------------------------------------------------------------------------------------

def read_labels(path: str | os.PathLike[str]) -> list[str]:
    """Class labels from a text file, one a line; blank lines are skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ZooError(f"labels file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ZooError(f"cannot read labels file {path}: {exc}") from None
    labels = [line.strip() for line in lines if line.strip()]
    if not labels:
        raise ZooError(f"labels file {path} is empty; write one class label a line")
    return labels


def resolve_labels(labels: Labels | None, model: ZooModel, recipe: Recipe) -> dict[str, list[str]]:
    """Labels by head: a list labels the first classification head; a dict names heads; a path is a file."""
    if labels is None:
        return {key: list(values) for key, values in model.labels.items()}
    heads = {head.key: head.ref.size for head in recipe.classifier_heads}
    if isinstance(labels, (str, os.PathLike)):
        labels = read_labels(labels)
    if not isinstance(labels, Mapping):
        if not heads:
            raise ZooError(f"{model.spec} has no classification head to label")
        labels = {next(iter(heads)): labels}
    resolved = {}
    for key, values in labels.items():
        values = [str(v) for v in values]
        if key not in model.heads:
            raise ZooError(f"labels for head {key!r}, which {model.spec} lacks; heads: {', '.join(model.heads)}")
        size = heads.get(key)
        if size is not None and len(values) != size:
            raise ZooError(f"{len(values)} labels given for head {key}, which has {size} classes")
        resolved[key] = values
    return resolved


def check_output(path: str | os.PathLike[str], force: bool = False) -> Path:
    """Where an artifact may be written: a .safetensors name in an existing folder, not a file we would lose."""
    path = Path(path)
    if path.suffix.lower() != SUFFIX:
        raise ZooError(f"output {path} must end in {SUFFIX}")
    if path.is_dir():
        raise ZooError(f"output {path} is a folder; name a file such as {path / ('model' + SUFFIX)}")
    if not path.parent.is_dir():
        raise ZooError(f"cannot write {path}: the folder {path.parent} does not exist")
    if path.exists() and not force:
        raise ZooError(f"{path} exists; use --force (force=True) to replace it")
    return path


def _distribution_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return ""


def _plugins(model: ZooModel, recipe: Recipe, registry: Registry) -> list[dict[str, str]]:
    parts = [("backbone", recipe.backbone.qualified_name)]
    parts += [("head", head.part.qualified_name) for head in recipe.heads]
    parts.append(("freeze", model.freeze_policy.partition(":")[0]))
    records = []
    for kind, name in parts:
        entry = registry.entry(kind, name)
        record = {"kind": kind, "part": entry.part.qualified_name, "plugin": entry.plugin.name,
                  "distribution": entry.plugin.distribution, "version": entry.plugin.version}
        if record not in records:
            records.append(record)
    return records


def metadata_for(model: ZooModel, registry: Registry, labels: Labels | None = None) -> dict[str, Any]:
    """Everything `load` needs to rebuild ``model``, and what `zoo info` shows about it."""
    import torch

    from zoo import __version__
    from zoo.builder import resolve

    recipe = resolve(model.spec, model.freeze_policy, registry)
    report = model.weights_report
    params = list(model.parameters())
    return {
        "format": FORMAT,
        "spec": model.spec,
        "freeze": model.freeze_policy,
        "frozen_stages": list(model.frozen_stages),
        "heads": [{"name": h.key, "part": h.part.qualified_name, "size": h.ref.size, "options": h.options}
                  for h in recipe.heads],
        "labels": resolve_labels(labels, model, recipe),
        "input_size": list(model.backbone.input_size),
        "mean": list(model.backbone.mean),
        "std": list(model.backbone.std),
        "parameters": sum(p.numel() for p in params),
        "trainable_parameters": sum(p.numel() for p in params if p.requires_grad),
        "zoo_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        "plugins": _plugins(model, recipe, registry),
        "weights": {"source": report.source, "sha256": report.sha256} if report is not None else None,
        **{key: value for key, value in getattr(model, "record", {}).items() if key in RECORDED},
        "content_sha256": "",
    }


def _tensors(model: ZooModel) -> dict[str, torch.Tensor]:
    """The state dict as safetensors wants it: contiguous CPU tensors, none sharing memory with another."""
    tensors, seen = {}, set()
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu").contiguous()
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        tensors[name] = tensor.clone() if key in seen else tensor
        seen.add(key)
    return tensors


def _serialise(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> bytes:
    from safetensors.torch import save

    return save(tensors, metadata={"format": "pt", METADATA_KEY: json.dumps(meta, sort_keys=True)})


def _data_sha256(blob: bytes) -> str:
    return hashlib.sha256(memoryview(blob)[8 + int.from_bytes(blob[:8], "little"):]).hexdigest()


def save(
    model: ZooModel,
    path: str | os.PathLike[str],
    *,
    labels: Labels | None = None,
    force: bool = False,
    registry: Registry | None = None,
) -> Path:
    """Write ``model`` with its metadata to one .safetensors file, atomically; the path written is returned.

    >>> zoo.save(model, "ants-bees.safetensors", labels=["ant", "bee"])  # doctest: +SKIP
    """
    from zoo.files import atomic_write_bytes
    from zoo.registry import default_registry

    path = check_output(path, force)
    meta = metadata_for(model, registry or default_registry(), labels)
    tensors = _tensors(model)
    meta["content_sha256"] = _data_sha256(_serialise(tensors, meta))
    blob = _serialise(tensors, meta)
    if _data_sha256(blob) != meta["content_sha256"]:  # the tensor bytes must not depend on the metadata
        raise RuntimeError("safetensors laid the same tensors out differently twice; cannot checksum the file")
    try:
        atomic_write_bytes(path, blob)
    except OSError as exc:
        raise ZooError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


# --- loading ---------------------------------------------------------------------------------------------

def _missing_plugin(path: Path, record: dict[str, str], registry: Registry, problem: str) -> ZooError:
    from zoo.registry import KIND_LABEL

    dist, made_with = record.get("distribution", "?"), record.get("version", "")
    installed = _distribution_version(dist)
    plugin = next((r for r in registry.plugins if r.name == record.get("plugin")), None)
    if not installed and (plugin is None or plugin.distribution != dist):
        why = f"the distribution {dist} is not installed: pip install {dist}" + (f"=={made_with}" if made_with else "")
    elif plugin is not None and plugin.status == "disabled":
        why = f"its plugin {plugin.name} is disabled (ZOO_DISABLE_PLUGINS)"
    elif plugin is not None and plugin.status == "error":
        why = f"its plugin {plugin.name} failed to load: {plugin.error}"
    else:
        why = f"{dist} {installed} is installed but does not provide it ({problem})"
    label = KIND_LABEL.get(record.get("kind", ""), "part")
    return ZooError(f"{path} needs {label} {record.get('part')} from plugin {record.get('plugin')} "
                    f"({dist} {made_with}".rstrip() + f"); {why}")


def _check_plugins(path: Path, meta: dict[str, Any], registry: Registry) -> None:
    for record in meta["plugins"]:
        if not isinstance(record, dict) or record.get("kind") not in ("backbone", "head", "freeze"):
            raise ZooError(f"{path} is damaged: its plugin list is not valid")
        try:
            registry.entry(record["kind"], str(record.get("part")))
        except ZooError as exc:
            raise _missing_plugin(path, record, registry, str(exc)) from None


def _check_fit(path: Path, model: ZooModel, tensors: Mapping[str, torch.Tensor]) -> None:
    own = model.state_dict()
    problems = [f"{k} is {tuple(tensors[k].shape)} in the file and {tuple(own[k].shape)} in the model"
                for k in own if k in tensors and tuple(tensors[k].shape) != tuple(own[k].shape)]
    missing = [k for k in own if k not in tensors]
    unexpected = [k for k in tensors if k not in own]
    if missing:
        problems.append(f"{len(missing)} tensor(s) missing from the file: {', '.join(missing[:3])}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s): {', '.join(unexpected[:3])}")
    if problems:
        raise ZooError(f"{path} does not fit {model.spec}: {'; '.join(problems[:3])}")


def load(
    path: str | os.PathLike[str],
    *,
    registry: Registry | None = None,
    device: str | torch.device | None = None,
) -> ZooModel:
    """Rebuild the model an artifact describes, freeze policy and labels included, and load it strictly.

    >>> model = zoo.load("ants-bees.safetensors")  # doctest: +SKIP
    """
    from zoo.builder import build_recipe, resolve
    from zoo.registry import default_registry
    from zoo.weights import WeightsReport

    path = Path(path)
    meta = read_metadata(path)
    registry = registry or default_registry()
    _check_plugins(path, meta, registry)
    try:
        recipe = resolve(meta["spec"], meta["freeze"], registry)
        model = build_recipe(recipe, registry)
    except ZooError as exc:
        raise ZooError(f"{path}: {exc}") from None
    tensors, file_sha = read_tensors(path)
    _check_fit(path, model, tensors)
    model.load_state_dict(tensors, strict=True)
    frozen = [str(s) for s in meta["frozen_stages"]]
    if list(model.frozen_stages) != frozen:
        warnings.warn(f"{path}: freeze policy {meta['freeze']} now freezes {list(model.frozen_stages)}; "
                      f"keeping the file's frozen stages {frozen}", ZooWarning, stacklevel=2)
        model.set_frozen(frozen, meta["freeze"])
    model.labels = {str(k): [str(v) for v in values] for k, values in (meta.get("labels") or {}).items()}
    size = meta.get("input_size")
    if isinstance(size, list) and len(size) == 3 and tuple(size[1:]) != model.image_size:
        model.set_image_size(tuple(int(v) for v in size[1:]))
    model.record = {key: meta[key] for key in RECORDED if isinstance(meta.get(key), dict)}
    model.weights_report = WeightsReport(str(path), str(path), file_sha, "zoo", len(tensors))
    return model if device is None else model.to(device)


# --- showing ---------------------------------------------------------------------------------------------

def describe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What `zoo info FILE.safetensors` prints: the metadata and the file's size, without building."""
    path = Path(path)
    header = read_header(path)
    meta = _metadata(header, path)
    if meta is None:
        raise ZooError(f"{path} is a safetensors file without zoo metadata ({len(header.tensors)} tensors); "
                       f"use it with zoo build SPEC --weights {path}")
    return {"kind": "artifact", "file": str(path), "bytes": header.size, "tensors": len(header.tensors), **meta}


def format_metadata(data: dict[str, Any]) -> str:
    from zoo.summary import format_table

    heads = []
    for head in data.get("heads", []):
        options = ", ".join(f"{k}={v}" for k, v in sorted(head.get("options", {}).items()) if v is not None)
        heads.append(f"{head['name']} ({head['part']}" + (f"; {options}" if options else "") + ")")
    frozen = ", ".join(data["frozen_stages"]) or "nothing"
    weights = data.get("weights")
    lines = [
        f"{data['file']}  (zoo artifact, {data['bytes'] / 1e6:.1f} MB, {data['tensors']} tensors)",
        f"spec:         {data['spec']}",
        f"freeze:       {data['freeze']} (frozen: {frozen})",
        f"heads:        {'; '.join(heads)}",
        f"parameters:   {data.get('parameters', 0):,} ({data.get('trainable_parameters', 0):,} trainable)",
        f"input size:   {'x'.join(map(str, data.get('input_size', [])))}",
        f"mean:         {', '.join(f'{v:.4f}' for v in data.get('mean', []))}",
        f"std:          {', '.join(f'{v:.4f}' for v in data.get('std', []))}",
        "weights:      " + (f"{weights['source']} (sha256 {weights['sha256'][:16]}...)" if weights and weights.get("sha256")
                            else weights["source"] if weights else "fresh initialisation"),
    ]
    training = data.get("training")
    if isinstance(training, dict):
        lines.append(f"trained:      epoch {training.get('epoch')} of {training.get('epochs_run')} on {training.get('data')} "
                     f"({training.get('optimizer')}, lr {training.get('lr')}, batch {training.get('batch_size')})")
    if isinstance(data.get("metrics"), dict):
        lines.append("metrics:      " + ", ".join(f"{k} {v:.4g}" for k, v in data["metrics"].items()
                                                  if isinstance(v, (int, float))))
    for head, labels in (data.get("labels") or {}).items():
        shown = ", ".join(labels[:8]) + (f", ... ({len(labels)} in all)" if len(labels) > 8 else "")
        lines.append(f"labels {head}: {shown}")
    lines.append(f"made with:    zoo {data.get('zoo_version', '?')}, torch {data.get('torch_version', '?')}")
    rows = [[p["kind"], p["part"], p["plugin"], p["distribution"], p["version"]] for p in data["plugins"]]
    lines.append(format_table(["part", "name", "plugin", "distribution", "version"], rows))
    return "\n".join(lines)
