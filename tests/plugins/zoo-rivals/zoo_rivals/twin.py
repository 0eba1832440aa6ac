"""A second plugin offering head ``twin``: a bare name no built-in and no preference decides."""
from __future__ import annotations

from zoo import hookimpl
from zoo.parts import HeadPart


def _classifier(features, size, **options):
    from zoo_rivals.modules import RivalHead

    return RivalHead(features, size)


@hookimpl
def zoo_heads():
    yield HeadPart("twin", _classifier, "the other twin", size_label="classes")
