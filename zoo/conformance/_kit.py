"""What the conformance checks share: a check, the kit they run with, and the small rules they apply."""
from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo._registry.registry import Registry
from zoo.errors import ZooNotice
from zoo.parts import HeadPart
from zoo.targets import TargetContext

BUILTIN_BACKBONE = "torchvision/resnet18"
SIDE = 64  # the images' side for heads; backbones also run at their smallest size
BATCH = 2


@dataclass(frozen=True)
class Check:
    """One check of one part: ``run(folder)`` raises on a failure; ``rule`` is the contract rule it tests."""

    part: str
    name: str
    rule: str
    run: Callable[[Path], None]

    @property
    def id(self) -> str:
        return f"{self.part}:{self.name}"


class ConformanceFailure(AssertionError):
    """A part breaks a contract rule; the message names the part, the check and the rule."""


@dataclass
class Kit:
    """What the checks share: the registry, the distribution's own parts, and example table rows per head."""

    registry: Registry
    own_backbones: list[str]
    rows: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # head name -> one table row
    specs: Mapping[str, str] = field(default_factory=dict)  # head name -> what follows the backbone in a spec


class Skip(Exception):
    """A check that cannot run for this part, with the reason (a head whose targets need an example row)."""


def head_size(part: HeadPart) -> str:
    """The size written after a head's name in a spec: its minimum, at least 2 (a spec ``reg3`` -> ``3``)."""
    return "" if part.size == "none" else str(max(part.min_size, 2))


def target_context(part: HeadPart, key: str, size: int | None, folder: Path) -> TargetContext:
    options = {option.name: option.default for option in part.options}
    return TargetContext(size, key, options, folder, (SIDE, SIDE))


def label_count(part: HeadPart, size: int | None) -> int | None:
    """How many names the head's outputs take, as `HeadPart.labels` declares."""
    if part.labels == "classes":
        return 2 if size == 1 else size
    if part.labels == "size":
        return size
    return part.labels


def quiet(function: Callable[[], Any]) -> Any:
    """Run ``function`` without zoo's notices (a head starting fresh), which say nothing about conformance."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ZooNotice)
        return function()
