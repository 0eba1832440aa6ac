"""Packaging: every third-party module zoo and its built-in plugins import is a declared dependency,
and the version has one source."""
from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path


if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("zoo", "plugins")
OWN = {"zoo"}
# Modules used only where their extra is named in pyproject (``zoo[export]``, the pytest plugin, the plot).
EXTRAS_ALLOWED = {"export", "test", "bench"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    return _normalise(re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0])


def imported_modules() -> dict[str, set[str]]:
    """Top-level third-party modules imported anywhere in zoo's and the plugins' source, with the files."""
    found: dict[str, set[str]] = {}
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in OWN:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    required = {_requirement_name(r) for r in project["dependencies"]}
    optional = {_requirement_name(r) for extra, rs in project.get("optional-dependencies", {}).items()
                if extra in EXTRAS_ALLOWED for r in rs}
    return required, optional


def test_every_imported_module_is_a_declared_dependency():
    required, optional = declared()
    distributions = packages_distributions()
    missing = []
    for module, files in sorted(imported_modules().items()):
        names = {_normalise(d) for d in distributions.get(module, [module])}
        if not names & (required | optional):
            missing.append(f"{module} (distribution {', '.join(sorted(names))}; imported by {', '.join(sorted(files))})")
    assert not missing, "undeclared: " + "; ".join(missing)


def test_the_scan_sees_what_zoo_imports():
    modules = imported_modules()
    assert {"torch", "torchvision", "timm", "pluggy", "click", "safetensors", "PIL", "huggingface_hub"} <= set(modules)
    assert "plugins/timm/weights.py" in modules["huggingface_hub"]


def test_modules_of_the_export_extra_are_imported_only_inside_functions():
    """`import zoo` and the CLI must work without the export extra: onnx and torchao load when used."""
    lazy = {"onnx", "onnxruntime", "onnxscript", "torchao"}
    for folder in SOURCES:
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in tree.body:
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                    assert not {n.split(".")[0] for n in names} & lazy, f"{path}: top-level import of {names}"


def test_the_version_has_one_source():
    """Written once, in zoo/_version.py; that the installed distribution agrees is checked with the installed
    layout in test_architecture.py."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "zoo._version.__version__"}
