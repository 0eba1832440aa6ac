"""Global options (``--debug``, ``--registry FILE``) taken after the subcommand too, as git and pip take theirs.

``zoo build resnet50+cls10 --debug`` is ``zoo --debug build resnet50+cls10``: before click parses anything, such
options after the subcommand move in front of it. A ``--`` ends the options; a subcommand that defines an
option of the same name keeps its own.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

FLAGS = ("--debug",)
VALUED = ("--registry",)


def _command_at(args: Sequence[str]) -> int | None:
    """Index of the subcommand among ``args``: the first word that is neither a group option nor its value."""
    index = 0
    while index < len(args):
        word = args[index]
        if word == "--":
            return None
        if word in VALUED:
            index += 2
        elif word.startswith("-"):
            index += 1
        else:
            return index
    return None


def hoist(args: Sequence[str], options_of: Callable[[str], Collection[str]] = lambda name: ()) -> list[str]:
    """``args`` with the global options found after the subcommand moved before it; ``options_of(command)``
    names the options a subcommand defines itself, which stay where they are."""
    at = _command_at(args)
    if at is None:
        return list(args)
    own = options_of(args[at])
    moved: list[str] = []
    kept: list[str] = []
    rest = list(args[at + 1:])
    index = 0
    while index < len(rest):
        word = rest[index]
        name = word.split("=", 1)[0]
        if word == "--":
            kept += rest[index:]
            break
        if word in FLAGS and word not in own:
            moved.append(word)
        elif word in VALUED and word not in own and index + 1 < len(rest):
            moved += rest[index:index + 2]
            index += 1
        elif "=" in word and name in VALUED and name not in own:
            moved.append(word)
        else:
            kept.append(word)
        index += 1
    return [*args[:at], *moved, args[at], *kept]
