"""The whole plugin contract: three hooks returning declarative parts from `zoo.parts`, and one adding commands.

A plugin is a module (or object) named by an entry point in the group ``zoo``::

    [project.entry-points.zoo]
    myplugin = "my_package.zoo_plugin"

and implements any of these hooks with ``@zoo.hookimpl``. Keep the module light: import torch
inside the builders, never at the top, so that listing stays fast.
"""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("zoo")
hookimpl = pluggy.HookimplMarker("zoo")


@hookspec
def zoo_backbones():
    """Return an iterable of `zoo.parts.BackbonePart`: feature extractors with named stages."""


@hookspec
def zoo_heads():
    """Return an iterable of `zoo.parts.HeadPart`: task heads that attach to a backbone's features."""


@hookspec
def zoo_freeze_policies():
    """Return an iterable of `zoo.parts.FreezePolicyPart`: rules choosing which backbone stages are frozen."""


@hookspec
def zoo_commands(cli):
    """Add commands to the `zoo` click group: ``@cli.command()`` or ``cli.add_command(...)``."""
