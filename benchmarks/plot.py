"""The matrix as a picture: images per second per model, inference beside the three training steps.

Needs matplotlib (the optional extra ``bench``); the rest of the suite does not.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from zoo.files import atomic_write_bytes  # noqa: E402


def plot_matrix(rows: list[dict[str, Any]], path: Path, machine: dict[str, Any]) -> None:
    """Grouped horizontal bars on a log scale: a model per group, a bar per mode and freeze policy."""
    import io

    models = list(dict.fromkeys(r["model"] for r in rows))
    series = list(dict.fromkeys((r["mode"], "any" if r["mode"] == "infer" else position)
                                for position, r in _positions(rows)))
    height = 0.8 / len(series)
    figure, axes = plt.subplots(figsize=(9, 1.1 * len(models) + 1.5))
    for index, (mode, position) in enumerate(series):
        values, labels = [], []
        for model in models:
            match = [r for p, r in _positions(rows) if r["model"] == model and r["mode"] == mode
                     and (mode == "infer" or p == position)]
            values.append(match[0]["images_per_s"] if match else 0)
            labels.append(match[0]["freeze"] if match else "")
        ys = [m + index * height for m in range(len(models))]
        name = "inference" if mode == "infer" else f"train, freeze {('none', 'before last stage', 'all')[position]}"
        bars = axes.barh(ys, values, height=height, label=name)
        for bar, value in zip(bars, values):
            if value:
                axes.text(value * 1.03, bar.get_y() + height / 2, f"{value:.3g}", va="center", fontsize=7)
    axes.set_yticks([m + 0.4 - height / 2 for m in range(len(models))], models)
    axes.invert_yaxis()
    axes.set_xscale("log")
    axes.set_xlabel("images per second (median of repeats, log scale)")
    where = machine.get("gpu") or f"{machine['cpu']}, {machine['usable_cpus']} cpus"
    axes.set_title(f"zoo bench matrix on {where}, torch {machine['torch']}", fontsize=10)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def _positions(rows: list[dict[str, Any]]):
    """(position of the freeze policy among a model's training rows: 0 none, 1 last stage, 2 all, row)."""
    seen: dict[str, int] = {}
    for r in rows:
        if r["mode"] == "train":
            seen[r["model"]] = seen.get(r["model"], -1) + 1
            yield seen[r["model"]], r
        else:
            yield 0, r
