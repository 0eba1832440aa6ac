"""How long `zoo bench` takes to answer, against a plain timing harness doing the same runs.

    zoo       the command `zoo bench SPEC --vs-reference --device D` as a user types it, start to finish
              (start-up, building both models, the matmul yardstick, FLOP count, warm-up, timed steps)
    plain     this script's own loop in a fresh process, as timm's benchmark.py times a model: build zoo's
              model and the torchvision original, warm up, time the same number of inference and training steps
              at the same batch, synchronising the device after each timed run

Target: zoo's wall time within 1.5x of the plain harness's. Writes bench_wall.md and bench_wall.json into
benchmarks/results/<machine>/.

    python benchmarks/bench_wall.py --device cuda                       # resnet50 at 224, batch 256
    python benchmarks/bench_wall.py --quick --out /tmp/wall              # checks it runs (CPU, tiny)
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import output

TARGET = 1.5
HARNESS = r'''
import sys, time, torch, torchvision
import zoo
spec, device, batch, size, warmup, iters, repeats = sys.argv[1:8]
batch, size, warmup, iters, repeats = map(int, (batch, size, warmup, iters, repeats))
device = torch.device(device)
original = getattr(torchvision.models, spec.split("+")[0].split("/")[-1])
models = [zoo.build(spec).to(device), original(num_classes=1000).to(device)]
images = torch.randn(batch, 3, size, size, device=device)
labels = torch.randint(0, 10, (batch,), device=device)
def sync():
    if device.type == "cuda":
        torch.cuda.synchronize()
for model in models:
    model.eval()
    with torch.no_grad():
        for _ in range(warmup + iters * repeats):
            model(images)
    sync()
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(warmup + iters * repeats):
        out = model(images)
        out = out if torch.is_tensor(out) else next(iter(out.values()))
        torch.nn.functional.cross_entropy(out, labels).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    sync()
'''


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--spec", default="resnet50+cls1000")
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("-b", "--batch-size", type=int, default=None, help="default: 256 on a GPU, 32 on the CPU")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    gpu = args.device.startswith("cuda")
    batch = args.batch_size or (256 if gpu else 32)
    # the bench's own defaults for the device, so that both sides run the same steps
    warmup, iters, repeats = (10, 20, 5) if gpu else (1, 2, 3)
    if args.quick:
        args.img_size, batch, args.rounds, warmup, iters, repeats = 64, 4, 1, 1, 1, 1
    zoo_cmd = [sys.executable, "-m", "zoo", "bench", args.spec, "--vs-reference", "--device",
               args.device, "-b", str(batch), "--img-size", str(args.img_size), "--warmup", str(warmup),
               "--iters", str(iters), "--repeats", str(repeats), "--json"]
    plain_cmd = [sys.executable, "-c", HARNESS, args.spec, args.device, str(batch), str(args.img_size), str(warmup),
                 str(iters), str(repeats)]
    rounds = []
    for index in range(args.rounds):  # alternate which goes first
        pair = [("zoo", zoo_cmd), ("plain", plain_cmd)]
        found = {name: timed(command) for name, command in (pair if index % 2 == 0 else pair[::-1])}
        rounds.append(found)
        print(f"round {index + 1}: zoo {found['zoo']:.1f} s, plain {found['plain']:.1f} s", file=sys.stderr)
    ratio = sorted(r["zoo"] / r["plain"] for r in rounds)[len(rounds) // 2]
    report = json.loads(subprocess.run(zoo_cmd, check=True, capture_output=True, text=True).stdout)
    steps = sum(run["ms_per_batch"] / 1000 * iters * len(run["repeats_images_per_s"]) for run in report["runs"])
    folder, machine = output.results_dir(args.device, args.out)
    result = {"command": output.command_line(), "machine": machine, "zoo_command": " ".join(zoo_cmd[3:-1]),
              "rounds": rounds, "ratio": ratio, "target": TARGET, "met": ratio <= TARGET,
              "timed_steps_s": steps, "warmup_s": {f"{r['model']} {r['mode']}": r["warmup_s"] for r in report["runs"]}}
    lines = [f"# zoo bench wall time ({machine.get('gpu') or machine.get('cpu', '?')}, {args.device})", "",
             f"`{result['command']}`", "",
             f"`zoo {result['zoo_command']}` against a plain harness running the same steps in a fresh process.",
             "", "| round | zoo bench (s) | plain harness (s) |", "|---|---|---|"]
    lines += [f"| {i + 1} | {r['zoo']:.1f} | {r['plain']:.1f} |" for i, r in enumerate(rounds)]
    lines += ["", f"zoo / plain: **{ratio:.2f}x** (target: at most {TARGET}x; "
                  f"{'met' if result['met'] else 'missed'}); the timed steps themselves: {steps:.1f} s."]
    output.publish(folder, "bench_wall", result, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
