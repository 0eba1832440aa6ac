"""What a candidate costs on this device, measured by the bench itself (`zoo.bench`), kept short: images per
second at the batch asked, latency at batch 1, peak memory, parameters and GFLOPs per image."""
from __future__ import annotations

from typing import Any

from torch import nn

from zoo.benchmark import bench

# A ranking needs the order of magnitude, not the third digit: one warm-up, a few timed steps, one repeat.
ITERS, LATENCY_ITERS = 2, 3


def cost(model: nn.Module, device: str | None, batch_size: int, img_size: int) -> dict[str, Any]:
    where = {} if device is None else {"device": device}
    run = bench(model, mode="infer", batch_size=batch_size, img_size=img_size, warmup=1, iters=ITERS, repeats=1,
                **where).run("infer")
    single = bench(model, mode="infer", batch_size=1, img_size=img_size, warmup=1, iters=LATENCY_ITERS, repeats=1,
                   **where).run("infer")
    return {"images_per_s": run.images_per_s, "latency_ms": single.timing["ms_per_batch"],
            "peak_memory_mb": run.peak_memory_mb, "params": run.params, "gflops": run.gflops_per_image,
            "batch_size": run.batch_size}
