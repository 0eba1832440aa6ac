"""The conformance kit: every part a distribution provides, run through the contract, one check at a time.

In the spirit of scikit-learn's ``check_estimator``: a plugin author's tests inherit
`zoo.testing.ConformanceSuite` (or call `run_checks`) and each backbone, head, freeze policy and command of
their distribution is built, run, trained, saved and loaded as zoo will. A failure names the part, the
check and the contract rule it breaks. Models are tiny (64 px, batches of 2) so the kit runs in seconds.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from zoo._registry.registry import Registry
from zoo.conformance._kit import Check, ConformanceFailure, Kit, Skip
from zoo.errors import ZooError

__all__ = ["Check", "ConformanceFailure", "Result", "Skip", "checks", "describe", "provided", "run_checks"]


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
                           lambda folder: commands_do_not_clash(distribution, offered["command"])))
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


def commands_do_not_clash(distribution: str, commands: list[str]) -> None:
    """`zoo --help` in a fresh process lists every command of ``distribution`` and warns of no clash of its."""
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    done = subprocess.run([sys.executable, "-m", "zoo", "--help"], capture_output=True, text=True, env=env,
                          timeout=300)
    clash = [line for line in done.stderr.splitlines() if "already has" in line and f"({distribution})" in line]
    if done.returncode or clash:
        raise ConformanceFailure(clash[0] if clash else done.stderr.strip().splitlines()[-1])
    missing = [name for name in commands if f"  {name} " not in done.stdout and f"  {name}\n" not in done.stdout]
    if missing:
        raise ConformanceFailure(f"zoo --help does not list command {missing[0]}")


def describe(results: list[Result]) -> str:
    """One line per check, then the count of failures."""
    failed = sum(not r.ok for r in results)
    return "\n".join([*(r.line() for r in results), f"{len(results)} checks, {failed} failed"])
