"""The answer from the measurements: Pareto layers of quality against throughput, budgets, the best within them.

Plain data in, plain data out (rows are dictionaries as `zoo choose --json` prints them), so the order of the
table, what a budget leaves out and which candidate is recommended are decided here, and nowhere else. Quality
is the head kind's metrics in ranking order (`zoo.choosing._metrics`): the first decides, the others break ties,
each in its own direction (an error ranks lowest first); classification's accuracies when none are given.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from zoo.choosing._metrics import CLASSIFICATION, Metric


@dataclass(frozen=True)
class Budget:
    """Limits a recommendation must respect; None: no limit."""

    max_ms: float | None = None  # latency at batch 1
    min_img_s: float | None = None  # throughput at the batch asked
    max_mb: float | None = None  # peak memory
    max_params: float | None = None

    def over(self, row: dict[str, Any]) -> list[str]:
        """Which limits a measured row breaks, for people ("latency 12.3 ms > 10")."""
        checks = (("latency_ms", self.max_ms, 1, "latency {v:.1f} ms > {b:g}"),
                  ("images_per_s", self.min_img_s, -1, "{v:.1f} img/s < {b:g}"),
                  ("peak_memory_mb", self.max_mb, 1, "memory {v:.0f} MB > {b:g}"),
                  ("params", self.max_params, 1, "{v:,.0f} params > {b:,.0f}"))
        found = []
        for key, bound, sign, text in checks:
            value = row.get(key)
            if bound is not None and value is not None and sign * (value - bound) > 0:
                found.append(text.format(v=value, b=bound))
        return found

    def as_dict(self) -> dict[str, float | None]:
        return {"max_ms": self.max_ms, "min_img_s": self.min_img_s, "max_mb": self.max_mb,
                "max_params": self.max_params}

    @property
    def any(self) -> bool:
        return any(value is not None for value in self.as_dict().values())


def measured(row: dict[str, Any], by: Sequence[Metric] = CLASSIFICATION) -> bool:
    return row.get(by[0].name) is not None and row.get("images_per_s") is not None


def _quality(row: dict[str, Any], by: Sequence[Metric]) -> tuple[float, ...]:
    """The row's metrics in ranking order, bigger meaning better (an error counts negatively)."""
    return tuple(metric.score(row) for metric in by)


def _dominates(a: dict[str, Any], b: dict[str, Any], by: Sequence[Metric]) -> bool:
    better_or_equal = _quality(a, by) >= _quality(b, by) and a["images_per_s"] >= b["images_per_s"]
    return better_or_equal and (_quality(a, by) > _quality(b, by) or a["images_per_s"] > b["images_per_s"])


def pareto_layers(rows: list[dict[str, Any]], by: Sequence[Metric] = CLASSIFICATION) -> None:
    """Set each measured row's ``pareto`` layer: 1 for the front (no other row is both as good and as fast,
    and better at one), 2 for the front of what is left, and so on; None for rows not measured."""
    left = [row for row in rows if measured(row, by)]
    for row in rows:
        row["pareto"] = None
    layer = 1
    while left:
        front = [row for row in left if not any(_dominates(other, row, by) for other in left)]
        for row in front:
            row["pareto"] = layer
        left = [row for row in left if row["pareto"] is None]
        layer += 1


def rank(rows: list[dict[str, Any]], budget: Budget, by: Sequence[Metric] = CLASSIFICATION) -> list[dict[str, Any]]:
    """Rows in the table's order: by Pareto layer, then best first (along a front that is also slowest
    first); unmeasured rows (failed, weights not here) last. Each row gets ``over_budget``."""
    pareto_layers(rows, by)
    for row in rows:
        row["over_budget"] = budget.over(row) if measured(row, by) else []
        row["within_budget"] = measured(row, by) and not row["over_budget"]

    def order(row: dict[str, Any]) -> tuple:
        if not measured(row, by):
            return (1, 0, *(0.0 for _ in by), 0.0, row["name"])
        return (0, row["pareto"], *(-q for q in _quality(row, by)), -row["images_per_s"], row["name"])

    return sorted(rows, key=order)


def best(rows: list[dict[str, Any]], by: Sequence[Metric] = CLASSIFICATION) -> dict[str, Any] | None:
    """The best candidate within the budget by the ranking metric (the others, then speed, break ties)."""
    kept = [row for row in rows if row.get("within_budget")]
    if not kept:
        return None
    return max(kept, key=lambda row: (*_quality(row, by), row["images_per_s"]))
