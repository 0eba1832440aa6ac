"""Metrics that accumulate over batches: ``update(output, target)`` per batch, ``compute()`` at the end.

`SampleMean` covers every metric that is a mean over samples (accuracy, MAE, pixel error); a head
returns one from ``Head.metric()``. `ModelMetric` gathers the heads' metrics of a `ZooModel`.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch


class Metric:
    """Accumulates over batches. ``compute`` returns plain floats by name, over the batches ``update`` was given
    and no others: under torchrun, zoo gathers every process's outputs on rank 0 and computes there alone, so a
    metric must not gather across processes itself (torchmetrics does unless given ``sync_on_compute=False``)."""

    def update(self, output: Any, target: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def compute(self) -> dict[str, float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def reset(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class SampleMean(Metric):
    """The mean over every sample seen of each value ``values(output, target)`` returns per sample.

    ``values`` returns ``{name: tensor}`` with one entry per sample (or per point, for key points).
    """

    def __init__(self, values: Callable[[Any, Any], Mapping[str, torch.Tensor]]) -> None:
        self.values = values
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, Any] = {}  # tensors where the values are, read by `compute` (not each batch)
        self.counts: dict[str, int] = {}

    @torch.no_grad()
    def update(self, output: Any, target: Any) -> None:
        for name, value in self.values(output, target).items():
            value = value.detach().double().reshape(-1)
            self.sums[name] = self.sums.get(name, 0.0) + value.sum()
            self.counts[name] = self.counts.get(name, 0) + value.numel()

    def compute(self) -> dict[str, float]:
        return {name: float(self.sums[name]) / self.counts[name] for name in self.sums if self.counts[name]}


class ModelMetric(Metric):
    """Every head's metric; names are prefixed with the head (``cls10/accuracy``) when there are several."""

    def __init__(self, metrics: Mapping[str, Metric]) -> None:
        self.metrics = dict(metrics)

    def _split(self, value: Any) -> dict[str, Any]:
        if len(self.metrics) == 1 and not (isinstance(value, Mapping) and set(value) == set(self.metrics)):
            return {next(iter(self.metrics)): value}
        return value

    def update(self, output: Any, target: Any) -> None:
        outputs, targets = self._split(output), self._split(target)
        for key, metric in self.metrics.items():
            if key in targets:
                metric.update(outputs[key], targets[key])

    def compute(self) -> dict[str, float]:
        if len(self.metrics) == 1:
            return next(iter(self.metrics.values())).compute()
        return {f"{key}/{name}": value for key, metric in self.metrics.items() for name, value in metric.compute().items()}

    def reset(self) -> None:
        for metric in self.metrics.values():
            metric.reset()
