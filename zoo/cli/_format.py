"""All text zoo prints for people: tables, model summaries, saved-model metadata, benchmark reports, predictions.

The layers below return data (dicts, dataclasses); `--json` prints that data as it is, and these functions
turn it into text. A new command's text for people goes here.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from zoo._core.images import name_few
from zoo._untrusted import one_line

if TYPE_CHECKING:
    from zoo._core.model import ZooModel
    from zoo.benchmark._report import BenchReport
    from zoo.inference.predict import ImagePrediction

ANSWER_LIMIT = 20_000  # one head's answer as a line of text: labels in it are bounded already


def format_table(headers: list[str], rows: list[list[str]], right: set[int] = frozenset(), *,
                 width: int | None = None, shrink: Sequence[tuple[int, int]] = ()) -> str:
    """Columns padded to their widest cell; the columns in ``right`` aligned right (numbers).

    ``width``: the table is narrowed to it by cutting columns in the order of ``shrink``, each (column, down to
    this many characters); a cell cut ends with an ellipsis (``--json`` keeps the whole text).
    """
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    if width is not None:
        widths = _fit(widths, width, shrink)
    lines = []
    for row in [headers, *rows]:
        row = [_clip(str(c), w) for c, w in zip(row, widths)]
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _fit(widths: list[int], width: int, shrink: Sequence[tuple[int, int]]) -> list[int]:
    """Column widths cut to fit ``width`` with two spaces between columns, in the order ``shrink`` gives."""
    widths = list(widths)
    excess = sum(widths) + 2 * (len(widths) - 1) - width
    for i, floor in shrink:
        cut = min(max(excess, 0), max(widths[i] - floor, 0))
        widths[i] -= cut
        excess -= cut
    return widths


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "\u2026"


def terminal_width() -> int | None:
    """The width to fit tables to: $COLUMNS, else the terminal's; None in a pipe, where lines stay whole for
    the programs reading them (as ``ls -l`` and ``git`` do)."""
    import os
    import shutil
    import sys

    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def _status(part: dict[str, Any]) -> str:
    """trains, frozen, or partly for a part whose policy chose some of its parameters."""
    if part["trainable"] == part["params"] or not part["params"]:
        return "trains" if part["trains"] else "frozen"
    return "frozen" if not part["trainable"] else f"partly ({part['trainable']:,} train)"


def format_list(rows: list[dict[str, Any]], weights: bool = False, width: int | None = None) -> str:
    """What `zoo list` prints, fitted to ``width`` (the terminal's); ``weights``: a column of each backbone's
    pretrained tags, the default first. A backbone's usage shows when it takes options."""
    def tags(row: dict[str, Any]) -> str:
        found = row.get("weights") or []
        return f"{found[0]}" + (f" (+{len(found) - 1})" if len(found) > 1 else "") if found else ""

    def usage(row: dict[str, Any]) -> str:
        plain = row["kind"] == "backbone" and row["usage"] == row["name"].rpartition("/")[2]
        return "" if plain else row["usage"]

    headers = ["kind", "name", *(["weights"] if weights else ["usage"]), "provider", "description"]
    table = [[r["kind"], r["name"], tags(r) if weights else usage(r),
              f"{r['plugin']} ({r['provider']})" if r["plugin"] else r["provider"], r["description"]] for r in rows]
    return format_table(headers, table, width=terminal_width() if width is None else width, shrink=_LIST_SHRINK)


# what `zoo list` cuts first to fit the terminal: a long usage, then the description, then both further
_LIST_SHRINK = ((2, 24), (4, 32), (2, 12), (4, 16), (3, 12), (1, 24))


def format_weights(rows: list[dict[str, Any]]) -> str:
    """A backbone's pretrained weights: tag, top-1, file size, license, classes, and whether the file is here."""
    def number(value: Any, style: str) -> str:
        return "-" if value is None else format(value, style)

    table = [[row["tag"] + (" *" if row["default"] else ""), number(row.get("top1"), ".2f"),
              number(row.get("size_mb"), ".1f"), row.get("license") or "-", number(row.get("classes"), "d"),
              "error: " + row["error"] if "error" in row else "yes" if row["on_this_machine"] else "no"]
             for row in rows]
    return format_table(["weights", "top-1", "MB", "license", "classes", "on this machine"], table, right={1, 2, 4})


def format_summary(summary: dict[str, Any]) -> str:
    """A model summary (`zoo._core.summary.model_summary`) as a table of parts and what trains."""
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
        tag = f" with its pretrained weights {data['weights_tag']}" if data.get("weights_tag") else ""
        lines.append(f"{data['requested']!r} resolves to {data['name']}{tag}")
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
        if data.get("weights"):
            lines += [format_weights(data["weights"]), "(* the default: --weights imagenet)"]
        if data.get("weights_warning"):
            lines.append(f"warning: {data['weights_warning']}")
    elif not data.get("options"):
        lines.append(f"usage: {data['usage']}")
    return "\n".join(lines)


def format_plugins(records: list[dict[str, Any]]) -> str:
    """What `zoo plugins` prints: one row per plugin, with the hooks it implements, what they provide and how
    long it took to load."""
    rows = []
    for r in records:
        provides = ", ".join(f"{len(names)} {kind}" for kind, names in sorted(r["provides"].items()))
        load = f"{r['load_ms']:.0f} ms" + (" (torch)" if r["imports_torch"] else "")
        hooks = ", ".join(r.get("hooks") or []) or "-"
        problem = r["error"] or (f"note: {r['note']}" if r.get("note") else "")
        rows.append([r["name"], r["distribution"], r["version"], r.get("contract") or "-", hooks, r["status"], load,
                     provides or "-", problem])
    return format_table(["plugin", "distribution", "version", "contract", "hooks", "status", "load", "provides",
                         "error"], rows)


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
        options = ", ".join(f"{k}={one_line(v, 60)}" for k, v in sorted(head.get("options", {}).items())
                            if v is not None)
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
        "weights:      " + (f"{one_line(weights['source'], 200)} (sha256 {weights['sha256'][:16]}...)"
                            if weights and weights.get("sha256")
                            else one_line(weights["source"], 200) if weights else "fresh initialisation"),
    ]
    training = data.get("training")
    if isinstance(training, dict):
        lines.append(one_line(f"trained:      epoch {training.get('epoch')} of {training.get('epochs_run')} on "
                              f"{training.get('data')} ({training.get('optimizer')}, lr {training.get('lr')}, "
                              f"batch {training.get('batch_size')}{_form_of(training)})", 400))
    if isinstance(data.get("metrics"), dict):
        lines.append("metrics:      " + ", ".join(f"{one_line(k, 60)} {v:.4g}" for k, v in data["metrics"].items()
                                                  if isinstance(v, (int, float))))
    for head, labels in (data.get("labels") or {}).items():
        shown = ", ".join(one_line(label, 60) for label in labels[:8])
        shown += f", ... ({len(labels)} in all)" if len(labels) > 8 else ""
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
            lines.append(f"  {key}: {one_line(head.format(result.outputs[key]), ANSWER_LIMIT)}")
        if result.drawn:
            lines.append(f"  drawn: {result.drawn}")
    return "\n".join(lines)


