"""`zoo train --fast` against plain fp32 training, side by side in one run on this machine.

    step       a training step (forward, backward, SGD step) in the form --fast picks over eager fp32, both
               timed interleaved by `zoo.compare` on the same batch                       higher is better
    run        images per second of zoo.fit epochs after the first, --fast over fp32, same data, seed and
               settings (AdamW, from fresh weights, reading images included)              higher is better
    accuracy   best validation accuracy of the --fast run minus the fp32 run's            within 1 point

The data are figures this script draws (four shapes in random colours, sizes and places over noisy lines), so
that accuracy is neither trivial nor luck (no pretrained weights offline: the models learn from nothing, without
augmentation, which a random crop of a small figure would defeat); rounds alternate which side trains first. Writes
training_fast.md and .json into benchmarks/results/<machine>/.

    python benchmarks/training_fast.py [--spec resnet18+cls4] [--img-size 64] [-b 32] [--per-class 300]
    python benchmarks/training_fast.py --quick --out /tmp/training-fast      # checks it runs
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import zoo
from zoo.benchmark import Candidate, compare

import output

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from draw_shapes import SHAPES, draw_figures  # noqa: E402  (python examples/draw_shapes.py DIR --figures)

def step_ratio(spec: str, batch: int, size: int, repeats: int) -> dict:
    """The training step in the form ``zoo train --fast`` picks for a long run (its trial, compile included)
    over eager fp32, interleaved in one `zoo.compare`."""
    import torch

    from zoo.training.fast import choose_form

    model = zoo.build(spec)
    classes = next(iter(model.heads.values())).num_classes
    trial_batch = (torch.randn(batch, 3, size, size), torch.randint(0, classes, (batch,)))
    form, _ = choose_form(model.train(), trial_batch, torch.device("cpu"), images_planned=10**9)
    torch._dynamo.reset()
    fast = Candidate("fast", model, channels_last=form.channels_last, compile=form.compiled, precision=form.precision)
    eager = Candidate("eager fp32", zoo.build(spec), channels_last=False, compile=False, precision="fp32")
    report = compare([fast, eager], mode="train", batch_size=batch, img_size=size, warmup=2, iters=2, repeats=repeats)
    return {"ratio": report.ratios["train"], "range": report.ratio_ranges["train"], "form": form.as_dict(),
            "fast": {"images_per_s": report.run("train", "fast").images_per_s},
            "eager_fp32": {"images_per_s": report.run("train", "eager fp32").images_per_s}}


def training_run(spec: str, data: Path, fast: bool, batch: int, size: int, epochs: int, seed: int) -> dict:
    result = zoo.fit(spec, data, epochs=epochs, batch_size=batch, img_size=size, optimizer="adamw", lr=0.001,
                     augment=False, seed=seed, fast=fast, progress=False)
    key = next(k for k in result.history[0] if k.startswith("val/") and k.endswith("/accuracy"))
    return {"images_per_s": statistics.median(row["images_per_s"] for row in result.history[1:]),
            "accuracy": max(row[key] for row in result.history), "form": result.form and result.form["form"],
            "trial": result.form and result.form["images_per_s"]}


def _accuracies(runs: list[dict]) -> str:
    return ", ".join(f"{run['accuracy']:.3f}" for run in runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="resnet18+cls4")
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("-b", "--batch-size", type=int, default=32)
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--step-spec", default="resnet50+cls10", help="A second model for the step ratio.")
    parser.add_argument("--step-size", type=int, default=160)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.per_class, args.rounds, args.epochs, args.batch_size, args.img_size = 8, 1, 2, 8, 32
        args.step_spec, args.step_size = args.spec, 32
    folder, machine = output.results_dir("cpu", args.out)
    steps = {f"{args.spec} at {args.img_size}px": step_ratio(args.spec, args.batch_size, args.img_size, 3),
             f"{args.step_spec} at {args.step_size}px": step_ratio(args.step_spec, args.batch_size, args.step_size, 3)}
    runs: dict[str, list[dict]] = {"fp32": [], "fast": []}
    with tempfile.TemporaryDirectory() as tmp:
        data = draw_figures(Path(tmp) / "figures", args.per_class, args.img_size)
        for round_ in range(args.rounds):
            sides = [("fp32", False), ("fast", True)]
            for name, fast in sides if round_ % 2 == 0 else sides[::-1]:
                runs[name].append(training_run(args.spec, data, fast, args.batch_size, args.img_size, args.epochs,
                                               seed=round_))
    run_ratio = statistics.median(f["images_per_s"] / p["images_per_s"] for p, f in zip(runs["fp32"], runs["fast"]))
    gap = statistics.mean(f["accuracy"] - p["accuracy"] for p, f in zip(runs["fp32"], runs["fast"]))
    result = {"machine": machine, "spec": args.spec, "img_size": args.img_size, "batch_size": args.batch_size,
              "train_images": len(SHAPES) * args.per_class, "epochs": args.epochs, "steps": steps, "runs": runs,
              "run_ratio": run_ratio, "accuracy_gap": gap}
    lines = [f"# zoo train --fast ({machine.get('cpu', '?')}, {machine.get('torch_threads', '?')} torch threads)", "",
             f"`{output.command_line()}`", "", output.machine_markdown(machine), "",
             "| measure | --fast | fp32 | ratio (range) |", "|---|---|---|---|"]
    for label, step in steps.items():
        form = step["form"]["form"]
        lines.append(f"| training step, {label}, batch {args.batch_size} ({form}) | {step['fast']['images_per_s']:.1f} "
                     f"img/s | {step['eager_fp32']['images_per_s']:.1f} img/s | {step['ratio']:.2f}x "
                     f"({step['range'][0]:.2f}-{step['range'][1]:.2f}) |")
    lines += [
        f"| zoo.fit epochs 2+, {args.spec}, {len(SHAPES) * args.per_class} images ({runs['fast'][0]['form']}) | "
        f"{statistics.median(r['images_per_s'] for r in runs['fast']):.1f} img/s | "
        f"{statistics.median(r['images_per_s'] for r in runs['fp32']):.1f} img/s | {run_ratio:.2f}x |",
        f"| best val accuracy over {args.rounds} rounds | {_accuracies(runs['fast'])} | {_accuracies(runs['fp32'])} "
        f"| {100 * gap:+.1f} points (goal: within 1) |",
    ]
    output.publish(folder, "training_fast", result, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
