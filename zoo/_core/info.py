"""`zoo info`: what a backbone, head, freeze policy, preset or spec is, in one dictionary.

Models are built on the meta device: shapes and parameter counts without allocating any weight, so
describing a 7-billion-parameter ViT costs what describing resnet18 does.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from zoo._core.build import build
from zoo._core.summary import model_summary
from zoo._modelfile.read import describe, model_file
from zoo._registry.plugin_checks import build_backbone
from zoo._registry.registry import AmbiguousName, Registry, default_registry
from zoo._registry.spec import parse
from zoo.errors import ZooError
from zoo.parts import KINDS, RESERVED_HEAD_OPTIONS, resolve_options


def _options(options) -> list[dict[str, Any]]:
    return [{"name": o.name, "type": o.type.__name__, "default": o.default, "help": o.help,
             "choices": list(o.choices), "reserved": o in RESERVED_HEAD_OPTIONS} for o in options]


@contextmanager
def _meta_device() -> Iterator[None]:
    """Build modules without memory for their tensors."""
    import torch

    with torch.device("meta"):
        yield


def weights_info(part: Any) -> list[dict[str, Any]]:
    """Each pretrained weight the backbone's plugin knows: its tag, what is known of it, whether it is here."""
    rows = []
    for index, tag in enumerate(part.weights_tags):
        row: dict[str, Any] = {"tag": tag, "default": index == 0}
        try:
            found = part.pretrained(tag)
        except ZooError as exc:
            rows.append({**row, "error": str(exc)})
            continue
        here = bool(found.path) and Path(found.path).is_file()
        rows.append({**row, "source": found.source, "on_this_machine": here, "path": found.path if here else "",
                     **{key: found.meta.get(key) for key in ("top1", "size_mb", "license", "classes")},
                     "meta": dict(found.meta)})
    return rows


def _backbone_entry(registry: Registry, name: str, namespace: str | None) -> tuple[Any, str | None]:
    """The backbone a name resolves to, and the pretrained tag written with it (``resnet50.a1_in1k``)."""
    if namespace is None and "/" in name:
        namespace, name = name.rsplit("/", 1)
    try:
        return registry.entry("backbone", name, namespace), None
    except ZooError:
        tagged = registry.tagged_backbone(name, namespace)
        if tagged is None:
            raise
        return tagged


def backbone_info(name: str, registry: Registry) -> dict[str, Any]:
    """A backbone, built with the options written after its name (``mynet:width=8``) or its defaults."""
    ref = parse(f"{name}+x").backbone if ":" in name else None
    entry, tag = _backbone_entry(registry, ref.name if ref else name, ref.namespace if ref else None)
    part = entry.part
    options = resolve_options(part.options, dict(ref.options) if ref else {}, part.qualified_name)
    with _meta_device():
        backbone = build_backbone(entry, {k: v for k, v in options.items() if v is not None})
    stages = [
        {"name": s.name, "params": backbone.stage_size(s.name), "channels": s.channels, "stride": s.stride}
        for s in backbone.stages
    ]
    return {
        "kind": "backbone",
        "name": part.qualified_name,
        "requested": name,
        "provider": entry.plugin.distribution,
        "plugin": entry.plugin.name,
        "description": part.description,
        "usage": part.usage,
        "options": _options(part.options),
        "resolved_options": options,
        "aliases": list(part.aliases),
        "stages": stages,
        "params": sum(p.numel() for p in backbone.parameters()),
        "pooled_features": backbone.num_features,
        "input_size": list(backbone.input_size),
        "mean": list(backbone.mean),
        "std": list(backbone.std),
        "weights": weights_info(part) if part.pretrained is not None else [],
        **({"weights_warning": part.untagged_weights} if part.untagged_weights else {}),
        **({"weights_tag": tag} if tag else {}),
    }


def _part_info(kind: str, name: str, registry: Registry) -> dict[str, Any]:
    entry = registry.entry(kind, name)
    part = entry.part
    result = {"kind": kind, "name": part.qualified_name, "requested": name, "provider": entry.plugin.distribution,
              "plugin": entry.plugin.name, "description": part.description, "usage": part.usage}
    reserved = RESERVED_HEAD_OPTIONS if kind == "head" else ()
    if kind == "head":
        result["options"] = _options((*part.options, *reserved))
    return result


def info(name: str, *, freeze: str | None = None, registry: Registry | None = None) -> dict[str, Any]:
    """Describe a spec (``resnet50+cls10``), preset, backbone, head, freeze policy or saved model file."""
    path = model_file(name, "info")
    if path is not None:  # a saved model: read its header, build nothing
        return describe(path)
    registry = registry or default_registry()
    if "+" in name or name.strip() in registry.presets:
        with _meta_device():
            model = build(name, freeze=freeze, registry=registry)
        return {"kind": "model", **model_summary(model)}
    errors: list[ZooError] = []
    for kind in KINDS:
        try:
            if kind == "backbone":
                return backbone_info(name, registry)
            if kind == "head":
                ref = parse(f"x+{name}").heads[0]
                return _part_info("head", f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name, registry)
            return _part_info("freeze", name, registry)
        except ZooError as exc:
            errors.append(exc)
    ambiguous = [exc for exc in errors if isinstance(exc, AmbiguousName)]
    if ambiguous:
        raise ambiguous[0]
    raise ZooError(f"{errors[0]}; it is not a head or freeze policy either")
