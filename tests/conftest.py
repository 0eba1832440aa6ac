from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory):
    """Keep the suite's caches (timm's model list) out of the user's home."""
    previous = os.environ.get("ZOO_CACHE_DIR")
    os.environ["ZOO_CACHE_DIR"] = str(tmp_path_factory.mktemp("zoo-cache"))
    for variable in ("ZOO_REGISTRY", "ZOO_DISABLE_PLUGINS", "ZOO_STRICT_PLUGINS"):
        os.environ.pop(variable, None)
    yield
    if previous is None:
        os.environ.pop("ZOO_CACHE_DIR", None)
    else:
        os.environ["ZOO_CACHE_DIR"] = previous


PLUGIN_PACKAGES = Path(__file__).parent / "plugins"


def _install(tmp_path_factory: pytest.TempPathFactory, *packages: str) -> Path:
    """Install test plugin packages with pip (entry points and all) into a directory of their own."""
    target = tmp_path_factory.mktemp("plugin-site")
    for package in packages:
        build_dir = tmp_path_factory.mktemp(f"build-{package}")
        shutil.copytree(PLUGIN_PACKAGES / package, build_dir, dirs_exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
             "--no-index", "--target", str(target), str(build_dir)],
            check=True,
        )
    return target


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory: pytest.TempPathFactory):
    """$ZOO_CACHE_DIR of the test module's own, offline: its first run measures and builds everything."""
    folder = tmp_path_factory.mktemp("module-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZOO_CACHE_DIR", str(folder))
        patch.setenv("ZOO_OFFLINE", "1")
        yield folder


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example and broken plugin packages, installed by pip into a directory of their own."""
    return _install(tmp_path_factory, "zoo-example", "zoo-broken")


@pytest.fixture(scope="session")
def contract_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Packages testing the plugin contract: rival names (zoo-rivals) and faulty plugin code (zoo-faulty)."""
    return _install(tmp_path_factory, "zoo-rivals", "zoo-faulty")


@pytest.fixture
def with_plugins(plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the installed test plugins visible to entry-point discovery in this process."""
    monkeypatch.syspath_prepend(str(plugin_site))
    return plugin_site


def _run_zoo(*args: str, env: dict[str, str] | None = None, site: Path | list[Path] | None = None) -> subprocess.CompletedProcess:
    """Run the installed `zoo` console script in a fresh process, with the plugins installed in ``site``."""
    environment = {**os.environ, **(env or {})}
    if site is not None:
        sites = [str(s) for s in (site if isinstance(site, list) else [site])]
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [*sites, environment.get("PYTHONPATH", "")]))
    script = Path(sys.executable).with_name("zoo")
    return subprocess.run([str(script), *args], capture_output=True, text=True, env=environment, timeout=600)


@pytest.fixture
def run_zoo():
    """``run_zoo(*args, env=..., site=...)``: the `zoo` console script in a fresh process."""
    return _run_zoo


def _train_steps(model, inputs, targets, steps: int = 4, lr: float = 1e-3) -> list[float]:
    """Adam over the trainable parameters for a few steps on one batch; the loss of each step."""
    import torch

    model.train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        loss = model.loss(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.fixture
def train_steps():
    """``train_steps(model, inputs, targets, steps=4)``: a real training loop, returning each step's loss."""
    return _train_steps


@pytest.fixture
def no_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list:
    """Offline-capable caches of the test's own (torch.hub, Hugging Face, zoo) and a guard on every socket.

    Returns the list of connections attempted: each is refused and recorded, so a test can assert none was.
    """
    import socket

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    attempts: list = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("the tests have no network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts
