"""`zoo info`: what a backbone, head, freeze policy, preset or spec is, in one dictionary."""
from __future__ import annotations

from typing import Any

from zoo._builder import build
from zoo._modelfile import describe, model_file
from zoo._registry import Registry, default_registry
from zoo._spec import parse
from zoo._summary import model_summary
from zoo.errors import ZooError
from zoo.parts import KINDS, RESERVED_HEAD_OPTIONS


def backbone_info(name: str, registry: Registry) -> dict[str, Any]:
    entry = registry.entry("backbone", name)
    part = entry.part
    backbone = part.build()
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
        "stages": stages,
        "params": sum(p.numel() for p in backbone.parameters()),
        "pooled_features": backbone.num_features,
        "input_size": list(backbone.input_size),
        "mean": list(backbone.mean),
        "std": list(backbone.std),
    }


def _part_info(kind: str, name: str, registry: Registry) -> dict[str, Any]:
    entry = registry.entry(kind, name)
    part = entry.part
    result = {"kind": kind, "name": part.qualified_name, "requested": name, "provider": entry.plugin.distribution,
              "plugin": entry.plugin.name, "description": part.description, "usage": part.usage}
    reserved = RESERVED_HEAD_OPTIONS if kind == "head" else ()
    for option in (*getattr(part, "options", ()), *reserved):
        result.setdefault("options", []).append(
            {"name": option.name, "type": option.type.__name__, "default": option.default, "help": option.help,
             "reserved": option in reserved})
    return result


def info(name: str, *, freeze: str | None = None, registry: Registry | None = None) -> dict[str, Any]:
    """Describe a spec (``resnet50+cls10``), preset, backbone, head, freeze policy or saved model file."""
    path = model_file(name, "info")
    if path is not None:  # a saved model: read its header, build nothing
        return describe(path)
    registry = registry or default_registry()
    if "+" in name or name.strip() in registry.presets:
        return {"kind": "model", **model_summary(build(name, freeze=freeze, registry=registry))}
    errors = []
    for kind in KINDS:
        try:
            if kind == "backbone":
                return backbone_info(name, registry)
            if kind == "head":
                ref = parse(f"x+{name}").heads[0]
                return _part_info("head", f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name, registry)
            return _part_info("freeze", name, registry)
        except ZooError as exc:
            errors.append(str(exc))
    raise ZooError(f"{errors[0]}; it is not a head or freeze policy either")
