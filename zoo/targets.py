"""How a head's training targets are read from a data set: the part of the head contract `zoo train` uses.

A `HeadPart` declares a `TargetReader` (``targets=``) so that any head, a third party's included, can learn
from the formats zoo reads: one folder per class, a table (CSV or JSON lines: an ``image`` column plus the
head's own columns), or COCO JSON. A head without one can still train from the user's own DataLoader.

Since contract 1.1 a table reader is told where it reads through a `TargetContext`: the head's key and
options (two heads of one kind can read different columns), the table's folder (a mask path in a column
resolves as ``image`` does) and the image's size. A reader may batch its own targets (``collate``), so masks
or lists of boxes need not share one shape. The 1.0 form, ``columns(size)`` and
``read(row, size, image_size)``, still works with a `zoo.contract.ContractDeprecation` warning.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.contract import deprecated

SOURCES = ("folders", "table", "coco")
Row = Mapping[str, Any]


@dataclass(frozen=True)
class TargetContext:
    """Where one head reads its targets: what `TargetReader.table_columns` and ``read_target`` are told.

    ``key`` is the head's key in the model (``reg3``), ``size`` the number after its name (None for heads
    without one), ``options`` its resolved options; ``folder`` the table's folder; ``image_size`` the
    (width, height) of the row's image, (0, 0) when asking for columns.
    """

    size: int | None
    key: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    folder: Path | None = None
    image_size: tuple[int, int] = (0, 0)

    def path(self, value: object) -> Path:
        """A path written in a row, relative ones resolved against the table's folder, as ``image`` is."""
        path = Path(str(value).strip())
        return path if path.is_absolute() or self.folder is None else self.folder / path


def _no_columns(context: TargetContext) -> Sequence[str]:
    return ()


@dataclass(frozen=True)
class TargetReader:
    """What a head learns from, and how one annotation becomes its target.

    ``sources``: the data formats the head can learn from (``folders``: the target is the class index
    of the image's folder; ``coco``: ``{"boxes", "labels"}`` in pixels; ``table``: ``read_target`` below).
    ``table_columns(context)``: the columns a table row needs for this head (``kp5``: x0, y0 ... y4).
    ``read_target(row, context)``: one row's target (a number, a tensor or a dict of them); a bad value
    raises ``ValueError`` with a message for people.
    ``collate(targets)``: one batch's targets (a list, one per image) as the head's ``loss`` and metric take
    them. By default torch's ``default_collate`` stacks them, so every target of the head has one shape; give
    your own for targets that differ (a list of boxes per image, masks of several sizes).
    ``spatial``: the targets are positions in the image, so training uses no geometric augmentation.
    ``columns`` and ``read`` are the deprecated 1.0 form of the two functions.
    """

    sources: tuple[str, ...] = ("table",)
    columns: Callable[[int | None], Sequence[str]] | None = None  # deprecated: table_columns
    read: Callable[[Row, int | None, tuple[int, int]], Any] | None = None  # deprecated: read_target
    spatial: bool = False
    table_columns: Callable[[TargetContext], Sequence[str]] | None = None
    read_target: Callable[[Row, TargetContext], Any] | None = None
    collate: Callable[[list[Any]], Any] | None = None

    def __post_init__(self) -> None:
        unknown = [s for s in self.sources if s not in SOURCES]
        if not self.sources or unknown:
            raise ValueError(f"target sources must be among {', '.join(SOURCES)}, not {self.sources}")
        if self.columns is not None or self.read is not None:
            self._adopt_old_form()
        if self.collate is not None and not callable(self.collate):
            raise TypeError("TargetReader(collate=) must be callable: a list of targets -> one batch")
        if "table" in self.sources and self.read_target is None:
            raise ValueError("a target reader for tables needs read_target(row, context)")
        # zoo 0.1 callers ask ``columns(size)`` and ``read(row, size, image_size)``: both stay answerable
        object.__setattr__(self, "columns", lambda size: self.columns_for(TargetContext(size)))
        object.__setattr__(self, "read", lambda row, size, image_size: self.target(
            row, TargetContext(size, image_size=tuple(image_size))))

    def _adopt_old_form(self) -> None:
        if self.table_columns is not None or self.read_target is not None:
            raise ValueError("give TargetReader(table_columns=, read_target=) or the deprecated "
                             "(columns=, read=), not both")
        deprecated("TargetReader(columns=, read=)", "write TargetReader(table_columns=lambda context: ..., "
                   "read_target=lambda row, context: ...), given a zoo.targets.TargetContext", stacklevel=5)
        old_columns, old_read = self.columns, self.read
        if old_columns is not None:
            object.__setattr__(self, "table_columns", lambda context: old_columns(context.size))
        if old_read is not None:
            object.__setattr__(self, "read_target", lambda row, context: old_read(row, context.size,
                                                                                  context.image_size))

    def columns_for(self, context: TargetContext) -> list[str]:
        """The columns a table needs for the head ``context`` describes."""
        return list((self.table_columns or _no_columns)(context))

    def batch(self, targets: list[Any]) -> Any:
        """One batch of this head's targets: the reader's own ``collate``, else torch's ``default_collate``."""
        if self.collate is not None:
            return self.collate(targets)
        from torch.utils.data import default_collate

        return default_collate(targets)

    def target(self, row: Row, context: TargetContext) -> Any:
        """One row's target for the head ``context`` describes."""
        if self.read_target is None:
            raise ValueError("this head does not read tables")
        return self.read_target(row, context)
