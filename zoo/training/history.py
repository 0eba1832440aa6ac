"""A training run's history: one row per epoch, written as CSV and JSON, and a PNG of the curves."""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zoo.files import atomic_write_bytes


def history_paths(output: Path) -> dict[str, Path]:
    """Where the history of a run saving ``output`` goes: beside it, named after it."""
    stem = output.with_suffix("")
    return {"csv": Path(f"{stem}.history.csv"), "json": Path(f"{stem}.history.json"),
            "png": Path(f"{stem}.curves.png")}


def write_history(rows: Sequence[dict[str, Any]], output: Path) -> dict[str, str]:
    """Write the CSV, the JSON and (with matplotlib) the curves; returns what was written, by kind."""
    paths = history_paths(output)
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    text = io.StringIO()
    writer = csv.DictWriter(text, columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(paths["csv"], text.getvalue().encode())
    atomic_write_bytes(paths["json"], json.dumps(list(rows), indent=2).encode())
    written = {"csv": str(paths["csv"]), "json": str(paths["json"])}
    png = plot_curves(rows)
    if png is not None:
        atomic_write_bytes(paths["png"], png)
        written["png"] = str(paths["png"])
    return written


def plot_curves(rows: Sequence[dict[str, Any]]) -> bytes | None:
    """Loss and each metric against the epoch, train and val on one panel each; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    names = []
    for row in rows:
        for key in row:
            if key.startswith(("train/", "val/")) and key.split("/", 1)[1] not in names:
                names.append(key.split("/", 1)[1])
    figure, axes = plt.subplots(1, max(1, len(names)), figsize=(4 * max(1, len(names)), 3.2), squeeze=False)
    epochs = [row["epoch"] for row in rows]
    for axis, name in zip(axes[0], names):
        for split in ("train", "val"):
            values = [row.get(f"{split}/{name}") for row in rows]
            if any(v is not None for v in values):
                axis.plot(epochs, [float("nan") if v is None else v for v in values], marker="o", label=split)
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()
