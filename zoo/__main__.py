"""``python -m zoo`` (and ``torchrun -m zoo train ...``): the `zoo` command, also where no console script is on PATH."""
from __future__ import annotations

from zoo.cli import main

if __name__ == "__main__":
    main()
