"""Does the data pipeline keep the device busy? zoo's own runs against its model-only figures, side by side.

    train     a `zoo train` epoch (reading, decoding, augmenting, copying, training; epochs after the first)
              over `zoo bench --mode train` (steps on one batch already on the device), same model, batch
              and form                                          at least 0.8x on a GPU, 0.9x on 2 CPU cores
    predict   `zoo predict` over the folder (reading, decoding, batching, copying, inference) over
              `zoo bench --mode infer` at the same batch and form                   at least 0.8x on a GPU
    decode    images per second decoded and resized by PIL and by torchvision.io (one process): which of
              the two the loaders should use

Each form (fp32, and --fast) is measured in rounds that alternate which side runs first. The images are
JPEG files drawn here (real data sets are mostly JPEG), a little larger than the model's size so that every
one is resized. Writes data_pipeline.md and data_pipeline.json into benchmarks/results/<machine>/.

    python benchmarks/data_pipeline.py --device cuda --images 10000 --img-size 224 -b 256   # a GPU
    python benchmarks/data_pipeline.py                       # 2 CPU cores: resnet18, 64 px, 1024 images
    python benchmarks/data_pipeline.py --quick --out /tmp/pipeline                         # checks it runs
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import zoo

import output

CLASSES = ("square", "circle", "triangle", "cross")
TARGETS = {"cuda": {"train": 0.8, "predict": 0.8}, "cpu": {"train": 0.9, "predict": None}}


def _draw_some(job: tuple[Path, int, int, int]) -> None:
    from PIL import Image, ImageDraw

    folder, start, count, size = job
    rng = random.Random(start)
    for index in range(start, start + count):
        shape = CLASSES[index % len(CLASSES)]
        image = Image.new("RGB", (size * 5 // 4, size * 9 // 8), tuple(rng.randrange(60, 200) for _ in range(3)))
        pen = ImageDraw.Draw(image)
        for _ in range(6):  # texture, so that the JPEG is not trivially small
            pen.line([(rng.randrange(size), rng.randrange(size)), (rng.randrange(size), rng.randrange(size))],
                     fill=tuple(rng.randrange(256) for _ in range(3)), width=2)
        box = [rng.randrange(size // 4), rng.randrange(size // 4)]
        box += [box[0] + size // 2, box[1] + size // 2]
        color = tuple(rng.randrange(256) for _ in range(3))
        if shape == "circle":
            pen.ellipse(box, fill=color)
        elif shape == "triangle":
            pen.polygon([((box[0] + box[2]) // 2, box[1]), (box[2], box[3]), (box[0], box[3])], fill=color)
        else:
            pen.rectangle(box, fill=color)
        split = "val" if index % 50 == 0 else "train"  # 2% to validate on: the epoch is what is timed
        target = folder / split / shape
        target.mkdir(parents=True, exist_ok=True)
        image.save(target / f"{index}.jpg", quality=90)


def draw(folder: Path, images: int, size: int) -> Path:
    """``images`` JPEG files in class folders (train/ and a small val/), drawn on every core."""
    workers = os.cpu_count() or 1
    share = -(-images // workers)
    jobs = [(folder, start, min(share, images - start), size) for start in range(0, images, share)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_draw_some, jobs))
    return folder


def decode_rates(folder: Path, size: int, count: int) -> dict[str, float]:
    """Images per second read, decoded and resized to ``size`` by PIL and by torchvision.io, in this process."""
    import torchvision.io as tio
    from PIL import Image
    from torchvision.transforms.v2 import functional as F

    files = sorted(folder.rglob("*.jpg"))[:count]
    rates = {}
    for name in ("pil", "torchvision.io") * 2:  # each twice, the second time counted (files in the page cache)
        started = time.perf_counter()
        for path in files:
            if name == "pil":
                with Image.open(path) as image:
                    image.draft("RGB", (size, size))
                    F.pil_to_tensor(image.convert("RGB").resize((size, size), Image.BILINEAR))
            else:
                F.resize(tio.decode_image(tio.read_file(str(path)), mode=tio.ImageReadMode.RGB), [size, size],
                         antialias=True)
        rates[name] = len(files) / (time.perf_counter() - started)
    return rates


def bench_like(form: dict[str, Any] | None, fast: bool) -> dict[str, Any]:
    """`zoo.bench` settings in the form a run trained in (fp32 eager without --fast)."""
    if not fast or form is None:
        return {"precision": "fp32", "channels_last": False, "compile": False}
    return {"precision": form["precision"], "channels_last": form["channels_last"], "compile": form["compiled"]}


def train_round(spec: str, data: Path, args: argparse.Namespace, fast: bool, first: str, model_out: Path) -> dict:
    """One round: `zoo.fit` (epochs after the first) and `zoo.bench --mode train`, in the order given."""
    result: dict[str, Any] = {}

    def train() -> None:
        run = zoo.fit(spec, data, epochs=args.epochs, batch_size=args.batch_size, img_size=args.img_size,
                      device=args.device, fast=fast, lr=0.01, schedule="constant", feature_cache=False,
                      progress=False, output=model_out, force=True,
                      **({} if args.workers is None else {"workers": args.workers}))
        result["train"] = statistics.median(row["images_per_s"] for row in run.history[1:])
        result["form"] = run.form

    def step() -> None:
        settings = bench_like(result.get("form"), fast)
        report = zoo.bench(spec, mode="train", batch_size=args.batch_size, img_size=args.img_size,
                           device=args.device, repeats=args.repeats, **settings)
        result["bench"] = report.run("train").images_per_s

    for side in ((train, step) if first == "train" else (step, train)):
        side()
    if first != "train":  # the bench ran before the form was known: run it again in that form
        step()
    result["ratio"] = result["train"] / result["bench"]
    return result


def predict_round(model_file: Path, images: list[Path], args: argparse.Namespace, fast: bool) -> dict:
    """`zoo.predict` over the folder's images, against `zoo.bench --mode infer` at the same batch and form."""
    model = zoo.load(model_file)
    zoo.predict(model, images[: args.batch_size * 2], batch_size=args.batch_size, device=args.device, fast=fast,
                progress=False)  # warm-up: compiling, the allocator, the page cache
    started = time.perf_counter()
    zoo.predict(model, images, batch_size=args.batch_size, device=args.device, fast=fast, progress=False)
    rate = len(images) / (time.perf_counter() - started)
    settings = {"fast": True} if fast else bench_like(None, False)
    report = zoo.bench(str(model_file), mode="infer", batch_size=args.batch_size, img_size=args.img_size,
                       device=args.device, repeats=args.repeats, **settings)
    bench = report.run("infer").images_per_s
    return {"predict": rate, "bench": bench, "ratio": rate / bench}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda")
    parser.add_argument("--spec", default=None, help="default: resnet50+cls4 on a GPU, resnet18+cls4 on the CPU")
    parser.add_argument("--images", type=int, default=None, help="default: 10000 on a GPU, 1024 on the CPU")
    parser.add_argument("--img-size", type=int, default=None, help="default: 224 on a GPU, 64 on the CPU")
    parser.add_argument("-b", "--batch-size", type=int, default=None, help="default: 256 on a GPU, 32 on the CPU")
    parser.add_argument("--workers", type=int, default=None, help="default: zoo's (from the machine)")
    parser.add_argument("--forms", default="fp32,fast")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that the script runs")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    import torch

    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    gpu = args.device.startswith("cuda")
    defaults = {"spec": ("resnet50+cls4", "resnet18+cls4"), "images": (10000, 1024), "img_size": (224, 64),
                "batch_size": (256, 32)}
    for key, (on_gpu, on_cpu) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, on_gpu if gpu else on_cpu)
    if args.quick:
        args.images, args.img_size, args.batch_size, args.epochs, args.rounds, args.repeats = 96, 32, 8, 2, 1, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    kind = "cuda" if args.device.startswith("cuda") else "cpu"
    folder, machine = output.results_dir(args.device, args.out)
    forms = [form.strip() for form in args.forms.split(",") if form.strip()]
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        data = draw(Path(tmp) / "figures", args.images, args.img_size)
        print(f"drew {args.images} images in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        rows["decode"] = decode_rates(data, args.img_size, min(args.images, 500))
        images = sorted((data / "train").rglob("*.jpg"))
        for form in forms:
            fast = form == "fast"
            model_out = Path(tmp) / f"{form}.safetensors"
            train = [train_round(args.spec, data, args, fast, ("train", "bench")[r % 2], model_out)
                     for r in range(args.rounds)]
            predict = [predict_round(model_out, images, args, fast)
                       for _ in range(args.rounds)]
            rows[form] = {"train": train, "predict": predict,
                          "train_ratio": statistics.median(r["ratio"] for r in train),
                          "predict_ratio": statistics.median(r["ratio"] for r in predict)}
            print(f"{form}: train {rows[form]['train_ratio']:.2f}x, predict {rows[form]['predict_ratio']:.2f}x",
                  file=sys.stderr, flush=True)
    result = {"command": output.command_line(), "machine": machine, "spec": args.spec, "images": args.images,
              "img_size": args.img_size, "batch_size": args.batch_size, "device": args.device,
              "targets": TARGETS[kind], "results": rows}
    output.publish(folder, "data_pipeline", result, markdown(result, forms))
    return 0


def markdown(result: dict[str, Any], forms: list[str]) -> list[str]:
    machine, rows, targets = result["machine"], result["results"], result["targets"]
    lines = [f"# Data pipeline ({machine.get('gpu') or machine.get('cpu', '?')}, {result['device']})", "",
             f"`{result['command']}`", "",
             f"{result['spec']}, {result['images']} JPEG images at {result['img_size']} px, batch {result['batch_size']}.",
             "", "| form | zoo train / bench train step | zoo predict / bench inference |", "|---|---|---|"]
    for form in forms:
        found = rows[form]
        train = " ".join(f"{r['train']:.0f}/{r['bench']:.0f}" for r in found["train"])
        predict = " ".join(f"{r['predict']:.0f}/{r['bench']:.0f}" for r in found["predict"])
        lines.append(f"| {form} | **{found['train_ratio']:.2f}x** (img/s {train}) | "
                     f"**{found['predict_ratio']:.2f}x** (img/s {predict}) |")
    goal = ", ".join(f"{what} at least {value}x" for what, value in targets.items() if value)
    decode = rows["decode"]
    lines += ["", f"Targets: {goal}.", "",
              f"Decoding and resizing one image (one process): PIL {decode['pil']:.0f} img/s, "
              f"torchvision.io {decode['torchvision.io']:.0f} img/s."]
    return lines


if __name__ == "__main__":
    sys.exit(main())
