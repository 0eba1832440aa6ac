"""The `zoo choose` targets, measured in one run on scikit-learn's digits (8x8 images, upscaled), offline.

    ranking   the linear probe's order of the candidates agrees with the order after a full fine-tune
              (`zoo.fit`, what `zoo train` runs) on the same data: Spearman rank correlation >= 0.7
    cheap     `zoo.choose` over the candidates (features, probe, k-NN, cost) takes under 3x the time of
              building their feature caches alone

The target is few-shot, as transfer learning usually is: digits 5-9 with --shots training images per digit and
--val-per-class held out for validation. No pretrained weights exist offline, so candidates of different quality
are made here, each a saved model file (a candidate as a user's fine-tuned file is): resnet18 backbones pre-trained
by zoo on more or fewer images (--pretrain-images) of a pool that holds every other image of the ten digits (none of
the target's), one pre-trained on digits 0-4 alone, one on drawn shapes; and random-init backbones. Each
fine-tune is repeated with --seeds seeds and their mean accuracy taken. The cost target runs on the first
--images digits, with fresh caches on both sides. Writes choose.md and choose.json into
benchmarks/results/<machine>/.

    pip install 'zoo[bench]'        # scikit-learn, for the digits
    python benchmarks/choose.py [--img-size 64] [--shots 10] [--pretrain-images 25,100,400,1400] [--seeds 3]
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
from zoo.files import atomic_write_bytes

import output

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import draw_shapes  # noqa: E402  (the figures of `make demo`)

RANDOM_BACKBONES = ("torchvision/resnet18", "timm/test_convnext", "timm/test_efficientnet")


TARGET = range(5, 10)


def split_digits(shots: int, val_per_class: int) -> dict[str, list[int]]:
    """Indices into scikit-learn's digits: the target's training (``shots`` per digit 5-9) and validation images
    (``val_per_class`` per digit), and the pool the candidates pre-train on (every other image: all of digits
    0-4, the rest of 5-9), dealt class by class so that its first N images are balanced."""
    from sklearn.datasets import load_digits

    by_digit: dict[int, list[int]] = {}
    for i, digit in enumerate(load_digits().target):
        by_digit.setdefault(int(digit), []).append(i)
    found: dict[str, list[int]] = {"train": [], "val": []}
    pools = []
    for digit, indices in sorted(by_digit.items()):
        if digit in TARGET:
            found["train"] += indices[:shots]
            found["val"] += indices[shots:shots + val_per_class]
            indices = indices[shots + val_per_class:]
        pools.append(indices)
    found["pool"] = [pool[k] for k in range(max(map(len, pools))) for pool in pools if k < len(pool)]
    return found


def digits_folder(root: Path, indices: list[int], size: int) -> Path:
    """root/<digit>/N.png: scikit-learn's digits, 8x8 grey levels 0-16 upscaled to ``size``."""
    from PIL import Image
    from sklearn.datasets import load_digits

    found = load_digits()
    for i in indices:
        folder = root / f"d{found.target[i]}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (found.images[i] * (255 / 16)).astype("uint8")
        Image.fromarray(pixels, "L").resize((size, size), Image.BICUBIC).convert("RGB").save(folder / f"{i}.png")
    return root


def pretrain(spec: str, data: Path, out: Path, args: argparse.Namespace) -> Path:
    """A backbone trained by zoo on a related task, saved as a user's fine-tuned file would be."""
    zoo.fit(spec, data, epochs=args.pretrain_epochs, batch_size=args.batch_size, img_size=args.img_size,
            optimizer="adamw", lr=1e-3, augment=False, val_split=0.2, seed=0, progress=False, output=out, force=True)
    return out


