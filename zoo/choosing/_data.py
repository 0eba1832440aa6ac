"""The user's data, as `zoo choose` measures on it, for one head: a folder of class folders (classification),
or a CSV or JSON-lines table read exactly as `zoo train` reads it for the head (``kp5``: points in pixels,
``agegender``: age and gender, ``cls3``: a label column). Validation is the data's own split (``train/`` and
``val/`` class folders, or a ``--val`` table) or, without one, folds: each image is scored by a probe trained on
the other folds, so a small data set is used whole (class folders dealt class by class, table rows in a seeded
order).
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from zoo._core.recipe import ResolvedHead
from zoo._registry.registry import Registry, default_registry
from zoo._registry.spec import parse
from zoo._runtime.data import TABLE_SUFFIXES, Samples, _class_folders, from_table
from zoo.choosing._metrics import HEADS, KINDS
from zoo.errors import SpecError, ZooError
from zoo.parts import LOSS_WEIGHT, resolve_options
from zoo.training.checkpoint import data_fingerprint

MAX_FOLDS = 5


@dataclass
class ChoiceData:
    """Labelled images in parts (``train`` and ``val``, or ``all`` with a fold per image), the head they teach
    and, for classification, the class names."""

    path: Path
    parts: dict[str, Samples]
    classes: list[str]
    folds: list[int] | None  # per image of ``all``; None with a validation split
    key: str  # a fingerprint of every file, its size, time and target
    head: str = "cls2"  # as `zoo train` takes it after the backbone: cls3, kp5, agegender
    kind: str = "cls"  # the head's name: a key of `zoo.choosing._metrics.KINDS`
    val: Path | None = field(default=None)  # the --val table, if one was given

    @property
    def images(self) -> int:
        return sum(len(samples) for samples in self.parts.values())


def _samples(classes: dict[str, list[Path]], names: list[str]) -> Samples:
    index = {name: i for i, name in enumerate(names)}
    return Samples([(p, index[name]) for name, files in classes.items() for p in files], {"cls": names})


def _folds(classes: dict[str, list[Path]], seed: int) -> list[int]:
    """A fold per image, each class dealt round the folds in a seeded order (stratified)."""
    if min(len(files) for files in classes.values()) < 2:
        small = min(classes, key=lambda name: len(classes[name]))
        raise ZooError(f"class {small!r} has {len(classes[small])} image; zoo choose needs at least 2 per class")
    count = max(2, min(MAX_FOLDS, min(len(files) for files in classes.values())))
    folds: list[int] = []
    for files in classes.values():
        order = list(range(len(files)))
        random.Random(seed).shuffle(order)
        place = {image: position % count for position, image in enumerate(order)}
        folds.extend(place[i] for i in range(len(files)))
    return folds


def head_of(text: str, registry: Registry) -> ResolvedHead:
    """A head spec as `zoo train` takes it after the ``+`` (kp5, agegender, cls10:hidden=64), resolved; only the
    kinds `zoo choose` scores."""
    try:
        spec = parse(f"choose+{text}")
    except SpecError:
        raise ZooError(f"--head {text!r} is not a head; heads zoo choose scores: {HEADS}") from None
    if len(spec.heads) != 1:
        raise ZooError(f"--head {text!r}: give one head; heads zoo choose scores: {HEADS}")
    ref = spec.heads[0]
    part = registry.head(ref)
    if part.name not in KINDS or part.namespace != "zoo":
        raise ZooError(f"--head {text}: zoo choose scores {HEADS}, not {part.qualified_name}")
    return ResolvedHead(ref, part, resolve_options((*part.options, LOSS_WEIGHT), dict(ref.options), ref.ref))


@dataclass(frozen=True)
class _Heads:
    heads: tuple[ResolvedHead, ...]


@dataclass(frozen=True)
class _HeadOnly:
    """What `zoo._runtime.data.from_table` reads of a model: its recipe's heads (the backbone plays no part)."""

    recipe: _Heads
    spec: str


def _table(path: Path, head: ResolvedHead) -> Samples:
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise ZooError(f"{path} is not a table: give a .csv or .jsonl file")
    return from_table(_HeadOnly(_Heads((head,)), f"choose+{head.ref}"), path)


