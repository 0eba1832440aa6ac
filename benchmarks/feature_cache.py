"""The feature-cache target, measured side by side in one run on a ten-class image folder this script draws.

    resnet50+cls10 --freeze=all      an epoch after the first, cache over no cache      at least 20x faster
    resnet50+cls10 --freeze=layer4   the same                                            faster (> 1x)
    both                             best validation accuracy with and without the cache  within 1 point

An epoch is timed from the end of one epoch to the end of the next (training and validation); both sides train
on the eval transform (--no-augment), since the cache does. Each side runs with a fresh cache folder, so the
cached side also builds its cache (reported as the build time). Writes feature_cache.md and feature_cache.json into
benchmarks/results/<machine>/.

    python benchmarks/feature_cache.py [--img-size 64] [-b 16] [--per-class 16] [--epochs 3]
    python benchmarks/feature_cache.py --quick --out /tmp/feature-cache      # checks it runs
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import zoo

import output

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import draw_shapes  # noqa: E402  (the same drawing as make demo)

COLORS = [(220, 30, 30), (30, 30, 220), (30, 200, 30), (230, 220, 40), (200, 40, 200), (40, 210, 210),
          (250, 140, 20), (120, 60, 20), (250, 250, 250), (10, 10, 10)]


def draw(root: Path, per_class: int, size: int) -> Path:
    """DATA/{train,val}/cN/*.png: a square of class N's colour on a grey background (`make demo`'s drawing)."""
    classes = {f"c{index}": color for index, color in enumerate(COLORS)}
    return draw_shapes.draw(root, per_class, size, classes, val_per_class=max(2, per_class // 2))


def side(spec: str, data: Path, freeze: str, cache: bool, args: argparse.Namespace) -> dict[str, object]:
    """One training run: seconds per epoch (end of one to end of the next), setup time, best val accuracy."""
    ends: list[float] = []
    with tempfile.TemporaryDirectory() as cache_dir:
        os.environ["ZOO_CACHE_DIR"] = cache_dir
        started = time.perf_counter()
        result = zoo.fit(spec, data, freeze=freeze, epochs=args.epochs, batch_size=args.batch_size,
                         img_size=args.img_size, augment=False, lr=0.01, seed=0, progress=False,
                         feature_cache=cache, on_epoch=lambda row: ends.append(time.perf_counter()))
    key = next(k for k in result.history[0] if k.startswith("val/") and k.endswith("/accuracy"))
    return {"cache": cache, "freeze": freeze, "first_epoch_s": ends[0] - started,
            "later_epoch_s": statistics.median(b - a for a, b in zip(ends, ends[1:])),
            "best_accuracy": max(row[key] for row in result.history),
            "cache_bytes": (result.feature_cache or {}).get("bytes", 0)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="resnet50+cls10")
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("-b", "--batch-size", type=int, default=16)
    parser.add_argument("--per-class", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.spec, args.per_class, args.epochs, args.batch_size, args.img_size = "resnet18+cls10", 2, 2, 4, 32
    folder, machine = output.results_dir("cpu", args.out)
    previous = os.environ.get("ZOO_CACHE_DIR")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = draw(Path(tmp) / "colours", args.per_class, args.img_size)
        for freeze in ("all", "layer4"):
            for cache in (False, True):
                rows.append(side(args.spec, data, freeze, cache, args))
    if previous is None:
        os.environ.pop("ZOO_CACHE_DIR", None)
    else:
        os.environ["ZOO_CACHE_DIR"] = previous
    table, ratios = [], {}
    for freeze in ("all", "layer4"):
        plain, cached = (next(r for r in rows if r["freeze"] == freeze and r["cache"] == c) for c in (False, True))
        ratios[freeze] = plain["later_epoch_s"] / cached["later_epoch_s"]
        gap = 100 * (cached["best_accuracy"] - plain["best_accuracy"])
        table.append([f"--freeze={freeze}", f"{plain['later_epoch_s']:.2f} s", f"{cached['later_epoch_s']:.3f} s",
                      f"{ratios[freeze]:.1f}x", ">= 20x" if freeze == "all" else "> 1x",
                      f"{cached['first_epoch_s']:.1f} s / {plain['first_epoch_s']:.1f} s",
                      f"{gap:+.1f}", f"{cached['cache_bytes'] / 2**20:.1f} MiB"])
    lines = [f"# Feature cache ({machine.get('cpu', '?')}, {machine.get('torch_threads', '?')} torch threads)", "",
             f"`{output.command_line()}`: {args.spec}, {10 * args.per_class} training images of {args.img_size} px, "
             f"batch {args.batch_size}, {args.epochs} epochs, no augmentation", "",
             output.markdown_table(["freeze", "epoch, no cache", "epoch, cache", "speed-up", "goal",
                                    "setup + epoch 1 (cache / none)", "val accuracy gap (points)", "cache size"], table),
             "", output.machine_markdown(machine)]
    output.publish(folder, "feature_cache", {"machine": machine, "rows": rows, "speedup": ratios, "spec": args.spec,
                                             "img_size": args.img_size}, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
