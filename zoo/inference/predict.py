"""Predicting on image files: load, prepare with the model's eval transform, run, decode, and draw.

`predict` is what ``zoo predict`` runs. Every image is resized by the model's eval transform, as in
``zoo train`` and ``zoo eval``, so any size is predicted; an image that cannot be read is skipped with a
`ZooWarning` naming it and reported with its error; the others are still predicted. Images are read and
resized to uint8 in a loader's worker processes (where there is more than one batch) and made float on the
device (`zoo._runtime.transforms.on_device`), which gives what the eval transform gives.
"""
from __future__ import annotations

import glob
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from zoo._core.images import NAMED, natural_key, open_image, to_rgb, unreadable
from zoo._core.labels import check_names
from zoo._core.recipe import resolve
from zoo._core.saving import read_labels as read_labels_file
from zoo._runtime.data import default_workers, image_files
from zoo._runtime.devices import announce, choose_device
from zoo._runtime.opening import open_model
from zoo._runtime.outputs import out_folder
from zoo._runtime.processes import Group, is_rank_zero, join_process_group
from zoo._runtime.progress import progress as bar
from zoo._runtime.runner import InferenceRunner
from zoo._runtime.transforms import of_model, on_device
from zoo.drawing import Canvas
from zoo.errors import ZooError, ZooWarning
from zoo.files import atomic_write_bytes

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from zoo._core.model import ZooModel
    from zoo._registry.registry import Registry

ImageSource = Union[str, "os.PathLike[str]", "Image.Image"]


@dataclass
class ImagePrediction:
    """One image's answers by head name, or why it was skipped."""

    image: str
    width: int = 0
    height: int = 0
    outputs: dict[str, Any] | None = None
    error: str | None = None
    drawn: str | None = None  # the PNG written with --out

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def read_labels(values: Sequence[str], model: ZooModel, registry: Registry | None = None) -> dict[str, list[str]]:
    """Output names from text files, one name per line: ``FILE`` for a model's only head, else ``HEAD=FILE``;
    each head takes as many as `zoo._core.labels` says, as ``zoo build --labels`` and ``zoo.save`` do."""
    heads = (model.recipe or resolve(model.spec, registry=registry)).heads
    labels: dict[str, list[str]] = {}
    for value in values:
        head, sep, file = value.partition("=")
        if not sep:
            if len(model.heads) != 1:
                raise ZooError(f"--labels {value}: the model has heads {', '.join(model.heads)}; write HEAD=FILE")
            head, file = next(iter(model.heads)), value
        if head not in model.heads:
            raise ZooError(f"--labels {value}: no head {head!r}; heads: {', '.join(model.heads)}")
        try:
            head, labels[head] = check_names(heads, head, read_labels_file(file), model.spec)
        except ZooError as exc:
            raise ZooError(f"--labels {value}: {exc}") from None
    return labels


def expand_images(arguments: Sequence[str]) -> list[str]:
    """Files as given, a folder's images (recursively, in natural order: ``2.jpg`` before ``10.jpg``), a glob's
    matches (``'photos/*.jpg'``, in the same order).

    A named path that does not exist, or a glob or folder that finds no image, is a `ZooError` before any
    model is loaded.
    """
    found: list[str] = []
    for argument in arguments:
        if Path(argument).is_dir():
            files = image_files(Path(argument))
            if not files:
                raise ZooError(f"folder {argument} has no images")
            found += [str(p) for p in files]
        elif glob.has_magic(argument) and not Path(argument).exists():
            matches = sorted(glob.glob(argument, recursive=True), key=natural_key)
            if not matches:
                raise ZooError(f"no file matches {argument}")
            found += matches
        elif not Path(argument).exists():
            raise ZooError(f"{argument}: no such file or folder")
        else:
            found.append(argument)
    return found


def _out_names(names: Sequence[str]) -> list[str]:
    """``photo.jpg`` -> ``photo.png``; a second ``photo`` becomes ``photo-2.png``."""
    seen: dict[str, int] = {}
    result = []
    for name in names:
        stem = Path(name).stem or "image"
        seen[stem] = seen.get(stem, 0) + 1
        result.append(f"{stem}.png" if seen[stem] == 1 else f"{stem}-{seen[stem]}.png")
    return result


def _load(source: ImageSource) -> Image.Image:
    from PIL import Image

    return to_rgb(source) if isinstance(source, Image.Image) else open_image(source)


class _Decoded:
    """Each source read and resized to uint8 by the model's transform (in a loader's worker): (index, image,
    (width, height)), or (index, None, why) for one that cannot be read."""

    def __init__(self, sources: list[ImageSource], transform: Any) -> None:
        self.sources, self.transform = sources, transform

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> tuple[int, Any, Any]:
        try:
            image = _load(self.sources[index])
        except ZooError as exc:
            return index, None, str(exc)
        return index, self.transform(image), image.size


def _collate(batch: list[tuple[int, Any, Any]], whole: bool) -> tuple[list[int], Any, list, list[tuple[int, str]]]:
    """(indices, images: one uint8 batch, or a list for detection, sizes, [(index, why)] of the unreadable)."""
    import torch

    kept = [item for item in batch if item[1] is not None]
    images = [item[1] for item in kept]
    if images and not whole:
        images = torch.stack(images)
    return [i for i, _, _ in kept], images, [size for _, _, size in kept], [(i, why) for i, image, why in batch
                                                                              if image is None]


