"""Peak memory of one measurement: the CUDA allocator's peak on a GPU, the process's resident set on CPU.

On Linux the resident-set peak (``VmHWM``) can be reset by writing 5 to ``/proc/self/clear_refs``, so each
measurement gets its own peak. Where that is refused, ``ru_maxrss`` is the peak since the process started,
and the report says so.
"""
from __future__ import annotations

import resource
import sys
from pathlib import Path
from typing import Any

CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")


def _vm_hwm_bytes() -> int | None:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _max_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS counts bytes, Linux kilobytes


class PeakMemory:
    """``reset()`` before a measurement, ``peak()`` after it: bytes, and ``source`` says what was read."""

    def __init__(self, device: Any) -> None:
        self.device = device
        self.cuda = getattr(device, "type", str(device).split(":")[0]) == "cuda"
        self.source = "cuda max_memory_allocated" if self.cuda else "process peak RSS (VmHWM)"

    def reset(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:
            CLEAR_REFS.write_text("5")
        except OSError:
            self.source = "process peak RSS since start (ru_maxrss)"

    def peak(self) -> int:
        if self.cuda:
            import torch

            return int(torch.cuda.max_memory_allocated(self.device))
        if self.source.endswith("(VmHWM)"):
            hwm = _vm_hwm_bytes()
            if hwm is not None:
                return hwm
            self.source = "process peak RSS since start (ru_maxrss)"
        return _max_rss_bytes()
