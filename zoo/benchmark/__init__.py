"""What a model costs: throughput, latency, peak memory and FLOPs, measured side by side.

`bench` measures one model (a spec or a saved model file); `compare` measures several candidates
interleaved in one run. The private modules are the parts of a measurement: `_settings` (what to run),
`_machine` (where), `_timing`, `_memory`, `_flops` and `_workload` (how), `_baseline` (what to compare
with) and `_report` (the result, as data; the CLI formats it for people).
"""
from __future__ import annotations

from zoo.benchmark._runner import Candidate, bench, compare, is_out_of_memory

__all__ = ["Candidate", "bench", "compare", "is_out_of_memory"]
