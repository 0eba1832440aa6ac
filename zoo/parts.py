"""Declarative parts that plugins return from their hooks.

Each part names itself, says what it needs and carries a builder; the builder is called only when a
model is built, so a plugin imports torch inside it and listing never pays for that.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from zoo.errors import ZooError, suggest

BACKBONE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
# A head's name must not end in a digit: `cls10` reads as head `cls` with size 10.
HEAD_NAME = re.compile(r"[a-z](?:[a-z0-9_\-]*[a-z_\-])?")
POLICY_NAME = re.compile(r"[a-z][a-z0-9_\-]*")
NAMESPACE = re.compile(r"[a-z0-9][a-z0-9_.\-]*")

OptionValue = int | float | str | bool


@dataclass(frozen=True)
class Option:
    """One named option of a backbone or head, such as ``hidden=128`` or ``dropout=0.5``."""

    name: str
    type: type = int
    default: OptionValue | None = None
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[OptionValue, ...] = ()  # the only values allowed, when given: ("relu", "gelu")

    def __post_init__(self) -> None:
        if self.type not in (int, float, str, bool):
            raise TypeError(f"option {self.name!r}: type must be int, float, str or bool")
        if self.choices and self.default is not None and self.default not in self.choices:
            raise ValueError(f"option {self.name!r}: default {self.default!r} is not one of its choices")

    @property
    def usage(self) -> str:
        """``name=`` or, with choices, ``name=a|b``."""
        return f"{self.name}=" + "|".join(map(str, self.choices))

    def convert(self, value: OptionValue, owner: str) -> OptionValue:
        """Check a parsed value against this option, converting int to float where a float is wanted."""
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            raise ZooError(f"{owner}: option {self.name}={value} must be of type {self.type.__name__}")
        if self.minimum is not None and value < self.minimum:
            raise ZooError(f"{owner}: option {self.name}={value} is below its minimum {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise ZooError(f"{owner}: option {self.name}={value} is above its maximum {self.maximum:g}")
        if self.choices and value not in self.choices:
            raise ZooError(f"{owner}: option {self.name}={value} is not one of {', '.join(map(str, self.choices))}")
        return value


# Every head takes ``weight=``: its share of the model's loss (``resnet50+cls10+kp5:weight=10``). zoo reads it
# itself, so a head may not declare an option of that name.
LOSS_WEIGHT = Option("weight", float, 1.0, "this head's weight in the model's loss (0 or more); every head has it")
RESERVED_HEAD_OPTIONS = (LOSS_WEIGHT,)


def resolve_options(
    declared: Sequence[Option], given: Mapping[str, OptionValue], owner: str
) -> dict[str, OptionValue]:
    """The full option mapping for a part: defaults, overridden by the given values, each checked."""
    by_name = {option.name: option for option in declared}
    for name in given:
        if name not in by_name:
            valid = ", ".join(by_name) or "none"
            raise ZooError(f"{owner} has no option {name!r}{suggest(name, by_name)}; options: {valid}")
    resolved = {option.name: option.default for option in declared}
    resolved.update({name: by_name[name].convert(value, owner) for name, value in given.items()})
    return resolved


def options_usage(options: Sequence[Option]) -> str:
    """How options are written after a part's name: ``[:width=,act=relu|gelu]``, or nothing."""
    return f"[:{','.join(o.usage for o in options)}]" if options else ""


def _check_name(kind: str, name: str, pattern: re.Pattern[str], namespace: str) -> None:
    if not isinstance(name, str) or not pattern.fullmatch(name):
        raise ValueError(f"invalid {kind} name {name!r}: must match {pattern.pattern}")
    if namespace and not NAMESPACE.fullmatch(namespace):
        raise ValueError(f"invalid namespace {namespace!r} for {kind} {name!r}")


