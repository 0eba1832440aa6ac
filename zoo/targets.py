"""How a head's training targets are read from a data set: the part of the head contract `zoo train` uses.

A `HeadPart` declares a `TargetReader` (``targets=``) so that any head, a third party's included, can learn
from the formats zoo reads: one folder per class, a table (CSV or JSON lines: an ``image`` column plus the
head's own columns), or COCO JSON. A head without one can still train from the user's own DataLoader.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SOURCES = ("folders", "table", "coco")
Row = Mapping[str, Any]


@dataclass(frozen=True)
class TargetReader:
    """What a head learns from, and how one annotation becomes its target.

    ``sources``: the data formats the head can learn from (``folders``: the target is the class index
    of the image's folder; ``coco``: ``{"boxes", "labels"}`` in pixels; ``table``: ``read`` below).
    ``columns(size)``: the columns a table row needs for a head of this size (``kp5``: x0, y0 ... y4).
    ``read(row, size, image_size)``: one row's target (a number, a tensor or a dict of them), given
    the image's (width, height); a bad value raises ``ValueError`` with a message for people.
    ``spatial``: the targets are positions in the image, so training uses no geometric augmentation.
    """

    sources: tuple[str, ...] = ("table",)
    columns: Callable[[int | None], Sequence[str]] = lambda size: ()
    read: Callable[[Row, int | None, tuple[int, int]], Any] | None = None
    spatial: bool = False

    def __post_init__(self) -> None:
        unknown = [s for s in self.sources if s not in SOURCES]
        if not self.sources or unknown:
            raise ValueError(f"target sources must be among {', '.join(SOURCES)}, not {self.sources}")
        if "table" in self.sources and self.read is None:
            raise ValueError("a target reader for tables needs read(row, size, image_size)")
