"""Data sets per format, checked before any training starts: class folders, tables, COCO JSON.

``DATA`` is a folder of class folders (``train/`` and ``val/`` inside, or one set split with
``val_split``), a CSV or JSON-lines table (an ``image`` column plus the columns each head's
`zoo.targets.TargetReader` names), or a COCO JSON file (detection). Every mistake (missing or empty
folder, class count that does not fit the head, missing columns, rows pointing at missing images,
bad values) is one `ZooError` before training; images that cannot be decoded later are skipped, counted
and named (`Skipped`) by the loop. Images are resized by the model's transforms, so any size is usable.
"""
from __future__ import annotations

import csv
import json
import os
import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo._core.images import natural_key, open_image
from zoo._core.recipe import resolve
from zoo._runtime.machine import usable_cpus
from zoo.errors import ZooError, ZooWarning
from zoo.targets import TargetContext

if TYPE_CHECKING:
    from zoo._core.model import ZooModel

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
TABLE_SUFFIXES = {".csv", ".jsonl", ".ndjson"}
IMAGE_COLUMNS = ("image", "path", "file")
CPU_CORES_WITHOUT_WORKERS = 4  # `default_workers` on the CPU: on 2 cores (resnet18, 64 px, batch 32) training
# with 0 loader workers ran 1.5-5x faster than with 1 or 2, whose decoding took the model's cores


@dataclass
class Samples:
    """Image files with their targets (bare for a one-head model, else a dict by head) and class names."""

    items: list[tuple[Path, Any]]
    labels: dict[str, list[str]] = field(default_factory=dict)
    description: str = ""
    collate_targets: Callable[[list], Any] | None = None  # heads' own target batching; None: default_collate

    def __len__(self) -> int:
        return len(self.items)


def head_parts(model: ZooModel) -> list[tuple[str, Any, int | None]]:
    """(key, HeadPart, size) per head, from the recipe the model keeps (so from the registry it was built
    or loaded with, ``--registry`` overlay included)."""
    recipe = model.recipe or resolve(model.spec)
    return [(head.key, head.part, head.ref.size) for head in recipe.heads]


def _heads(model: ZooModel) -> list[tuple[str, Any, int | None]]:
    """(key, TargetReader or None, size) per head of the model."""
    return [(key, part.targets, size) for key, part, size in head_parts(model)]


def _contexts(model: ZooModel, folder: Path) -> dict[str, Any]:
    """The `zoo.targets.TargetContext` of each head reading the table in ``folder`` (its key and options)."""
    recipe = model.recipe or resolve(model.spec)
    return {head.key: TargetContext(head.ref.size, head.key, dict(head.options), folder) for head in recipe.heads}


@dataclass(frozen=True)
class TargetBatcher:
    """A batch's targets, each head's by its reader's ``collate`` (a picklable callable, for loader workers)."""

    readers: tuple[tuple[str, Any], ...]
    single: bool

    def __call__(self, targets: list) -> Any:
        if self.single:
            return self.readers[0][1].batch(targets)
        return {key: reader.batch([target[key] for target in targets]) for key, reader in self.readers}


def _batcher(heads: list[tuple[str, Any, int | None]]) -> TargetBatcher | None:
    """A `TargetBatcher` when a head's reader collates its own targets, else None (``default_collate``)."""
    if not any(reader is not None and reader.collate is not None for _, reader, _ in heads):
        return None
    return TargetBatcher(tuple((key, reader) for key, reader, _ in heads), len(heads) == 1)


