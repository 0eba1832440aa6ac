"""The wheel: what `pip install .` gives a user, away from the sources, has every package and file zoo needs.

The wheel is built from a copy of the sources (a build writes build/ and *.egg-info beside them), installed
with pip into a folder of its own, and run in fresh processes from elsewhere. Those processes start without
site processing (``python -S``): the editable install of this checkout hooks the import system from a .pth
file and would quietly supply anything the wheel lacks. Dependencies come from the environment's
site-packages, put on PYTHONPATH after the installed wheel.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from drawn_data import class_folders

pytestmark = pytest.mark.slow  # builds and installs a wheel, then trains: about half a minute

ROOT = Path(__file__).resolve().parent.parent
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", "registry.toml", "zoo", "plugins")
PIP = (sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input")


def _copy_sources(target: Path) -> Path:
    for name in BUILD_INPUTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """zoo's wheel, built offline without build isolation from a copy of the sources."""
    sources = _copy_sources(tmp_path_factory.mktemp("sources"))
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([*PIP, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
                    "--wheel-dir", str(dist), str(sources)], check=True, timeout=300)
    (built,) = dist.glob("zoo-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel installed by pip into a folder of its own (packages, and the script in bin/)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([*PIP, "install", "--quiet", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
                   check=True, timeout=300)
    return target


def _run(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -S ARGS`` from ``cwd``, importing zoo from ``installed`` and nothing from the sources."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join([str(installed), sysconfig.get_paths()["purelib"]])
    return subprocess.run([sys.executable, "-S", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def _zoo(installed: Path, cwd: Path, *args: str) -> str:
    """The installed `zoo` console script; its stdout, after it exited 0."""
    result = _run(installed, cwd, str(installed / "bin" / "zoo"), *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_wheel_holds_every_package_and_the_packaged_registry(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    folders = {"zoo": ROOT / "zoo", "zoo/plugins": ROOT / "plugins"}
    expected = {f"{prefix}/{init.parent.relative_to(folder).as_posix()}/__init__.py".replace("/./", "/")
                for prefix, folder in folders.items() for init in folder.rglob("__init__.py")}
    assert {"zoo/training/__init__.py", "zoo/plugins/heads/__init__.py"} <= expected
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    assert "zoo/registry.toml" in names
    assert not any(name.startswith(("plugins/", "tests/")) for name in names)


def test_the_installed_wheel_imports_from_itself_not_the_sources(installed, tmp_path):
    probe = ("import json, zoo, zoo.training, zoo.plugins.heads.plugin as heads; "
             "from zoo._registry import catalogue as _catalogue; "
             "print(json.dumps({'zoo': zoo.__file__, 'training': zoo.training.__file__, 'heads': heads.__file__, "
             "'fit': callable(zoo.fit), 'registry': _catalogue.PACKAGED.is_file()}))")
    result = _run(installed, tmp_path, "-c", probe)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found.pop("fit") is True and found.pop("registry") is True
    for name, file in found.items():
        assert Path(file).is_relative_to(installed), f"{name} imported from {file}"


def test_the_installed_wheel_trains_and_predicts(installed, tmp_path):
    data = class_folders(tmp_path / "data", per_class=3)
    model = tmp_path / "model.safetensors"
    listed = _zoo(installed, tmp_path, "list", "resnet1*", "--json")
    assert "resnet18" in listed
    trained = json.loads(_zoo(installed, tmp_path, "train", "resnet18+cls2", str(data), "-o", str(model),
                              "--epochs", "1", "-b", "4", "--img-size", "32", "--json"))
    assert trained["best_epoch"] == 1 and model.is_file()
    image = next((data / "val" / "red").glob("*.png"))
    answers = json.loads(_zoo(installed, tmp_path, "predict", str(model), str(image), "--top-k", "2", "--json"))
    assert json.dumps(answers).count("red") >= 1 and json.dumps(answers).count("blue") >= 1
