"""Timing a repeated step the way a benchmark must: warm-up apart, the whole loop timed, the device waited for.

On CUDA, kernels run asynchronously: the clock waits for the device (``torch.cuda.synchronize``) before
it reads ``perf_counter``, and only at the edges of a loop, so the device's queue stays full in between.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Clock:
    """``now()`` waits for the device through ``sync``, then reads the wall clock."""

    sync: Callable[[], None] = _nothing

    def now(self) -> float:
        self.sync()
        return time.perf_counter()


def steps_per_second(step: Callable[[], Any], device: Any, warm_up: int, steps: int) -> float:
    """Calls of ``step`` per second after ``warm_up`` untimed calls (the first compiles, for a compiled
    model), waiting for the device at both edges of the timed ones: a quick trial, not a benchmark."""
    clock = device_clock(device)
    for _ in range(warm_up):
        step()
    started = clock.now()
    for _ in range(steps):
        step()
    return steps / (clock.now() - started)


def device_clock(device: Any) -> Clock:
    """A clock that waits for ``device``: ``torch.cuda.synchronize(device)`` on CUDA, nothing on CPU."""
    if getattr(device, "type", str(device).split(":")[0]) == "cuda":
        import torch

        return Clock(lambda: torch.cuda.synchronize(device))
    return Clock()


def warm_up(step: Callable[[], Any], count: int, clock: Clock) -> tuple[float, ...]:
    """Run ``step`` ``count`` times and return each run's seconds (the first includes any compilation)."""
    seconds = []
    for _ in range(count):
        start = clock.now()
        step()
        seconds.append(clock.now() - start)
    return tuple(seconds)


def time_loop(step: Callable[[], Any], iters: int, clock: Clock) -> float:
    """Seconds for ``iters`` back-to-back runs of ``step``, timed as one loop."""
    start = clock.now()
    for _ in range(iters):
        step()
    return clock.now() - start


@dataclass
class Timing:
    """The repeats of one measurement: each repeat times ``iters`` steps of ``batch_size`` images."""

    batch_size: int
    iters: int
    warmup_seconds: tuple[float, ...] = ()
    repeat_seconds: list[float] = field(default_factory=list)

    @property
    def images_per_second(self) -> list[float]:
        return [self.batch_size * self.iters / s for s in self.repeat_seconds]

    @property
    def median(self) -> float:
        """Median images per second over the repeats."""
        return statistics.median(self.images_per_second)

    @property
    def ms_per_batch(self) -> float:
        return 1000.0 * statistics.median(self.repeat_seconds) / self.iters

    @property
    def spread(self) -> float:
        """(max - min) / median of images per second: 0.05 means the repeats differ by 5%."""
        rates = self.images_per_second
        return (max(rates) - min(rates)) / self.median if len(rates) > 1 else 0.0

    def summary(self) -> dict[str, Any]:
        rates = self.images_per_second
        return {
            "images_per_s": round(self.median, 3),
            "images_per_s_min": round(min(rates), 3),
            "images_per_s_max": round(max(rates), 3),
            "spread": round(self.spread, 4),
            "ms_per_batch": round(self.ms_per_batch, 3),
            "repeats_images_per_s": [round(r, 3) for r in rates],
            "warmup_s": [round(s, 3) for s in self.warmup_seconds],
        }


def interleave(steps: Sequence[Callable[[], Any]], timings: Sequence[Timing], repeats: int, clock: Clock,
               around: Callable[[int, Callable[[], float]], float] | None = None) -> None:
    """Time each step's loop in turn, ``repeats`` rounds, so that a drift of the machine hits all alike.

    Rounds alternate the order (A B, B A, A B, ...), so no step always runs right after another one.
    ``around(index, run)`` may wrap each timed loop (to track its peak memory); it must return run().
    """
    order = list(range(len(steps)))
    for round_ in range(repeats):
        for index in order if round_ % 2 == 0 else order[::-1]:
            step, timing = steps[index], timings[index]

            def run(step=step, timing=timing) -> float:
                return time_loop(step, timing.iters, clock)

            timing.repeat_seconds.append(around(index, run) if around else run())