def _other_yardsticks(report: BenchReport) -> dict[str, float]:
    """Matmul GFLOP/s of the precisions that runs used besides the settings' own."""
    return {r.precision: r.matmul_gflops for r in report.runs
            if r.precision != report.settings["precision"] and r.matmul_gflops is not None}


def format_report(report: BenchReport) -> str:
    """The report as people read it: the settings, the machine, one row per run, the ratios."""
    s, m = report.settings, report.machine
    lines = [
        f"{report.spec}  (freeze: {report.freeze}) at {report.img_size}px on {s['device']}, {s['threads']} threads",
        f"machine: {m.get('gpu') or m['cpu']}, {m['usable_cpus']} cpus, torch {m['torch']}, "
        f"load {' '.join(map(str, m['loadavg']))}",
        f"matmul: {report.matmul['gflops']:g} GFLOP/s ({report.matmul['dtype']}, {report.matmul['size']}^2)"
        + "".join(f", {precision} {gflops:g}" for precision, gflops in _other_yardsticks(report).items()) + "; "
        f"{s['warmup']} warm-up + {s['repeats']} repeats x {s['iters']} steps",
    ]
    rows = []
    for r in report.runs:
        share = "" if r.fraction_of_matmul is None else f"{100 * r.fraction_of_matmul:.0f}%"
        setup = f"{r.form or r.precision} {'channels-last' if r.channels_last else 'NCHW'} {'compiled' if r.compiled else 'eager'}"
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


