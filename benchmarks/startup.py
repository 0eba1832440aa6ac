"""Start-up cost of `zoo --help` and a warm `zoo list`, against `python -c "import torch"`.

Target (issue 2): a warm `zoo list` takes at most 0.3x the time of importing torch on the same
machine. Commands run interleaved, so a noisy neighbour slows all of them alike.

    python benchmarks/startup.py [--repeats 7] [--out FILE.md]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from zoo.files import atomic_write_bytes

import output

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
COMMANDS = {
    "import torch": [sys.executable, "-c", "import torch"],
    "zoo --help": [str(BIN / "zoo"), "--help"],
    "zoo list": [str(BIN / "zoo"), "list"],
    "zoo list 'resnet*'": [str(BIN / "zoo"), "list", "resnet*"],
}
TARGET = 0.3


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/<machine>/startup.md")
    args = parser.parse_args()
    if args.out is None:
        args.out = output.results_dir("cpu", None)[0] / "startup.md"

    for command in COMMANDS.values():  # warm the page cache and zoo's timm name cache
        timed(command)
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            samples[name].append(timed(command))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    torch_time = medians["import torch"]
    rows = []
    for name, values in samples.items():
        ratio = medians[name] / torch_time
        rows.append({"command": name, "median_s": round(medians[name], 3), "min_s": round(min(values), 3),
                     "max_s": round(max(values), 3), "ratio_to_import_torch": round(ratio, 3)})
    ratio = medians["zoo list"] / torch_time
    verdict = "meets" if ratio <= TARGET else "misses"
    machine = f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}"
    lines = [
        "# Start-up: `zoo list` against `import torch`",
        "",
        f"Machine: {machine}. Median of {args.repeats} interleaved runs after one warm-up each.",
        f"Command: `python benchmarks/startup.py --repeats {args.repeats}`",
        "",
        "| command | median s | min s | max s | x import torch |",
        "|---|---:|---:|---:|---:|",
        *[f"| `{r['command']}` | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['max_s']:.3f} | {r['ratio_to_import_torch']:.3f} |" for r in rows],
        "",
        f"Warm `zoo list` / `import torch` = **{ratio:.3f}x**: {verdict} the target of at most {TARGET}x.",
        "",
    ]
    report = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out, report.encode())
    summary = {"machine": machine, "rows": rows, "target": TARGET, "zoo_list_ratio": round(ratio, 3)}
    atomic_write_bytes(args.out.with_suffix(".json"), (json.dumps(summary, indent=2) + "\n").encode())
    print(report)
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
