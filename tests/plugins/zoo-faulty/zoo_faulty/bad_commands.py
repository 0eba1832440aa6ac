"""A command hook that fails after adding a command, beside a working freeze-policy hook."""
from __future__ import annotations

import click

from zoo import hookimpl
from zoo.parts import FreezePolicyPart


@hookimpl
def zoo_commands(cli):
    @cli.command("half-added")
    def half_added() -> None:
        click.echo("must not be reachable: its hook failed")

    raise RuntimeError("commands table is corrupt")


@hookimpl
def zoo_freeze_policies():
    yield FreezePolicyPart("stillworks", lambda stages, argument: [], "from a plugin whose command hook fails")