def format_epoch(row: dict[str, Any]) -> str:
    """One line per epoch of ``zoo train``: each train/ and val/ figure, time and speed."""
    values = [f"{key} {value:.4g}" for key, value in row.items()
              if key.startswith(("train/", "val/")) and isinstance(value, float)]
    return (f"epoch {row['epoch']}: " + "  ".join(values)
            + f"  ({row['seconds']:.1f} s, {row['images_per_s']:.1f} img/s"
            + (f", {_unreadable(row)}" if row.get("skipped") else "") + ")")


def _unreadable(found: dict[str, Any]) -> str:
    """``2 unreadable skipped: a.jpg, b.jpg``, naming the first few files (from a file's history: any type)."""
    names = found.get("unreadable")
    named = name_few([one_line(n, 200) for n in names], found["skipped"]) if isinstance(names, list) and names else ""
    return f"{found['skipped']} unreadable skipped" + (f": {named}" if named else "")


def _form_of(training: dict[str, Any]) -> str:
    """", bf16-autocast+channels-last" for a file trained with ``--fast`` (read from the file: any type)."""
    form = training.get("form")
    return f", {form.get('form')}" if isinstance(form, dict) else ""


def format_training_form(form: dict[str, Any]) -> str:
    """The form ``zoo train --fast`` trained in, and what each candidate measured on the first batch."""
    measured = ", ".join(f"{name} {rate:.1f}" for name, rate in form["images_per_s"].items())
    return f"trained as {form['form']}" + (f" (img/s on the first batch: {measured})" if measured else "")


def format_no_match(pattern: str | None, kind: str | None, pretrained: bool) -> str:
    """The note ``zoo list`` prints on stderr when nothing matches (an empty list is an answer: exit 0)."""
    return (f"zoo: nothing matches {pattern!r}" + (f" among {kind} parts" if kind else "")
            + (" with pretrained weights" if pretrained else ""))


def format_fit(result: Any) -> str:
    """What ``zoo train`` prints when it ends (`zoo.training.loop.FitResult`): the best epoch's metrics, the
    training form, the feature cache and the files saved."""
    best = "  ".join(f"{k} {v:.4g}" for k, v in result.metrics.items())
    lines = [f"best epoch {result.best_epoch}: {best}"]
    if result.form:
        lines.append(format_training_form(result.form))
    if result.feature_cache:
        found = result.feature_cache
        views = f", {found['views']} augmented views" if found.get("views") else ""
        lines.append(f"feature cache: {found['file']} ({found['bytes'] / 2**20:.1f} MiB{views}, "
                     f"{'built' if found['built'] else 'reused'})")
    lines.append("saved: " + ", ".join(result.files.values()))
    return "\n".join(lines)


def format_interrupted(message: str) -> str:
    """What a run stopped by Ctrl-C leaves (`zoo.training.checkpoint.StoppedTraining`)."""
    return f"zoo: interrupted; {message}"


def format_evaluation(result: dict[str, Any]) -> str:
    """What ``zoo eval`` prints: images, loss, each metric, per-class accuracy, confusion matrix files."""
    lines = [f"{result['model']} on {result['data'] or 'the data'}: {result['images']} images"
             + (f" ({_unreadable(result)})" if result["skipped"] else "")]
    if result.get("loss") is not None:
        lines.append(f"  loss: {result['loss']:.4f}")
    lines += [f"  {name}: {value:.4f}" for name, value in result["metrics"].items()]
    for key, found in result.get("classes", {}).items():
        shown = ", ".join(f"{name} {'-' if acc is None else f'{acc:.3f}'}" for name, acc in found["per_class_accuracy"].items())
        lines.append(f"  {key} per class: {shown}")
        if found.get("confusion_png"):
            lines.append(f"  {key} confusion matrix: {found['confusion_png']}")
    return "\n".join(lines)


