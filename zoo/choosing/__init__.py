"""`zoo choose`: which backbone for my data, on my machine.

Each candidate (a saved model file, a backbone matching a pattern, or the shortlist) is measured on the user's
data and device: transfer quality from its frozen features (a linear probe and a k-NN vote, on features built
once through the feature cache) and cost (the bench's own measurement). The answer is a table along the
accuracy/throughput Pareto front, filtered by budgets, naming the best candidate within them and the
`zoo train` command that fine-tunes it. A candidate that fails is one row, and the others go on; results are
kept per candidate, weights and data, so a re-run or a wider pattern measures only what is new.
"""
from __future__ import annotations

import os
import platform
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo._registry.registry import Registry, default_registry
from zoo._runtime.progress import progress as progress_bar
from zoo._untrusted import one_line
from zoo._version import __version__
from zoo.choosing._candidates import Candidate, candidates, fingerprint
from zoo.choosing._data import ChoiceData, read_data
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

    def as_dict(self) -> dict[str, Any]:
        return {"data": self.data, "classes": self.classes, "images": self.images, "settings": self.settings,
                "budget": self.budget.as_dict(), "candidates": self.rows,
                "best": self.best["name"] if self.best else None, "command": self.command, "plot": self.plot}


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


def _model(candidate: Candidate, classes: int, img_size: int, registry: Registry, seed: int):
    import torch

    from zoo._core.build import build
    from zoo._core.saving import load

    torch.manual_seed(seed)  # random weights are the same every run, so their cached results stay true
    if candidate.file is not None:
        model = load(candidate.file, registry=registry)
    else:
        model = build(f"{candidate.backbone}+cls{classes}", weights=candidate.weights, registry=registry)
    model.set_image_size(img_size)
    return model.eval()


def _row(candidate: Candidate) -> dict[str, Any]:
    return {"name": candidate.name, "backbone": candidate.backbone,
            "weights": str(candidate.file) if candidate.file else candidate.weights, "status": candidate.status,
            "note": candidate.note, "error": None, "accuracy": None, "knn_accuracy": None, "images_per_s": None,
            "latency_ms": None, "peak_memory_mb": None, "params": None, "gflops": None,
            "measured": {"quality": False, "cost": False}, "feature_cache": None,
            **({"error": candidate.note, "note": ""} if candidate.status == "failed" else {})}


def _measure(candidate: Candidate, data: ChoiceData, settings: dict[str, Any], registry: Registry) -> dict[str, Any]:
    """One candidate's row: quality and cost from the results kept for it, else measured now (and kept)."""
    from zoo.choosing import _probe
    from zoo.choosing._cost import cost

    row = _row(candidate)
    if not candidate.measurable:
        return row
    quality_key = fingerprint("quality", candidate.backbone, candidate.identity, data.key, settings["img_size"],
                              _probe.PROBE_SETTINGS, settings["seed"], __version__)
    cost_key = fingerprint("cost", candidate.backbone, settings["device"], settings["batch_size"],
                           settings["img_size"], settings["machine"], __version__)
    quality, spent = recall("quality", quality_key), recall("cost", cost_key)
    if quality is None or spent is None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = _model(candidate, len(data.classes), settings["img_size"], registry, settings["seed"])
            if quality is None:
                found, built = _probe.features(model, data, settings["batch_size"], _device(settings["device"]))
                quality = _probe.quality(data, found)
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
        row = _row(candidate)
        text = str(exc) if isinstance(exc, ZooError) else f"{type(exc).__name__}: {exc}"
        row.update(status="failed", error=one_line(text, 300))
        return row


def choose(
    data: str | os.PathLike[str],
    patterns: Sequence[str] = (),
    *,
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
    """Rank backbones for ``data`` (a folder of class folders) on ``device``.

    ``patterns``: saved model files, presets, backbone names or wildcards (default: a shortlist spanning sizes).
    ``weights``: the tag or file for every backbone (default ``imagenet``), or a mapping by backbone name
    (``"*"``: the others). Weights not on this machine leave the candidate unmeasured, listed with how to get
    them, unless ``allow_random`` (then it is measured with random weights). ``plot``: a PNG of the answer.

    >>> zoo.choose("photos/", ["resnet*", "convnext_tiny"], max_ms=20).best  # doctest: +SKIP
    """
    patterns = [patterns] if isinstance(patterns, (str, os.PathLike)) else [os.fspath(p) for p in patterns]
    budget = Budget(max_ms, min_img_s, max_mb, max_params)
    _check(img_size, batch_size, budget)
    plot_path = check_new_file(Path(plot), force, ".png") if plot is not None else None
    found = read_data(data, seed)
    registry = registry or default_registry()
    listed = candidates(patterns, weights, allow_random, registry)
    settings = {"img_size": img_size, "batch_size": batch_size, "device": str(_device(device)), "seed": seed,
                "machine": f"{platform.node()}|{platform.machine()}|{os.cpu_count()}"}
    rows = [_measure_isolated(candidate, found, settings, registry)
            for candidate in progress_bar(listed, len(listed), "zoo choose", progress, unit="candidate")]
    rows = rank(rows, budget)
    chosen = best(rows)
    choice = Choice(os.fspath(data), found.classes, found.images, settings, budget, rows, chosen)
    if chosen is not None:
        picked = next(c for c in listed if c.name == chosen["name"])
        choice.command = picked.train_command(os.fspath(data), len(found.classes), img_size, found.folds is not None)
    if plot_path is not None:
        from zoo.choosing._plot import plot as draw

        title = f"{found.path.name}: {found.images} images, {len(found.classes)} classes, {img_size} px, {settings['device']}"
        choice.plot = str(draw(rows, budget, chosen, plot_path, title))
    return choice
