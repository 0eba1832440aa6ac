"""Parts whose builders fail: a missing optional dependency, a backbone without stages, a backbone whose
features break its own declaration, a head that is a plain module, a freeze policy that returns None."""
from __future__ import annotations

from zoo import hookimpl
from zoo.parts import BackbonePart, FreezePolicyPart, HeadPart, Option

FAULTS = ("channels", "inputs", "keys", "flat")


def _needs_dependency():
    import zoo_faulty_optional_dependency  # noqa: F401  (not installed, as an optional extra would be)


def _stageless():
    from zoo_faulty.modules import Stageless

    return Stageless()


def _liar(fault: str = "channels"):
    from zoo_faulty.modules import Liar

    return Liar(fault)


def _plain_linear(features, size, **options):
    from torch import nn

    return nn.Linear(features.num_features, size)


def _forgets_to_return(stages, argument):
    return None


@hookimpl
def zoo_backbones():
    yield BackbonePart("needsdep", _needs_dependency, "needs a package that is not installed")
    yield BackbonePart("stageless", _stageless, "a Backbone that declares no stages")
    yield BackbonePart("liar", _liar, "features that contradict the declared stages",
                       options=(Option("fault", str, "channels", "which promise to break: " + ", ".join(FAULTS)),))


@hookimpl
def zoo_heads():
    yield HeadPart("linear", _plain_linear, "returns a plain nn.Linear, not a zoo.head.Head", size_label="classes")


@hookimpl
def zoo_freeze_policies():
    yield FreezePolicyPart("nothing", _forgets_to_return, "returns None instead of stage names")
