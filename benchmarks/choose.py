"""The `zoo choose` targets, measured in one run on scikit-learn's digits (8x8 images, upscaled), offline.

    ranking   the linear probe's order of the candidates agrees with the order after a full fine-tune
              (`zoo.fit`, what `zoo train` runs) on the same data: Spearman rank correlation >= 0.7
    cheap     `zoo.choose` over the candidates (features, probe, k-NN, cost) takes under 3x the time of
              building their feature caches alone

No pretrained weights exist offline, so candidates of different quality are made here: resnet18 backbones
pre-trained by zoo itself on a related task (digits 0-4) for different numbers of epochs and one on drawn shapes,
each a saved model file (a candidate as a user's fine-tuned file is), and random-init backbones. The probe and the
fine-tune are both measured on digits 5-9 (train/ and val/). The cost target runs on --images digits of all ten
classes, with fresh caches on both sides. Writes choose.md and choose.json into benchmarks/results/<machine>/.

    pip install 'zoo[bench]'        # scikit-learn, for the digits
    python benchmarks/choose.py [--img-size 64] [--images 1000] [--pretrain-epochs 1,2,4,8] [--finetune-epochs 3]
    python benchmarks/choose.py --quick --out /tmp/choose-bench       # checks it runs (minutes, tiny figures)
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import zoo

import output

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import draw_shapes  # noqa: E402  (the figures of `make demo`)

RANDOM_BACKBONES = ("torchvision/resnet18", "timm/test_convnext", "timm/test_efficientnet")


def digits_folder(root: Path, digits: range, size: int, limit: int | None, val_share: float | None) -> Path:
    """root/[train|val/]<digit>/N.png: scikit-learn's digits, 8x8 grey levels 0-16 upscaled to ``size``."""
    from PIL import Image
    from sklearn.datasets import load_digits

    found = load_digits()
    chosen = [i for i, target in enumerate(found.target) if target in digits][:limit]
    for order, i in enumerate(chosen):
        split = ("val" if order % round(1 / val_share) == 0 else "train") if val_share else ""
        folder = root / split / f"d{found.target[i]}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (found.images[i] * (255 / 16)).astype("uint8")
        Image.fromarray(pixels, "L").resize((size, size), Image.BICUBIC).convert("RGB").save(folder / f"{i}.png")
    return root


def pretrain(spec: str, data: Path, epochs: int, out: Path, args: argparse.Namespace) -> Path:
    """A backbone trained by zoo on a related task, saved as a user's fine-tuned file would be."""
    zoo.fit(spec, data, epochs=epochs, batch_size=args.batch_size, img_size=args.img_size, optimizer="adamw",
            lr=1e-3, augment=False, seed=0, progress=False, output=out, force=True)
    return out


