"""`zoo plugin new NAME`: start a plugin package from zoo's scaffold (`zoo.scaffold`).

Registered on the `zoo` group by `zoo.cli`; a thin layer over `zoo.scaffold.new_plugin` (no torch).
"""
from __future__ import annotations

import click

from zoo.cli._context import emit
from zoo.cli._format import format_new_plugin


@click.group()
def plugin() -> None:
    """Write zoo plugins: `zoo plugin new NAME` starts one that installs and passes its tests at once."""


@plugin.command("new")
@click.argument("name")
@click.option("--dir", "folder", default=".", show_default=True, type=click.Path(file_okay=False),
              help="The folder in which the package folder zoo-NAME is written.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def new(name: str, folder: str, as_json: bool) -> None:
    """Write the package zoo-NAME: pyproject with the entry point, a backbone, a head reading table targets
    and naming its outputs, a freeze policy, a command, conformance tests and a README."""
    from zoo.scaffold import names, new_plugin

    path = new_plugin(name, folder)
    result = {**names(name), "path": str(path), "files": sorted(str(p.relative_to(path)) for p in path.rglob("*")
                                                                  if p.is_file())}
    emit(result, as_json, None if as_json else format_new_plugin(result))
