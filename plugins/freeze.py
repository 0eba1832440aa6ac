"""Built-in freeze policies. Each chooses backbone stages to freeze; the heads always train."""
from __future__ import annotations

from collections.abc import Sequence

from zoo import hookimpl
from zoo.parts import FreezePolicyPart


def _none(stages: Sequence[str], _: None) -> list[str]:
    return []


def _all(stages: Sequence[str], _: None) -> list[str]:
    return list(stages)


def _before(stages: Sequence[str], stage: str) -> list[str]:
    return list(stages[: stages.index(stage)])


def _last(stages: Sequence[str], count: int) -> list[str]:
    return list(stages[: max(len(stages) - count, 0)])


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
