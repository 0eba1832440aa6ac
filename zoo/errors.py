"""The one exception type for mistakes a user can make, and the warning for clashes."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class ZooError(Exception):
    """A mistake in what the user asked for. The CLI prints it as one line and exits with 2."""


class EveryProcessError(ZooError):
    """A mistake every process that torchrun started finds alike (more processes than images): the CLI lets
    rank 0 alone print it, so it is one line however many processes there are."""


class SpecError(ZooError):
    """A model spec string that does not follow the grammar."""


class ZooWarning(UserWarning):
    """Something the user should know but that does not stop the work (a name clash, a dropped key)."""


class ZooNotice(ZooWarning):
    """What zoo chose for the user where nothing is wrong (a head starting fresh, training from random
    weights): worth one line, and left out where the user asked for quiet (``zoo train --quiet``)."""


def suggest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean x, y?)' for close matches, or '' when none is close."""
    choices = list(choices)
    folded = [c for c in choices if c.lower() == word.lower() and c != word]  # ALL for all: a match, not a stranger
    close = [*folded, *(c for c in difflib.get_close_matches(word, choices, n=3, cutoff=0.6) if c not in folded)][:3]
    return f" (did you mean {', '.join(close)}?)" if close else ""
