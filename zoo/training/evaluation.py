"""Evaluating a model on labelled data: every head's metrics, plus top-5 (for more than 5 classes), per-class
accuracy and a confusion matrix for classification heads. `zoo.evaluate` and ``zoo eval`` run this, and so does the
training loop on its validation set, with the model's own eval transform.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo._core.images import unreadable
from zoo._runtime.data import Skipped, eval_samples, loader
from zoo._runtime.devices import choose_device
from zoo._runtime.opening import open_model
from zoo._runtime.outputs import out_folder
from zoo._runtime.processes import Group, is_rank_zero, join_process_group
from zoo._runtime.progress import progress as bar
from zoo._runtime.runner import InferenceRunner
from zoo._runtime.transforms import of_model, on_device
from zoo.drawing import text_color
from zoo.errors import EveryProcessError, ZooError
from zoo.files import atomic_write_bytes

if TYPE_CHECKING:
    import torch

    from zoo._core.model import ZooModel
    from zoo._registry.registry import Registry

MAX_UNREADABLE = 0.1  # more unreadable images than this share of a data set fails the run
TOP_K = 5  # top-k accuracy, reported for heads with more than k classes


def to_device(value: Any, device: torch.device | str) -> Any:
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


def check_unreadable(skipped: int, total: int, what: str, error: type[ZooError] = ZooError) -> None:
    """Too many unreadable images fail the run (``error``: `EveryProcessError` where every process finds it),
    naming the first few when ``skipped`` knows them (`zoo._runtime.data.Skipped`)."""
    if total and skipped > MAX_UNREADABLE * total:
        raise error(f"{unreadable(skipped, total, getattr(skipped, 'names', ()), what)} (more than "
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
        k = min(TOP_K, probabilities.shape[1])
        self.top5 += int((probabilities.topk(k, dim=1).indices == target[:, None]).any(dim=1).sum())

    def compute(self, labels: list[str] | None) -> dict[str, Any]:
        total = int(self.confusion.sum())
        names = labels if labels and len(labels) == len(self.confusion) else [str(i) for i in range(len(self.confusion))]
        per_class = {name: (float(self.confusion[i, i]) / float(row.sum()) if int(row.sum()) else None)
                     for i, (name, row) in enumerate(zip(names, self.confusion))}
        found = {"per_class_accuracy": per_class, "confusion_matrix": self.confusion.tolist(), "classes": names}
        if TOP_K < len(self.confusion):  # with k classes or fewer the true class is always among the top k
            found[f"top{TOP_K}_accuracy"] = self.top5 / total if total else 0.0
        return found



def head_metrics(metric: Any) -> dict[str, float]:
    """A `zoo.metrics.ModelMetric`'s values, each named by its head even when there is one: ``cls10/accuracy``."""
    return {f"{key}/{name}": value for key, head in metric.metrics.items() for name, value in head.compute().items()}


@dataclass
class BatchOutcome:
    """One batch as the model saw it: outputs, targets, images run, images unreadable, and the batch's mean
    loss as a tensor where the model ran, read once at the end (None for detection, which has no loss in eval
    mode)."""

    outputs: Any
    targets: Any
    count: int
    skipped: int
    loss: torch.Tensor | None

    def to(self, device: torch.device) -> BatchOutcome:
        return replace(self, outputs=to_device(self.outputs, device), targets=to_device(self.targets, device),
                       loss=to_device(self.loss, device))


def run_batch(model: ZooModel, batch: Any, device: torch.device,
              runner: Callable[[Any], Any] | None = None) -> BatchOutcome:
    """``model`` (in eval mode, under inference mode) on one batch, through ``runner`` if given (``--fast``)."""
    inputs, targets, skipped = unpack(batch)
    if len(inputs) == 0:
        return BatchOutcome(None, None, 0, skipped, None)
    inputs, targets = on_device(inputs, of_model(model), device), to_device(targets, device)
    outputs = (runner or model)(inputs)
    loss = None if model.takes_images else model.loss(outputs, targets).detach().float()
    return BatchOutcome(outputs, targets, len(inputs), skipped, loss)


class MetricTally:
    """Loss, metrics and, with ``details``, each classification head's `ClassStatistics`, batch by batch: the
    one code that turns outputs into metrics, for one process and for the batches every process saw."""

    def __init__(self, model: ZooModel, details: bool) -> None:
        self.model = model
        self.metric = model.metric()
        self.classes = {key: ClassStatistics(head) for key, head in model.heads.items()
                        if details and hasattr(head, "probabilities") and hasattr(head, "num_classes")}
        self.loss_sum, self.images, self.skipped = 0.0, 0, 0

    def add(self, seen: BatchOutcome) -> None:
        self.skipped += seen.skipped
        if seen.count == 0:
            return
        if seen.loss is not None:
            self.loss_sum += seen.loss * seen.count
        self.metric.update(seen.outputs, seen.targets)
        by_head, target_by_head = self.model.by_head(seen.outputs), self.model.by_head(seen.targets, "targets")
        for key, statistics in self.classes.items():
            statistics.update(by_head[key], target_by_head[key])
        self.images += seen.count

    def result(self) -> dict[str, Any]:
        if self.images == 0:
            raise ZooError("no image could be read to evaluate on")
        metrics = head_metrics(self.metric)
        result: dict[str, Any] = {"images": self.images, "skipped": int(self.skipped),
                                  "unreadable": list(getattr(self.skipped, "names", ())),
                                  "loss": None if self.model.takes_images else float(self.loss_sum) / self.images,
                                  "metrics": metrics}
        for key, statistics in self.classes.items():
            found = statistics.compute(self.model.labels.get(key))
            if f"top{TOP_K}_accuracy" in found:
                metrics[f"{key}/top{TOP_K}_accuracy"] = found.pop(f"top{TOP_K}_accuracy")
            result.setdefault("classes", {})[key] = found
        return result


