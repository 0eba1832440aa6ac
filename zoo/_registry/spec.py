"""The model spec grammar: ``backbone+head[+head...]``, each part with optional ``:key=value,...``.

Examples: ``resnet50+cls10``, ``timm/convnext_tiny+cls5:hidden=128,dropout=0.5``. Every character is
safe unquoted in bash. ``str(spec)`` is the canonical form (options sorted, numbers normalised) and
``parse(str(spec)) == spec``, which is what artifacts store.

The parser is purely syntactic; `zoo._registry.registry.Registry` decides what the names mean.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from zoo.errors import SpecError
from zoo.parts import BACKBONE_NAME, HEAD_NAME, NAMESPACE, OptionValue

GRAMMAR = "BACKBONE+HEAD[+HEAD...], each part optionally followed by :key=value,..., e.g. resnet50+cls10"

_HEAD = re.compile(rf"({HEAD_NAME.pattern})([0-9]+)?")
_KEY = re.compile(r"[a-z_][a-z0-9_]*")
_VALUE = re.compile(r"[A-Za-z0-9_.\-]+")
INTEGER = re.compile(r"-?[0-9]+")
DECIMAL = re.compile(r"-?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][-+]?[0-9]+)?")


def parse_value(text: str) -> OptionValue:
    """An option value: int, finite float, true/false, or else the string itself."""
    if INTEGER.fullmatch(text):
        return int(text)
    if DECIMAL.fullmatch(text):
        number = float(text)
        if math.isfinite(number):
            return number
    if text in ("true", "false"):
        return text == "true"
    return text


def format_value(value: OptionValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value).replace("e+", "e")  # '+' separates parts
    return str(value)


@dataclass(frozen=True)
class PartRef:
    """One part of a spec as written: an optional namespace, a name, a size (heads), options."""

    name: str
    namespace: str | None = None
    size: int | None = None
    options: tuple[tuple[str, OptionValue], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(sorted(self.options)))

    @property
    def ref(self) -> str:
        """The name as written, with namespace and size but without options."""
        prefix = f"{self.namespace}/" if self.namespace else ""
        size = "" if self.size is None else str(self.size)
        return f"{prefix}{self.name}{size}"

    def __str__(self) -> str:
        if not self.options:
            return self.ref
        return self.ref + ":" + ",".join(f"{k}={format_value(v)}" for k, v in self.options)


@dataclass(frozen=True)
class ModelSpec:
    backbone: PartRef
    heads: tuple[PartRef, ...]

    def __str__(self) -> str:
        return "+".join(str(part) for part in (self.backbone, *self.heads))


def _fail(text: str, why: str) -> SpecError:
    return SpecError(f"malformed spec {text!r}: {why}; expected {GRAMMAR}")


def _parse_options(text: str, body: str) -> tuple[tuple[str, OptionValue], ...]:
    options: dict[str, OptionValue] = {}
    for item in body.split(","):
        key, sep, value = item.partition("=")
        if not sep or not _KEY.fullmatch(key) or not _VALUE.fullmatch(value):
            raise _fail(text, f"option {item!r} is not key=value")
        if key in options:
            raise _fail(text, f"option {key!r} given twice")
        options[key] = parse_value(value)
    return tuple(options.items())


def _parse_part(text: str, token: str, is_head: bool) -> PartRef:
    ref, sep, body = token.partition(":")
    options = _parse_options(text, body) if sep else ()
    namespace, slash, name = ref.rpartition("/")
    if slash and not NAMESPACE.fullmatch(namespace):
        raise _fail(text, f"{namespace!r} is not a valid namespace")
    if is_head:
        match = _HEAD.fullmatch(name)
        if not match:
            raise _fail(text, f"{name!r} is not a head name (letters, then an optional size: cls10)")
        size = None if match.group(2) is None else int(match.group(2))
        return PartRef(match.group(1), namespace or None, size, options)
    if not BACKBONE_NAME.fullmatch(name):
        raise _fail(text, f"{name!r} is not a backbone name")
    return PartRef(name, namespace or None, None, options)


def parse(text: str) -> ModelSpec:
    """Parse a spec string; raises `SpecError` (a `ZooError`) and nothing else on any input."""
    if not isinstance(text, str):
        raise SpecError(f"a spec must be a string, not {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise _fail(text, "it is empty")
    tokens = stripped.split("+")
    if len(tokens) < 2:
        raise _fail(text, "it names no head")
    if any(not token for token in tokens):
        raise _fail(text, "it has an empty part")
    backbone = _parse_part(text, tokens[0], is_head=False)
    heads = tuple(_parse_part(text, token, is_head=True) for token in tokens[1:])
    return ModelSpec(backbone, heads)