def image_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively), in natural order (``2.png`` before ``10.png``), by suffix;
    hidden files are left out."""
    return sorted((p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts)), key=natural_key)


# --- class folders ---------------------------------------------------------------------------------------

def _class_folders(folder: Path) -> dict[str, list[Path]]:
    classes = {d.name: image_files(d) for d in sorted(folder.iterdir()) if d.is_dir() and not d.name.startswith(".")}
    if not classes:
        raise ZooError(f"{folder} has no class folders; put each class's images in {folder}/<class>/")
    empty = [name for name, files in classes.items() if not files]
    if empty:
        raise ZooError(f"class folder {folder / empty[0]} has no images")
    return classes


def _folder_head(model: ZooModel, data: Path) -> tuple[str, int]:
    heads = _heads(model)
    usable = [(key, size) for key, reader, size in heads if reader is not None and "folders" in reader.sources]
    if len(heads) != 1 or not usable:
        keys = ", ".join(key for key, _, _ in heads)
        raise ZooError(f"{data} is a folder of classes, which teaches one classification head; {model.spec} has "
                       f"{keys}: give a CSV or JSON-lines table with each head's columns")
    return usable[0]


def _check_classes(model: ZooModel, key: str, size: int, names: Sequence[str], data: Path) -> None:
    if len(names) == 1:  # cls1 is binary: it too needs a class 0 and a class 1
        raise ZooError(f"{data} has one class ({names[0]}): one class cannot train a classifier; "
                       "add a folder of images for each other class (two or more)")
    if len(names) != max(size, 2) or (size == 1 and len(names) != 2):
        backbone = model.spec.split("+")[0]
        shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        raise ZooError(f"{data} has {len(names)} classes ({shown}) and head {key} has {size}; use "
                       f"cls{len(names)}: {backbone}+cls{len(names)}" + (" (or cls1)" if len(names) == 2 else ""))


def from_folders(model: ZooModel, data: Path, val_split: float | None, seed: int) -> tuple[Samples, Samples]:
    key, size = _folder_head(model, data)
    train_dir, val_dir = data / "train", data / "val"
    if train_dir.is_dir():
        train = _class_folders(train_dir)
        if not val_dir.is_dir():
            if val_split is None:
                raise ZooError(f"{data} has train/ and no val/; add {val_dir} or give --val-split 0.2")
            val = None
        else:
            if val_split is not None:  # the folder's own split wins, as with timm's train/ and val/ folders
                warnings.warn(f"--val-split {val_split:g} is ignored: {data} has its own {val_dir.name}/ folder",
                              ZooWarning, stacklevel=3)
            val = _class_folders(val_dir)
            extra = sorted(set(val) - set(train))
            if extra:
                raise ZooError(f"{val_dir} has class {extra[0]!r}, which {train_dir} lacks; both need the same classes")
    else:
        train, val = _class_folders(data), None
        if val_split is None:
            raise ZooError(f"{data} has no validation split: put train/ and val/ class folders in it, "
                           "or give --val-split 0.2")
    names = list(train)
    _check_classes(model, key, size, names, data)
    index = {name: i for i, name in enumerate(names)}
    train_items = [(p, index[name]) for name, files in train.items() for p in files]
    if val is None:
        train_items, val_items = split(train_items, val_split, seed, str(data))
    else:
        val_items = [(p, index[name]) for name, files in val.items() for p in files]
    labels = {key: names}
    return Samples(train_items, labels, f"{len(names)} classes"), Samples(val_items, labels)


def check_val_split(fraction: float | None) -> None:
    """A share of the data strictly between 0 and 1, or None; checked whether or not a split is made."""
    if fraction is not None and not 0 < fraction < 1:
        raise ZooError(f"--val-split {fraction:g} must be between 0 and 1 (exclusive): the share of images kept "
                       "for validation, such as 0.2")


def split(items: list, fraction: float | None, seed: int, what: str) -> tuple[list, list]:
    """A seeded random split: (train, val) with ``fraction`` of the items in val (at least one each)."""
    if fraction is None:
        raise ZooError(f"{what} has no validation split: give --val-split 0.2")
    check_val_split(fraction)
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    count = max(1, round(len(shuffled) * fraction))
    if len(shuffled) - count < 1:
        raise ZooError(f"{what} has {len(shuffled)} images: too few to split off a validation set")
    return shuffled[count:], shuffled[:count]


# --- tables ----------------------------------------------------------------------------------------------

def _rows(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ZooError(f"cannot read {path}: {exc}") from None
    if path.suffix.lower() == ".csv":
        return [dict(row) for row in csv.DictReader(text.splitlines())]
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise ZooError(f"{path}:{number}: not a JSON object") from None
        if not isinstance(row, dict):
            raise ZooError(f"{path}:{number}: not a JSON object")
        rows.append(row)
    return rows


def _image_size(path: Path) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            exif = image.getexif().get(0x0112, 1)
            return image.size[::-1] if exif in (5, 6, 7, 8) else image.size
    except Exception:  # unreadable: skipped and counted when training reaches it
        return None


def from_table(model: ZooModel, path: Path) -> Samples:
    rows = _rows(path)
    if not rows:
        raise ZooError(f"{path} has no rows")
    heads = _heads(model)
    for key, reader, _ in heads:
        if reader is None or "table" not in reader.sources:
            raise ZooError(f"head {key} cannot learn from a table ({path.name}); "
                           + ("it reads COCO JSON" if reader and "coco" in reader.sources
                              else "train it from your own DataLoader with zoo.fit"))
    columns = set(rows[0])
    image_column = next((c for c in IMAGE_COLUMNS if c in columns), None)
    contexts = _contexts(model, path.parent)
    needed = [c for key, reader, _ in heads for c in reader.columns_for(contexts[key])]
    missing = [c for c in needed if c not in columns] + ([] if image_column else ["image"])
    if missing:
        raise ZooError(f"{path} lacks column(s) {', '.join(missing)}; its columns: {', '.join(sorted(columns))}")
    items, absent = [], []
    for number, row in enumerate(rows, 2 if path.suffix.lower() == ".csv" else 1):
        image = Path(str(row.get(image_column) or ""))
        image = image if image.is_absolute() else path.parent / image
        if not image.is_file():
            absent.append(f"{path.name}:{number} {image}")
            continue
        size = _image_size(image)
        if size is None:
            items.append((image, None))
            continue
        targets = {}
        for key, reader, _ in heads:
            try:
                targets[key] = reader.target(row, replace(contexts[key], image_size=tuple(size)))
            except (ValueError, KeyError, TypeError) as exc:
                raise ZooError(f"{path}:{number} ({image.name}): head {key}: {exc}") from None
        items.append((image, targets if len(heads) > 1 else targets[heads[0][0]]))
    if absent:
        raise ZooError(f"{len(absent)} row(s) point at missing images, first {absent[0]}")
    return Samples(items, {}, f"{len(items)} rows", _batcher(heads))


# --- COCO ------------------------------------------------------------------------------------------------

def from_coco(model: ZooModel, path: Path, labels: list[str] | None = None) -> Samples:
    import torch

    heads = _heads(model)
    if len(heads) != 1 or heads[0][1] is None or "coco" not in heads[0][1].sources:
        raise ZooError(f"{path} is COCO JSON, which teaches a detection head; {model.spec} has none")
    key, _, size = heads[0]
    try:
        coco = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ZooError(f"cannot read {path} as COCO JSON: {exc}") from None
    if not isinstance(coco, dict) or not all(isinstance(coco.get(k), list) for k in ("images", "annotations", "categories")):
        raise ZooError(f"{path} is not COCO JSON: it needs lists 'images', 'annotations' and 'categories'")
    categories = sorted(coco["categories"], key=lambda c: c["id"])
    names = [str(c.get("name", c["id"])) for c in categories]
    if labels is not None and names != labels[1:]:
        raise ZooError(f"{path} has categories {', '.join(names)}; the training data had {', '.join(labels[1:])}")
    if len(names) + 1 != size:
        raise ZooError(f"{path} has {len(names)} categories and head {key} has {size} classes counting the "
                       f"background; use det{len(names) + 1}")
    index = {c["id"]: i + 1 for i, c in enumerate(categories)}
    boxes: dict[Any, list] = {image["id"]: [] for image in coco["images"]}
    for number, note in enumerate(coco["annotations"]):
        try:
            x, y, w, h = (float(v) for v in note["bbox"])
            boxes[note["image_id"]].append(([x, y, x + w, y + h], index[note["category_id"]]))
        except (KeyError, TypeError, ValueError):
            raise ZooError(f"{path}: annotation {number} needs image_id, category_id and bbox [x, y, w, h] "
                           "of a listed image and category") from None
        if w <= 0 or h <= 0:
            raise ZooError(f"{path}: annotation {number} has a box of no area: {note['bbox']}")
    items, absent = [], []
    for image in coco["images"]:
        file = path.parent / str(image.get("file_name", ""))
        if not file.is_file():
            absent.append(str(file))
            continue
        found = boxes[image["id"]]
        items.append((file, {"boxes": torch.tensor([b for b, _ in found], dtype=torch.float32).reshape(-1, 4),
                             "labels": torch.tensor([c for _, c in found], dtype=torch.int64)}))
    if absent:
        raise ZooError(f"{len(absent)} image(s) of {path.name} are missing, first {absent[0]}")
    if not items:
        raise ZooError(f"{path} lists no images")
    return Samples(items, {key: ["background", *names]}, f"{len(names)} categories")


# --- one entry point ---------------------------------------------------------------------------------------

def _one(model: ZooModel, path: Path, labels: dict[str, list[str]] | None = None) -> Samples:
    if path.suffix.lower() == ".json":
        key = next(iter(model.heads))
        return from_coco(model, path, (labels or {}).get(key))
    if path.suffix.lower() in TABLE_SUFFIXES:
        return from_table(model, path)
    raise ZooError(f"{path}: give a folder of class folders, a .csv or .jsonl table, or a COCO .json file")


def load_data(model: ZooModel, data: str | os.PathLike[str], val: str | os.PathLike[str] | None = None,
              val_split: float | None = None, seed: int = 0) -> tuple[Samples, Samples]:
    """Training and validation samples from DATA (and VAL), checked against the model's heads."""
    path = Path(data)
    check_val_split(val_split)
    if not path.exists():
        raise ZooError(f"data {path} does not exist")
    if path.is_dir():
        if val is not None:
            raise ZooError(f"{path} is a folder: put its validation images in {path}/val/, not --val")
        if not any(path.iterdir()):
            raise ZooError(f"data folder {path} is empty")
        return from_folders(model, path, val_split, seed)
    train = _one(model, path)
    if val is not None:
        if val_split is not None:
            raise ZooError("give --val or --val-split, not both")
        return train, _one(model, Path(val), train.labels)
    if val_split is None:
        raise ZooError(f"{path} has no validation split: give --val FILE or --val-split 0.2")
    train_items, val_items = split(train.items, val_split, seed, str(path))
    return (Samples(train_items, train.labels, train.description, train.collate_targets),
            Samples(val_items, train.labels, collate_targets=train.collate_targets))


