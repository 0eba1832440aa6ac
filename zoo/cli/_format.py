"""All text zoo prints for people: tables, model summaries, saved-model metadata, benchmark reports, predictions.

The layers below return data (dicts, dataclasses); `--json` prints that data as it is, and these functions
turn it into text. A new command's text for people goes here.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoo._model import ZooModel
    from zoo._prediction import ImagePrediction
    from zoo.benchmark._report import BenchReport


def format_table(headers: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    """Columns padded to their widest cell; the columns in ``right`` aligned right (numbers)."""
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    lines = []
    for row in [headers, *rows]:
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _status(part: dict[str, Any]) -> str:
    """trains, frozen, or partly for a part whose policy chose some of its parameters."""
    if part["trainable"] == part["params"] or not part["params"]:
        return "trains" if part["trains"] else "frozen"
    return "frozen" if not part["trainable"] else f"partly ({part['trainable']:,} train)"


def format_summary(summary: dict[str, Any]) -> str:
    """A model summary (`zoo._summary.model_summary`) as a table of parts and what trains."""
    rows = []
    for part in summary["parts"]:
        stride = "" if part["stride"] is None else f"/{part['stride']}"
        rows.append([part["kind"], part["name"], f"{part['params']:,}", "" if part["channels"] is None else part["channels"],
                     stride, _status(part)])
    table = format_table(["part", "name", "params", "channels", "stride", "status"], rows, right={2, 3, 4})
    total, trainable = summary["total_params"], summary["trainable_params"]
    share = 100.0 * trainable / total if total else 0.0
    return (
        f"{summary['spec']}  (freeze: {summary['freeze']})\n{table}\n"
        f"total parameters:     {total:,}\ntrainable parameters: {trainable:,} ({share:.1f}%)"
    )


def format_info(data: dict[str, Any]) -> str:
    """What `zoo info` prints: a built model's summary, a saved file's metadata, or one part."""
    if data["kind"] == "model":
        return format_summary(data)
    if data["kind"] == "artifact":
        return format_metadata(data)
    lines = [f"{data['name']}  ({data['kind']}, provided by {data['provider']}, plugin {data['plugin']})"]
    if data["requested"] != data["name"]:
        lines.append(f"{data['requested']!r} resolves to {data['name']}")
    if data.get("description"):
        lines.append(data["description"])
    if data.get("options"):
        lines.append(f"usage: {data['usage']}")
        for option in data["options"]:
            choices = f", one of {'|'.join(map(str, option['choices']))}" if option.get("choices") else ""
            lines.append(f"  {option['name']}={option['type']} (default {option['default']}{choices}): {option['help']}")
    if data["kind"] == "backbone":
        rows = [[s["name"], f"{s['params']:,}", s["channels"], "" if s["stride"] is None else f"/{s['stride']}"]
                for s in data["stages"]]
        lines += [
            format_table(["stage", "params", "channels", "stride"], rows, right={1, 2, 3}),
            f"parameters: {data['params']:,}",
            f"pooled features: {data['pooled_features']}",
            f"input size: {'x'.join(map(str, data['input_size']))}",
            f"mean: {', '.join(f'{v:.4f}' for v in data['mean'])}",
            f"std:  {', '.join(f'{v:.4f}' for v in data['std'])}",
        ]
        if data.get("aliases"):
            lines.append(f"aliases: {', '.join(data['aliases'])}")
        for row in data.get("weights", []):
            where = "on this machine" if row.get("on_this_machine") else "not on this machine"
            also = " (--weights imagenet)" if row["default"] else ""
            lines.append(f"weights {row['tag']}{also}: {row.get('source') or row.get('error', '')}, {where}")
    elif not data.get("options"):
        lines.append(f"usage: {data['usage']}")
    return "\n".join(lines)


def format_build(summary: dict[str, Any]) -> str:
    """What `zoo build` prints: what trains, where the weights came from, where the model was saved."""
    lines = [format_summary(summary)]
    report = summary.get("weights")
    if report:
        fresh = f"; fresh: {', '.join(report['fresh_heads'])}" if report["fresh_heads"] else ""
        lines.append(f"weights: {report['source']} ({report['loaded']} tensors loaded{fresh})")
    if summary.get("saved"):
        lines.append(f"saved: {summary['saved']}")
    return "\n".join(lines)


def format_metadata(data: dict[str, Any]) -> str:
    """What `zoo info FILE.safetensors` prints: the saved model's metadata, read without building it."""
    heads = []
    for head in data.get("heads", []):
        options = ", ".join(f"{k}={v}" for k, v in sorted(head.get("options", {}).items()) if v is not None)
        heads.append(f"{head['name']} ({head['part']}" + (f"; {options}" if options else "") + ")")
    frozen = ", ".join(data["frozen_stages"]) or "nothing"
    if data.get("frozen_parameters") and not data["frozen_stages"] or data.get("frozen_by_hand"):
        how = "by hand" if data.get("frozen_by_hand") else "chosen by the policy"
        frozen = f"{len(data['frozen_parameters'])} parameter tensors, {how}"
    weights = data.get("weights")
    lines = [
        f"{data['file']}  (zoo artifact, {data['bytes'] / 1e6:.1f} MB, {data['tensors']} tensors)",
        f"spec:         {data['spec']}",
        f"freeze:       {data['freeze']} (frozen: {frozen})",
        *([f"backbone:     {', '.join(f'{k}={v}' for k, v in sorted(data['backbone_options'].items()))}"]
          if data.get("backbone_options") else []),
        f"heads:        {'; '.join(heads)}",
        f"parameters:   {data.get('parameters', 0):,} ({data.get('trainable_parameters', 0):,} trainable)",
        f"input size:   {'x'.join(map(str, data.get('input_size', [])))}",
        f"mean:         {', '.join(f'{v:.4f}' for v in data.get('mean', []))}",
        f"std:          {', '.join(f'{v:.4f}' for v in data.get('std', []))}",
        "weights:      " + (f"{weights['source']} (sha256 {weights['sha256'][:16]}...)" if weights and weights.get("sha256")
                            else weights["source"] if weights else "fresh initialisation"),
    ]
    for head, labels in (data.get("labels") or {}).items():
        shown = ", ".join(labels[:8]) + (f", ... ({len(labels)} in all)" if len(labels) > 8 else "")
        lines.append(f"labels {head}: {shown}")
    lines.append(f"made with:    zoo {data.get('zoo_version', '?')}, torch {data.get('torch_version', '?')}")
    rows = [[p["kind"], p["part"], p["plugin"], p["distribution"], p["version"]] for p in data["plugins"]]
    lines.append(format_table(["part", "name", "plugin", "distribution", "version"], rows))
    return "\n".join(lines)


