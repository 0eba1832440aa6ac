"""Names for a head's outputs: one rule for every head that declares them, used by save, build and predict.

A head's part says how many names its outputs take (`zoo.parts.HeadPart.labels`), and `name_count` alone
turns that into a count: ``"classes"`` one per class, where ``cls1``, a single logit for class 1, is a
binary classifier of two classes and takes two names (class 0, then class 1); ``"size"`` one per unit of
the head's size (``det91``: 91 box classes, the background first); a number, a fixed count (``agegender``:
2 genders); None, no names.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from zoo import contract
from zoo.errors import ZooError

if TYPE_CHECKING:
    from zoo._core.recipe import ResolvedHead


def name_count(head: ResolvedHead) -> int | None:
    """How many names ``head``'s outputs take, or None when it names nothing."""
    declared, size = head.part.labels, head.ref.size
    if declared == "classes":
        return 2 if size == 1 else size
    if declared == "size":
        return size
    return declared


def named_heads(heads: Iterable[ResolvedHead]) -> dict[str, int]:
    """Heads whose outputs take names, by key, with how many names each takes."""
    return {head.key: count for head in heads if (count := name_count(head)) is not None}


def check_names(heads: Sequence[ResolvedHead], key: str | None, names: Sequence[str], spec: str) -> tuple[str, list[str]]:
    """``names`` for head ``key`` (None: the first head that takes names), checked; returns (key, names)."""
    counts = named_heads(heads)
    if key is None:
        if not counts:
            raise ZooError(f"{spec} has no head whose outputs take names; "
                           "cls<N>, det<N> and agegender do")
        key = next(iter(counts))
    keys = [head.key for head in heads]
    if key not in keys:
        raise ZooError(f"labels for head {key!r}, which {spec} lacks; heads: {', '.join(keys)}")
    if key not in counts:
        if _undeclared_before_1_1(heads, key):  # contract 1.0 took names for any head: until 2.0, with a warning
            return key, [str(name) for name in names]
        named = ", ".join(counts) or "none"
        raise ZooError(f"head {key} does not name its outputs; heads that take names: {named} "
                       "(a head that takes names says so: declare HeadPart(labels=...) in its plugin)")
    names = [str(name) for name in names]
    if len(names) != counts[key]:
        binary = " (cls1 is binary: class 0, then class 1)" if counts[key] == 2 else ""
        raise ZooError(f"{len(names)} names given for head {key}, which takes {counts[key]}{binary}; "
                       "give one a line, in order")
    return key, names


def _undeclared_before_1_1(heads: Sequence[ResolvedHead], key: str) -> bool:
    """Whether head ``key`` comes from a plugin written before heads declared their names; warns if so."""
    part = next(head.part for head in heads if head.key == key)
    if part.labels is not None or not contract.before(part.contract, "1.1"):
        return False
    contract.deprecated(f"names for head {key}, whose part {part.qualified_name} declares none,",
                        "declare HeadPart(labels='size', 'classes' or a count) in its plugin", stacklevel=5)
    return True