def eval_samples(model: ZooModel, data: str | os.PathLike[str]) -> Samples:
    """Labelled samples to evaluate on: a folder of class folders (its val/ when it has one), a table, COCO."""
    path = Path(data)
    if not path.exists():
        raise ZooError(f"data {path} does not exist")
    if not path.is_dir():
        return _one(model, path, model.labels)
    folder = path / "val" if (path / "val").is_dir() else path
    key, size = _folder_head(model, path)
    classes = _class_folders(folder)
    names = model.labels.get(key) or list(classes)
    unknown = [name for name in classes if name not in names]
    if unknown:
        raise ZooError(f"{folder} has class {unknown[0]!r}, which the model does not know; its classes: {', '.join(names)}")
    _check_classes(model, key, size, names, folder)
    index = {name: i for i, name in enumerate(names)}
    items = [(p, index[name]) for name, files in classes.items() for p in files]
    return Samples(items, {key: names}, f"{len(names)} classes")


# --- loading -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Unread:
    """A sample whose image could not be read: `collate` leaves it out and names it in its `Skipped`."""

    path: str


class Skipped(int):
    """How many images of a batch could not be read: the int zoo's loaders have always given, carrying the
    names of those files it knows (a cached sample has none) so that a message can say which; adding two keeps
    both names (``0 + skipped`` included)."""

    names: tuple[str, ...]

    def __new__(cls, count: int, names: Sequence[str] = ()) -> Skipped:
        skipped = super().__new__(cls, count)
        skipped.names = tuple(names)
        return skipped

    def __reduce__(self) -> tuple[Any, ...]:  # DataLoader workers and torchrun send it between processes
        return (Skipped, (int(self), self.names))

    def __add__(self, other: Any) -> Any:
        if isinstance(other, Skipped):
            return Skipped(int(self) + int(other), self.names + other.names)
        return self if other == 0 else int(self) + other

    __radd__ = __add__


