"""``python -m zoo``: the `zoo` command, for environments without the console script on PATH."""
from __future__ import annotations

from zoo.cli import main

if __name__ == "__main__":
    main()
