"""The floor plan holds: layers import only downwards, no import cycle, plugins see only the contract.

Imports are read from the source with `ast`, those inside functions and under ``TYPE_CHECKING``
included, so a cycle cannot hide behind a deferred import. An import inside a function may only
defer a heavy module (torch, torchvision, timm, matplotlib, or a zoo module that imports one).
The layers are described in docs/architecture.md.
"""
from __future__ import annotations

import ast
import importlib.metadata
from fnmatch import fnmatch
from pathlib import Path

import pytest

import zoo

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "torchvision", "timm", "matplotlib")

# Lowest first: a module may import modules of its own layer or of lower layers, never of higher ones.
LAYERS = (
    ("base", ("zoo._version", "zoo.errors", "zoo._untrusted")),
    ("contract", ("zoo.hookspecs", "zoo.parts", "zoo.backbone", "zoo.head", "zoo.metrics", "zoo.drawing",
                  "zoo.batchnorm", "zoo.files", "zoo.freezing", "zoo.targets", "zoo.contract")),
    ("core", ("zoo._spec", "zoo._catalogue", "zoo._plugin_host", "zoo._registry", "zoo._plugin_checks",
              "zoo._recipe", "zoo._metadata_check", "zoo._modelfile", "zoo._model", "zoo._reference",
              "zoo._weights", "zoo._builder", "zoo._labels", "zoo._artifact", "zoo._summary", "zoo._images",
              "zoo._optimizer_check", "zoo._device")),
    ("services", ("zoo._describe", "zoo._cache", "zoo._prediction", "zoo._fast", "zoo._export", "zoo._quantize",
                  "zoo._environment", "zoo.testing", "zoo.conformance", "zoo.conformance.*",
                  "zoo.scaffold", "zoo.benchmark", "zoo.benchmark.*", "zoo.training",
                  "zoo.training.*", "zoo.choosing", "zoo.choosing.*")),
    ("cli", ("zoo.cli", "zoo.cli.*", "zoo.__main__")),
    ("face", ("zoo",)),
)
CONTRACT_LAYERS = ("base", "contract", "face")  # what a plugin may import of zoo


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in (("zoo", ROOT / "zoo"), ("zoo.plugins", ROOT / "plugins")):
        for path in folder.rglob("*.py"):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _target(name: str) -> str | None:
    """The zoo module ``name`` is, or is inside; None for anything outside zoo."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, bool]]:
    """(imported name, inside a function) for every import statement of ``module``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, nested) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in child.names:  # `from zoo import hookspecs` imports the submodule
                    submodule = f"{base}.{alias.name}"
                    found.append((submodule if submodule in MODULES else base, nested))
            visit(child, nested)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def _edges(*, in_functions: bool = True) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module in MODULES:
        targets = {_target(name) for name, nested in _imports(module) if in_functions or not nested}
        edges[module] = {t for t in targets if t and t != module}
    return edges


def _layer(module: str) -> str | None:
    for name, patterns in LAYERS:
        if any(fnmatch(module, pattern) for pattern in patterns):
            return name
    return None


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in edges.get(node, ()):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return cycles


def test_the_reader_sees_every_import():
    """The checks below are only as good as the import reader: it finds a deferred, relative import."""
    edges = _edges()
    assert "zoo._model" in edges["zoo._builder"]  # inside build_recipe, deferring torch
    assert "zoo.hookspecs" in edges["zoo._plugin_host"]  # `from zoo import hookspecs`
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_counting_imports_inside_functions():
    assert _cycles(_edges()) == []


def test_every_zoo_module_has_a_layer():
    unplaced = [m for m in MODULES if not m.startswith("zoo.plugins") and _layer(m) is None]
    assert unplaced == [], "add these modules to a layer here and in docs/architecture.md"


def test_no_module_imports_a_higher_layer():
    order = [name for name, _ in LAYERS]
    upward = [f"{module} ({_layer(module)}) imports {target} ({_layer(target)})"
              for module, targets in _edges().items() if not module.startswith("zoo.plugins")
              for target in targets
              if not target.startswith("zoo.plugins") and order.index(_layer(target)) > order.index(_layer(module))]
    assert upward == []


def test_plugins_import_only_the_contract_and_their_own_package():
    found = []
    for module, targets in _edges().items():
        if not module.startswith("zoo.plugins."):
            continue
        own = ".".join(module.split(".")[:3])  # zoo.plugins.timm
        for target in targets:
            if target.startswith("zoo.plugins."):
                if not (target == own or target.startswith(own + ".")):
                    found.append(f"{module} reaches into another plugin: {target}")
            elif _layer(target) not in CONTRACT_LAYERS:
                found.append(f"{module} imports zoo internals: {target}")
    assert found == []


def _heavy_modules() -> set[str]:
    """zoo modules whose import, at module level, brings in torch, torchvision, timm or matplotlib."""
    top = {m: [name for name, nested in _imports(m) if not nested] for m in MODULES}
    heavy = {m for m, names in top.items() if any(n.split(".")[0] in HEAVY for n in names)}
    while True:
        more = {m for m, names in top.items() if m not in heavy and any(_target(n) in heavy for n in names)}
        if not more:
            return heavy
        heavy |= more


def test_imports_inside_functions_only_defer_heavy_modules():
    """The exceptions: the package face and the CLI (``zoo.cli`` and its command modules) import on
    first use, so that ``import zoo``, ``zoo --help`` and ``zoo list`` stay fast (benchmarks/startup.py)."""
    heavy = _heavy_modules()
    needless = sorted({f"{module}: {_target(name)}" for module in MODULES if _layer(module) not in ("face", "cli")
                       for name, nested in _imports(module)
                       if nested and _target(name) and _target(name) not in heavy and _target(name) != "zoo"})
    assert needless == [], "import these at the top of the module: they do not defer torch"


@pytest.mark.parametrize("name", ["hookspecs", "parts", "backbone", "head", "metrics", "errors", "testing", "drawing",
                                  "targets"])
def test_the_public_contract_keeps_its_names(name):
    assert (ROOT / "zoo" / f"{name}.py").is_file()
    assert _layer(f"zoo.{name}") in ("base", "contract", "services")


def test_installed_layout_matches_the_plan():
    """The entry points and the console script that pip installed point at the modules of this tree."""
    distribution = importlib.metadata.distribution("zoo")
    assert distribution.version == zoo.__version__
    plugins = {ep.name: ep for ep in distribution.entry_points if ep.group == "zoo"}
    assert sorted(plugins) == ["freeze", "heads", "timm", "torchvision"]
    for name, entry_point in plugins.items():
        module = entry_point.load()
        expected = ROOT / "plugins" / (f"{name}.py" if name == "freeze" else f"{name}/plugin.py")
        assert Path(module.__file__).resolve() == expected
    scripts = {ep.name: ep.value for ep in distribution.entry_points if ep.group == "console_scripts"}
    assert scripts == {"zoo": "zoo.cli:main"}
    from zoo.cli import cli, main

    assert callable(main) and cli.name == "cli"
