"""The two training targets, measured side by side in one run on image folders this script draws.

    pipeline   a `zoo train` epoch (reading, decoding, augmenting, training) over `zoo bench --mode train`
               (training steps on one random batch) for the same model, batch and size    at least 0.9x
    parity     zoo.fit against a seed-style hand-written loop (ImageFolder, torchvision transforms, SGD,
               cross-entropy, the tutorial's train_model): the same data, model, settings and seed; best
               validation accuracy within 1 point, in no more time                        at least 1.0x

Rounds alternate the order of the two sides. Writes training.md and training.json into
benchmarks/results/<machine>/.

    python benchmarks/training.py [--spec resnet18+cls2] [--img-size 64] [-b 16] [--rounds 3]
    python benchmarks/training.py --quick --out /tmp/training      # checks it runs
"""
from __future__ import annotations

import argparse
import copy
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import zoo

import output

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from draw_shapes import draw  # noqa: E402  (the same images as make demo)


def pipeline(spec: str, data: Path, batch: int, size: int) -> dict[str, float]:
    """Images per second: zoo.fit's second epoch (the first warms up) and zoo bench's training step."""
    result = zoo.fit(spec, data, epochs=2, batch_size=batch, img_size=size, lr=0.01, schedule="constant",
                     progress=False)
    train = result.history[-1]["images_per_s"]
    report = zoo.bench(spec, mode="train", batch_size=batch, img_size=size, warmup=1, iters=2, repeats=3)
    return {"zoo_train": train, "zoo_bench": report.run("train").images_per_s}


def seed_loop(spec: str, data: Path, batch: int, size: int, epochs: int, lr: float, seed: int) -> dict[str, float]:
    """The PyTorch transfer-learning tutorial's loop, with zoo.build's model (what seeds users write by hand)."""
    from torchvision import datasets, transforms

    torch.manual_seed(seed)
    random.seed(seed)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    train_tf = transforms.Compose([transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(),
                                   transforms.ToTensor(), transforms.Normalize(mean, std)])
    val_tf = transforms.Compose([transforms.Resize((size, size)), transforms.ToTensor(), transforms.Normalize(mean, std)])
    loaders = {
        "train": torch.utils.data.DataLoader(datasets.ImageFolder(data / "train", train_tf), batch_size=batch,
                                             shuffle=True, drop_last=True),
        "val": torch.utils.data.DataLoader(datasets.ImageFolder(data / "val", val_tf), batch_size=batch),
    }
    model = zoo.build(spec)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * len(loaders["train"]))
    best_acc, best = 0.0, None
    started = time.perf_counter()
    for _ in range(epochs):
        for phase in ("train", "val"):
            model.train(phase == "train")
            correct = total = 0
            for inputs, labels in loaders[phase]:
                optimizer.zero_grad()
                with torch.set_grad_enabled(phase == "train"):
                    outputs = model(inputs)
                    loss = criterion(outputs, labels)
                    if phase == "train":
                        loss.backward()
                        optimizer.step()
                        scheduler.step()
                correct += int((outputs.argmax(1) == labels).sum())
                total += len(labels)
            if phase == "val" and correct / total > best_acc:
                best_acc, best = correct / total, copy.deepcopy(model.state_dict())
    seconds = time.perf_counter() - started  # the best weights are kept, as the tutorial and zoo.fit both do
    return {"accuracy": best_acc, "seconds": seconds, "best_tensors": len(best or {})}


def zoo_loop(spec: str, data: Path, batch: int, size: int, epochs: int, lr: float, seed: int) -> dict[str, float]:
    started = time.perf_counter()
    result = zoo.fit(spec, data, epochs=epochs, batch_size=batch, img_size=size, lr=lr, seed=seed, progress=False)
    accuracy = max(row[next(k for k in row if k.endswith("/accuracy") and k.startswith("val/"))]
                   for row in result.history)
    return {"accuracy": accuracy, "seconds": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="resnet18+cls2")
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("-b", "--batch-size", type=int, default=16)
    parser.add_argument("--per-class", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.per_class, args.rounds, args.epochs, args.batch_size, args.img_size = 8, 1, 1, 4, 32
    folder, machine = output.results_dir("cpu", args.out)
    with tempfile.TemporaryDirectory() as tmp:
        data = draw(Path(tmp) / "shapes", args.per_class, args.img_size)
        rows: dict[str, list[dict[str, float]]] = {"pipeline": [], "seed": [], "zoo": []}
        for round_ in range(args.rounds):
            sides = [("seed", seed_loop), ("zoo", zoo_loop)]
            for name, loop in sides if round_ % 2 == 0 else sides[::-1]:
                rows[name].append(loop(args.spec, data, args.batch_size, args.img_size, args.epochs, 0.01, round_))
            rows["pipeline"].append(pipeline(args.spec, data, args.batch_size, args.img_size))
    ratio = statistics.median(r["zoo_train"] / r["zoo_bench"] for r in rows["pipeline"])
    speed = statistics.median(s["seconds"] / z["seconds"] for s, z in zip(rows["seed"], rows["zoo"]))
    gap = statistics.mean(z["accuracy"] - s["accuracy"] for s, z in zip(rows["seed"], rows["zoo"]))
    result = {"machine": machine, "spec": args.spec, "img_size": args.img_size, "batch_size": args.batch_size,
              "train_images": 2 * args.per_class, "epochs": args.epochs, "rounds": rows,
              "pipeline_ratio": ratio, "pipeline_target": 0.9, "parity_speed": speed, "parity_accuracy_gap": gap}
    lines = [
        f"# Training targets ({machine.get('cpu', '?')}, {machine.get('torch_threads', '?')} torch threads, {machine.get('cpu_capability', '?')})", "",
        f"`python benchmarks/training.py --spec {args.spec} --img-size {args.img_size} -b {args.batch_size} "
        f"--per-class {args.per_class} --epochs {args.epochs} --rounds {args.rounds}`", "",
        "| target | measured | goal |", "|---|---|---|",
        f"| zoo train epoch / zoo bench --mode train (img/s) | {ratio:.2f}x | >= 0.9x |",
        f"| seed-style loop time / zoo.fit time | {speed:.2f}x | >= 1.0x |",
        f"| zoo.fit best val accuracy - seed loop's (points) | {100 * gap:+.1f} | >= -1 |",
    ]
    output.publish(folder, "training", result, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
