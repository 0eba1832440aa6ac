"""A head ``rival/cls`` and a freeze policy ``rival/all``: the built-ins' bare names, taken only when preferred."""
from __future__ import annotations

from zoo import hookimpl
from zoo.parts import FreezePolicyPart, HeadPart


def _classifier(features, size, **options):
    from zoo_rivals.modules import RivalHead

    return RivalHead(features, size)


def _every_stage_but_none(stages, argument):
    return []  # unlike zoo/all: freezes nothing, so a test can tell which policy ran


@hookimpl
def zoo_heads():
    yield HeadPart("cls", _classifier, "a rival classifier named like the built-in", size_label="classes")
    yield HeadPart("twin", _classifier, "a head that plugin twin offers too", size_label="classes")


@hookimpl
def zoo_freeze_policies():
    yield FreezePolicyPart("all", _every_stage_but_none, "named like the built-in; freezes nothing")