class ImageDataset:
    """(image tensor, target) per sample through ``transform``; an image that cannot be read gives None, or
    with ``named`` its `Unread` (what `loader` asks for, so that the run can name it)."""

    def __init__(self, samples: Samples, transform: Callable[[Any], Any], named: bool = False) -> None:
        self.items, self.transform, self.named = samples.items, transform, named

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Any, Any] | Unread | None:
        path, target = self.items[index]
        if target is not None:
            try:
                return self.transform(open_image(path)), target
            except ZooError:
                pass
        return Unread(str(path)) if self.named else None


def collate(batch: list, whole: bool, targets_by: Callable[[list], Any] | None = None) -> tuple[Any, Any, Skipped]:
    """(images, targets, skipped): a stacked batch (a list for whole-image models) without unreadable images,
    which ``skipped`` counts and names (a None sample, from a dataset that knows no name, is counted only).
    ``targets_by`` batches the targets where heads collate their own (`Samples.collate_targets`)."""
    from torch.utils.data import default_collate

    kept = [sample for sample in batch if sample is not None and not isinstance(sample, Unread)]
    skipped = Skipped(len(batch) - len(kept), [s.path for s in batch if isinstance(s, Unread)])
    if not kept:
        return [], [], skipped
    images, targets = [s[0] for s in kept], [s[1] for s in kept]
    if whole:
        return images, targets, skipped
    import torch

    return torch.stack(images), (targets_by or default_collate)(targets), skipped


