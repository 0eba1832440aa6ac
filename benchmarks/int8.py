"""int8 export against fp32: throughput side by side in one run, and top-1 agreement on a check set.

    int8 .pt2 (zoo export --int8, compiled)  over  --fast (zoo's fastest path here, compiled)   at least 1.5x
                                             and   fp32 channels-last compiled
    top-1 of the int8 file against the fp32 model, on images the calibration never saw       at least 99%

``--spec`` is a saved model file (its trained weights) or a spec. A spec has random weights (none can
be downloaded here), so its BatchNorm statistics are estimated from the synthetic calibration images (forward
passes in training mode, no gradient): its activations then have the ranges of a trained network's, which is
what int8 calibration is about. Images are drawn with PIL (shapes on colours, two seeds: calibration and check
sets are disjoint), or with ``--images DIR`` taken from a folder (e.g. the model's own data), shuffled with a
fixed seed and split into disjoint calibration and check sets.
Writes int8.md and int8.json into benchmarks/results/<machine>/.

    python benchmarks/int8.py [--spec resnet50+cls1000 | --spec model.safetensors [--images DIR]] [--batch-size 32]
                              [--check-images 256] [--repeats 5]
    python benchmarks/int8.py --quick --out /tmp/int8        # checks it runs (resnet18, 64 px)
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

from zoo._runtime.machine import int8_capability
from zoo._runtime.opening import open_model
from zoo.benchmark import Candidate, compare
from zoo.benchmark._settings import Settings, resolve_settings
from zoo.inference.export import export
from zoo.inference.quantize import calibration_batches

import output

LEAST_RATIO, LEAST_AGREEMENT = 1.5, 0.99


def draw_images(folder: Path, count: int, seed: int, size: int) -> Path:
    """``count`` PNGs of random ellipses, rectangles and lines on a random background."""
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)

    def rand(high: int, n: int = 1) -> list[int]:
        return [int(v) for v in torch.randint(0, high, (n,), generator=generator)]

    for index in range(count):
        image = Image.new("RGB", (size, size), tuple(rand(256, 3)))
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x, y = rand(size, 2)
            w, h = rand(size // 2 + 1, 2)
            shape = rand(3)[0]
            box = [x, y, x + w + 2, y + h + 2]
            if shape == 0:
                draw.ellipse(box, fill=tuple(rand(256, 3)))
            elif shape == 1:
                draw.rectangle(box, fill=tuple(rand(256, 3)))
            else:
                draw.line(box, fill=tuple(rand(256, 3)), width=1 + rand(6)[0])
        image.save(folder / f"{index:04d}.png")
    return folder


def pick_images(source: Path, target: Path, counts: dict[str, int]) -> dict[str, Path]:
    """Disjoint sets of ``source``'s images (shuffled with a fixed seed), linked into ``target``/NAME/."""
    import random

    files = sorted(p for p in source.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    random.Random(0).shuffle(files)
    if len(files) < sum(counts.values()):
        raise SystemExit(f"int8.py: {source} has {len(files)} images; {sum(counts.values())} are needed")
    folders, start = {}, 0
    for name, count in counts.items():
        folders[name] = target / name
        folders[name].mkdir(parents=True)
        for index, file in enumerate(files[start:start + count]):
            (folders[name] / f"{index:04d}{file.suffix}").symlink_to(file.resolve())
        start += count
    return folders


def estimate_batchnorm(model: torch.nn.Module, batches: list[torch.Tensor]) -> None:
    """Running mean and variance of every BatchNorm from ``batches`` (cumulative average), weights untouched."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    for norm in norms:
        norm.train()  # frozen stages stay in eval through model.train(); their statistics are estimated too
    with torch.no_grad():
        for batch in batches:
            model(batch)
    model.eval()


class Frozen(torch.nn.Module):
    """An exported module for `Workload`: ``train()``/``eval()`` do not reach the exported graph, which refuses them."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def train(self, mode: bool = True) -> Frozen:
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)[0]