def candidates(root: Path, args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """(patterns for zoo.choose, what each is for people)."""
    related = digits_folder(root / "digits-0-4", range(0, 5), args.img_size, args.pretrain_images, 0.2)
    patterns, described = [], {}
    for epochs in args.pretrain_epochs:
        path = pretrain("resnet18+cls5", related, epochs, root / f"digits04-{epochs}ep.safetensors", args)
        patterns.append(str(path))
        described[str(path)] = f"resnet18 trained {epochs} epoch(s) on digits 0-4 (saved file)"
    shapes = draw_shapes.draw_figures(root / "shapes", args.shapes_per_class, args.img_size)
    path = pretrain(f"resnet18+cls{len(draw_shapes.SHAPES)}", shapes, max(args.pretrain_epochs),
                    root / "shapes.safetensors", args)
    patterns.append(str(path))
    described[str(path)] = f"resnet18 trained {max(args.pretrain_epochs)} epoch(s) on drawn shapes (saved file)"
    for name in RANDOM_BACKBONES[: args.random_backbones]:
        patterns.append(name)
        described[name] = f"{name}, random weights"
    return patterns, described


def finetune(row: dict, data: Path, classes: int, args: argparse.Namespace) -> float:
    """Best validation accuracy of a whole fine-tune from the candidate's weights (what `zoo train` runs)."""
    weights = row["weights"] if row["status"] == "saved model" else None
    result = zoo.fit(f"{row['backbone']}+cls{classes}", data, weights=weights, epochs=args.finetune_epochs,
                     batch_size=args.batch_size, img_size=args.img_size, optimizer="adamw", lr=1e-3, augment=False,
                     seed=0, progress=False)
    return max(epoch[f"val/cls{classes}/accuracy"] for epoch in result.history)


def ranks(values: list[float]) -> list[float]:
    """Ranks from 1, ties sharing their mean rank (as Spearman's coefficient needs)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    found = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            found[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return found


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = ranks(a), ranks(b)
    mean_a, mean_b = sum(ra) / len(ra), sum(rb) / len(rb)
    top = sum((x - mean_a) * (y - mean_b) for x, y in zip(ra, rb))
    bottom = (sum((x - mean_a) ** 2 for x in ra) * sum((y - mean_b) ** 2 for y in rb)) ** 0.5
    return top / bottom if bottom else float("nan")


def fresh_cache() -> tempfile.TemporaryDirectory:
    folder = tempfile.TemporaryDirectory()
    os.environ["ZOO_CACHE_DIR"] = folder.name
    return folder


def features_alone(patterns: list[str], data: Path, args: argparse.Namespace) -> float:
    """Seconds to build every candidate's feature cache and nothing else (fresh cache, models built as choose
    builds them)."""
    from zoo._registry.registry import default_registry
    from zoo.choosing import _device, _model
    from zoo.choosing._candidates import candidates as listed
    from zoo.choosing._data import read_data
    from zoo.choosing._probe import features

    with fresh_cache():
        started = time.perf_counter()
        found, registry = read_data(data), default_registry()
        for candidate in listed(patterns, None, True, registry):
            model = _model(candidate, len(found.classes), args.img_size, registry, 0)
            features(model, found, args.batch_size, _device(None))
        return time.perf_counter() - started


def choose_all(patterns: list[str], data: Path, args: argparse.Namespace):
    with fresh_cache():
        started = time.perf_counter()
        choice = zoo.choose(data, patterns, allow_random=True, img_size=args.img_size, batch_size=args.batch_size,
                            progress=False)
        return choice, time.perf_counter() - started


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("-b", "--batch-size", type=int, default=32)
    parser.add_argument("--images", type=int, default=1000, help="Digits of all classes for the cost target.")
    parser.add_argument("--pretrain-images", type=int, default=None, help="Digits 0-4 to pre-train on (all).")
    parser.add_argument("--pretrain-epochs", default="1,2,4,8")
    parser.add_argument("--shapes-per-class", type=int, default=60)
    parser.add_argument("--random-backbones", type=int, default=3)
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="A tiny configuration that checks the script runs.")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.img_size, args.batch_size, args.images, args.pretrain_images = 32, 8, 60, 60
        args.pretrain_epochs, args.shapes_per_class, args.random_backbones, args.finetune_epochs = "1", 4, 2, 1
    args.pretrain_epochs = [int(e) for e in str(args.pretrain_epochs).split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    os.environ["ZOO_OFFLINE"] = "1"
    previous = os.environ.get("ZOO_CACHE_DIR")
    folder, machine = output.results_dir("cpu", args.out)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        patterns, described = candidates(root, args)
        target = digits_folder(root / "digits-5-9", range(5, 10), args.img_size, args.images, 0.3)
        choice, _ = choose_all(patterns, target, args)
        rows = [row for row in choice.rows if row["accuracy"] is not None]
        for row in rows:
            row["finetuned_accuracy"] = finetune(row, target, len(choice.classes), args)
        rho = spearman([r["accuracy"] for r in rows], [r["finetuned_accuracy"] for r in rows])
        timing = digits_folder(root / "digits-all", range(0, 10), args.img_size, args.images, None)
        alone = features_alone(patterns, timing, args)
        timed, seconds = choose_all(patterns, timing, args)
    if previous is None:
        os.environ.pop("ZOO_CACHE_DIR", None)
    else:
        os.environ["ZOO_CACHE_DIR"] = previous
    ratio = seconds / alone
    table = [[described[r["name"]], f"{r['accuracy']:.3f}", f"{r['knn_accuracy']:.3f}", f"{r['finetuned_accuracy']:.3f}",
              f"{r['images_per_s']:.0f}", f"{r['latency_ms']:.1f}"] for r in rows]
    lines = [f"# zoo choose ({machine.get('cpu', '?')}, {machine.get('torch_threads', '?')} torch threads)", "",
             f"`{output.command_line()}`: {len(rows)} candidates, digits 5-9 ({choice.images} images, "
             f"{args.img_size} px); fine-tune {args.finetune_epochs} epoch(s), AdamW 1e-3, whole network", "",
             output.markdown_table(["candidate", "probe", "k-NN", "fine-tuned", "img/s", "ms@1"], table), "",
             f"- ranking: Spearman rank correlation of probe and fine-tuned accuracy {rho:.3f} (goal >= 0.7): "
             + ("met" if rho >= 0.7 else "NOT met"),
             f"- cheap: zoo.choose over {len(patterns)} candidates on {timed.images} images took {seconds:.1f} s, "
             f"their feature caches alone {alone:.1f} s: {ratio:.2f}x (goal < 3x): " + ("met" if ratio < 3 else "NOT met"),
             "", output.machine_markdown(machine)]
    output.publish(folder, "choose", {"machine": machine, "candidates": rows, "described": described,
                                      "spearman": rho, "choose_s": seconds, "features_alone_s": alone,
                                      "ratio": ratio, "settings": vars(args)}, lines)
    return 0 if rho >= 0.7 and ratio < 3 else 1


if __name__ == "__main__":
    sys.exit(main())
