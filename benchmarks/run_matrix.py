"""The benchmark matrix: each model of MATRIX at inference, and its training step frozen three ways.

The freeze policies are ``none``, the last spatial stage (``layer4`` on a ResNet: everything before it
frozen; ``block5`` on VGG) and ``all``. Inference does not depend on the policy, so it is measured once.
Each cell runs in a fresh process (see `isolation.py`), so that none inherits another's allocator state.
Writes matrix.csv, matrix.json, matrix.md, matrix.png and machine.json into
benchmarks/results/<machine>/. The default sizes keep the whole matrix near a quarter of an hour on two
CPU cores.

    python benchmarks/run_matrix.py [--device cuda] [--batch-size 8] [--models resnet18+cls10,...]
    python benchmarks/run_matrix.py --quick --out /tmp/matrix     # tiny sizes: checks the suite runs
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zoo
from zoo.benchmark._report import BenchReport

import isolation
import output


@dataclass(frozen=True)
class Entry:
    """One model of the matrix; its own batch, image size or iterations where the default is too dear."""

    spec: str
    batch_size: int | None = None
    img_size: int | None = None
    iters: int | None = None
    repeats: int | None = None


# One line per model. det91 is torchvision's Faster R-CNN at its own 800 px size.
MATRIX = (
    Entry("resnet18+cls10"),
    Entry("resnet50+cls10"),
    Entry("vgg16+cls10", iters=1),
    Entry("timm/efficientnet_b0+cls10"),
    Entry("resnet50+det91", batch_size=2, img_size=800, iters=1, repeats=3),
)
QUICK = {"batch_size": 2, "img_size": 64, "warmup": 1, "iters": 1, "repeats": 1}


def freeze_policies(spec: str) -> list[str]:
    """none, everything before the last spatial stage, all."""
    stages = zoo.build(spec).backbone.feature_info.spatial_stages
    return ["none", stages[-1].name, "all"]


def row(entry: Entry, report: BenchReport, mode: str) -> dict[str, Any]:
    run = report.run(mode)
    return {
        "model": entry.spec, "mode": mode, "freeze": report.freeze if mode == "train" else "any",
        "batch_size": run.batch_size, "img_size": report.img_size, "images_per_s": run.images_per_s,
        "images_per_s_min": run.timing["images_per_s_min"], "images_per_s_max": run.timing["images_per_s_max"],
        "spread": run.timing["spread"], "ms_per_batch": run.timing["ms_per_batch"],
        "peak_memory_mb": run.peak_memory_mb, "params": run.params, "trainable_params": run.trainable_params,
        "gflops_per_image": round(run.gflops_per_image, 3), "achieved_gflops": run.achieved_gflops,
        "fraction_of_matmul": run.fraction_of_matmul, "matmul_gflops": report.matmul["gflops"],
        "loadavg_1min": report.machine["loadavg"][0],
    }


def cell(spec: str, mode: str, freeze: str, settings: dict[str, Any]) -> BenchReport:
    return zoo.bench(spec, mode=mode, freeze=freeze, **settings)


def measure(entries: list[Entry], args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows, reports = [], []
    base = QUICK if args.quick else {"batch_size": args.batch_size, "img_size": args.img_size,
                                     "warmup": args.warmup, "iters": args.iters, "repeats": args.repeats}
    for entry in entries:
        own = {key: getattr(entry, key) for key in ("batch_size", "img_size", "iters", "repeats")
               if getattr(entry, key) is not None and not args.quick}
        settings = {**base, **own, "device": args.device, "threads": args.threads}
        for mode, freeze in [("infer", "none")] + [("train", f) for f in freeze_policies(entry.spec)]:
            start = time.perf_counter()
            report = isolation.fresh(cell, entry.spec, mode, freeze, settings)
            rows.append(row(entry, report, mode))
            reports.append(report.as_dict())
            print(f"{entry.spec:28} {mode:5} {rows[-1]['freeze']:10} {rows[-1]['images_per_s']:9.2f} img/s "
                  f"({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    return rows, reports


def markdown(rows: list[dict[str, Any]], machine: dict[str, Any], seconds: float) -> str:
    headers = ["model", "mode", "freeze", "batch", "px", "img/s", "min-max", "ms/batch", "peak MB", "trainable",
               "GFLOP/img", "GFLOP/s", "of matmul"]
    table = [[r["model"], r["mode"], r["freeze"], r["batch_size"], r["img_size"], f"{r['images_per_s']:.2f}",
              f"{r['images_per_s_min']:.2f}-{r['images_per_s_max']:.2f}", f"{r['ms_per_batch']:.0f}",
              f"{r['peak_memory_mb']:,.0f}", f"{r['trainable_params']:,}", f"{r['gflops_per_image']:.2f}",
              f"{r['achieved_gflops']:.1f}", f"{100 * (r['fraction_of_matmul'] or 0):.0f}%"] for r in rows]
    return "\n".join([
        "# Benchmark matrix", "",
        f"`{output.command_line()}` ({seconds / 60:.1f} min). Images per second: median of the repeats, "
        "min-max beside it. Training times a whole step (forward, backward, SGD step) with the freeze "
        "policy applied; `of matmul` is the achieved GFLOP/s over a square fp32 matmul measured just before.",
        "", output.machine_markdown(machine), "", output.markdown_table(headers, table), "",
        "![images per second](matrix.png)", "",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--models", default=None, help="comma-separated specs instead of the matrix")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that the suite runs")
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/<machine>")
    args = parser.parse_args()

    entries = [Entry(spec) for spec in args.models.split(",")] if args.models else list(MATRIX)
    start = time.perf_counter()
    rows, reports = measure(entries, args)
    folder, machine = output.results_dir(args.device, args.out)
    machine["loadavg_after"] = machine.pop("loadavg")
    machine["loadavg"] = reports[0]["machine"]["loadavg"]
    output.write_csv(folder / "matrix.csv", rows)
    output.write_json(folder / "matrix.json", {"command": output.command_line(), "machine": machine, "rows": rows,
                                               "reports": reports})
    output.write_json(folder / "machine.json", machine)
    output.write_text(folder / "matrix.md", markdown(rows, machine, time.perf_counter() - start))
    try:
        from plot import plot_matrix
    except ImportError as exc:  # matplotlib is the optional extra `bench`
        print(f"no plot: {exc} (pip install 'zoo[bench]')", file=sys.stderr)
    else:
        plot_matrix(rows, folder / "matrix.png", machine)
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
