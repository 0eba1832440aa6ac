"""The throughput targets, each a ratio of two models timed side by side, interleaved, in one process.

    zoo vs torchvision   resnet50+cls10 built by zoo over torchvision.models.resnet50(num_classes=10),
                         inference and training step                                   at least 0.98x
    freeze all vs none   resnet50+cls10 training step, --freeze=all over --freeze=none   at least 2.5x
    fast vs eager        resnet50+cls10 inference at batch 32, --fast over eager fp32    at least 9x where
                         bf16 is native (AVX512-BF16, AMX), 2x elsewhere
    fast vs plain        --fast over torchvision's model compiled by a plain script, inductor's
                         freezing applied, channels-last: the best this stack does     at least 0.9x

Every figure comes with the fraction of a matmul it reaches, the matmul measured in the same run and in
the precision that figure ran in (bf16 for --fast where native). Each target runs in a fresh process
(see `isolation.py`). Writes targets.md and targets.json into benchmarks/results/<machine>/.

    python benchmarks/targets.py [--only reference,freeze,fast,plain] [--spec resnet50+cls10] [--strict]
    python benchmarks/targets.py --quick --spec resnet18+cls10 --out /tmp/targets   # checks it runs
    python benchmarks/targets.py --device cuda -b 256 --only reference,fast,plain   # a GPU (make gpu-check)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import zoo
from zoo._runtime import machine as _machine
from zoo.benchmark import Candidate, compare
from zoo.benchmark._report import BenchReport
from zoo.benchmark._settings import Settings, resolve_settings

import isolation
import output
import plain

# name -> (what is compared, the least ratio, settings of the measurement)
TARGETS = {
    "reference": ("zoo-built over torchvision-built", 0.98,
                  {"mode": "both", "batch_size": 8, "warmup": 2, "iters": 1, "repeats": 15}),
    "freeze": ("training step, --freeze=all over --freeze=none", 2.5,
               {"mode": "train", "batch_size": 32, "warmup": 1, "iters": 1, "repeats": 5}),
    "fast": ("inference, --fast over eager fp32", 2.0,  # 9x where bf16 is native: see least_ratio
             {"mode": "infer", "batch_size": 32, "warmup": 1, "iters": 2, "repeats": 5}),
    "plain": ("inference, --fast over a plain compiled script", 0.9,
              {"mode": "infer", "batch_size": 32, "warmup": 1, "iters": 2, "repeats": 5}),
}
QUICK = {"batch_size": 2, "img_size": 64, "warmup": 1, "iters": 1, "repeats": 1}


def measure(name: str, spec: str, settings: dict[str, Any]) -> BenchReport:
    if name == "reference":
        return zoo.bench(spec, vs_reference=True, **settings)
    if name == "freeze":
        return compare([Candidate("freeze=all", zoo.build(spec, freeze="all")),
                        Candidate("freeze=none", zoo.build(spec, freeze="none"))], **settings)
    fast, _ = resolve_settings(Settings(device=settings.get("device", "cpu"), fast=True))
    subject = Candidate("--fast", zoo.build(spec), channels_last=fast.channels_last, compile=fast.compile,
                        precision=fast.precision)
    if name == "plain":
        return compare([subject, Candidate("plain compiled", plain.compiled_reference(zoo.build(spec)),
                                           channels_last=True, compile=False, precision=fast.precision)], **settings)
    return compare([subject, Candidate("eager fp32", zoo.build(spec), channels_last=False, compile=False,
                                       precision="fp32")], **settings)


def least_ratio(name: str, device: str) -> float:
    """The least ratio a target must reach here: --fast has far more to gain on a CPU where bf16 is native."""
    if name == "fast" and device == "cpu" and _machine.native_bf16_cpu():
        return 9.0
    return TARGETS[name][1]


def rows(name: str, report: BenchReport) -> list[dict[str, Any]]:
    what, least = TARGETS[name][0], least_ratio(name, report.settings["device"])
    result = []
    for mode, ratio in report.ratios.items():
        subject, baseline = (report.run(mode, label) for label in report.pair(mode))
        result.append({
            "target": name, "compares": what, "mode": mode, "ratio": ratio, "ratio_range": report.ratio_ranges[mode],
            "least": least, "met": ratio >= least,
            "subject": subject.model, "baseline": baseline.model, "batch_size": subject.batch_size,
            "img_size": report.img_size,
            "subject_images_per_s": subject.images_per_s, "baseline_images_per_s": baseline.images_per_s,
            "subject_range": [subject.timing["images_per_s_min"], subject.timing["images_per_s_max"]],
            "baseline_range": [baseline.timing["images_per_s_min"], baseline.timing["images_per_s_max"]],
            "subject_of_matmul": subject.fraction_of_matmul, "baseline_of_matmul": baseline.fraction_of_matmul,
            "subject_gflops": subject.achieved_gflops, "baseline_gflops": baseline.achieved_gflops,
            "subject_precision": subject.precision, "baseline_precision": baseline.precision,
            "subject_matmul_gflops": subject.matmul_gflops, "baseline_matmul_gflops": baseline.matmul_gflops,
            "repeats": report.settings["repeats"],
            "loadavg": report.machine["loadavg"], "loadavg_after": report.machine["loadavg_after"],
        })
    return result


def _figure(rate: float, low_high: list[float], share: float | None) -> str:
    return f"{rate:.2f} ({low_high[0]:.2f}-{low_high[1]:.2f}), {100 * (share or 0):.0f}% of matmul"


def markdown(results: list[dict[str, Any]], machine: dict[str, Any], spec: str) -> str:
    headers = ["target", "mode", "ratio", "repeat by repeat", "at least", "met", "img/s (min-max), share of matmul", "baseline img/s",
               "batch", "load before/after"]
    table = [[f"{r['compares']}", r["mode"], f"**{r['ratio']:.3f}x**",
              f"{r['ratio_range'][0]:.3f}-{r['ratio_range'][1]:.3f}", f"{r['least']}x", "yes" if r["met"] else "**no**",
              f"{r['subject']}: {_figure(r['subject_images_per_s'], r['subject_range'], r['subject_of_matmul'])}",
              f"{r['baseline']}: {_figure(r['baseline_images_per_s'], r['baseline_range'], r['baseline_of_matmul'])}",
              r["batch_size"], f"{r['loadavg'][0]} / {r['loadavg_after'][0]}"] for r in results]
    yardsticks = {(r["target"], r[f"{side}_precision"]): r[f"{side}_matmul_gflops"]
                  for r in results for side in ("subject", "baseline")}
    matmuls = ", ".join(f"{name} {precision} {gflops:g}" for (name, precision), gflops in yardsticks.items())
    return "\n".join([
        f"# Throughput targets: {spec}", "",
        f"`{output.command_line()}`", "",
        "The two models of a target are timed in turn, repeat by repeat, in one process; each ratio is the "
        "median over the repeats of the first model's images per second over the second's in the same "
        "repeat, and its least and greatest are beside it; min-max of images per second is over the "
        "repeats. Each target runs in a fresh process, as a user's own process would start. The share of matmul is "
        "the achieved GFLOP/s (counted FLOPs per image x images per second) over a square matmul in the "
        f"precision that model ran in (bf16 for --fast where native), measured in the same run (GFLOP/s: {matmuls}).", "",
        output.machine_markdown(machine), "", output.markdown_table(headers, table), "",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(TARGETS), help="comma-separated: " + ", ".join(TARGETS))
    parser.add_argument("--spec", default="resnet50+cls10")
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("-b", "--batch-size", type=int, default=None, help="default: each target's")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that the script runs")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/<machine>")
    args = parser.parse_args()

    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in names if name not in TARGETS]
    if unknown:
        parser.error(f"unknown target {unknown[0]!r}; targets: {', '.join(TARGETS)}")
    results, reports = [], []
    for name in names:
        settings = {**TARGETS[name][2], "img_size": args.img_size, "threads": args.threads, "device": args.device}
        if args.batch_size:
            settings["batch_size"] = args.batch_size
        if args.quick:
            settings.update(QUICK)
        start = time.perf_counter()
        report = isolation.fresh(measure, name, args.spec, settings)
        reports.append(report.as_dict())
        for result in rows(name, report):
            results.append(result)
            print(f"{name:9} {result['mode']:5} {result['ratio']:.3f}x (at least {result['least']}x: "
                  f"{'met' if result['met'] else 'MISSED'}) {time.perf_counter() - start:.0f} s",
                  file=sys.stderr, flush=True)
    folder, machine = output.results_dir(args.device, args.out)
    machine["loadavg_after"] = machine.pop("loadavg")
    machine["loadavg"] = reports[0]["machine"]["loadavg"]
    output.write_json(folder / "targets.json", {"command": output.command_line(), "machine": machine,
                                                "results": results, "reports": reports})
    output.write_text(folder / "targets.md", markdown(results, machine, args.spec))
    print(folder)
    return 1 if args.strict and not all(r["met"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
