"""`zoo choose`: which backbone for my data, on my machine.

Each candidate (a saved model file, a backbone matching a pattern, or the shortlist) is measured on the user's
data and device: transfer quality from its frozen features (probes and k-NN on features built once through the
feature cache, scored by the head's own metrics: accuracy for classes, pixel error for key points, age error and
gender accuracy) and cost (the bench's own measurement). The answer is a table along the quality/throughput
Pareto front, filtered by budgets, naming the best candidate within them and the `zoo train` command that
fine-tunes it with the head. A candidate that fails is one row, and the others go on; results are
kept per candidate, weights and data, so a re-run or a wider pattern measures only what is new.
"""
from __future__ import annotations

import os
import platform
import shlex
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo._registry.registry import Registry, default_registry
from zoo._runtime.processes import is_rank_zero, join_process_group
from zoo._runtime.progress import progress as progress_bar
from zoo._untrusted import one_line
from zoo._version import __version__
from zoo.choosing._candidates import Candidate, candidates, fingerprint
from zoo.choosing._data import ChoiceData, read_data
from zoo.choosing._metrics import KINDS, Metric, ranking
from zoo.choosing._ranking import Budget, best, rank
from zoo.choosing._store import keep, recall
from zoo.errors import ZooError
from zoo.files import check_new_file

__all__ = ["Budget", "Choice", "choose"]


@dataclass
class Choice:
    """What `choose` found: every candidate's row in the table's order, the best within the budget and the
    command that fine-tunes it."""

    data: str
    classes: list[str]
    images: int
    settings: dict[str, Any]
    budget: Budget
    rows: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    command: str | None = None
    plot: str | None = None
    head: str = "cls2"
    by: tuple[Metric, ...] = KINDS["cls"]  # the head's metrics in ranking order: the first ranks

    def as_dict(self) -> dict[str, Any]:
        return {"data": self.data, "head": self.head, "classes": self.classes, "images": self.images,
                "settings": self.settings, "metric": self.by[0].name,
                "metrics": [metric.as_dict() for metric in self.by], "budget": self.budget.as_dict(),
                "candidates": self.rows, "best": self.best["name"] if self.best else None, "command": self.command,
                "plot": self.plot}


