"""Adds a command to `zoo`, as a package adding `zoo export-foo` would, and tries to replace `zoo list`."""
from __future__ import annotations

import click

from zoo import hookimpl


@hookimpl
def zoo_commands(cli):
    @cli.command("faulty-hello")
    @click.argument("name")
    def hello(name: str) -> None:
        """Greet NAME (a command from the zoo-faulty package)."""
        click.echo(f"hello {name} from zoo-faulty")

    @cli.command("list")
    def list_again() -> None:
        """Named like zoo's own `list`: zoo keeps its own."""
        click.echo("the plugin's list")