@dataclass(frozen=True)
class WeightsFile:
    """Where a backbone's pretrained weights live on this machine, how to check them and how to fetch them.

    A plugin's ``pretrained(tag)`` returns one without touching the network; zoo checks the file, downloads
    it only when it is missing and zoo is not offline (``ZOO_OFFLINE=1``), and otherwise says where it goes.
    """

    source: str  # stable name recorded in artifacts: "torchvision/ResNet50_Weights.IMAGENET1K_V2"
    path: str = ""  # the local file; "" when not found in a cache whose layout only ``fetch`` knows
    sha256: str = ""  # the expected sha256 or a prefix of it (torchvision's file names carry 8 hex digits)
    url: str = ""  # where zoo may download ``path`` from when online
    fetch: Callable[[], str] | None = None  # downloads into the plugin's own cache and returns the path
    expected: str = ""  # for people: which file to put where, shown when it is missing offline
    labels: tuple[str, ...] = ()  # class names of the weights' classifier, when known
    # The preprocessing these weights were trained with, when it differs from the backbone's own: loading
    # them sets the model's input size, mean and std (and so the saved file's and `zoo predict`'s).
    input_size: tuple[int, int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    # what is known of them, for `zoo info`: top1, size_mb, license, classes, params (None or absent: unknown)
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.sha256 and not re.fullmatch(r"[0-9a-f]{8,64}", self.sha256):
            raise ValueError(f"weights {self.source}: sha256 must be 8 to 64 lowercase hex digits")


@dataclass(frozen=True)
class PresetPart:
    """A whole recipe a plugin ships under a name, as registry.toml's presets: ``zoo build tiny-probe``.

    A user's registry.toml preset of the same name wins.
    """

    name: str
    spec: str
    freeze: str | None = None
    description: str = ""


@dataclass(frozen=True)
class BackbonePart:
    """A feature extractor. ``build(**options)`` returns a `zoo.backbone.Backbone`."""

    name: str
    build: Callable[..., Any]
    description: str = ""
    namespace: str = ""  # filled in with the plugin's name when left empty
    options: tuple[Option, ...] = ()
    tags: tuple[str, ...] = ()
    # ``pretrained(tag)`` -> `WeightsFile` for ``default`` or a tag of the plugin's own (``a1_in1k``); no network.
    # ``--weights imagenet`` means ``default``.
    pretrained: Callable[[str], WeightsFile] | None = None
    # the tags ``pretrained`` knows, the default first: `zoo list --pretrained` reads them without importing torch
    weights_tags: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # other bare names for this backbone (registry.toml's aliases win)
    presets: tuple[PresetPart, ...] = ()  # recipes built on this backbone
    contract: str = ""  # filled in by zoo: the `zoo.contract` version the part's plugin names

    kind = "backbone"

    def __post_init__(self) -> None:
        _check_name("backbone", self.name, BACKBONE_NAME, self.namespace)
        if not callable(self.build):
            raise TypeError(f"backbone {self.name!r}: build must be callable")
        for alias in self.aliases:
            _check_name("backbone alias", alias, BACKBONE_NAME, "")
        if not all(isinstance(preset, PresetPart) for preset in self.presets):
            raise TypeError(f"backbone {self.name!r}: presets must be zoo.parts.PresetPart")

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def usage(self) -> str:
        return self.name + options_usage(self.options)

    @property
    def untagged_weights(self) -> str:
        """One line when ``pretrained=`` is given without ``weights_tags`` (zoo would list no weights), else ""."""
        if self.pretrained is None or self.weights_tags:
            return ""
        return (f"backbone {self.qualified_name} has pretrained= but no weights_tags, so zoo lists no weights for "
                "it; declare BackbonePart(weights_tags=(\"default\", ...)), the default first")


@dataclass(frozen=True)
class HeadPart:
    """A task head. ``build(features, size, **options)`` returns a `zoo.head.Head` called with `Features`.

    ``features`` is the backbone's `zoo.backbone.FeatureInfo`; ``size`` is the number written after the
    name in a spec (``cls10`` -> 10), or None for heads whose ``size`` is ``"none"``.
    ``needs`` is what the head reads: the pooled vector, one spatial stage, or several spatial stages;
    a backbone that lacks it is refused. ``inputs="images"`` declares a head that runs the backbone on
    whole images itself (detection): it must be the model's only head. ``targets`` (a
    `zoo.targets.TargetReader`) says what ``zoo train`` reads for the head; without one the head trains
    only from the user's own DataLoader.
    """

    name: str
    build: Callable[..., Any]
    description: str = ""
    namespace: str = ""
    size: Literal["required", "none"] = "required"
    size_label: str = "outputs"
    min_size: int = 1
    needs: Literal["pooled", "stage", "stages"] = "pooled"
    options: tuple[Option, ...] = ()
    inputs: Literal["features", "images"] = "features"
    classifier: str = ""  # module in the head that takes a whole torchvision/timm model's classifier ("fc")
    targets: Any = None  # a zoo.targets.TargetReader: how `zoo train` reads this head's targets
    # how many names (labels) its outputs take: "classes" one per class (cls1, binary, takes two), "size" one per
    # unit of its size, a fixed count, or None for none; save, build --labels and predict --labels check them
    labels: Literal["classes", "size"] | int | None = None
    contract: str = ""  # filled in by zoo: the `zoo.contract` version the part's plugin names

    kind = "head"

    def __post_init__(self) -> None:
        _check_name("head", self.name, HEAD_NAME, self.namespace)
        if not callable(self.build):
            raise TypeError(f"head {self.name!r}: build must be callable")
        if self.size not in ("required", "none") or self.needs not in ("pooled", "stage", "stages"):
            raise ValueError(f"head {self.name!r}: size must be 'required' or 'none', needs 'pooled', 'stage' or 'stages'")
        if self.inputs not in ("features", "images"):
            raise ValueError(f"head {self.name!r}: inputs must be 'features' or 'images'")
        reserved = {option.name for option in RESERVED_HEAD_OPTIONS}
        clash = [option.name for option in self.options if option.name in reserved]
        if clash:
            raise ValueError(f"head {self.name!r}: option {clash[0]!r} is reserved (zoo gives every head "
                             f"{clash[0]}=, its share of the model's loss); name your option differently")
        if not (self.labels in (None, "classes", "size") or (type(self.labels) is int and self.labels > 0)):
            raise ValueError(f"head {self.name!r}: labels must be 'classes', 'size', a positive int or None")

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def usage(self) -> str:
        size = f"<{self.size_label}>" if self.size == "required" else ""
        return f"{self.name}{size}" + options_usage(self.options)


@dataclass(frozen=True)
class FreezePolicyPart:
    """Chooses the frozen stages. ``select(stages, argument)`` returns the names of the stages to freeze.

    ``stages`` are the backbone's stage names in order; ``argument`` is what follows the colon in
    ``--freeze=name:argument`` (already checked to be an int or a stage name, as ``argument`` says).
    The heads always train.

    With ``chooses="parameters"`` the policy chooses parameters instead: ``select`` gets the stages as
    `zoo.freezing.StageView` (modules, parameters, sizes) and returns the names of the backbone
    parameters to freeze. A module whose own parameters are all frozen stays in eval mode.
    """

    name: str
    select: Callable[[Sequence[str], Any], Iterable[str]]
    description: str = ""
    namespace: str = ""
    argument: Literal["none", "int", "stage"] = "none"
    chooses: Literal["stages", "parameters"] = "stages"
    contract: str = ""  # filled in by zoo: the `zoo.contract` version the part's plugin names

    kind = "freeze"

    def __post_init__(self) -> None:
        _check_name("freeze policy", self.name, POLICY_NAME, self.namespace)
        if not callable(self.select):
            raise TypeError(f"freeze policy {self.name!r}: select must be callable")
        if self.argument not in ("none", "int", "stage"):
            raise ValueError(f"freeze policy {self.name!r}: argument must be 'none', 'int' or 'stage'")
        if self.chooses not in ("stages", "parameters"):
            raise ValueError(f"freeze policy {self.name!r}: chooses must be 'stages' or 'parameters'")

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def usage(self) -> str:
        return {"none": self.name, "int": f"{self.name}:N", "stage": f"{self.name}:STAGE"}[self.argument]


def check_image_heads(inputs: Mapping[str, str], backbone: str = "") -> None:
    """A head that reads whole images (``inputs="images"``, detection) must be its model's only head.

    ``inputs`` maps each head's key to what it reads; ``backbone`` names the backbone for the hint.
    """
    alone = [key for key, kind in inputs.items() if kind == "images"]
    if alone and len(inputs) > 1:
        others = ", ".join(key for key in inputs if key != alone[0])
        hint = f" ({backbone}+{alone[0]})" if backbone else ""
        raise ZooError(f"head {alone[0]} runs the backbone on whole images and cannot be combined with "
                       f"{others}; build one model per task{hint}")


Part = BackbonePart | HeadPart | FreezePolicyPart

# The kinds of part, declared once: the kind, its part type, the hook that yields it, what people call it.
_KINDS = (
    ("backbone", BackbonePart, "zoo_backbones", "backbone"),
    ("head", HeadPart, "zoo_heads", "head"),
    ("freeze", FreezePolicyPart, "zoo_freeze_policies", "freeze policy"),
)
KINDS = tuple(kind for kind, *_ in _KINDS)
PART_TYPES: dict[str, type] = {kind: part_type for kind, part_type, _, _ in _KINDS}
HOOK_KINDS = {hook: kind for kind, _, hook, _ in _KINDS}
KIND_LABELS = {kind: label for kind, _, _, label in _KINDS}
LISTED_KINDS = (*KINDS, "preset")  # what `zoo list` shows: the parts, and registry.toml's presets
