"""`zoo plugin new NAME`: a plugin package that installs, shows in `zoo plugins` and passes its own tests at once.

The package holds what a plugin can offer (a backbone, a head reading table targets and naming its outputs,
a freeze policy, a command), its conformance tests (`zoo.testing.ConformanceSuite`) and a README. The
templates live beside this module, ``{{name}}`` style placeholders filled in; the folder appears whole or
not at all.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from zoo._version import __version__
from zoo.contract import CONTRACT_VERSION
from zoo.errors import ZooError

TEMPLATE = Path(__file__).resolve().parent / "template"
# a plugin name is a namespace, a Python identifier and a command name at once
NAME = re.compile(r"[a-z][a-z0-9_]{0,38}")


def check_name(name: str) -> str:
    """The plugin name, or a ZooError saying what a name may be."""
    if not NAME.fullmatch(name or ""):
        raise ZooError(f"plugin name {name!r} must be lowercase letters, digits and _ starting with a letter "
                       "(at most 39), such as mynet")
    return name


def names(name: str) -> dict[str, str]:
    """The placeholders: plugin name, distribution, package, contract and zoo version."""
    check_name(name)
    return {"name": name, "dist": f"zoo-{name.replace('_', '-')}", "package": f"zoo_{name}",
            "contract": CONTRACT_VERSION, "zoo_version": __version__}


def _render(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\{\{(\w+)\}\}", lambda match: values[match[1]], text)


def _write_tree(folder: Path, values: dict[str, str]) -> None:
    for template in sorted(TEMPLATE.rglob("*.tmpl")):
        relative = template.relative_to(TEMPLATE).with_suffix("")  # drops .tmpl
        parts = [values["package"] if part == "package" else part for part in relative.parts]
        target = folder.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_render(template.read_text(encoding="utf-8"), values), encoding="utf-8")


def new_plugin(name: str, folder: str | os.PathLike[str] = ".") -> Path:
    """Write the package ``zoo-NAME`` into ``folder`` and return its path; an existing path is left alone."""
    values = names(name)
    parent = Path(folder)
    if not parent.is_dir():
        raise ZooError(f"{parent} is not a folder; create it first or choose another with --dir")
    destination = parent / values["dist"]
    if destination.exists():
        raise ZooError(f"{destination} already exists; choose another name or folder (nothing was written)")
    staging = Path(tempfile.mkdtemp(prefix=f".{values['dist']}-", dir=parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; a package folder is not
        _write_tree(staging, values)
        os.rename(staging, destination)  # the package appears whole, or not at all
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return destination
