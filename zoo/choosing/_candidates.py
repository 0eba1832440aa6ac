"""Which backbones to measure: saved model files, backbones matching patterns or presets, or a shortlist
spanning sizes; and, for each, whether its pretrained weights are on this machine.

Nothing here builds a model or imports torch: a candidate is a name, where its weights are, and a fingerprint
of both, so the results of a candidate measured before are found before anything is built. A candidate whose
weights are not here is kept, with how to get them, rather than silently dropped.
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo._core.recipe import resolve
from zoo._core.weights import resolve_source
from zoo._modelfile.read import model_file, read_metadata
from zoo._registry.registry import Registry
from zoo.errors import ZooError

# A shortlist spanning sizes, from a few million parameters to a few tens of millions.
SHORTLIST = ("torchvision/resnet18", "torchvision/resnet50", "timm/convnext_tiny", "timm/efficientnet_b0",
             "timm/mobilenetv3_large_100", "timm/regnety_008", "timm/vit_tiny_patch16_224")
DEFAULT_WEIGHTS = "imagenet"
HERE, MISSING, RANDOM, FILE, FAILED = "pretrained", "weights not here", "random init", "saved model", "failed"


@dataclass
class Candidate:
    """One backbone to measure: a spec's backbone with weights (a source, or None for random weights), or a
    saved model file, whose backbone and weights are the file's."""

    name: str
    backbone: str  # qualified, with its options: what `zoo train BACKBONE+clsN` builds
    weights: str | None = None  # what `zoo build --weights` takes; None: random initialisation
    file: Path | None = None
    status: str = HERE
    note: str = ""  # for people: how to get missing weights, or why random ones are measured
    identity: str = ""  # the weights' fingerprint: what they are and which file holds them

    @property
    def measurable(self) -> bool:
        return self.status not in (MISSING, FAILED)

    def train_command(self, data: str, head: str, img_size: int, validation: str = "") -> str:
        """The `zoo train` command that fine-tunes this candidate with ``head`` on DATA (``validation``: what
        it adds to say where the validation images are, ``--val-split 0.2`` for data without its own)."""
        stem = self.name.rsplit("/", 1)[-1].removesuffix(".safetensors").replace(":", "-").replace(",", "-")
        source = str(self.file) if self.file else self.weights
        weights = f" --weights {shlex.quote(source)}" if source else ""
        return (f"zoo train {self.backbone}+{head} {shlex.quote(data)} -o {shlex.quote(stem)}-finetuned.safetensors"
                f"{weights} --img-size {img_size}" + (f" {validation}" if validation else ""))


def _stat(path: str | os.PathLike[str]) -> str:
    """A file's identity for caching: where it is, its size and modification time (hashing is for loading)."""
    stat = os.stat(path)
    return f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _weights_for(name: str, weights: str | Mapping[str, str] | None) -> str:
    """The weights source asked for one backbone: its own entry (bare or qualified name), else ``*``, else
    the default tag."""
    if weights is None or isinstance(weights, str):
        return weights or DEFAULT_WEIGHTS
    bare = name.split("/", 1)[-1].split(":", 1)[0]
    for key in (name, name.split(":", 1)[0], bare):
        if key in weights:
            return weights[key]
    return weights.get("*", DEFAULT_WEIGHTS)


def from_backbone(name: str, weights: str, allow_random: bool, registry: Registry) -> Candidate:
    """A backbone with the weights asked for, or without them (measured on random weights when allowed)."""
    recipe = resolve(f"{name}+cls2", None, registry)
    backbone = str(recipe.spec).split("+", 1)[0]
    try:
        found = resolve_source(weights, recipe, registry)
    except ZooError as exc:  # no such tag or file for this backbone: listed as such, the others go on
        status, note = (RANDOM, f"weights not here ({exc})") if allow_random else (MISSING, str(exc))
        return Candidate(name, backbone, None if allow_random else weights, status=status, note=note,
                         identity="random")
    if found.path and Path(found.path).is_file():
        return Candidate(name, backbone, weights, identity=f"{found.source}|{_stat(found.path)}")
    how = found.expected or (f"put the file at {found.path}" if found.path else f"zoo info {name} lists its weights")
    note = f"{found.source}: {how}"
    if allow_random:
        return Candidate(name, backbone, None, status=RANDOM, note=f"weights not here ({note})", identity="random")
    return Candidate(name, backbone, weights, status=MISSING, note=note)


def from_file(path: Path) -> Candidate:
    """A saved model: its backbone and the weights it was trained to (a backbone fine-tuned on a related task)."""
    meta = read_metadata(path)
    backbone = str(meta.get("spec", "")).split("+", 1)[0]
    return Candidate(os.fspath(path), backbone, None, file=path, status=FILE, identity=f"file|{_stat(path)}")


def _saved_file(pattern: str, found: dict[str, Candidate]) -> bool:
    """Add the saved model ``pattern`` names, if it names one; a file that is there but cannot be read is a
    failed candidate (the others go on), a file that is not there is the user's mistake."""
    if Path(pattern).expanduser().is_file() and pattern.lower().endswith(".safetensors"):
        try:
            found.setdefault(pattern, from_file(model_file(pattern, "choose")))
        except ZooError as exc:
            found[pattern] = Candidate(pattern, "", status=FAILED, note=str(exc))
        return True
    return model_file(pattern, "choose") is not None


def _names(pattern: str, registry: Registry) -> list[str]:
    """Backbone names a pattern, preset or name stands for."""
    presets = registry.presets
    if pattern in presets:
        return [str(resolve(presets[pattern].spec, None, registry).spec).split("+", 1)[0]]
    if not any(c in pattern for c in "*?["):  # a name (with options, or a whole spec): resolved as zoo build does
        return [str(resolve(pattern if "+" in pattern else f"{pattern}+cls2", None, registry).spec).split("+", 1)[0]]
    rows = registry.find(pattern, "backbone")
    if not rows:
        raise ZooError(f"no backbone matches {pattern!r} (zoo list --kind backbone shows them)")
    return [row["name"] for row in rows]


def candidates(patterns: Sequence[str], weights: str | Mapping[str, str] | None, allow_random: bool,
               registry: Registry) -> list[Candidate]:
    """Every candidate the patterns name (saved files, presets, wildcards), or the shortlist; each once."""
    found: dict[str, Candidate] = {}
    for pattern in patterns or SHORTLIST:
        if _saved_file(pattern, found):
            continue
        for name in _names(pattern, registry):
            if name not in found:
                found[name] = from_backbone(name, _weights_for(name, weights), allow_random, registry)
    _check_weights_names(weights, list(found))
    return list(found.values())


def _check_weights_names(weights: str | Mapping[str, str] | None, names: list[str]) -> None:
    """Weights given for a backbone that is not a candidate are a mistake (a typo), not something to ignore."""
    if weights is None or isinstance(weights, str):
        return
    known = {key for name in names for key in (name, name.split(":", 1)[0], name.split("/", 1)[-1].split(":", 1)[0])}
    unused = [key for key in weights if key != "*" and key not in known]
    if unused:
        raise ZooError(f"--weights {unused[0]}={weights[unused[0]]}: no candidate is named {unused[0]!r}; "
                       f"candidates: {', '.join(names)}")