def format_export(data: dict[str, Any]) -> str:
    """What `zoo export` wrote (`zoo.inference.export.ExportReport.as_dict`), and how its check went."""
    kind = "int8 " if data["int8"] else ""
    lines = [f"{data['path']}  ({kind}{data['format']}, {data['bytes'] / 1e6:.1f} MB)",
             f"spec:     {data['spec']}",
             f"input:    image, N x {' x '.join(map(str, data['input_size']))} (any batch size)",
             f"outputs:  {', '.join(data['outputs'])}"]
    if data["calibration_images"]:
        lines.append(f"calibrated on {data['calibration_images']} images")
    check = data.get("check")
    if check:
        lines.append(f"check:    {check['runtime']}, batches {', '.join(map(str, check['batches']))}: "
                     f"max difference {check['max_difference']:.3g} (at most {check['tolerance']:g}) "
                     f"from the model on {check.get('device', 'cpu')}")
        if "max_difference_vs_fp32" in check:
            lines.append(f"          vs the fp32 model: max difference {check['max_difference_vs_fp32']:.3g}")
    return "\n".join(lines)


def format_environment(data: dict[str, Any]) -> str:
    """What `zoo env` prints (`zoo._runtime.environment.environment`): one line per fact, for a bug report."""
    cpu, cuda = data["cpu"], data["cuda"]
    yes = {True: "yes", False: "no"}
    lines = [f"zoo          {data['zoo']}", *([f"contract     {data['contract']} (the plugin contract)"]
                                                 if data.get("contract") else []),
             f"python       {data['python']} ({data['executable']})",
             f"platform     {data['platform']}"]
    lines += [f"{name:<12} {found or '-'}" for name, found in data["packages"].items()]
    lines += [
        f"cpu          {cpu['model']}, {cpu['usable']} of {cpu['cores']} cores usable, torch uses {cpu['torch_capability']}",
        "capability   " + ", ".join(f"{name} {yes[cpu[key]]}" for name, key in (
            ("AVX2", "avx2"), ("AVX-512", "avx512"), ("VNNI", "vnni"), ("AMX", "amx"), ("bf16", "native_bf16"))),
        f"cuda         {cuda['cuda_build'] or 'not in this torch build'}; "
        + (f"{len(cuda['gpus'])} GPU(s)" if cuda["available"] else "no GPU visible"),
    ]
    lines += [f"gpu {g['index']}        {g['name']}, {g['memory_gb']} GB, compute {g['capability']}" for g in cuda["gpus"]]
    lines.append(f"device       {data['device']}  (the default of --device)")
    lines += [f"{name:<20} {value}" for name, value in data["variables"].items() if value is not None]
    return "\n".join(lines)


_CLASSIFICATION = [{"name": "accuracy", "label": "probe", "higher_is_better": True},
                   {"name": "knn_accuracy", "label": "k-NN", "higher_is_better": True}]


def _choice_cells(row: dict[str, Any], metrics: list[dict[str, Any]]) -> list[str]:
    """One table row: the head's metrics (accuracies to 3 decimals, errors in pixels or years to 2), then cost."""
    def number(key: str, form: str) -> str:
        return "-" if row.get(key) is None else format(row[key], form)

    kept = {"quality": "", "cost": ""}
    for part, done in row["measured"].items():
        kept[part] = "new" if done else "kept"
    measured = "-" if row.get(metrics[0]["name"]) is None else f"{kept['quality']}/{kept['cost']}"
    quality = [number(m["name"], ".3f" if m["higher_is_better"] else ".2f") for m in metrics]
    return [str(row["pareto"] or "-"), one_line(row["name"], 200), row["status"], *quality,
            number("images_per_s", ".1f"), number("latency_ms", ".1f"), number("peak_memory_mb", ".0f"),
            "-" if row["params"] is None else f"{row['params'] / 1e6:.1f}M", number("gflops", ".2f"), measured]


def _choice_title(data: dict[str, Any], metrics: list[dict[str, Any]]) -> str:
    """The first line: the data, the head (classes for classification), what ranks when not the default and
    what a constant guess scores by it."""
    settings = data["settings"]
    head = data.get("head", "cls")
    what = f"{len(data['classes'])} classes" if head.startswith("cls") else f"head {head}"
    if metrics[0]["name"] != "accuracy":
        ranked = metrics[0]
        constant = f"constant_{ranked['name'].removeprefix('knn_')}"  # what guessing the mean (majority) scores
        guess = next((row[constant] for row in data["candidates"] if row.get(constant) is not None), None)
        what += (f", ranked by {ranked['label']} ({'higher' if ranked['higher_is_better'] else 'lower'} is better"
                 + ("" if guess is None else f"; a constant guess: {guess:{'.3f' if ranked['higher_is_better'] else '.2f'}}")
                 + ")")
    return (f"{one_line(data['data'], 200)}: {data['images']} images, {what}; "
            f"{settings['img_size']} px, batch {settings['batch_size']}, {settings['device']}")


