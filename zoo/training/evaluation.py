"""Evaluating a model on labelled data: every head's metrics, plus top-5, per-class accuracy and a
confusion matrix for classification heads. `zoo.evaluate` and ``zoo eval`` run this, and so does the
training loop on its validation set, with the model's own eval transform.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo._prediction import _out_dir, load_model
from zoo.errors import ZooError
from zoo.files import atomic_write_bytes
from zoo.training.data import eval_samples, loader
from zoo.training.progress import progress as bar
from zoo.training.transforms import transforms

if TYPE_CHECKING:
    import torch

    from zoo._model import ZooModel
    from zoo._registry import Registry

MAX_UNREADABLE = 0.1  # more unreadable images than this share of a data set fails the run


def to_device(value: Any, device: torch.device) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value


def unpack(batch: Any) -> tuple[Any, Any, int]:
    """(images, targets, skipped) from zoo's loaders or (images, targets) from a user's own."""
    if isinstance(batch, (list, tuple)) and len(batch) == 3 and isinstance(batch[2], int):
        return batch[0], batch[1], batch[2]
    if isinstance(batch, (list, tuple)) and len(batch) == 2:
        return batch[0], batch[1], 0
    raise ZooError("a DataLoader for zoo.fit/zoo.evaluate must give (images, targets) batches")


def check_unreadable(skipped: int, total: int, what: str) -> None:
    if total and skipped > MAX_UNREADABLE * total:
        raise ZooError(f"{skipped} of {total} images of {what} could not be read (more than "
                       f"{MAX_UNREADABLE:.0%}); fix or remove them")


class ClassStatistics:
    """Top-1, top-5, per-class accuracy and the confusion matrix of one classification head."""

    def __init__(self, head: Any) -> None:
        import torch

        self.head = head
        classes = max(head.num_classes, 2)
        self.confusion = torch.zeros(classes, classes, dtype=torch.int64)
        self.top5 = 0

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        probabilities = self.head.probabilities(output.detach().float()).cpu()
        target = target.reshape(-1).long().cpu()
        predicted = probabilities.argmax(dim=1)
        self.confusion.index_put_((target, predicted), self.confusion.new_ones(len(target)), accumulate=True)
        k = min(5, probabilities.shape[1])
        self.top5 += int((probabilities.topk(k, dim=1).indices == target[:, None]).any(dim=1).sum())

    def compute(self, labels: list[str] | None) -> dict[str, Any]:
        total = int(self.confusion.sum())
        names = labels if labels and len(labels) == len(self.confusion) else [str(i) for i in range(len(self.confusion))]
        per_class = {name: (float(self.confusion[i, i]) / float(row.sum()) if int(row.sum()) else None)
                     for i, (name, row) in enumerate(zip(names, self.confusion))}
        return {"top5_accuracy": self.top5 / total if total else 0.0, "per_class_accuracy": per_class,
                "confusion_matrix": self.confusion.tolist(), "classes": names}



def head_metrics(metric: Any) -> dict[str, float]:
    """A `zoo.metrics.ModelMetric`'s values, each named by its head even when there is one: ``cls10/accuracy``."""
    return {f"{key}/{name}": value for key, head in metric.metrics.items() for name, value in head.compute().items()}


def run(model: ZooModel, batches: Iterable[Any], device: torch.device, *, details: bool = False) -> dict[str, Any]:
    """Loss and metrics of ``model`` over ``batches``, names prefixed by head (``cls10/accuracy``)."""
    import torch

    model.eval()
    metric = model.metric()
    classes = {key: ClassStatistics(head) for key, head in model.heads.items()
               if details and hasattr(head, "probabilities") and hasattr(head, "num_classes")}
    loss_sum, images, skipped = 0.0, 0, 0
    with torch.inference_mode():
        for batch in batches:
            inputs, targets, missed = unpack(batch)
            skipped += missed
            if len(inputs) == 0:
                continue
            inputs, targets = to_device(inputs, device), to_device(targets, device)
            outputs = model(inputs)
            count = len(inputs)
            if not model.takes_images:
                loss_sum += float(model.loss(outputs, targets)) * count
            metric.update(outputs, targets)
            by_head, target_by_head = model.by_head(outputs), model.by_head(targets, "targets")
            for key, statistics in classes.items():
                statistics.update(by_head[key], target_by_head[key])
            images += count
    if images == 0:
        raise ZooError("no image could be read to evaluate on")
    metrics = head_metrics(metric)
    result: dict[str, Any] = {"images": images, "skipped": skipped,
                              "loss": None if model.takes_images else loss_sum / images, "metrics": metrics}
    for key, statistics in classes.items():
        found = statistics.compute(model.labels.get(key))
        metrics[f"{key}/top5_accuracy"] = found.pop("top5_accuracy")
        result.setdefault("classes", {})[key] = found
    return result


def confusion_png(found: dict[str, Any], title: str) -> bytes | None:
    """The confusion matrix as a PNG (rows: true class, columns: predicted); None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    import io

    matrix, names = found["confusion_matrix"], found["classes"]
    side = min(12, 2 + 0.5 * len(names))
    figure, axis = plt.subplots(figsize=(side, side))
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(names)), names, rotation=90)
    axis.set_yticks(range(len(names)), names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    if len(names) <= 20:
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                axis.text(j, i, str(value), ha="center", va="center", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def evaluate(
    model: ZooModel | str | os.PathLike[str],
    data: Any,
    *,
    batch_size: int = 32,
    device: str | None = None,
    workers: int = 0,
    out: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    registry: Registry | None = None,
) -> dict[str, Any]:
    """Every head's metrics on labelled ``data`` (a folder, table or COCO file, or your own DataLoader),
    preprocessed by the model's own eval transform. ``out``: a folder receiving a confusion-matrix PNG
    per classification head. ``registry`` loads or builds ``model`` when it is a file or a spec.

    >>> zoo.evaluate("ants-bees.safetensors", "hymenoptera_data")["metrics"]["cls2/accuracy"]  # doctest: +SKIP
    """
    from zoo._model import ZooModel

    if batch_size < 1:
        raise ZooError(f"batch size {batch_size} must be 1 or more")
    if not isinstance(model, ZooModel):
        model = load_model(model, registry=registry)
    folder = _out_dir(out) if out is not None else None
    if device is not None:
        model.to(device)
    run_on = next(model.parameters()).device
    if isinstance(data, (str, os.PathLike)):
        samples = eval_samples(model, data)
        for key, names in samples.labels.items():
            model.labels.setdefault(key, names)
        batches = loader(samples, transforms(model), batch_size, shuffle=False, whole=model.takes_images,
                         workers=workers)
        total, what = len(samples), os.fspath(data)
    else:
        batches, total, what = data, None, "the data"
    result = run(model, bar(batches, len(batches) if hasattr(batches, "__len__") else None, "eval", progress),
                 run_on, details=True)
    check_unreadable(result["skipped"], total or result["images"] + result["skipped"], what)
    result = {"model": model.spec, "data": what if total else None, **result}
    if folder is not None:
        for key, found in result.get("classes", {}).items():
            png = confusion_png(found, f"{key}: confusion matrix")
            if png is not None:
                target = Path(folder) / f"confusion-{key}.png"
                atomic_write_bytes(target, png)
                found["confusion_png"] = str(target)
    return result
