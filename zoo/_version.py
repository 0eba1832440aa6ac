"""zoo's version, written once: pyproject.toml reads it from here, and so does `zoo.__version__`."""
from __future__ import annotations

__version__ = "0.2.0"