def default_workers(device: Any = None) -> int:
    """Loader processes when none are asked for. On a GPU, min(8, usable cores - 1): decoding must keep up
    with the device and one core drives it. On the CPU the model's own threads use every core, so a worker
    only pays where cores are left over: none up to 4 cores, then a quarter of them (at most 8)."""
    cores = usable_cpus()
    if device is not None and str(device).startswith("cuda"):
        return max(1, min(8, cores - 1))
    return 0 if cores <= CPU_CORES_WITHOUT_WORKERS else min(8, cores // 4)


def loader(samples: Samples, transform: Callable[[Any], Any], batch_size: int, *, shuffle: bool, whole: bool,
           workers: int | None = None, seed: int = 0, device: Any = None):
    """A DataLoader over ``samples`` giving (images, targets, skipped); shuffled (training) loaders drop an
    incomplete last batch, as timm does, so that BatchNorm never sees a batch of one. ``workers``: None takes
    `default_workers` for ``device``; for a CUDA ``device`` batches come in pinned memory, so that copies to
    it need not wait (`zoo._runtime.transforms.on_device`)."""
    import torch
    from torch.utils.data import DataLoader

    workers = default_workers(device) if workers is None else workers
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(ImageDataset(samples, transform, named=True), batch_size=batch_size, shuffle=shuffle,
                      pin_memory=device is not None and torch.device(device).type == "cuda",
                      num_workers=workers, generator=generator,
                      collate_fn=partial(collate, whole=whole, targets_by=samples.collate_targets),
                      persistent_workers=workers > 0, drop_last=shuffle and len(samples) > batch_size)
