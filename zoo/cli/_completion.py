"""Shell completion of specs and freeze policies, from the registry's cached lists: no torch is imported.

Enable it with ``eval "$(_ZOO_COMPLETE=bash_source zoo)"`` (zsh_source, fish_source for other shells).
A word that looks like a file (``./``, ``/``, ``~``, ``.safetensors``) completes as a path instead.
"""
from __future__ import annotations

from typing import Any

import click
from click.shell_completion import CompletionItem

from zoo.cli._context import registry

PATH_HINTS = ("/", ".", "~")
MAX_ITEMS = 200


def _names(ctx: click.Context, kind: str, prefix: str) -> list[tuple[str, str]]:
    """(bare name, usage) of parts of ``kind`` whose bare or qualified name starts with ``prefix``."""
    try:
        rows = registry(ctx).find(f"{prefix}*", kind)
    except Exception:  # noqa: BLE001 - completion must never print a traceback into the shell
        return []
    seen, result = set(), []
    for row in rows:
        name = row["name"] if "/" in prefix else row["name"].split("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            result.append((name, row["usage"]))
    return result[:MAX_ITEMS]


def complete_spec(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """backbone names and presets, then after each ``+`` head names: ``resnet50+cl`` -> ``resnet50+cls``."""
    if incomplete.startswith(PATH_HINTS) or incomplete.lower().endswith(".safetensors"):
        return [CompletionItem(incomplete, type="file")]
    head, plus, last = incomplete.rpartition("+")
    if not plus:
        items = [CompletionItem(name) for name, _ in _names(ctx, "backbone", last)]
        return items + [CompletionItem(name, help=usage) for name, usage in _names(ctx, "preset", last)]
    stem = head + plus
    return [CompletionItem(stem + usage.split("<", 1)[0].split("[", 1)[0], help=usage)
            for _, usage in _names(ctx, "head", last)]


def complete_freeze(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Freeze policies as they are written on the command line: ``none``, ``all``, ``last:``, ``before:``."""
    items = []
    for _, usage in _names(ctx, "freeze", incomplete.split(":", 1)[0]):
        word = usage.split(":", 1)[0] + (":" if ":" in usage else "")
        items.append(CompletionItem(word, help=usage))
    return items
