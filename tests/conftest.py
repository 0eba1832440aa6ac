from __future__ import annotations

import os

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
