"""`make gpu-check`: on a machine with a GPU, zoo's CUDA tests and its GPU benchmarks in about six minutes,
with the torch found there; results in benchmarks/results/<gpu>/ (gpu_check.md sums them up).

    tests      pytest -m gpu: training, the feature cache, eval, predict --fast, bench, export --check and
               torchrun (NCCL) on the GPU
    targets    --fast against eager fp32 and against a plain compiled script; zoo's model against torchvision's
    wall       `zoo bench --vs-reference` wall time against a plain harness doing the same steps
    pipeline   `zoo train` / `zoo predict` over 10,000 JPEG images against the bench's model-only figures

Each step runs in its own process under its own time limit; one that fails or overruns is reported and the
others go on. The exit code is 1 when a step failed.

    python benchmarks/gpu_check.py                    # on the GPU machine
    python benchmarks/gpu_check.py --device cpu --quick --out /tmp/gpu-check   # checks it runs, on a CPU
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import output

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def steps(device: str, quick: bool, out: Path) -> list[tuple[str, list[str], dict[str, str], int]]:
    """(name, command, extra environment, seconds allowed) for each step, in order."""
    python, tiny = sys.executable, ["--quick"] if quick else []
    at = ["--out", str(out)]
    return [
        ("tests", [python, "-P", "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", str(ROOT / "tests")],
         {"ZOO_GPU_TEST_DEVICE": device}, 150),
        ("targets", [python, str(HERE / "targets.py"), "--device", device, "--only", "reference,fast,plain",
                     "--spec", "resnet50+cls1000", *(["-b", "256"] if device != "cpu" else []), *tiny, *at], {}, 120),
        ("wall", [python, str(HERE / "bench_wall.py"), "--device", device, "--rounds", "1", *tiny, *at], {}, 90),
        ("pipeline", [python, str(HERE / "data_pipeline.py"), "--device", device, "--rounds", "1", *tiny, *at],
         {}, 150),
    ]


def run(name: str, command: list[str], env: dict[str, str], limit: int) -> dict:
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit, cwd=ROOT,
                              env={**os.environ, **env})
        status, tail = ("passed" if done.returncode == 0 else f"failed ({done.returncode})"), done.stdout + done.stderr
    except subprocess.TimeoutExpired as stopped:
        status = f"over {limit} s"
        tail = (stopped.stdout or b"").decode(errors="replace") + (stopped.stderr or b"").decode(errors="replace")
    seconds = time.perf_counter() - started
    print(f"{name:9} {status} in {seconds:.0f} s", file=sys.stderr, flush=True)
    return {"step": name, "status": status, "seconds": round(seconds, 1), "command": " ".join(command[1:]),
            "output_tail": tail[-4000:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script on any machine")
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/<machine>")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print("gpu-check: no CUDA device here (torch.cuda.is_available() is False); "
                  "use --device cpu --quick to check the script itself", file=sys.stderr)
            return 2
    folder, machine = output.results_dir(args.device, args.out)
    results = [run(name, command, env, limit) for name, command, env, limit in steps(args.device, args.quick, folder)]
    figures = {}
    for stem in ("targets", "bench_wall", "data_pipeline"):
        path = folder / f"{stem}.md"
        if path.exists():
            figures[stem] = path.read_text(encoding="utf-8")
    summary = {"machine": machine, "device": args.device, "quick": args.quick, "steps": results}
    output.write_json(folder / "gpu_check.json", summary)
    lines = [f"# gpu-check ({machine.get('gpu') or machine.get('cpu', '?')}, {args.device})", "",
             "| step | status | seconds |", "|---|---|---|"]
    lines += [f"| {r['step']} | {r['status']} | {r['seconds']} |" for r in results]
    for stem, text in figures.items():
        lines += ["", f"## {stem}", "", text.strip()]
    output.write_text(folder / "gpu_check.md", "\n".join(lines) + "\n")
    print(folder)
    return 0 if all(r["status"] == "passed" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
