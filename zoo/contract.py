"""The plugin contract's own version, what changed in each, and how a change is announced.

The contract is what a plugin is written against: `zoo.hookspecs`, `zoo.parts`, `zoo.backbone`, `zoo.head`,
`zoo.metrics`, `zoo.drawing`, `zoo.targets`, `zoo.freezing`, `zoo.files`, `zoo.batchnorm` and `zoo.testing`.
Its version is written here once and moves apart from zoo's: a minor version adds, or changes with a
deprecation (the old form keeps working, with a `ContractDeprecation` warning naming the new form, until the
next major version); a major version drops what was deprecated. A plugin names the version it was written
against in its entry module::

    ZOO_CONTRACT = "1.1"

zoo loads a plugin of the same major version and says in one line what changed since the version it names;
a plugin written for another major version is refused with the reason. A plugin that names none is taken to
predate versioning (1.0).
"""
from __future__ import annotations

import re
import warnings

from zoo.errors import ZooWarning

CONTRACT_VERSION = "1.1"
ATTRIBUTE = "ZOO_CONTRACT"  # the module attribute where a plugin names the contract version it targets
UNVERSIONED = "1.0"  # what a plugin that names no version was written against

# What a plugin author must act on, by the contract version that brought it (CHANGELOG.md's Contract section).
CHANGES: dict[str, tuple[str, ...]] = {
    "1.0": ("the first contract: hooks zoo_backbones, zoo_heads, zoo_freeze_policies, zoo_commands",),
    "1.1": (
        "a head whose outputs take names declares HeadPart(labels=...); names for an undeclared head are "
        "accepted with a warning until 2.0",
        "TargetReader(table_columns=, read_target=) receive a TargetContext (head key, options, table folder, "
        "image size); TargetReader(columns=, read=) are deprecated until 2.0",
        "a plugin names the contract version it targets: ZOO_CONTRACT = \"1.1\"",
        "a BackbonePart with pretrained= lists its tags in weights_tags (the default first); one without is "
        "flagged when it registers, in zoo plugins and in zoo info, and shows no weights",
    ),
}

_VERSION = re.compile(r"(\d+)\.(\d+)")


class ContractDeprecation(ZooWarning, FutureWarning):
    """A plugin uses a form of the contract that a later major version drops; the message names the new form."""


def parse(version: object) -> tuple[int, int]:
    """``"1.1"`` -> (1, 1); anything else is a ValueError naming the expected form."""
    match = _VERSION.fullmatch(str(version).strip()) if isinstance(version, str) else None
    if match is None:
        raise ValueError(f"{ATTRIBUTE} must be a string 'MAJOR.MINOR' such as {CONTRACT_VERSION!r}, not {version!r}")
    return int(match[1]), int(match[2])


def declared(plugin: object) -> str:
    """The contract version ``plugin`` names, checked; `UNVERSIONED` when it names none."""
    value = getattr(plugin, ATTRIBUTE, None)
    if value is None:
        return UNVERSIONED
    major, minor = parse(value)
    return f"{major}.{minor}"


def changes_since(version: str) -> list[str]:
    """Every change after ``version`` up to this contract, oldest first."""
    return [change for number, listed in CHANGES.items() if parse(number) > parse(version) for change in listed]


def before(version: str, other: str) -> bool:
    """Whether ``version`` is an earlier contract than ``other`` (an empty version: unversioned)."""
    return parse(version or UNVERSIONED) < parse(other)


def compatibility(version: str) -> tuple[str, str]:
    """(``"ok"``, ``"note"`` or ``"error"``, one line for people) for a plugin targeting ``version``."""
    ours, theirs = parse(CONTRACT_VERSION), parse(version)
    if theirs == ours:
        return "ok", ""
    if theirs[0] > ours[0] or (theirs[0] == ours[0] and theirs[1] > ours[1]):
        kind = "error" if theirs[0] > ours[0] else "note"
        return kind, (f"targets zoo contract {version}, newer than this zoo's {CONTRACT_VERSION}; "
                      "upgrade zoo (pip install -U zoo)")
    changed = "; ".join(changes_since(version))
    if theirs[0] < ours[0]:
        return "error", (f"targets zoo contract {version}, which contract {CONTRACT_VERSION} no longer accepts: "
                         f"{changed}")
    return "note", f"targets zoo contract {version}; since then ({CONTRACT_VERSION}): {changed}"


def deprecated(old: str, new: str, *, owner: str = "", stacklevel: int = 3) -> None:
    """Warn that ``old`` works until the next major version and name ``new``, the form to write."""
    removed = f"{parse(CONTRACT_VERSION)[0] + 1}.0"
    where = f"{owner}: " if owner else ""
    warnings.warn(f"{where}{old} is deprecated and stops working in zoo contract {removed}; {new}",
                  ContractDeprecation, stacklevel=stacklevel)
