"""What a benchmark found: one `Run` per model and mode, gathered in a `BenchReport`, and its text form."""
from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

@dataclass
class Run:
    """One model timed in one mode."""

    model: str  # "zoo", or the library the baseline was built with
    mode: str
    batch_size: int
    requested_batch_size: int
    too_big: list[int]  # batch sizes that ran out of memory before ``batch_size`` fit
    timing: dict[str, Any]
    peak_memory_mb: float
    memory_source: str
    params: int
    trainable_params: int
    gflops_per_image: float
    achieved_gflops: float
    fraction_of_matmul: float | None
    channels_last: bool = False
    compiled: bool = False
    precision: str = "fp32"
    matmul_gflops: float | None = None  # the yardstick of ``fraction_of_matmul``: a matmul in ``precision``
    form: str | None = None  # compiled inference: fp32, bf16-autocast or bf16-weights (chosen by measuring)

    @property
    def images_per_s(self) -> float:
        return self.timing["images_per_s"]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(data.pop("timing"))
        return data


@dataclass
class BenchReport:
    """Everything one `bench` call measured, with the machine and the settings it ran under."""

    target: str
    spec: str
    freeze: str
    img_size: int
    settings: dict[str, Any]
    machine: dict[str, Any]
    matmul: dict[str, Any]
    runs: list[Run] = field(default_factory=list)

    def run(self, mode: str, model: str = "zoo") -> Run:
        return next(r for r in self.runs if r.mode == mode and r.model == model)

    def _paired(self, mode: str) -> list[float]:
        """Repeat by repeat, the first model's images/s over the second's, each pair timed back to back."""
        first, second = (self.run(mode, label) for label in self.pair(mode))
        return [a / b for a, b in zip(first.timing["repeats_images_per_s"], second.timing["repeats_images_per_s"])]

    @property
    def ratios(self) -> dict[str, float]:
        """By mode, the first model's speed over the second's (zoo over its baseline with ``vs_reference``):
        the median of the repeat-by-repeat ratios, so that a machine slowing down between repeats cancels."""
        modes = dict.fromkeys(run.mode for run in self.runs)
        return {mode: round(statistics.median(self._paired(mode)), 4) for mode in modes
                if sum(run.mode == mode for run in self.runs) > 1}

    @property
    def ratio_ranges(self) -> dict[str, list[float]]:
        """By mode, the least and greatest repeat-by-repeat ratio."""
        return {mode: [round(min(self._paired(mode)), 4), round(max(self._paired(mode)), 4)] for mode in self.ratios}

    def pair(self, mode: str) -> tuple[str, str]:
        """The labels of the two models whose ratio `ratios` gives for ``mode``."""
        runs = [run for run in self.runs if run.mode == mode]
        return runs[0].model, runs[1].model

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "spec": self.spec, "freeze": self.freeze, "img_size": self.img_size,
                "settings": self.settings, "machine": self.machine, "matmul": self.matmul,
                "runs": [run.as_dict() for run in self.runs], "ratios": self.ratios, "ratio_ranges": self.ratio_ranges}