def evaluate_batches(model: ZooModel, batches: Iterable[Any], device: torch.device, *, details: bool = False,
        group: Group | None = None, runner: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """Loss and metrics of ``model`` over ``batches``, names prefixed by head (``cls10/accuracy``); the model
    runs through ``runner`` where one is given (`zoo._runtime.runner.InferenceRunner`).

    With ``group``, ``batches`` are this process's share (`Group.own_batches`): rank 0 tallies every process's
    batches in the original order, and every process returns its result.
    """
    import torch

    model.eval()
    tally = MetricTally(model, details)
    with torch.inference_mode():
        if group is None:
            for batch in batches:
                tally.add(run_batch(model, batch, device, runner))
            return tally.result()
        cpu = torch.device("cpu")
        own = (run_batch(model, batch, device, runner).to(cpu) for batch in batches)
        for seen in group.collect(own, len(batches)):  # type: ignore[arg-type]
            tally.add(seen.to(device))
    return group.decided(tally.result)


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
    shown = axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(names)), names, rotation=90)
    axis.set_yticks(range(len(names)), names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    if len(names) <= 20:
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                cell = [255 * c for c in shown.cmap(shown.norm(value))[:3]]  # dark cells take white text
                axis.text(j, i, str(value), ha="center", va="center", fontsize=8,
                          color=[c / 255 for c in text_color(cell)])
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
    workers: int | None = None,
    out: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    fast: bool = False,
    registry: Registry | None = None,
) -> dict[str, Any]:
    """Every head's metrics on labelled ``data`` (a folder, table or COCO file, or your own DataLoader),
    preprocessed by the model's own eval transform. ``out``: a folder receiving a confusion-matrix PNG
    per classification head. ``registry`` loads or builds ``model`` when it is a file or a spec. ``fast``
    runs the model as ``zoo predict --fast`` does (compiled, bf16 where native and measured faster), so
    metrics may move by bf16's rounding.

    Under torchrun, the processes share the batches of a folder, table or COCO file out between them
    (`zoo._runtime.processes`) and every process returns the metrics one process gives; only rank 0
    writes ``out``. Your own DataLoader runs whole on every process.

    >>> zoo.evaluate("ants-bees.safetensors", "hymenoptera_data")["metrics"]["cls2/accuracy"]  # doctest: +SKIP
    """
    from zoo._core.model import ZooModel

    if batch_size < 1:
        raise ZooError(f"batch size {batch_size} must be 1 or more")
    if not isinstance(model, ZooModel):
        model = open_model(model, registry=registry)
    folder = out_folder(out, create=False) if out is not None else None  # made only when a picture is written
    device = choose_device(device)
    group = join_process_group(device)
    try:
        model.to(device)
        result = _evaluate(model, data, batch_size, workers, progress, group, InferenceRunner(model, fast))
    finally:
        if group is not None:
            group.leave()
    if folder is not None and is_rank_zero():
        _write_pictures(model, result, Path(folder))
    return result


def _evaluate(model: ZooModel, data: Any, batch_size: int, workers: int | None, progress: bool | None,
              group: Group | None, runner: InferenceRunner) -> dict[str, Any]:
    """What `evaluate` returns, but the PNGs; with ``group``, a folder, table or COCO file is sharded."""
    run_on = next(model.parameters()).device
    if isinstance(data, (str, os.PathLike)):
        samples = eval_samples(model, data)
        for key, names in samples.labels.items():
            model.labels.setdefault(key, names)
        batches = loader(samples, of_model(model).eval_transform(as_uint8=True), batch_size, shuffle=False,
                         whole=model.takes_images, workers=workers, device=run_on)
        total, what = len(samples), os.fspath(data)
        if group is not None:
            group.check_samples(total, "images to evaluate")
            batches = group.own_batches(batches)
    else:
        batches, total, what, group = data, None, "the data", None
    shown = bar(batches, len(batches) if hasattr(batches, "__len__") else None, "eval",
                progress if is_rank_zero() else False)
    result = evaluate_batches(model, shown, run_on, details=True, group=group, runner=runner)
    check_unreadable(Skipped(result["skipped"], result["unreadable"]), total or result["images"] + result["skipped"],
                     what, ZooError if group is None else EveryProcessError)
    return {"model": model.spec, "data": what if total else None, "device": str(run_on), **result}


def _write_pictures(model: ZooModel, result: dict[str, Any], folder: Path) -> None:
    """A confusion-matrix PNG per classification head and each head's own `Head.report` picture in ``folder``,
    each path added to the result; with no picture, nothing is written and no folder made."""
    pictures: dict[str, bytes] = {}
    for key, found in result.get("classes", {}).items():
        png = confusion_png(found, f"{key}: confusion matrix")
        if png is not None:
            pictures[f"confusion-{key}.png"] = png
            found["confusion_png"] = str(folder / f"confusion-{key}.png")
    for key, head in model.heads.items():
        png = head.report(head_result(result, key))
        if png:
            pictures[f"report-{key}.png"] = bytes(png)
            result.setdefault("reports", {})[key] = str(folder / f"report-{key}.png")
    if pictures:
        out_folder(folder)
    for name, png in pictures.items():
        atomic_write_bytes(folder / name, png)


def head_result(result: dict[str, Any], key: str) -> dict[str, Any]:
    """What `Head.report` is told: the head's metrics by their own names, and its class statistics if any."""
    prefix = f"{key}/"
    found = {"metrics": {name[len(prefix):]: value for name, value in result.get("metrics", {}).items()
                         if name.startswith(prefix)}, "images": result.get("images", 0)}
    if key in result.get("classes", {}):
        found["classes"] = result["classes"][key]
    return found