def format_predictions(results: Sequence[ImagePrediction], model: ZooModel) -> str:
    """What ``zoo predict`` prints for people: per image, one line per head (skipped images were warned of)."""
    lines = []
    for result in results:
        if result.outputs is None:
            continue
        lines.append(f"{result.image} ({result.width}x{result.height})")
        for key, head in model.heads.items():
            lines.append(f"  {key}: {head.format(result.outputs[key])}")
        if result.drawn:
            lines.append(f"  drawn: {result.drawn}")
    return "\n".join(lines)


def format_report(report: BenchReport) -> str:
    """The report as people read it: the settings, the machine, one row per run, the ratios."""
    s, m = report.settings, report.machine
    lines = [
        f"{report.spec}  (freeze: {report.freeze}) at {report.img_size}px on {s['device']}, {s['threads']} threads",
        f"machine: {m.get('gpu') or m['cpu']}, {m['usable_cpus']} cpus, torch {m['torch']}, "
        f"load {' '.join(map(str, m['loadavg']))}",
        f"matmul: {report.matmul['gflops']:g} GFLOP/s ({report.matmul['dtype']}, {report.matmul['size']}^2); "
        f"{s['warmup']} warm-up + {s['repeats']} repeats x {s['iters']} steps",
    ]
    rows = []
    for r in report.runs:
        share = "" if r.fraction_of_matmul is None else f"{100 * r.fraction_of_matmul:.0f}%"
        setup = f"{r.precision} {'channels-last' if r.channels_last else 'NCHW'} {'compiled' if r.compiled else 'eager'}"
        rows.append([r.mode, r.model, setup, r.batch_size, f"{r.images_per_s:.2f}",
                     f"{r.timing['images_per_s_min']:.2f}-{r.timing['images_per_s_max']:.2f}",
                     f"{r.timing['ms_per_batch']:.1f}", f"{r.peak_memory_mb:,.0f}", f"{r.params:,}",
                     f"{r.trainable_params:,}", f"{r.gflops_per_image:.2f}", f"{r.achieved_gflops:.1f}", share])
    headers = ["mode", "model", "setup", "batch", "img/s", "min-max", "ms/batch", "peak MB", "params", "trainable",
               "GFLOP/img", "GFLOP/s", "of matmul"]
    lines.append(format_table(headers, rows, right=set(range(3, 13))))
    for r in report.runs:
        if r.too_big and r is next(x for x in report.runs if x.mode == r.mode):
            lines.append(f"{r.mode}: batch {', '.join(map(str, r.too_big))} did not fit in memory; "
                         f"{r.batch_size} is the largest of the halvings that fit")
    for mode, ratio in report.ratios.items():
        subject, baseline = report.pair(mode)
        low, high = report.ratio_ranges[mode]
        lines.append(f"{mode}: {subject} / {baseline} = {ratio:.3f}x (repeat by repeat {low:.3f}-{high:.3f})")
    return "\n".join(lines)
