"""`zoo plugin new NAME`: a package that installs, shows in `zoo plugins` and passes its own tests at once."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zoo.contract import CONTRACT_VERSION
from zoo.errors import ZooError
from zoo.scaffold import new_plugin


@pytest.mark.slow
def test_a_new_plugin_installs_shows_in_zoo_plugins_and_passes_its_own_conformance_tests(tmp_path, run_zoo):
    done = run_zoo("plugin", "new", "demo", "--dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    package = tmp_path / "zoo-demo"
    assert "tests/test_conformance.py" in done.stdout and str(package) in done.stdout
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(package)], check=True)

    listed = run_zoo("plugins", "--json", site=site)
    demo = next(r for r in json.loads(listed.stdout) if r["name"] == "demo")
    assert (demo["distribution"], demo["status"], demo["contract"]) == ("zoo-demo", "ok", CONTRACT_VERSION)
    assert demo["provides"] == {"backbone": ["demo/demo"], "command": ["demo"], "freeze": ["demo/stem"],
                                "head": ["demo/reg"]}
    assert run_zoo("demo", site=site).stdout.startswith("backbone demo/demo")

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=package,
                           env=env, capture_output=True, text=True)
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert "9 passed" in tests.stdout


def test_new_plugin_writes_every_file_with_the_names_filled_in(tmp_path):
    package = new_plugin("my_net", tmp_path)
    assert package == tmp_path / "zoo-my-net"
    files = sorted(str(p.relative_to(package)) for p in package.rglob("*") if p.is_file())
    assert files == ["README.md", "pyproject.toml", "tests/test_conformance.py", "zoo_my_net/__init__.py",
                     "zoo_my_net/modules.py"]
    text = "".join(p.read_text() for p in package.rglob("*") if p.is_file())
    assert "{{" not in text
    assert 'my_net = "zoo_my_net"' in (package / "pyproject.toml").read_text()
    assert f'ZOO_CONTRACT = "{CONTRACT_VERSION}"' in (package / "zoo_my_net" / "__init__.py").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["zoo-my-net"]  # no staging folder left behind


def test_every_template_ships_in_the_wheel():
    """pyproject's package data names every template, so `zoo plugin new` works from a wheel too."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    from fnmatch import fnmatch

    from zoo.scaffold import TEMPLATE

    root = TEMPLATE.parent.parent  # zoo/
    globs = tomllib.loads((root.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["zoo"]
    templates = [p.relative_to(root).as_posix() for p in TEMPLATE.rglob("*") if p.is_file()]
    assert len(templates) == 5
    assert [t for t in templates if not any(fnmatch(t, g) and t.count("/") == g.count("/") for g in globs)] == []


def test_an_existing_folder_is_left_alone_and_the_error_is_one_line(tmp_path, run_zoo):
    (tmp_path / "zoo-demo").mkdir()
    (tmp_path / "zoo-demo" / "mine.txt").write_text("keep me")
    done = run_zoo("plugin", "new", "demo", "--dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"zoo: error: {tmp_path / 'zoo-demo'} already exists; choose another "
                                                "name or folder (nothing was written)"]
    assert [p.name for p in (tmp_path / "zoo-demo").iterdir()] == ["mine.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["zoo-demo"]


@pytest.mark.parametrize("name", ["Demo", "9lives", "my-net", "", "a" * 40])
def test_a_name_that_cannot_be_a_plugin_name_is_refused(tmp_path, name):
    with pytest.raises(ZooError, match="must be lowercase letters, digits and _ starting with a letter"):
        new_plugin(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_folder_is_one_clear_error(tmp_path, run_zoo):
    done = run_zoo("plugin", "new", "demo", "--dir", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "is not a folder" in done.stderr and "Traceback" not in done.stderr