def candidates(root: Path, split: dict[str, list[int]], args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """(patterns for zoo.choose, what each is for people): resnet18s pre-trained on more or less of the pool, one
    on digits 0-4 alone, one on drawn shapes, and random-init backbones."""
    from sklearn.datasets import load_digits

    digit_of = load_digits().target
    parts = [split["pool"][:images] for images in args.pretrain_images]
    made = [(f"digits-{len(part)}", f"{len(part)} images of digits 0-9", part) for part in parts]
    other = [i for i in split["pool"] if digit_of[i] not in TARGET]
    made.append(("digits-0-4", f"{len(other)} images of digits 0-4 alone", other))
    patterns, described = [], {}
    for stem, what, indices in made:
        data = digits_folder(root / stem, indices, args.img_size)
        classes = len({digit_of[i] for i in indices})
        path = pretrain(f"resnet18+cls{classes}", data, root / f"resnet18-{stem}.safetensors", args)
        patterns.append(str(path))
        described[str(path)] = f"resnet18 pre-trained on {what} (saved file)"
    shapes = draw_shapes.draw_figures(root / "shapes", args.shapes_per_class, args.img_size)
    path = pretrain(f"resnet18+cls{len(draw_shapes.SHAPES)}", shapes, root / "resnet18-shapes.safetensors", args)
    patterns.append(str(path))
    described[str(path)] = f"resnet18 pre-trained on {args.shapes_per_class * len(draw_shapes.SHAPES)} drawn shapes (saved file)"
    for name in RANDOM_BACKBONES[: args.random_backbones]:
        patterns.append(name)
        described[name] = f"{name}, random weights"
    return patterns, described


def finetune(row: dict, data: Path, classes: int, args: argparse.Namespace) -> list[float]:
    """Validation accuracy after a whole fine-tune from the candidate's weights (what `zoo train` runs, with its
    defaults but for the epochs, the batch and augmentation: the model it ends with, its best epoch), once per
    seed."""
    weights = row["weights"] if row["status"] == "saved model" else None
    found = []
    for seed in range(args.seeds):
        result = zoo.fit(f"{row['backbone']}+cls{classes}", data, weights=weights, epochs=args.finetune_epochs,
                         batch_size=args.finetune_batch_size, img_size=args.img_size,
                         optimizer=args.finetune_optimizer, augment=False, seed=seed, progress=False)
        found.append(result.metrics[f"cls{classes}/accuracy"])
    return found


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


def ranking_png(rows: list[dict], described: dict[str, str], rho: float, path: Path) -> None:
    """The probe's accuracy against the fine-tuned one, each candidate a point with its seeds' range."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=110)
    for row in rows:
        low, high = min(row["finetuned_seeds"]), max(row["finetuned_seeds"])
        mean = row["finetuned_accuracy"]
        axes.errorbar(row["accuracy"], mean, yerr=[[mean - low], [high - mean]], fmt="o", color="C0", capsize=3)
        label = described[row["name"]].replace(" (saved file)", "").replace("resnet18 pre-trained on ", "")
        axes.annotate(label, (row["accuracy"], mean), fontsize=7, xytext=(4, 3), textcoords="offset points")
    axes.set_xlabel("zoo choose: linear-probe accuracy (frozen features)")
    axes.set_ylabel("accuracy after a whole fine-tune (seeds' mean and range)")
    axes.set_title(f"digits 5-9, few-shot: Spearman rank correlation {rho:.2f}", fontsize=9)
    axes.grid(alpha=0.3)
    axes.margins(0.15)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def zoo_parts(folder: Path) -> dict:
    from zoo.choosing._data import read_data

    return read_data(folder).parts


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


def choose_all(patterns: list[str], data: Path, args: argparse.Namespace, plot: Path | None = None):
    with fresh_cache():
        started = time.perf_counter()
        choice = zoo.choose(data, patterns, allow_random=True, img_size=args.img_size, batch_size=args.batch_size,
                            progress=False, plot=plot, force=True)
        return choice, time.perf_counter() - started


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("-b", "--batch-size", type=int, default=32)
    parser.add_argument("--images", type=int, default=1000, help="Digits of all classes for the cost target.")
    parser.add_argument("--shots", type=int, default=10, help="Training images per digit of the target.")
    parser.add_argument("--val-per-class", type=int, default=70, help="Validation images per digit of the target.")
    parser.add_argument("--pretrain-images", default="25,100,400,1400",
                        help="Images of the pool (digits 0-9, none of the target's) each candidate pre-trains on.")
    parser.add_argument("--pretrain-epochs", type=int, default=5)
    parser.add_argument("--shapes-per-class", type=int, default=60)
    parser.add_argument("--random-backbones", type=int, default=2)
    parser.add_argument("--finetune-epochs", type=int, default=10)
    parser.add_argument("--finetune-batch-size", type=int, default=16)
    parser.add_argument("--finetune-optimizer", default="sgd", help="With its default learning rate, as zoo train.")
    parser.add_argument("--seeds", type=int, default=3, help="Fine-tunes per candidate, their accuracy averaged.")
    parser.add_argument("--quick", action="store_true", help="A tiny configuration that checks the script runs.")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.img_size, args.batch_size, args.images, args.pretrain_images, args.shots = 32, 8, 60, "20,40", 4
        args.val_per_class = 10
        args.pretrain_epochs, args.shapes_per_class, args.random_backbones = 1, 4, 2
        args.finetune_epochs, args.seeds = 1, 1
    args.pretrain_images = [int(n) for n in str(args.pretrain_images).split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    os.environ["ZOO_OFFLINE"] = "1"
    previous = os.environ.get("ZOO_CACHE_DIR")
    folder, machine = output.results_dir("cpu", args.out)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        split = split_digits(args.shots, args.val_per_class)
        patterns, described = candidates(root, split, args)
        target = root / "target"
        digits_folder(target / "train", split["train"], args.img_size)
        digits_folder(target / "val", split["val"], args.img_size)
        choice, _ = choose_all(patterns, target, args, root / "choose.png")
        atomic_write_bytes(folder / "choose.png", (root / "choose.png").read_bytes())
        rows = [row for row in choice.rows if row["accuracy"] is not None]
        for row in rows:
            row["finetuned_seeds"] = finetune(row, target, len(choice.classes), args)
            row["finetuned_accuracy"] = sum(row["finetuned_seeds"]) / len(row["finetuned_seeds"])
        rho = spearman([r["accuracy"] for r in rows], [r["finetuned_accuracy"] for r in rows])
        rho_knn = spearman([r["knn_accuracy"] for r in rows], [r["finetuned_accuracy"] for r in rows])
        ranking_png(rows, described, rho, folder / "choose-ranking.png")
        shots = {name: len(samples) for name, samples in zoo_parts(target).items()}
        timing = digits_folder(root / "timing", list(range(args.images)), args.img_size)
        alone = features_alone(patterns, timing, args)
        timed, seconds = choose_all(patterns, timing, args)
    if previous is None:
        os.environ.pop("ZOO_CACHE_DIR", None)
    else:
        os.environ["ZOO_CACHE_DIR"] = previous
    ratio = seconds / alone
    table = [[described[r["name"]], f"{r['accuracy']:.3f}", f"{r['knn_accuracy']:.3f}",
              f"{r['finetuned_accuracy']:.3f} ({min(r['finetuned_seeds']):.3f}-{max(r['finetuned_seeds']):.3f})",
              f"{r['images_per_s']:.0f}", f"{r['latency_ms']:.1f}"] for r in rows]
    lines = [f"# zoo choose ({machine.get('cpu', '?')}, {machine.get('torch_threads', '?')} torch threads)", "",
             f"`{output.command_line()}`: {len(rows)} candidates, digits 5-9 at {args.img_size} px: "
             f"{shots['train']} training images ({args.shots} per digit), {shots['val']} validation images "
             f"({args.val_per_class} per digit). "
             f"Fine-tuned: the whole network, {args.finetune_epochs} epochs, batch {args.finetune_batch_size}, "
             f"{args.finetune_optimizer} at zoo train's default learning rate and schedule, no augmentation, the "
             f"best epoch's validation accuracy, mean of {args.seeds} seed(s). Pre-trained "
             f"candidates: {args.pretrain_epochs} epochs, batch {args.batch_size}, AdamW 1e-3.", "",
             output.markdown_table(["candidate", "probe", "k-NN", "fine-tuned (seeds' range)", "img/s", "ms@1"], table), "",
             f"- ranking: Spearman rank correlation of probe and fine-tuned accuracy {rho:.3f} (goal >= 0.7): "
             + ("met" if rho >= 0.7 else "NOT met") + f"; of k-NN and fine-tuned accuracy {rho_knn:.3f}",
             f"- cheap: zoo.choose over {len(patterns)} candidates on {timed.images} images took {seconds:.1f} s, "
             f"their feature caches alone {alone:.1f} s: {ratio:.2f}x (goal < 3x): " + ("met" if ratio < 3 else "NOT met"),
             "", output.machine_markdown(machine)]
    output.publish(folder, "choose", {"machine": machine, "candidates": rows, "described": described,
                                      "spearman": rho, "spearman_knn": rho_knn, "choose_s": seconds, "features_alone_s": alone,
                                      "ratio": ratio, "settings": vars(args)}, lines)
    return 0 if rho >= 0.7 and ratio < 3 else 1


if __name__ == "__main__":
    sys.exit(main())
