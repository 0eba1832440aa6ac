"""Saving and loading a model: one safetensors file holding its weights and all that is needed to rebuild it.

What the file holds and how it is read without a model is `zoo._modelfile.read`'s business; this module
writes it from a model (atomically, never replacing a file unless forced) and rebuilds a model from it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from zoo._core.build import build_recipe
from zoo._core.labels import check_names
from zoo._core.recipe import Recipe, resolve
from zoo._core.weights import WeightsReport
from zoo._modelfile.read import FORMAT, METADATA_KEY, RECORDED, SUFFIX, read_header, read_tensors, required_metadata
from zoo._registry.registry import default_registry
from zoo._untrusted import clean_labels, one_line
from zoo._version import __version__
from zoo.errors import ZooError, ZooWarning
from zoo.files import atomic_write_bytes, check_new_file
from zoo.parts import KIND_LABELS, resolve_options

if TYPE_CHECKING:
    import torch

    from zoo._core.model import ZooModel
    from zoo._registry.registry import Registry

Labels = Union[Sequence[str], Mapping[str, Sequence[str]], str, "os.PathLike[str]"]

# --- saving ----------------------------------------------------------------------------------------------

def read_labels(path: str | os.PathLike[str]) -> list[str]:
    """Class labels from a text file, one a line; blank lines are skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ZooError(f"labels file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ZooError(f"cannot read labels file {path}: {exc}") from None
    labels = [one_line(line.strip()) for line in lines if line.strip()]
    if not labels:
        raise ZooError(f"labels file {path} is empty; write one class label a line")
    return labels


def resolve_labels(labels: Labels | None, model: ZooModel, recipe: Recipe) -> dict[str, list[str]]:
    """Labels by head: a list names the first head that takes names; a dict names heads; a path is a file."""
    if labels is None:
        return {key: list(values) for key, values in model.labels.items()}
    if isinstance(labels, (str, os.PathLike)):
        labels = read_labels(labels)
    pairs = labels.items() if isinstance(labels, Mapping) else [(None, labels)]
    return dict(check_names(recipe.heads, key, values, model.spec) for key, values in pairs)


def check_output(path: str | os.PathLike[str], force: bool = False) -> Path:
    """Where an artifact may be written: a .safetensors name in an existing folder, not a file we would lose."""
    path = Path(path)
    if path.suffix.lower() != SUFFIX:
        raise ZooError(f"output {path} must end in {SUFFIX}")
    return check_new_file(path, force, SUFFIX)


def _distribution_version(name: str) -> str:
    try:
        return version(name)
    except (PackageNotFoundError, ValueError):
        return ""


def _plugins(model: ZooModel, recipe: Recipe, registry: Registry) -> list[dict[str, str]]:
    parts = [("backbone", recipe.backbone.qualified_name)]
    parts += [("head", head.part.qualified_name) for head in recipe.heads]
    parts.append(("freeze", model.freeze_policy.partition(":")[0]))
    records = []
    for kind, name in parts:
        entry = registry.entry(kind, name)
        record = {"kind": kind, "part": entry.part.qualified_name, "plugin": entry.plugin.name,
                  "distribution": entry.plugin.distribution, "version": entry.plugin.version,
                  "contract": entry.plugin.contract}  # the zoo.contract version the plugin targets
        if record not in records:
            records.append(record)
    return records


def metadata_for(model: ZooModel, registry: Registry, labels: Labels | None = None) -> dict[str, Any]:
    """Everything `load` needs to rebuild ``model``, and what `zoo info` shows about it."""
    import torch

    recipe = model.recipe or resolve(model.spec, model.freeze_policy, registry)
    report = model.weights_report
    params = list(model.parameters())
    return {
        "format": FORMAT,
        "spec": model.spec,
        "freeze": model.freeze_policy,
        "frozen_stages": list(model.frozen_stages),
        "backbone_options": recipe.backbone_options,  # defaults included: a plugin may change its defaults
        "frozen_parameters": model.frozen_parameters(),
        "frozen_by_hand": tuple(model.frozen_parameters()) != model.policy_frozen,
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
    path = check_output(path, force)
    meta = metadata_for(model, registry or model.registry or default_registry(), labels)
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
    dist, made_with = record.get("distribution", "?"), record.get("version", "")
    installed = _distribution_version(dist)
    plugin = next((r for r in registry.plugins if r.name == record.get("plugin")), None)
    if not dist:
        why = "the file does not say which distribution provides it"
    elif not installed and (plugin is None or plugin.distribution != dist):
        why = f"the distribution {dist} is not installed: pip install {dist}" + (f"=={made_with}" if made_with else "")
    elif plugin is not None and plugin.status == "disabled":
        why = f"its plugin {plugin.name} is disabled (ZOO_DISABLE_PLUGINS)"
    elif plugin is not None and plugin.status == "error":
        why = f"its plugin {plugin.name} failed to load: {plugin.error}"
    else:
        why = f"{dist} {installed} is installed but does not provide it ({problem})"
    label = KIND_LABELS.get(record.get("kind", ""), "part")
    return ZooError(f"{path} needs {label} {record.get('part')} from plugin {record.get('plugin')} "
                    f"({dist} {made_with}".rstrip() + f"); {why}")


def _check_plugins(path: Path, meta: dict[str, Any], registry: Registry) -> None:
    for record in meta["plugins"]:
        if not isinstance(record, dict) or record.get("kind") not in KIND_LABELS:
            raise ZooError(f"{path} is damaged: its plugin list is not valid")
        try:
            registry.entry(record["kind"], str(record.get("part")))
        except ZooError as exc:
            raise _missing_plugin(path, record, registry, str(exc)) from None


def _with_recorded_options(recipe: Recipe, meta: dict[str, Any]) -> Recipe:
    """The recipe with the backbone options the file recorded, defaults included (older files record none)."""
    recorded = meta.get("backbone_options")
    if not isinstance(recorded, dict):
        return recipe
    given = {str(k): v for k, v in recorded.items() if v is not None}
    options = resolve_options(recipe.backbone.options, given, recipe.backbone.qualified_name)
    return dataclasses.replace(recipe, backbone_options=options)


def _version_changes(meta: dict[str, Any], registry: Registry) -> str:
    """``; made with zoo-example 1.1.0, installed 1.2.0`` for each plugin whose version changed since saving."""
    changes = []
    for record in meta.get("plugins") or []:
        plugin = next((r for r in registry.plugins if r.name == record.get("plugin")), None) \
            if isinstance(record, dict) else None
        if plugin is not None and record.get("version") and plugin.version != record["version"]:
            change = f"{record.get('distribution')} {record['version']}, installed {plugin.version}"
            if change not in changes:
                changes.append(change)
    return f" (made with {'; '.join(changes)})" if changes else ""


def _check_fit(path: Path, model: ZooModel, tensors: Mapping[str, torch.Tensor]) -> None:
    own = model.state_dict()
    problems = [f"{k} is {tuple(tensors[k].shape)} in the file and {tuple(own[k].shape)} in the model"
                for k in own if k in tensors and tuple(tensors[k].shape) != tuple(own[k].shape)]
    missing = [k for k in own if k not in tensors]
    unexpected = [k for k in tensors if k not in own]
    if missing:
        problems.append(f"{len(missing)} tensor(s) missing from the file: {', '.join(missing[:3])}")
    if unexpected:
        shown = ", ".join(one_line(name, 80) for name in unexpected[:3])
        problems.append(f"{len(unexpected)} unexpected tensor(s): {shown}")
    if problems:
        raise ZooError(f"{path} does not fit {model.spec}: {'; '.join(problems[:3])}")


def _restore_frozen_parameters(path: Path, model: ZooModel, meta: dict[str, Any]) -> None:
    """Freeze exactly the parameters the file records (files from before zoo recorded them keep the stages)."""
    recorded = meta.get("frozen_parameters")
    if recorded is None or list(model.frozen_parameters()) == [str(name) for name in recorded]:
        return
    if not meta.get("frozen_by_hand"):
        warnings.warn(f"{path}: freeze policy {meta['freeze']} now freezes other parameters; "
                      f"keeping the file's {len(recorded)} frozen parameters", ZooWarning, stacklevel=3)
    try:
        model.set_frozen_parameters(str(name) for name in recorded)
    except ZooError as exc:
        raise ZooError(f"{path}: {exc}") from None


def load(
    path: str | os.PathLike[str],
    *,
    registry: Registry | None = None,
    device: str | torch.device | None = None,
) -> ZooModel:
    """Rebuild the model an artifact describes, freeze policy and labels included, and load it strictly.

    >>> model = zoo.load("ants-bees.safetensors")  # doctest: +SKIP
    """
    path = Path(path)
    header = read_header(path)
    meta = required_metadata(header, path)
    registry = registry or default_registry()
    _check_plugins(path, meta, registry)
    try:
        recipe = _with_recorded_options(resolve(meta["spec"], meta["freeze"], registry), meta)
        model = build_recipe(recipe, registry)
    except ZooError as exc:
        raise ZooError(f"{path}: {exc}{_version_changes(meta, registry)}") from None
    tensors, file_sha = read_tensors(path, header)
    try:
        _check_fit(path, model, tensors)
    except ZooError as exc:
        raise ZooError(f"{exc}{_version_changes(meta, registry)}") from None
    model.load_state_dict(tensors, strict=True)
    frozen = [str(s) for s in meta["frozen_stages"]]
    if list(model.frozen_stages) != frozen:
        warnings.warn(f"{path}: freeze policy {meta['freeze']} now freezes {list(model.frozen_stages)}; "
                      f"keeping the file's frozen stages {frozen}", ZooWarning, stacklevel=2)
        model.set_frozen(frozen, meta["freeze"])
    _restore_frozen_parameters(path, model, meta)
    model.labels = clean_labels(meta.get("labels") or {})
    size = meta.get("input_size")
    if isinstance(size, list) and len(size) == 3 and tuple(size[1:]) != model.image_size:
        model.set_image_size(tuple(int(v) for v in size[1:]))
    for key in ("mean", "std"):  # the file's preprocessing (its weights' own, maybe) is the truth
        if isinstance(meta.get(key), list) and meta[key]:
            setattr(model.backbone, key, tuple(float(v) for v in meta[key]))
    model.record = {key: meta[key] for key in RECORDED if isinstance(meta.get(key), dict)}
    model.weights_report = WeightsReport(str(path), str(path), file_sha, "zoo", len(tensors))
    return model if device is None else model.to(device)
