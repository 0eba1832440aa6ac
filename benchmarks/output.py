"""Writing benchmark results: one folder per machine, every file written atomically.

Shared by `run_matrix.py` and `targets.py`: the folder is named for the machine
(``benchmarks/results/amd-epyc-avx2-2cpu/``) and holds its description beside the figures.
"""
from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zoo._runtime.machine import describe_machine, machine_slug
from zoo.files import atomic_write_bytes

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def results_dir(device: str, out: Path | None) -> tuple[Path, dict[str, Any]]:
    """The folder for this machine's results (created), and the machine's description."""
    machine = describe_machine(device)
    folder = out or RESULTS / machine_slug(machine)
    folder.mkdir(parents=True, exist_ok=True)
    return folder, machine


def write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    fields = list(dict.fromkeys(key for row in rows for key in row))  # every row's, in the order first seen
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def publish(folder: Path, stem: str, result: Any, lines: Sequence[str]) -> None:
    """A benchmark's figures as STEM.json and its table as STEM.md in ``folder``, and the table printed."""
    write_json(folder / f"{stem}.json", result)
    write_text(folder / f"{stem}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_markdown(machine: dict[str, Any]) -> str:
    """The machine in a few lines: what a reader needs to compare figures across machines."""
    lines = [
        f"- CPU: {machine['cpu']} ({machine['usable_cpus']} usable of {machine['cpu_count']}, "
        f"{machine['cpu_capability']}, native bf16: {'yes' if machine['cpu_native_bf16'] else 'no'}), "
        f"memory {machine['memory_gb']} GB",
        f"- torch {machine['torch']} ({machine['torch_threads']} threads), Python {machine['python']}, "
        f"{machine['platform']}",
    ]
    if machine.get("gpu"):
        lines.append(f"- GPU: {machine['gpu']} ({machine['gpu_memory_gb']} GB, capability "
                     f"{machine['gpu_capability']}, bf16: {machine['gpu_bf16']}), cuDNN {machine['cudnn']}")
    lines.append(f"- load average (1, 5, 15 min) before: {machine['loadavg']}"
                 + (f", after: {machine['loadavg_after']}" if machine.get("loadavg_after") else ""))
    return "\n".join(lines)


def command_line() -> str:
    return "python " + " ".join(["benchmarks/" + Path(sys.argv[0]).name, *sys.argv[1:]])