def agreement(model: torch.nn.Module, int8: torch.nn.Module, batches: list[torch.Tensor]) -> dict[str, Any]:
    agree = total = 0
    with torch.no_grad():
        for batch in batches:
            reference = model(batch).argmax(1)
            agree += int((int8(batch).argmax(1) == reference).sum())
            total += len(batch)
    return {"images": total, "agree": agree, "agreement": agree / total}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="resnet50+cls1000")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--calibration-images", type=int, default=64)
    parser.add_argument("--check-images", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--images", type=Path, default=None, help="Take calibration and check images from DIR.")
    parser.add_argument("--quick", action="store_true", help="resnet18 at 64 px, few images: checks it runs")
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/<machine>")
    args = parser.parse_args()
    if args.quick:
        args.spec, args.batch_size, args.calibration_images, args.check_images, args.repeats = \
            "resnet18+cls10", 4, 16, 16, 1
    flags = int8_capability()
    if not flags:
        print("int8.py: this CPU has no VNNI or AMX; int8 is refused here", file=sys.stderr)
        return 2
    torch._inductor.config.freezing = True  # the int8 lowering needs it; fp32 compiles with freezing too

    folder, machine = output.results_dir("cpu", args.out)  # the machine's folder names its widest instructions

    model = open_model(args.spec).eval()  # a saved model file (trained weights) or a spec (random weights)
    if args.quick:
        model.backbone.input_size = (3, 64, 64)
    side = model.backbone.input_size[-1]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if args.images:
            picked = pick_images(args.images, Path(tmp), {"calibrate": args.calibration_images,
                                                          "check": args.check_images})
            calibrate, check = picked["calibrate"], picked["check"]
        else:
            calibrate = draw_images(Path(tmp) / "calibrate", args.calibration_images, seed=0, size=side + 32)
            check = draw_images(Path(tmp) / "check", args.check_images, seed=1, size=side + 32)
        if model.weights_report is None:  # random weights: give BatchNorm the statistics of real inputs
            estimate_batchnorm(model, calibration_batches(calibrate, model))
        report = export(model, Path(tmp) / "int8.pt2", int8=True, calibrate=calibrate, check=True)
        int8 = torch.export.load(str(Path(tmp) / "int8.pt2")).module()
        check_batches = calibration_batches(check, model)
    quantize_s = time.perf_counter() - started
    compiled_int8 = torch.compile(int8)
    agreed = agreement(model, lambda batch: compiled_int8(batch)[0], check_batches)

    fast, _ = resolve_settings(Settings(fast=True))
    candidates = [
        Candidate("int8 .pt2", Frozen(int8), channels_last=False, compile=True, precision="fp32"),
        Candidate(f"--fast ({fast.precision})", open_model(args.spec).eval(), channels_last=fast.channels_last,
                  compile=True, precision=fast.precision),
        Candidate("fp32 compiled", open_model(args.spec).eval(), channels_last=True, compile=True, precision="fp32"),
    ]
    bench = compare(candidates, mode="infer", batch_size=args.batch_size, img_size=side, warmup=1, iters=2,
                    repeats=args.repeats)
    runs = {run.model: run for run in bench.runs}
    int8_run = runs["int8 .pt2"]
    ratios = {}
    for label, run in runs.items():
        if run is int8_run:
            continue
        paired = [a / b for a, b in zip(int8_run.timing["repeats_images_per_s"], run.timing["repeats_images_per_s"])]
        ratios[label] = {"ratio": int8_run.images_per_s / run.images_per_s, "repeat_by_repeat": [min(paired), max(paired)],
                         "images_per_s": run.images_per_s, "range": [run.timing["images_per_s_min"], run.timing["images_per_s_max"]]}
    result = {
        "command": output.command_line(), "spec": args.spec, "img_size": side, "batch_size": args.batch_size,
        "trained": model.weights_report is not None, "images": str(args.images) if args.images else "drawn",
        "int8_flags": flags, "calibration_images": report.calibration_images, "check_images": agreed["images"],
        "int8_images_per_s": int8_run.images_per_s,
        "int8_range": [int8_run.timing["images_per_s_min"], int8_run.timing["images_per_s_max"]],
        "ratios": ratios, "least_ratio": LEAST_RATIO,
        "top1_agreement": agreed["agreement"],
        "least_agreement": LEAST_AGREEMENT, "max_difference_vs_fp32": report.check["max_difference_vs_fp32"],
        "export_and_calibration_s": round(quantize_s, 1), "file_bytes": report.bytes,
        "machine": {**machine, **bench.machine}, "bench": bench.as_dict(),
    }
    output.write_json(folder / "int8.json", result)
    output.write_text(folder / "int8.md", markdown(result))
    print(markdown(result))
    return 0


def markdown(r: dict[str, Any]) -> str:
    rows = [[f"int8 .pt2 over {label}", f"**{v['ratio']:.2f}x**", f"{v['repeat_by_repeat'][0]:.2f}-{v['repeat_by_repeat'][1]:.2f}",
             f"{r['least_ratio']}x", "yes" if label.startswith("--fast") and v["ratio"] >= r["least_ratio"] else
             ("**no**" if label.startswith("--fast") else "-"),
             f"{r['int8_images_per_s']:.2f} ({r['int8_range'][0]:.2f}-{r['int8_range'][1]:.2f})",
             f"{v['images_per_s']:.2f} ({v['range'][0]:.2f}-{v['range'][1]:.2f})"] for label, v in r["ratios"].items()]
    met = "yes" if r["top1_agreement"] >= r["least_agreement"] else "**no**"
    return "\n".join([
        f"# int8 export: {r['spec']} at {r['img_size']} px, batch {r['batch_size']}", "",
        f"`{r['command']}`", "",
        "Each model compiled with inductor (weights frozen into the graph), timed in turn, repeat by repeat, in "
        "one process; the ratio is of median images per second, with the least and greatest repeat-by-repeat "
        "ratio beside it. " + ("Trained weights from the file. " if r.get("trained") else
                               "Random weights with BatchNorm statistics estimated from the calibration images "
                               "(no weights can be downloaded here). ")
        + (f"Images from {r['images']}, split into disjoint calibration and check sets." if r.get("images", "drawn")
           != "drawn" else "Images drawn with PIL."), "",
        output.machine_markdown(r["machine"]) + f"\n- int8 extensions: {', '.join(r['int8_flags'])}", "",
        output.markdown_table(["compares", "ratio", "repeat by repeat", "target", "met", "int8 img/s (min-max)",
                               "baseline img/s (min-max)"], rows), "",
        f"Top-1 agreement of the int8 file (compiled) with the fp32 model on {r['check_images']} check images the "
        f"calibration ({r['calibration_images']} images) never saw: **{100 * r['top1_agreement']:.1f}%** "
        f"(at least {100 * r['least_agreement']:.0f}%: {met}). Largest logit difference from fp32 on random inputs: "
        f"{r['max_difference_vs_fp32']:.3g}. Export with calibration took {r['export_and_calibration_s']} s; "
        f"the file is {r['file_bytes'] / 1e6:.1f} MB.", "",
    ])


if __name__ == "__main__":
    sys.exit(main())
