"""Each measurement in a fresh Python process, so that none inherits another's state.

On CPU, eager throughput depends on the C allocator's state, which a process carries from one
measurement to the next: after a few training steps glibc keeps freed memory mapped, later steps stop
paying page faults, and an eager resnet50 at batch 32 then runs far faster than in a fresh process.
Measured one after another in one process, figures would depend on their order.
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def fresh(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a new interpreter (spawned, not forked); its result comes back pickled."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()
