"""What every command shares: the registry of this invocation, and printing data as JSON or as text."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from zoo._registry.registry import Registry


def registry(ctx: click.Context, strict: bool | None = None) -> Registry:
    """One registry per invocation (the environment is read afresh), from ``--registry`` or $ZOO_REGISTRY.

    Shell completion parses the command line without running the group, so the option is read from the
    root context's parameters when the group has not stored it. ``strict=False`` lists failing plugins
    even under ZOO_STRICT_PLUGINS=1 (`zoo plugins`).
    """
    from zoo._registry.registry import Registry  # deferred: `zoo --help` needs no registry

    root = ctx.find_root()
    if root.obj is None:
        root.obj = {"registry_file": (root.params or {}).get("registry_file")}
    if "registry" not in root.obj:
        root.obj["registry"] = Registry.from_environment(root.obj["registry_file"], strict=strict)
    return root.obj["registry"]


def device_option(command: Any) -> Any:
    """``--device``, the same in every command that runs a model (checked by `zoo._runtime.devices.choose_device`)."""
    return click.option("--device", default=None, metavar="DEVICE",
                        help="auto (default: CUDA, then MPS, else the CPU), cpu, cuda, cuda:N or mps; "
                             "ZOO_DEVICE sets the default.")(command)


def emit(data: Any, as_json: bool, text: str | None = None) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else text)
