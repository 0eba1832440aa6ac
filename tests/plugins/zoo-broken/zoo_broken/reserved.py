"""A head that declares its own ``weight`` option, which zoo reserves for the loss weight."""
from zoo import hookimpl
from zoo.parts import HeadPart, Option


def _build(features, size, **options):  # never called: the part is refused
    raise AssertionError("unreachable")


@hookimpl
def zoo_heads():
    yield HeadPart("weighted", _build, "a head with its own weight option", options=(Option("weight", float, 0.5),))