def _row_folds(count: int, seed: int) -> list[int]:
    """A fold per row, dealt round the folds in a seeded order."""
    if count < 4:
        raise ZooError(f"the table has {count} rows; zoo choose needs at least 4 to score by folds")
    order = list(range(count))
    random.Random(seed).shuffle(order)
    folds = max(2, min(MAX_FOLDS, count // 2))
    place = {row: position % folds for position, row in enumerate(order)}
    return [place[i] for i in range(count)]


def _read_table(path: Path, head: ResolvedHead, val: str | os.PathLike[str] | None, seed: int) -> ChoiceData:
    """A table (and its --val table) read for ``head`` as `zoo train` reads it."""
    classes = [str(i) for i in range(max(head.ref.size or 0, 2))] if head.part.name == "cls" else []
    if val is not None:
        val_path = Path(val).expanduser()
        if not val_path.is_file():
            raise ZooError(f"--val {val} does not exist" if not val_path.exists() else f"--val {val} is not a file")
        parts, folds = {"train": _table(path, head), "val": _table(val_path, head)}, None
    else:
        val_path = None
        parts = {"all": _table(path, head)}
        folds = _row_folds(len(parts["all"]), seed)
    return ChoiceData(path, parts, classes, folds, data_fingerprint(parts.values()), str(head.ref), head.part.name,
                      val_path)


def read_data(data: str | os.PathLike[str], seed: int = 0, head: str | None = None,
              val: str | os.PathLike[str] | None = None, registry: Registry | None = None) -> ChoiceData:
    """DATA checked for ``head`` (default: classification on a folder of class folders)."""
    path = Path(data).expanduser()
    if not path.exists():
        raise ZooError(f"data {data} does not exist")
    resolved = head_of(head, registry or default_registry()) if head is not None else None
    if path.is_file() and path.suffix.lower() in TABLE_SUFFIXES:
        if resolved is None:
            raise ZooError(f"{data} is a table: give --head, the head it teaches ({HEADS}), such as --head kp5")
        return _read_table(path, resolved, val, seed)
    if not path.is_dir():
        raise ZooError(f"{data} is not a folder or a table; zoo choose ranks backbones on a folder of class folders "
                       "(DATA/<class>/*.jpg, or DATA/train/ and DATA/val/) or a .csv or .jsonl table with --head")
    if val is not None:
        raise ZooError(f"{path} is a folder: put its validation images in {path}/val/, not --val")
    if resolved is not None and resolved.part.name != "cls":
        raise ZooError(f"{path} is a folder of classes, which teaches classification; head {resolved.ref} learns "
                       "from a .csv or .jsonl table")
    found = _read_folders(path, seed)
    if resolved is not None:
        if resolved.ref.size != len(found.classes):
            raise ZooError(f"{path} has {len(found.classes)} classes and --head is {resolved.ref}; use "
                           f"--head {found.head}")
        found.head = str(resolved.ref)
    return found


def _read_folders(path: Path, seed: int) -> ChoiceData:
    """A folder of class folders (train/ and val/ inside, or the classes themselves)."""
    if (path / "train").is_dir():
        if not (path / "val").is_dir():
            raise ZooError(f"{path} has train/ and no val/; add {path / 'val'} or give the class folders themselves")
        train, val = _class_folders(path / "train"), _class_folders(path / "val")
        extra = sorted(set(val) - set(train))
        if extra:
            raise ZooError(f"{path / 'val'} has class {extra[0]!r}, which {path / 'train'} lacks")
        names = list(train)
        parts, folds = {"train": _samples(train, names), "val": _samples(val, names)}, None
    else:
        classes = _class_folders(path)
        names = list(classes)
        parts, folds = {"all": _samples(classes, names)}, _folds(classes, seed)
    if len(names) < 2:
        raise ZooError(f"{path} has one class ({names[0]}); zoo choose needs two or more class folders")
    return ChoiceData(path, parts, names, folds, data_fingerprint(parts.values()), f"cls{len(names)}")
