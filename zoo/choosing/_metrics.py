"""What each head kind is scored by: its metrics, as the rows of `zoo choose` name them, with their direction.

Classification: the linear probe's and the k-NN vote's accuracy. Key points: the mean distance between predicted
and true points in pixels of the model's input (what the key-point head's own ``pixel_error`` measures), by a
ridge probe and by k-NN regression. Age and gender: the age's mean absolute error in years (ridge, k-NN) and the
gender's accuracy (logistic probe, k-NN vote). The first metric of a kind ranks unless another is asked for; the
others break ties in their order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zoo.errors import ZooError


@dataclass(frozen=True)
class Metric:
    """One quality figure of a row: its key, its column's title, its direction and how it is printed."""

    name: str
    label: str
    higher_is_better: bool = True
    form: str = ".3f"

    def score(self, row: dict[str, Any]) -> float:
        """The row's value with bigger meaning better (an absent value is the worst)."""
        value = row.get(self.name)
        if value is None:
            return float("-inf")
        return value if self.higher_is_better else -value

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "higher_is_better": self.higher_is_better}


KINDS: dict[str, tuple[Metric, ...]] = {
    "cls": (Metric("accuracy", "probe"), Metric("knn_accuracy", "k-NN")),
    "kp": (Metric("pixel_error", "probe px", False, ".2f"), Metric("knn_pixel_error", "k-NN px", False, ".2f")),
    "agegender": (Metric("age_mae", "age MAE", False, ".2f"), Metric("gender_accuracy", "gender"),
                  Metric("knn_age_mae", "k-NN age", False, ".2f"), Metric("knn_gender_accuracy", "k-NN gender")),
}
CLASSIFICATION = KINDS["cls"]
HEADS = "cls<N> (classes), kp<N> (key points), agegender"


def ranking(kind: str, metric: str | None = None) -> tuple[Metric, ...]:
    """The kind's metrics in the order they rank: ``metric`` (one of them) first, then the others."""
    metrics = KINDS[kind]
    if metric is None:
        return metrics
    chosen = [m for m in metrics if m.name == metric]
    if not chosen:
        raise ZooError(f"--metric {metric!r} is not a metric of this head; its metrics: "
                       f"{', '.join(m.name for m in metrics)}")
    return (chosen[0], *(m for m in metrics if m.name != metric))
