"""Built-in freeze policies. Each chooses backbone stages, or parameters, to freeze; the heads always train."""
from __future__ import annotations

from collections.abc import Sequence

from zoo import hookimpl
from zoo.errors import ZooError
from zoo.parts import FreezePolicyPart

ZOO_CONTRACT = "1.1"  # the zoo.contract version these parts are written against


def _none(stages: Sequence[str], _: None) -> list[str]:
    return []


def _all(stages: Sequence[str], _: None) -> list[str]:
    return list(stages)


def _before(stages: Sequence[str], stage: str) -> list[str]:
    return list(stages[: stages.index(stage)])


def _last(stages: Sequence[str], count: int) -> list[str]:
    if count > len(stages):  # more than there are would silently train everything
        raise ZooError(f"freeze policy last:{count}: the backbone has {len(stages)} stages ({', '.join(stages)}); "
                       f"N goes from 0 to {len(stages)}")
    return list(stages[: len(stages) - count])


def _all_but_norms(stages, _: None) -> list[str]:
    from zoo.freezing import is_norm, parameters_where

    return parameters_where(stages, lambda name, parameter, module: not is_norm(module))


def _all_but_biases(stages, _: None) -> list[str]:
    from zoo.freezing import parameters_where

    return parameters_where(stages, lambda name, parameter, module: name.rpartition(".")[2] != "bias")


@hookimpl
def zoo_freeze_policies():
    yield FreezePolicyPart("none", _none, "everything trains (fine-tuning)", namespace="zoo")
    yield FreezePolicyPart("all", _all, "the whole backbone is frozen, the heads train (feature extraction)", namespace="zoo")
    yield FreezePolicyPart(
        "before", _before, "every stage before STAGE is frozen; STAGE, later stages and the heads train "
        "(a bare stage name, --freeze=layer4, means before:layer4)", namespace="zoo", argument="stage",
    )
    yield FreezePolicyPart("last", _last, "the last N stages and the heads train, earlier stages are frozen",
                           namespace="zoo", argument="int")
    yield FreezePolicyPart("norms", _all_but_norms, "only the backbone's normalisation layers (BatchNorm, LayerNorm, "
                           "GroupNorm) and the heads train; their statistics update", namespace="zoo",
                           chooses="parameters")
    yield FreezePolicyPart("bias", _all_but_biases, "only the backbone's biases and the heads train (BitFit)",
                           namespace="zoo", chooses="parameters")
