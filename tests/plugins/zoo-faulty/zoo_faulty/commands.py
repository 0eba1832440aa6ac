"""Adds a command to `zoo`, as a package adding `zoo export-foo` would."""
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
