"""The floor plan holds: layers import only downwards, no import cycle, plugins see only the contract.

Imports are read from the source with `ast`, those inside functions and under ``TYPE_CHECKING``
included, so a cycle cannot hide behind a deferred import. An import inside a function may only
defer a heavy module (torch, torchvision, timm, matplotlib, or a zoo module that imports one).
The layers are described in docs/architecture.md.
"""
from __future__ import annotations

import ast
import importlib.metadata
from pathlib import Path

import pytest

import zoo

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "torchvision", "timm", "matplotlib")

# Lowest first: a module may import modules of its own layer or of lower layers, never of higher ones.
# A folder of zoo/ is a layer (FOLDERS); the flat modules of zoo/ are the contract, but for those in FLAT.
# The wings share the runtime and never import each other; the services above them may use several.
LAYERS = ("base", "contract", "registry", "modelfile", "core", "runtime", "wings", "services", "cli", "face")
FOLDERS = {"_registry": "registry", "_modelfile": "modelfile", "_core": "core", "_runtime": "runtime",
           "training": "wings", "inference": "wings", "benchmark": "wings",
           "choosing": "services", "conformance": "services", "scaffold": "services", "cli": "cli"}
FLAT = {"zoo.errors": "base", "zoo._version": "base", "zoo._untrusted": "base", "zoo.testing": "services",
        "zoo.__main__": "cli", "zoo": "face"}
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


def _packages(target: str, importer: str) -> set[str]:
    """The packages whose ``__init__`` importing ``target`` runs, but for ``zoo`` and the importer's own."""
    parts = target.split(".")
    found = {".".join(parts[:n]) for n in range(2, len(parts))}
    return {p for p in found if p in MODULES and not importer.startswith(p + ".") and importer != p}


def _edges(*, in_functions: bool = True) -> dict[str, set[str]]:
    """Who imports whom; importing a submodule counts as importing its packages too (their ``__init__`` runs)."""
    edges: dict[str, set[str]] = {}
    for module in MODULES:
        targets = {_target(name) for name, nested in _imports(module) if in_functions or not nested}
        targets |= {p for t in set(targets) if t for p in _packages(t, module)}
        edges[module] = {t for t in targets if t and t != module}
    return edges


def _layer(module: str) -> str | None:
    """The layer of a zoo module: named in FLAT, else its folder's, else (a flat module) the contract."""
    if module in FLAT:
        return FLAT[module]
    folder = module.split(".")[1]
    if (ROOT / "zoo" / folder).is_dir():
        return FOLDERS.get(folder)
    return "contract"


def _wing(module: str) -> str | None:
    """The wing a module belongs to (``zoo.training``, ``zoo.inference``, ``zoo.benchmark``); None for the rest."""
    if _layer(module) != "wings":
        return None
    return ".".join(module.split(".")[:2])


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
    assert "zoo._core.model" in edges["zoo._core.build"]  # inside build_recipe, deferring torch
    assert "zoo.hookspecs" in edges["zoo._registry.plugin_host"]  # `from zoo import hookspecs`
    assert "zoo._runtime" in edges["zoo.benchmark._workload"]  # a submodule's package runs first
    assert "zoo.benchmark" not in edges["zoo.benchmark._runner"]  # but not the importer's own package
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_counting_imports_inside_functions():
    assert _cycles(_edges()) == []


def test_every_zoo_module_has_a_layer():
    unplaced = [m for m in MODULES if not m.startswith("zoo.plugins") and _layer(m) is None]
    assert unplaced == [], "add their folder to FOLDERS here and to docs/architecture.md"


def test_every_folder_of_zoo_is_a_layer():
    folders = {p.name for p in (ROOT / "zoo").iterdir() if (p / "__init__.py").is_file()}
    assert folders - set(FOLDERS) == set(), "add the folder to FOLDERS here and to docs/architecture.md"
    assert set(FOLDERS.values()) | set(FLAT.values()) | {"contract"} == set(LAYERS)


def test_wings_do_not_import_each_other():
    """Training, inference and the benchmark share the runtime floor below them, not each other."""
    found = [f"{module} imports {target}" for module, targets in _edges().items() if _wing(module)
             for target in targets if _wing(target) not in (None, _wing(module))]
    assert found == []


def test_no_module_imports_a_higher_layer():
    order = list(LAYERS)
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


# A test file is named by what it covers: a layer or wing (core, registry, modelfile, runtime, training,
# inference, bench, choose, cli), the plugins and their contract, or the project around them.
TEST_PREFIXES = ("architecture", "core", "registry", "modelfile", "runtime", "training", "inference", "bench", "choose",
                 "cli", "plugin", "contract", "conformance", "docs", "packaging", "tools", "gpu")


def test_every_test_file_is_named_by_the_layer_it_covers():
    stray = [p.name for p in (ROOT / "tests").glob("test_*.py")
             if p.stem.removeprefix("test_").split("_")[0] not in TEST_PREFIXES]
    assert stray == [], f"name them test_<one of {', '.join(TEST_PREFIXES)}>_*.py"