def format_choice(data: dict[str, Any]) -> str:
    """What `zoo choose` found (`zoo.choosing.Choice.as_dict`): the table along the Pareto front (the head's
    metrics, the ranking one first), the candidates a budget leaves out, those not measured and why, and, last,
    the best and how to fine-tune it."""
    metrics = data.get("metrics") or _CLASSIFICATION
    key = metrics[0]["name"]
    rows = data["candidates"]
    shown = [row for row in rows if row.get(key) is not None and not row["over_budget"]]
    headers = ["front", "candidate", "weights", *(m["label"] for m in metrics), "img/s", "ms@1", "MB", "params",
               "GFLOPs", "results"]
    lines = [_choice_title(data, metrics)]
    if shown:
        lines.append(format_table(headers, [_choice_cells(row, metrics) for row in shown],
                                  right=set(range(3, len(headers) - 1))))
    for row in rows:
        if row["over_budget"]:
            lines.append(f"over budget: {one_line(row['name'], 200)} ({', '.join(row['over_budget'])})")
    for row in rows:
        if row.get(key) is None:
            why = row["error"] or row["note"]
            lines.append(f"{row['status']}: {one_line(row['name'], 200)}: {one_line(why, 400)}")
    guessed = [one_line(row["name"], 200) for row in rows if row.get(key) is not None and row["status"] == "random init"]
    if guessed:
        lines.append(f"random init (their pretrained weights are not here): {', '.join(guessed)}")
    if data.get("plot"):
        lines.append(f"plot: {data['plot']}")
    if data["best"] is None:
        measured = any(row.get(key) is not None for row in rows)
        lines.append("no candidate within the budget" if measured else
                     "no candidate measured (weights not here: get them as shown, or --allow-random)")
    else:
        lines.append(f"best within the budget: {one_line(data['best'], 200)}; fine-tune it: {data['command']}")
    return "\n".join(lines)


def _size(count: int) -> str:
    """Bytes as people read them: 512 B, 4.2 MB, 1.3 GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def _age(seconds: float) -> str:
    """3 min, 5 h, 12 d: how long ago a cache file was written."""
    for unit, scale in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= scale:
            return f"{seconds / scale:.0f} {unit}"
    return f"{seconds:.0f} s"


def format_cache_entries(entries: list[dict[str, Any]], folder: str) -> str:
    """What ``zoo cache list`` prints: one row per file (kind, what for, size, age), then the total."""
    if not entries:
        return f"{folder}: empty"
    rows = [[e["kind"], one_line(e["about"], 200), _size(e["bytes"]), _age(e["age_s"]), e["path"]] for e in entries]
    total = sum(e["bytes"] for e in entries)
    return (format_table(["kind", "for", "size", "age", "file"], rows, right={2, 3})
            + f"\n{len(entries)} files, {_size(total)} in {folder}")


def format_cache_cleared(removed: list[dict[str, Any]]) -> str:
    """What ``zoo cache clear`` prints: each file removed, then the bytes freed."""
    lines = [f"removed {e['path']}  ({e['kind']}, {_size(e['bytes'])})" for e in removed]
    freed = sum(e["bytes"] for e in removed)
    return "\n".join([*lines, f"{len(removed)} files removed, {_size(freed)} freed ({freed:,} bytes)"])


def format_new_plugin(result: dict[str, Any]) -> str:
    """What ``zoo plugin new`` prints: where the package is, its files, and the three commands that follow."""
    files = "\n".join(f"  {name}" for name in result["files"])
    return (f"wrote {result['dist']} (plugin {result['name']}, contract {result['contract']}) in {result['path']}:\n"
            f"{files}\nnext: pip install -e {result['path']}  &&  zoo plugins  &&  pytest {result['path']}")