def _check(img_size: int, batch_size: int, budget: Budget) -> None:
    for name, value, least in (("--img-size", img_size, 8), ("--batch-size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ZooError(f"{name} must be a whole number of {least} or more, not {value!r}")
    for name, value in budget.as_dict().items():
        if value is not None and not value > 0:
            raise ZooError(f"--{name.replace('_', '-')} must be more than 0, not {value!r}")


def _device(device: str | None):
    """The torch device as the bench resolves it (so both measure on the same one)."""
    from zoo.benchmark._settings import Settings, resolve_settings

    return resolve_settings(Settings(**({"device": device} if device else {}), mode="infer"))[1]


def _model(candidate: Candidate, head: str | int, img_size: int, registry: Registry, seed: int):
    """The candidate built with ``head`` (a head spec, or a class count: cls<N>), or its saved model, in eval mode."""
    import torch

    from zoo._core.build import build
    from zoo._core.saving import load

    torch.manual_seed(seed)  # random weights are the same every run, so their cached results stay true
    if candidate.file is not None:
        model = load(candidate.file, registry=registry)
    else:
        head = f"cls{head}" if isinstance(head, int) else head
        model = build(f"{candidate.backbone}+{head}", weights=candidate.weights, registry=registry)
    model.set_image_size(img_size)
    return model.eval()


def _row(candidate: Candidate, kind: str) -> dict[str, Any]:
    return {"name": candidate.name, "backbone": candidate.backbone,
            "weights": str(candidate.file) if candidate.file else candidate.weights, "status": candidate.status,
            "note": candidate.note, "error": None, **{metric.name: None for metric in KINDS[kind]}, "images_per_s": None,
            "latency_ms": None, "peak_memory_mb": None, "params": None, "gflops": None,
            "measured": {"quality": False, "cost": False}, "feature_cache": None,
            **({"error": candidate.note, "note": ""} if candidate.status == "failed" else {})}


def _measure(candidate: Candidate, data: ChoiceData, settings: dict[str, Any], registry: Registry) -> dict[str, Any]:
    """One candidate's row: quality and cost from the results kept for it, else measured now (and kept)."""
    from zoo.choosing import _probe, _quality
    from zoo.choosing._cost import cost

    row = _row(candidate, data.kind)
    if not candidate.measurable:
        return row
    quality_key = fingerprint("quality", candidate.backbone, candidate.identity, data.key, data.head,
                              settings["img_size"], _probe.PROBE_SETTINGS, settings["seed"], __version__)
    cost_key = fingerprint("cost", candidate.backbone, data.head,
                           settings["device"], settings["batch_size"], settings["img_size"], settings["machine"],
                           __version__)
    quality, spent = recall("quality", quality_key), recall("cost", cost_key)
    if quality is None or spent is None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = _model(candidate, data.head, settings["img_size"], registry, settings["seed"])
            if quality is None:
                found, built = _probe.features(model, data, settings["batch_size"], _device(settings["device"]))
                quality = _quality.quality(data, found, settings["img_size"])
                row["feature_cache"] = "built" if built else "reused"
                row["measured"]["quality"] = True
                keep("quality", quality_key, quality)
            if spent is None:
                spent = cost(model, settings["device"], settings["batch_size"], settings["img_size"])
                row["measured"]["cost"] = True
                keep("cost", cost_key, spent)
        if caught and not row["note"]:
            row["note"] = one_line(caught[0].message, 300)
    row.update(quality)
    row.update(spent)
    return row


def _measure_isolated(candidate: Candidate, data: ChoiceData, settings: dict[str, Any],
                      registry: Registry) -> dict[str, Any]:
    """`_measure`, where a candidate that fails to build, load or run is one row saying why."""
    try:
        return _measure(candidate, data, settings, registry)
    except Exception as exc:  # noqa: BLE001 - any failure of one candidate is that candidate's row
        row = _row(candidate, data.kind)
        text = str(exc) if isinstance(exc, ZooError) else f"{type(exc).__name__}: {exc}"
        row.update(status="failed", error=one_line(text, 300))
        return row


def choose(
    data: str | os.PathLike[str],
    patterns: Sequence[str] = (),
    *,
    head: str | None = None,
    val: str | os.PathLike[str] | None = None,
    metric: str | None = None,
    weights: str | Mapping[str, str] | None = None,
    allow_random: bool = False,
    img_size: int = 224,
    batch_size: int = 32,
    device: str | None = None,
    max_ms: float | None = None,
    min_img_s: float | None = None,
    max_mb: float | None = None,
    max_params: float | None = None,
    plot: str | os.PathLike[str] | None = None,
    force: bool = False,
    progress: bool | None = None,
    seed: int = 0,
    registry: Registry | None = None,
) -> Choice:
    """Rank backbones for ``data`` on ``device``: a folder of class folders, or a CSV or JSON-lines table for
    ``head`` (as `zoo train` takes it after the backbone: ``kp5``, ``agegender``, ``cls10``), validated on the
    ``val`` table or fold by fold; ``metric``: which of the head's metrics ranks (default: its first).

    ``patterns``: saved model files, presets, backbone names or wildcards (default: a shortlist spanning sizes).
    ``weights``: the tag or file for every backbone (default ``imagenet``), or a mapping by backbone name (``"*"``:
    the others); weights not here leave the candidate unmeasured unless ``allow_random``. ``plot``: a PNG.

    >>> zoo.choose("faces.csv", ["resnet*", "convnext_tiny"], head="kp5", max_ms=20).best  # doctest: +SKIP
    """
    patterns = [patterns] if isinstance(patterns, (str, os.PathLike)) else [os.fspath(p) for p in patterns]
    budget = Budget(max_ms, min_img_s, max_mb, max_params)
    _check(img_size, batch_size, budget)
    plot_path = check_new_file(Path(plot), force, ".png") if plot is not None else None
    registry = registry or default_registry()
    found = read_data(data, seed, head, val, registry)
    by = ranking(found.kind, metric)
    listed = candidates(patterns, weights, allow_random, registry)
    on = _device(device)
    settings = {"img_size": img_size, "batch_size": batch_size, "device": str(on), "seed": seed,
                "machine": f"{platform.node()}|{platform.machine()}|{os.cpu_count()}"}
    rows = _measure_all(listed, found, settings, registry, progress, on)
    choice = _answer(Choice(os.fspath(data), found.classes, found.images, settings, budget, rank(rows, budget, by),
                            head=found.head, by=by), found, listed)
    if plot_path is not None and is_rank_zero():
        choice.plot = _draw(choice, found, plot_path)
    return choice


def _measure_all(listed: list[Candidate], found: ChoiceData, settings: dict[str, Any], registry: Registry,
                 progress: bool | None, device: Any) -> list[dict[str, Any]]:
    """Every candidate's row, in the order listed. Under torchrun the candidates are shared out (process r
    measures candidates r, r + N, ... on its own device) and every process gets every row."""
    group = join_process_group(device)
    own = group.mine(listed) if group is not None else listed
    try:
        rows = [_measure_isolated(candidate, found, settings, registry)
                for candidate in progress_bar(own, len(own), "zoo choose", progress if is_rank_zero() else False,
                                              unit="candidate")]
        if group is None:
            return rows
        measured = {row["name"]: row for share in group.everyone(rows) for row in share}
        return [measured[candidate.name] for candidate in listed]
    finally:
        if group is not None:
            group.leave()


def _answer(choice: Choice, data: ChoiceData, listed: list[Candidate]) -> Choice:
    """The choice with its best candidate within the budget and the `zoo train` command that fine-tunes it."""
    choice.best = best(choice.rows, choice.by)
    if choice.best is not None:
        picked = next(c for c in listed if c.name == choice.best["name"])
        choice.command = picked.train_command(choice.data, data.head, choice.settings["img_size"], _validation(data))
    return choice


def _validation(data: ChoiceData) -> str:
    """What `zoo train` needs to be told of the validation images: nothing where the folder has val/."""
    if data.val is not None:
        return f"--val {shlex.quote(str(data.val))}"
    return "--val-split 0.2" if data.folds is not None else ""


def _draw(choice: Choice, data: ChoiceData, path: Path) -> str:
    from zoo.choosing._plot import plot as draw

    what = f"{len(data.classes)} classes" if data.kind == "cls" else f"head {data.head}"
    title = f"{data.path.name}: {data.images} images, {what}, {choice.settings['img_size']} px, {choice.settings['device']}"
    return str(draw(choice.rows, choice.budget, choice.best, path, title, choice.by))
