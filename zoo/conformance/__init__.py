"""The conformance kit: every part a distribution provides, run through the contract, one check at a time.

In the spirit of scikit-learn's ``check_estimator``: a plugin author's tests inherit
`zoo.testing.ConformanceSuite` (or call `run_checks`) and each backbone, head, freeze policy and command of
their distribution is built, run, trained, saved and loaded as zoo will. A failure names the part, the
check and the contract rule it breaks. Models are tiny (64 px, batches of 2) so the kit runs in seconds.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from zoo._registry.registry import Registry
from zoo.errors import ZooError, ZooNotice
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


@dataclass
class Result:
    check: Check
    ok: bool
    message: str = ""

    def line(self) -> str:
        """``ok  example/tinycnn: saves and loads`` or the failure with the rule it breaks."""
        if self.ok:
            return f"ok    {self.check.id}" + (f" ({self.message})" if self.message else "")
        return f"FAIL  {self.check.id}: {self.message} [rule: {self.check.rule}]"


class ConformanceFailure(AssertionError):
    """A part breaks a contract rule; the message names the part, the check and the rule."""


@dataclass
class Kit:
    """What the checks share: the registry, the distribution's own parts, and example table rows per head."""

    registry: Registry
    own_backbones: list[str]
    rows: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # head name -> one table row
    specs: Mapping[str, str] = field(default_factory=dict)  # head name -> what follows the backbone in a spec


def provided(registry: Registry, distribution: str) -> dict[str, list[str]]:
    """What ``distribution``'s plugins provide, by kind (backbone, head, freeze, command)."""
    found: dict[str, list[str]] = {}
    records = [r for r in registry.plugins if r.distribution == distribution]
    if not records:
        names = sorted({r.distribution for r in registry.plugins})
        raise ZooError(f"no zoo plugin comes from distribution {distribution!r}; distributions: {', '.join(names)}")
    for record in records:
        if record.status != "ok":
            raise ConformanceFailure(f"plugin {record.name} ({distribution}) does not load: {record.status} "
                                     f"{record.error} [rule: a plugin loads and its hooks return parts]")
        for kind, names in record.provides.items():
            found.setdefault(kind, []).extend(names)
    return found


def checks(
    distribution: str,
    *,
    registry: Registry | None = None,
    parts: Iterable[str] = ("*",),
    rows: Mapping[str, Mapping[str, Any]] | None = None,
    specs: Mapping[str, str] | None = None,
) -> list[Check]:
    """Every check of every part ``distribution`` provides whose name matches one of ``parts`` (patterns).

    ``rows`` gives, per head name, one table row its target reader reads (heads that learn from folders or
    COCO need none); ``specs`` what to write after the backbone for a head (``"det3:min_size=64"``).
    """
    registry = registry or Registry.from_environment(strict=False)
    offered = provided(registry, distribution)
    patterns = tuple(parts)
    chosen = {kind: [n for n in names if any(fnmatch(n, p) or fnmatch(n.split("/")[-1], p) for p in patterns)]
              for kind, names in offered.items()}
    kit = Kit(registry, chosen.get("backbone", []) or offered.get("backbone", [])[:1], rows or {}, specs or {})
    from zoo.conformance import _checks as made

    found: list[Check] = []
    for name in chosen.get("backbone", []):
        found += made.backbone_checks(kit, name)
    for name in chosen.get("head", []):
        found += made.head_checks(kit, registry.entry("head", name).part)
    for name in chosen.get("freeze", []):
        found += made.freeze_checks(kit, registry.entry("freeze", name).part)
    if offered.get("command"):
        found.append(Check(distribution, "commands do not clash", "a command name is not zoo's or another plugin's",
                           lambda folder: commands_do_not_clash(offered["command"])))
    return found


def run_checks(found: Iterable[Check]) -> list[Result]:
    """Run each check in a folder of its own; a failure is a result, never an exception."""
    results = []
    for check in found:
        with tempfile.TemporaryDirectory(prefix="zoo-conformance-") as folder:
            try:
                check.run(Path(folder))
            except Skip as skip:
                results.append(Result(check, True, f"skipped: {skip}"))
            except Exception as exc:
                results.append(Result(check, False, f"{type(exc).__name__}: {exc}".splitlines()[0]))
            else:
                results.append(Result(check, True))
    return results


class Skip(Exception):
    """A check that cannot run for this part, with the reason (a head whose targets need an example row)."""


def commands_do_not_clash(commands: list[str]) -> None:
    """`zoo --help` in a fresh process lists every command and warns of no clash."""
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    done = subprocess.run([sys.executable, "-m", "zoo", "--help"], capture_output=True, text=True, env=env,
                          timeout=300)
    clash = [line for line in done.stderr.splitlines() if "already has" in line]
    if done.returncode or clash:
        raise ConformanceFailure(clash[0] if clash else done.stderr.strip().splitlines()[-1])
    missing = [name for name in commands if f"  {name} " not in done.stdout and f"  {name}\n" not in done.stdout]
    if missing:
        raise ConformanceFailure(f"zoo --help does not list command {missing[0]}")


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


def describe(results: list[Result]) -> str:
    """One line per check, then the count of failures."""
    failed = sum(not r.ok for r in results)
    return "\n".join([*(r.line() for r in results), f"{len(results)} checks, {failed} failed"])


def as_json(results: list[Result]) -> str:
    return json.dumps([{"part": r.check.part, "check": r.check.name, "rule": r.check.rule, "ok": r.ok,
                        "message": r.message} for r in results], indent=2)


def quiet(function: Callable[[], Any]) -> Any:
    """Run ``function`` without zoo's notices (a head starting fresh), which say nothing about conformance."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ZooNotice)
        return function()
