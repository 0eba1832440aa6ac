"""Weights for a model: where they come from, checking them, and fitting them onto a `ZooModel`.

A source is ``imagenet``/``default`` or a tag (through the backbone plugin's ``pretrained``), a name
pinned in registry.toml (``[weights.NAME]`` with a path or URL and a sha256), or a file: a zoo artifact,
a bare backbone state dict, or a whole torchvision/timm model's state dict. Nothing is unpickled beyond
tensors (``weights_only=True``), and nothing is downloaded when ``ZOO_OFFLINE=1``.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import urlparse

from zoo._modelfile.read import WEIGHTS_SUFFIXES, Header, digests, read_header, read_tensors, zoo_metadata
from zoo._untrusted import clean_labels
from zoo.errors import ZooError, ZooWarning
from zoo.files import cache_dir, download
from zoo.parts import WeightsFile

if TYPE_CHECKING:
    import torch

    from zoo._core.model import ZooModel
    from zoo._core.recipe import Recipe
    from zoo._registry.registry import Registry

Weights = Union[str, "os.PathLike[str]", Mapping[str, "torch.Tensor"]]

PRETRAINED = ("imagenet", "default")
SUFFIXES = WEIGHTS_SUFFIXES
# Where a training checkpoint keeps its tensors: EMA weights first when present, as timm reads them.
_CHECKPOINT_KEYS = ("state_dict_ema", "model_ema", "state_dict", "model", "model_state_dict")
# Prefixes of wrapped models, removed as timm removes them: torch.compile around DDP, DDP, torch.compile.
_WRAPPERS = ("_orig_mod.", "module.", "_orig_mod.")
_SHOWN = 5  # names listed in a message before "and N more"


@dataclass
class WeightsReport:
    """What a load did, tensor by tensor: kept on the model as ``model.weights_report``."""

    source: str
    path: str = ""
    sha256: str = ""
    layout: str = ""  # zoo (an artifact's own keys) | backbone (a bare backbone) | reference (a whole model)
    loaded: int = 0
    backbone_loaded: int = 0  # of ``loaded``, the backbone's tensors
    missing: list[str] = field(default_factory=list)  # backbone tensors the file lacked
    unexpected: list[str] = field(default_factory=list)  # file tensors the model has no place for
    dropped: list[str] = field(default_factory=list)  # file tensors whose head differs in shape
    fresh_heads: list[str] = field(default_factory=list)  # heads that got nothing and start from scratch

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def offline() -> str:
    """The variable forbidding downloads, ``ZOO_OFFLINE`` (or Hugging Face's ``HF_HUB_OFFLINE``), or ''."""
    for variable in ("ZOO_OFFLINE", "HF_HUB_OFFLINE"):
        if os.environ.get(variable, "").strip().lower() in ("1", "true", "yes"):
            return variable
    return ""


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _names(keys: list[str]) -> str:
    more = f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
    return ", ".join(keys[:_SHOWN]) + more


# --- where the file is -----------------------------------------------------------------------------

def pinned_file(name: str, pin: Any) -> WeightsFile:
    """A `WeightsFile` for a ``[weights.NAME]`` entry of registry.toml."""
    if pin.path:
        path = Path(pin.path)
    else:
        path = cache_dir() / "weights" / os.path.basename(urlparse(pin.url).path)
    where = f"put the file with sha256 {pin.sha256} at {path}" + (f" (from {pin.url})" if pin.url else "")
    return WeightsFile(f"registry:{name}", str(path), pin.sha256, pin.url, expected=where)


def _is_path(text: str) -> bool:
    """A file, not a name: it exists, ends like a weights file, or is written as a path (``./w``, ``~/w``, ``/w``)."""
    return (text.lower().endswith(SUFFIXES) or os.path.exists(text)
            or text.startswith(("/", "./", "../", "~", f".{os.sep}")))


def _other_backbone(text: str, backbone: str, registry: Registry) -> str | None:
    """The backbone a ``namespace/name.tag`` weights name belongs to, when that is not ``backbone``."""
    name = text.split(":", 1)[-1]
    if "/" not in name or "." not in name:
        return None
    owner = name.rsplit(".", 1)[0]
    try:
        qualified = registry.backbone(owner).qualified_name
    except ZooError:
        return None
    return qualified if qualified != backbone else None


def resolve_source(weights: str | os.PathLike[str], recipe: Recipe, registry: Registry) -> WeightsFile:
    """The file a ``--weights`` value names, not yet checked or fetched.

    Besides files and registry.toml names, a pretrained tag takes the spellings users copy: ``a1_in1k``,
    ``timm/resnet50.a1_in1k``, ``hf-hub:timm/resnet50.a1_in1k``, ``IMAGENET1K_V2``,
    ``ResNet50_Weights.IMAGENET1K_V2`` and ``torchvision/ResNet50_Weights.IMAGENET1K_V2`` (what zoo records
    as the source in saved files); the backbone's plugin reads the tag.
    """
    text = os.fspath(weights)
    backbone = recipe.backbone
    if text.startswith(f"{backbone.qualified_name}."):  # timm/resnet50.a1_in1k for timm/resnet50
        text = text[len(backbone.qualified_name) + 1:]
    elif text.startswith(("http://", "https://")):
        raise ZooError(f"weights from a URL must be pinned with their sha256: add [weights.NAME] with url = "
                       f"{text!r} and sha256 to registry.toml, then pass --weights NAME")
    elif _is_path(text):
        path = Path(text).expanduser()
        if not path.is_file():
            raise ZooError(f"weights file {text} does not exist" if not path.exists() else f"weights {text} is not a file")
        return WeightsFile(str(path.resolve()), str(path))
    elif text.startswith(f"{backbone.namespace}/"):  # torchvision/ResNet50_Weights.IMAGENET1K_V2
        text = text[len(backbone.namespace) + 1:]
    owner = _other_backbone(text, backbone.qualified_name, registry)
    if owner is not None:
        heads = "".join(f"+{head}" for head in recipe.spec.heads)
        raise ZooError(f"weights {text} belong to backbone {owner}, not {backbone.qualified_name}: build {owner}{heads}")
    pins = registry.catalogue.weights
    if text in pins:
        return pinned_file(text, pins[text])
    if backbone.pretrained is None:
        if text.lower() in PRETRAINED:
            raise ZooError(f"backbone {backbone.qualified_name} has no pretrained weights in its plugin; "
                           "pass --weights FILE (.safetensors, .pth or .pt)")
        raise ZooError(f"weights {text!r} are not a file (.safetensors, .pth, .pt) or a name in registry.toml [weights]")
    tag = "default" if text.lower() in PRETRAINED else text
    try:
        found = backbone.pretrained(tag)
    except ZooError as exc:
        if tag == "default":
            raise
        raise ZooError(f"{exc}; --weights also takes a file (.safetensors, .pth, .pt) or a name in "
                       "registry.toml [weights]") from None
    if not isinstance(found, WeightsFile):
        raise ZooError(f"backbone {backbone.qualified_name}: its plugin's pretrained() returned "
                       f"{type(found).__name__}, not a zoo.parts.WeightsFile")
    return found


@dataclass(frozen=True)
class LocalFile:
    """A weights file on this machine, hashed once; a safetensors file's header is read once with it."""

    path: Path
    sha256: str
    header: Header | None = None  # a safetensors file's header
    data_sha256: str = ""  # the sha256 of its tensor bytes, from the same pass as the file's


def _safetensors_header(path: Path) -> Header | None:
    """A .safetensors file's header, or None (then reading the tensors says what is wrong, after the checksum)."""
    if path.suffix.lower() != ".safetensors":
        return None
    try:
        return read_header(path)
    except ZooError:
        return None


def locate(found: WeightsFile) -> LocalFile:
    """The local file and its sha256, fetched when missing and allowed; checked against the expected hash."""
    path = Path(found.path) if found.path else None
    if path is None or not path.is_file():
        if path is not None and path.exists():
            raise ZooError(f"weights {found.source}: {path} is not a file")
        where = f"; {found.expected}" if found.expected else ""
        if found.fetch is None and (path is None or not found.url):
            raise ZooError(f"weights {found.source}: no file {path or ''}{where}")
        if offline():
            raise ZooError(f"weights {found.source} are not on this machine and {offline()} is set{where}")
        try:
            if found.fetch is not None:
                path = Path(found.fetch())
            else:
                download(found.url, path, found.sha256)
        except ZooError as exc:
            raise ZooError(f"weights {found.source}: {exc}") from None
        except Exception as exc:  # no network, HTTP errors, a full disk: all mean "put it there yourself"
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise ZooError(f"weights {found.source} are not on this machine and could not be fetched ({reason}){where}") from None
    header = _safetensors_header(path)
    try:
        digest, data_digest = digests(path, header.data_start) if header else (sha256_file(path), "")
    except OSError as exc:
        raise ZooError(f"weights {found.source}: cannot read {path}: {exc.strerror or exc}") from None
    if found.sha256 and not digest.startswith(found.sha256):
        raise ZooError(f"weights {found.source}: checksum mismatch for {path}: sha256 is {digest[:16]}..., "
                       f"expected {found.sha256}...; the file is damaged or not these weights: replace it")
    return LocalFile(path, digest, header, data_digest)


# --- reading the file --------------------------------------------------------------------------------

def clean_key(key: str) -> str:
    """A key without the prefixes DataParallel and torch.compile add (``module.``, ``_orig_mod.``)."""
    for prefix in _WRAPPERS:
        key = key.removeprefix(prefix)
    return key.replace("._orig_mod.", ".")  # a compiled submodule


def _unwrap(obj: Any, source: str) -> dict[str, Any]:
    """A checkpoint's tensors: the EMA or model weights of a training checkpoint, wrapper prefixes removed."""
    import torch

    if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in _CHECKPOINT_KEYS:
            if isinstance(obj.get(key), Mapping) and obj[key]:
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise ZooError(f"weights {source}: not a state dict (found {type(obj).__name__}); save model.state_dict()")
    tensors = {clean_key(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ZooError(f"weights {source}: holds no tensors")
    return tensors


def read_state_dict(path: Path, source: str, local: LocalFile | None = None) -> dict[str, torch.Tensor]:
    """Tensors from .safetensors, or from .pth/.pt/.bin/.ckpt with ``weights_only=True`` (no code runs).

    ``local``: the file as `locate` found it, so its header is not read, nor the file hashed, again.
    """
    import pickle

    import torch

    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ZooError(f"weights {source}: unknown file type {suffix or '(none)'}; use {', '.join(SUFFIXES)}")
    if suffix == ".safetensors":
        if local is not None and local.header is not None:
            tensors = read_tensors(path, local.header, (local.sha256, local.data_sha256))[0]
        else:
            tensors = read_tensors(path)[0]
        return {clean_key(key): tensor for key, tensor in tensors.items()}
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ZooError(f"weights {source}: refused: the file holds more than tensors and loading it could run "
                       f"code ({first}); only load pickles you trust, and convert them to .safetensors") from None
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
        raise ZooError(f"weights {source}: not a readable PyTorch checkpoint ({reason})") from None
    return _unwrap(obj, source)


# --- fitting the tensors onto the model ----------------------------------------------------------------

def _classifier_target(recipe: Recipe) -> tuple[str, int | None] | None:
    """The first head that takes a reference model's classifier: its key prefix and its size."""
    if not recipe.classifier_heads:
        return None
    head = recipe.classifier_heads[0]
    return f"heads.{head.key}.{head.part.classifier}", head.ref.size


def _layouts(model: ZooModel, recipe: Recipe) -> dict[str, Any]:
    """Ways to read a file's keys: as a zoo model's, a bare backbone's, or the original whole model's."""
    backbone = model.backbone
    prefix = backbone.reference_prefix
    classifiers = backbone.reference_classifier
    classifiers = (classifiers,) if isinstance(classifiers, str) else tuple(classifiers or ())
    target = _classifier_target(recipe)

    def reference(key: str) -> str | None:
        for index, name in enumerate(c for c in classifiers if c):
            if key == name or key.startswith(name + "."):
                if index or target is None:
                    return None
                return target[0] + key[len(name):]
        return f"backbone.{prefix}{key}"

    layouts = {"zoo": lambda key: key, "reference": reference, "backbone": lambda key: f"backbone.{key}"}
    from zoo._core.reference import reference_key_map

    task = reference_key_map(model)  # a whole task model's checkpoint: torchvision's fasterrcnn_resnet50_fpn
    if task is not None:
        layouts["task"] = task
    return layouts


def best_layout(model: ZooModel, recipe: Recipe, tensors: Mapping[str, Any], own: Mapping[str, Any] | None = None) -> str:
    """The way of reading the file's keys that places the most of them in the model."""
    own = model.state_dict() if own is None else own
    layouts = _layouts(model, recipe)
    return max(layouts, key=lambda name: sum(layouts[name](k) in own for k in tensors))


def fit_state_dict(
    model: ZooModel, tensors: Mapping[str, torch.Tensor], recipe: Recipe, source: str, layout: str | None = None
) -> tuple[dict[str, torch.Tensor], WeightsReport]:
    """Map the file's keys onto the model's; a head whose shapes differ is left fresh, with a `ZooWarning`.

    A backbone tensor of the wrong shape is an error naming the first mismatches with both shapes.
    """
    own = model.state_dict()
    layouts = _layouts(model, recipe)
    layout = layout or best_layout(model, recipe, tensors, own)
    mapping = layouts[layout]
    report = WeightsReport(source, layout=layout)
    fitted: dict[str, torch.Tensor] = {}
    mismatched: list[str] = []
    dropped: dict[str, list[str]] = {}  # head -> what did not fit it
    for key, tensor in tensors.items():
        target = mapping(key)
        if target is None or target not in own:
            report.unexpected.append(key)
        elif tuple(own[target].shape) != tuple(tensor.shape):
            shapes = f"{key} is {tuple(tensor.shape)} in the file and {target} {tuple(own[target].shape)} in the model"
            if target.startswith("heads."):
                report.dropped.append(key)
                dropped.setdefault(target.split(".")[1], []).append(shapes)
            else:
                mismatched.append(shapes)
        else:
            fitted[target] = tensor
    if mismatched:
        raise ZooError(f"weights {source} do not fit {model.spec}: {len(mismatched)} tensor(s) differ in shape: "
                       f"{'; '.join(mismatched[:3])}")
    for head, shapes in dropped.items():
        warnings.warn(f"weights {source}: dropped {len(shapes)} tensor(s) that do not fit head {head} ({shapes[0]}); "
                      "that part of the head starts fresh", ZooWarning, stacklevel=3)
    if not fitted:
        raise ZooError(f"weights {source} fit none of {model.spec}'s tensors: the file's keys start "
                       f"{_names(sorted(tensors)[:3])}; the model's {_names(sorted(own)[:3])}")
    report.loaded = len(fitted)
    report.backbone_loaded = sum(k.startswith("backbone.") for k in fitted)
    report.missing = [k[len("backbone."):] for k in own if k.startswith("backbone.") and k not in fitted
                      and not k.endswith("num_batches_tracked")]
    report.fresh_heads = [name for name in model.heads if not any(k.startswith(f"heads.{name}.") for k in fitted)]
    return fitted, report


def _warn(report: WeightsReport) -> None:
    if report.missing:
        warnings.warn(f"weights {report.source}: {len(report.missing)} backbone tensor(s) missing from the file "
                      f"keep their initial values: {_names(report.missing)}", ZooWarning, stacklevel=3)
    if report.unexpected:
        warnings.warn(f"weights {report.source}: {len(report.unexpected)} tensor(s) in the file have no place in "
                      f"the model and were ignored: {_names(report.unexpected)}", ZooWarning, stacklevel=3)


def _labelled_head(recipe: Recipe, fitted: Mapping[str, Any], labels: tuple[str, ...]) -> str | None:
    """The head that takes the weights' class names: the first classifier head when it took the file's
    classifier, else a head without one (detection) that took the file's tensors; its size must be their number."""
    target = _classifier_target(recipe)
    candidates = [target] if target else [(f"heads.{head.key}", head.ref.size) for head in recipe.heads]
    for prefix, size in candidates:
        if labels and size == len(labels) and any(k.startswith(prefix + ".") for k in fitted):
            return prefix.split(".")[1]
    return None


def _through_plugin(model: ZooModel, recipe: Recipe, tensors: dict[str, torch.Tensor], whole: bool) -> dict[str, torch.Tensor]:
    """A whole original model's checkpoint (a plugin's tag, or a file whose keys read best as one) through the
    backbone library's own loading, so its conversions apply; other files as they are."""
    layout = best_layout(model, recipe, tensors)
    if layout == "reference" or (whole and layout != "task"):
        return model.backbone.reference_state_dict(tensors)
    return tensors


def load_weights(model: ZooModel, weights: Weights, recipe: Recipe, registry: Registry) -> WeightsReport:
    """Load ``weights`` into ``model`` (built from ``recipe``); the report is also ``model.weights_report``."""
    layout = None
    meta = None
    if isinstance(weights, Mapping):
        source, path, digest = "state dict (in memory)", None, ""
        tensors = _unwrap(weights, source)
        labels: tuple[str, ...] = ()
    else:
        found = resolve_source(weights, recipe, registry)
        local = locate(found)
        path, digest = local.path, local.sha256
        source, labels = found.source, found.labels
        tensors = read_state_dict(path, source, local)
        meta = zoo_metadata(local.header, path) if local.header is not None else None
        if meta is not None:
            layout = "zoo"
        else:
            whole = not (found.source.startswith("registry:") or os.path.isabs(found.source))  # a plugin's tag
            tensors = _through_plugin(model, recipe, tensors, whole)
    fitted, report = fit_state_dict(model, tensors, recipe, source, layout)
    report.path, report.sha256 = (str(path) if path else ""), digest
    model.load_state_dict(fitted, strict=False)
    _warn(report)
    head = _labelled_head(recipe, fitted, labels)
    if head is not None:
        model.labels[head] = list(labels)
    if meta is not None:  # an artifact's labels go with the heads that took its weights whole
        for head, names in clean_labels(meta.get("labels") or {}).items():
            taken = any(k.startswith(f"heads.{head}.") for k in fitted)
            if head in model.heads and taken and not any(k.startswith(f"heads.{head}.") for k in report.dropped):
                model.labels[head] = names
    if not isinstance(weights, Mapping):  # weights trained with their own preprocessing bring it along
        backbone = model.backbone
        if found.input_size:  # through the model, which keeps the one input size and tells its heads
            model.set_image_size(tuple(found.input_size)[1:])
        backbone.mean = tuple(found.mean) if found.mean else backbone.mean
        backbone.std = tuple(found.std) if found.std else backbone.std
    model.weights_report = report
    return report

