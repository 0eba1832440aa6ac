"""One working hook (a backbone) beside a failing one (heads): the working one must still count."""
from __future__ import annotations

from zoo import hookimpl
from zoo.parts import BackbonePart


def _halfnet():
    from zoo_faulty.modules import Liar

    return Liar("none")


@hookimpl
def zoo_backbones():
    yield BackbonePart("halfnet", _halfnet, "provided by a plugin whose other hook fails")


@hookimpl
def zoo_heads():
    raise KeyError("heads.yaml")
