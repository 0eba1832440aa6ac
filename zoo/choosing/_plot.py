"""The answer as a picture: the ranking metric (accuracy, or an error drawn with better upwards) against
throughput, the Pareto front drawn, the budgets as lines and the candidates outside them in grey."""
from __future__ import annotations

import io
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from zoo.choosing._metrics import CLASSIFICATION, Metric  # noqa: E402
from zoo.choosing._ranking import Budget, measured  # noqa: E402
from zoo.files import atomic_write_bytes  # noqa: E402


LABEL_GAP = 9  # points between the baselines of two labels that would otherwise overlap


def _label(axes: Any, rows: list[dict[str, Any]], key: str) -> None:
    """Each point's name beside it; names that would overlap (points close together, such as several files of
    one architecture at one throughput) are moved down, one under the other, from the top point."""
    axes.figure.canvas.draw()  # the limits and scales are settled: points can be placed on the page
    to_points = 72 / axes.figure.dpi
    placed: list[tuple[float, float]] = []
    anchors = [(axes.transData.transform((row["images_per_s"], row[key])) * to_points, row) for row in rows]
    right = axes.transAxes.transform((0.7, 0))[0] * to_points  # names of points past it go on their left
    for (x, y), row in sorted(anchors, key=lambda anchor: -anchor[0][1]):
        shown_at = y
        while any(abs(px - x) < 90 and abs(py - shown_at) < LABEL_GAP for px, py in placed):
            shown_at -= LABEL_GAP
        placed.append((x, shown_at))
        left = x > right
        axes.annotate(row["name"].rsplit("/", 1)[-1], (row["images_per_s"], row[key]), fontsize=7,
                      xytext=(-4 if left else 4, 3 + shown_at - y), textcoords="offset points",
                      ha="right" if left else "left", color="black" if row["within_budget"] else "0.5")


def plot(rows: list[dict[str, Any]], budget: Budget, best: dict[str, Any] | None, path: Path, title: str,
         by: Sequence[Metric] = CLASSIFICATION) -> Path:
    """Write the scatter as a PNG at ``path`` (atomically); ``by[0]`` is the metric drawn."""
    key = by[0].name
    shown = [row for row in rows if measured(row, by)]
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=110)
    for row in shown:
        axes.scatter(row["images_per_s"], row[key], s=40, color="C0" if row["within_budget"] else "0.7",
                     edgecolor="C3" if row is best else "none", linewidth=2, zorder=3)
    front = sorted((row for row in shown if row["pareto"] == 1), key=lambda row: row["images_per_s"])
    if front:
        axes.plot([r["images_per_s"] for r in front], [r[key] for r in front], color="C1", lw=1.5,
                  label="Pareto front", zorder=2)
    if budget.min_img_s is not None:
        axes.axvline(budget.min_img_s, color="C2", ls="--", lw=1, label=f"--min-img-s {budget.min_img_s:g}")
    if budget.max_ms is not None:  # latency at batch 1, shown where its throughput would lie
        axes.axvline(1000 / budget.max_ms, color="C4", ls=":", lw=1,
                     label=f"--max-ms {budget.max_ms:g} (as batch-1 img/s)")
    if shown and max(r["images_per_s"] for r in shown) > 20 * min(r["images_per_s"] for r in shown):
        axes.set_xscale("log")
        axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("images per second (this device)")
    axes.set_ylabel("linear-probe accuracy" if key == "accuracy" else
                    f"{by[0].label} ({'higher' if by[0].higher_is_better else 'lower'} is better)")
    if not by[0].higher_is_better:
        axes.invert_yaxis()
    axes.set_title(title, fontsize=9)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=7, loc="best")
    axes.margins(0.12)
    figure.tight_layout()
    _label(axes, shown, key)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())
    return path
