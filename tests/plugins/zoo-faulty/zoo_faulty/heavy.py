"""Imports torch when loaded: every `zoo list` pays for it, and `zoo plugins` should say so."""
from __future__ import annotations

import torch  # noqa: F401  (the mistake: import it inside the builders)

from zoo import hookimpl
from zoo.parts import FreezePolicyPart


@hookimpl
def zoo_freeze_policies():
    yield FreezePolicyPart("heavyfreeze", lambda stages, argument: [], "freezes nothing, loaded expensively")
