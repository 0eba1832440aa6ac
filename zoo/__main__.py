"""``python -m zoo`` (what ``torchrun -m zoo train ...`` runs): the zoo command."""
from __future__ import annotations

from zoo.cli import main

main()
