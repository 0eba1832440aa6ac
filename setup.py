"""Which packages a wheel holds: every package under zoo/, and plugins/ installed as zoo.plugins.

pyproject.toml can ask setuptools to find packages, or list them, but not to find them in a folder whose
package has another name (plugins/ is zoo.plugins, see its package-dir); a hand-written list forgets new
packages. Found here, a new package in either folder is installed without being named anywhere.
"""
from __future__ import annotations

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
PLUGINS = "zoo.plugins"  # the import name of the top-level plugins/ folder

setup(packages=[*find_packages(str(HERE), include=["zoo", "zoo.*"]), PLUGINS,
                *(f"{PLUGINS}.{name}" for name in find_packages(str(HERE / "plugins")))])
