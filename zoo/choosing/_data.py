"""The user's data, as `zoo choose` measures on it: a folder of class folders, with its own validation split
(``train/`` and ``val/``) or, without one, folds: each image is scored by a probe trained on the other folds, so
a small folder is used whole. Classification only for now: tables (key points, age and gender) come later.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

from zoo._runtime.data import Samples, _class_folders
from zoo.errors import ZooError
from zoo.training.checkpoint import data_fingerprint

MAX_FOLDS = 5


@dataclass
class ChoiceData:
    """Labelled images in parts (``train`` and ``val``, or ``all`` with a fold per image) and the class names."""

    path: Path
    parts: dict[str, Samples]
    classes: list[str]
    folds: list[int] | None  # per image of ``all``; None with a validation split
    key: str  # a fingerprint of every file, its size, time and class

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


def read_data(data: str | os.PathLike[str], seed: int = 0) -> ChoiceData:
    """DATA checked: a folder of class folders (train/ and val/ inside, or the classes themselves)."""
    path = Path(data).expanduser()
    if not path.exists():
        raise ZooError(f"data {data} does not exist")
    if not path.is_dir():
        raise ZooError(f"{data} is not a folder; zoo choose ranks backbones for classification on a folder of class "
                       "folders (DATA/<class>/*.jpg, or DATA/train/ and DATA/val/)")
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
    return ChoiceData(path, parts, names, folds, data_fingerprint(parts.values()))