def _decoded_batches(model: ZooModel, sources: list[ImageSource], starts: Sequence[int], batch_size: int,
                     device: torch.device) -> Any:
    """The batches beginning at ``starts``, decoded in worker processes where there is more than one batch
    (`zoo._runtime.data.default_workers`), in pinned memory for a GPU."""
    from torch.utils.data import DataLoader

    batches = [list(range(start, min(start + batch_size, len(sources)))) for start in starts]
    workers = max(0, min(default_workers(device), len(batches) - 1))
    return DataLoader(_Decoded(sources, of_model(model).eval_transform(as_uint8=True)), batch_sampler=batches,
                      num_workers=workers, collate_fn=partial(_collate, whole=model.takes_images),
                      pin_memory=device.type == "cuda")


def predict(
    model: ZooModel | str | os.PathLike[str],
    images: Iterable[ImageSource],
    *,
    threshold: float = 0.5,
    top_k: int = 5,
    labels: Mapping[str, Sequence[str]] | None = None,
    out: str | os.PathLike[str] | None = None,
    batch_size: int = 8,
    device: str | None = None,
    fast: bool = False,
    registry: Registry | None = None,
    progress: bool | None = False,
) -> list[ImagePrediction]:
    """Each image's answers, in order: top-k classes, key points in pixels, age and gender, boxes.

    ``threshold`` keeps detections scoring at least that; ``out`` is a folder receiving, per image,
    a PNG with the answers drawn (boxes labelled, key points marked, other answers as captions).
    ``progress``: a bar on stderr (None: when it is a terminal).
    ``fast`` runs the model compiled with its weights frozen (`zoo._runtime.compiled`), as ``zoo bench --fast`` does.

    Under torchrun the processes share the batches out (`zoo._runtime.processes`) and every process returns
    every image's answer, in order; with ``out``, each process draws its own images.

    >>> zoo.predict("ants-bees.safetensors", ["ant.jpg"], top_k=2)  # doctest: +SKIP
    """
    from zoo._core.model import ZooModel

    if not 0.0 <= threshold <= 1.0:
        raise ZooError(f"threshold {threshold} must be between 0 and 1")
    if top_k < 1 or batch_size < 1:
        raise ZooError("top_k and batch_size must be 1 or more")
    if not isinstance(model, ZooModel):
        model = open_model(model, registry=registry)
    sources = list(images)
    if not sources:
        raise ZooError("no images to predict")
    folder = out_folder(out) if out is not None else None
    device = choose_device(device)
    if is_rank_zero():
        announce(device, "predicting")
    group = join_process_group(device)
    try:
        model.to(device)
        starts: Sequence[int] = range(0, len(sources), batch_size)
        if group is not None:
            group.check_samples(len(sources), "images to predict")
            starts = group.mine(starts)
        results = _predict(model, sources, starts, batch_size, folder, InferenceRunner(model, fast),
                           progress if is_rank_zero() else False, threshold=threshold, top_k=top_k, labels=labels)
        results = results if group is None else _everyones(group, results, starts, batch_size)
        _warn_unreadable(results)
        return results
    finally:
        if group is not None:
            group.leave()


def _predict(model: ZooModel, sources: list[ImageSource], starts: Sequence[int], batch_size: int,
             folder: Path | None, runner: InferenceRunner, progress: bool | None, **decoding: Any) -> list[ImagePrediction]:
    """A result per source, answered for the batches beginning at ``starts`` (the others left empty)."""
    names = [f"image {i}" if not isinstance(s, (str, os.PathLike)) else os.fspath(s) for i, s in enumerate(sources)]
    out_names = _out_names(names)
    run_on = next(model.parameters()).device
    model.eval()
    preprocessing, results = of_model(model), [ImagePrediction(name) for name in names]
    batches = _decoded_batches(model, sources, starts, batch_size, run_on)
    for indices, images, sizes, unread in bar(batches, len(starts), "predict", progress):
        for index, why in unread:
            results[index].error = why
            if sum(r.error is not None for r in results) <= NAMED:  # the rest are named by `_warn_unreadable`
                warnings.warn(f"{why}; skipped", ZooWarning, stacklevel=3)
        if not indices:
            continue
        answers = model.decode(runner(on_device(images, preprocessing, run_on)), sizes, **decoding)
        for index, size, answer in zip(indices, sizes, answers):
            result = results[index]
            result.width, result.height = size
            result.outputs = answer
            if folder is not None:
                result.drawn = _draw(model, _load(sources[index]), answer, folder / out_names[index])
    return results


def _draw(model: ZooModel, image: Image.Image, answer: dict[str, Any], target: Path) -> str:
    """The answers drawn on the image, written to ``target`` as a PNG."""
    canvas = Canvas(image)
    for key, head in model.heads.items():
        head.draw(canvas, answer[key])
    try:
        atomic_write_bytes(target, canvas.png())
    except OSError as exc:
        raise ZooError(f"cannot write {target}: {exc.strerror or exc}") from None
    return str(target)


def _warn_unreadable(results: list[ImagePrediction]) -> None:
    """More unreadable images than were warned of one by one: one warning naming the first few and counting all."""
    failed = [r.image for r in results if r.error is not None]
    if len(failed) > NAMED and is_rank_zero():
        warnings.warn(f"{unreadable(len(failed), len(results), failed)}; skipped", ZooWarning, stacklevel=3)


def _everyones(group: Group, results: list[ImagePrediction], starts: Sequence[int],
               batch_size: int) -> list[ImagePrediction]:
    """``results`` with every process's answers in place, each process having answered the batches at its
    ``starts``."""
    own = [(index, results[index]) for start in starts for index in range(start, min(start + batch_size, len(results)))]
    for answered in group.everyone(own):
        for index, result in answered:
            results[index] = result
    return results
