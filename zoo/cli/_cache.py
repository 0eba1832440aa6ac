"""`zoo cache list` and `zoo cache clear`: seeing and clearing what zoo keeps under ``$ZOO_CACHE_DIR``.

Registered on the `zoo` group by `zoo.cli`; a thin layer over `zoo._runtime.cache` (which imports no torch).
"""
from __future__ import annotations

import click

from zoo._runtime.cache import KINDS
from zoo.cli._context import emit
from zoo.cli._format import format_cache_cleared, format_cache_entries

KIND_CHOICE = click.Choice(KINDS)


@click.group()
def cache() -> None:
    """What zoo keeps under $ZOO_CACHE_DIR (default ~/.cache/zoo): feature caches, timm's model list,
    downloads; see it and clear it."""


@cache.command("list")
@click.argument("what", required=False, type=KIND_CHOICE, metavar="[WHAT]")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_entries(what: str | None, as_json: bool) -> None:
    """Each cache file: its kind, for which model and data, size and age (WHAT: one kind only: features,
    choose, weights, lists, partial, other)."""
    from zoo._runtime.cache import cache_entries
    from zoo.files import cache_dir

    entries = [e.as_dict() for e in cache_entries(what)]
    emit(entries, as_json, None if as_json else format_cache_entries(entries, str(cache_dir())))


@cache.command("clear")
@click.argument("what", required=False, type=KIND_CHOICE, metavar="[WHAT]")
@click.option("--older-than", default=None, metavar="AGE", help="Only files last written longer ago: 12h, 7d, 2w.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def clear(what: str | None, older_than: str | None, as_json: bool) -> None:
    """Remove the cache files zoo made (WHAT: one kind only), without asking; print each and the bytes freed.

    Files zoo did not make, links, and anything outside the cache directory are never removed.
    """
    from zoo._runtime.cache import clear_cache, parse_age

    if older_than is not None:
        parse_age(older_than)  # a bad age is an error before anything is removed
    removed = [e.as_dict() for e in clear_cache(what, older_than)]
    emit(removed, as_json, None if as_json else format_cache_cleared(removed))
