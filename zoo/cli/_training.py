"""``zoo train`` and ``zoo eval``: thin commands over `zoo.fit` and `zoo.evaluate`; registered on the `zoo`
group by `zoo.cli`, as every command is."""
from __future__ import annotations

import warnings
from typing import Any

import click

from zoo.cli._context import device_option, emit, registry
from zoo.cli._format import format_epoch, format_evaluation, format_fit, format_interrupted
from zoo.errors import ZooNotice
from zoo.training import DEFAULT_EPOCHS


@click.command()
@click.argument("model", metavar="SPEC|FILE")
@click.argument("data")
@click.option("-o", "--output", required=True, metavar="FILE", help="Save the best epoch to FILE.safetensors "
              "(the last to FILE-last.safetensors, the history and curves beside it).")
@click.option("--force", is_flag=True, help="Replace existing output files.")
@click.option("--val", default=None, metavar="DATA", help="Validation table or COCO file (folders: DATA/val/).")
@click.option("--val-split", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Hold out this share of DATA for validation (ignored, with a warning, beside DATA/val/).")
@click.option("--freeze", default=None, metavar="POLICY", help="none, all, a stage name, last:N, ...")
@click.option("--weights", default=None, metavar="SOURCE", help="Pretrained weights for a SPEC (as zoo build).")
@click.option("--epochs", type=click.IntRange(min=1), default=DEFAULT_EPOCHS, show_default=True)
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--img-size", type=click.IntRange(min=8), default=None, help="Square image size (default: the model's).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Learning rate of the heads (default: 0.01 sgd, 0.001 adamw).")
@click.option("--optimizer", type=click.Choice(["sgd", "adamw"]), default="sgd", show_default=True)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.0, show_default=True)
@click.option("--schedule", type=click.Choice(["cosine", "step", "constant"]), default="cosine", show_default=True)
@click.option("--warmup", type=click.IntRange(min=0), default=0, show_default=True, help="Epochs of linear warm-up.")
@click.option("--backbone-lr", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="The backbone learns at lr times this (0.1: ten times slower than the heads).")
@click.option("--layer-decay", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Each stage learns at this times the rate of the stage after it.")
@click.option("--unfreeze", default=None, metavar="EPOCH:STAGE,...",
              help="Gradual unfreezing: 3:layer4,6:layer3 trains from layer4 on at epoch 3, from layer3 at 6.")
@click.option("--no-augment", is_flag=True, help="Train on the eval transform (no random crop or flip).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="DataLoader worker processes  [default: from the machine]")
@device_option
@click.option("--fast", is_flag=True, help="Time a few steps in each form and train in the fastest: channels-last, "
              "bf16 autocast where the hardware has it, compiled where the run is long enough to repay it.")
@click.option("--no-feature-cache", is_flag=True, help="Run frozen stages on every image every epoch instead of "
              "caching their output (the cache trains on the eval transform, or on --feature-cache-views).")
@click.option("--feature-cache-views", type=click.IntRange(min=0), default=0, show_default=True, metavar="N",
              help="Also cache N augmented views (random crop, flip) of each training image; epoch k trains "
              "on view k mod N. 0: the eval transform only.")
@click.option("--feature-cache-limit", type=click.FloatRange(min=0, min_open=True), default=8.0, show_default=True,
              metavar="GB", help="Train without the cache when it would be larger.")
@click.option("--resume", is_flag=True, help="Continue a stopped run from its checkpoint (OUTPUT.checkpoint.pt), "
              "with the same arguments.")
@click.option("--labels", "label_files", multiple=True, metavar="[HEAD=]FILE",
              help="Names for a head's outputs, one a line, where DATA has none (a table's class indices); saved.")
@click.option("--keep-heads", is_flag=True, help="Keep the heads of --weights or FILE even where they learned "
              "other labels than DATA has (by default such heads start fresh).")
@click.option("--quiet", is_flag=True, help="Errors only: no progress, no line per epoch, no summary, no notes.")
@click.option("--json", "as_json", is_flag=True, help="Print the result (history, best epoch, files) as JSON.")
@click.pass_context
def train(ctx: click.Context, model: str, data: str, output: str, force: bool, val: str | None, freeze: str | None,
          weights: str | None, no_augment: bool, device: str | None, quiet: bool, as_json: bool,
          no_feature_cache: bool, feature_cache_limit: float, label_files: tuple[str, ...], **settings: Any) -> int:
    """Fine-tune SPEC (or a saved FILE) on DATA: a folder of class folders (train/ and val/ inside), a CSV or
    JSON-lines table (image column plus each head's columns), or a COCO JSON file (detection)."""
    from zoo._runtime.processes import is_rank_zero
    from zoo.training.loop import fit

    summary = not (quiet or as_json)  # --quiet: errors only; --json: the result alone
    quiet = quiet or as_json
    report = None if quiet else (lambda row: click.echo(format_epoch(row), err=False))
    try:
        with warnings.catch_warnings():
            if quiet:  # what zoo chose for the user goes; warnings of real problems stay
                warnings.simplefilter("ignore", ZooNotice)
            result = fit(model, data, val, freeze=freeze, weights=weights, output=output, force=force,
                         device=device, progress=False if quiet else None, on_epoch=report,
                         augment=not no_augment, feature_cache=not no_feature_cache,
                         feature_cache_limit_gb=feature_cache_limit, labels=_labels(label_files),
                         registry=registry(ctx), **settings)
    except KeyboardInterrupt as stop:
        click.echo(format_interrupted(getattr(stop, 'message', 'nothing was written')), err=True)
        return 130
    if not is_rank_zero():  # under torchrun only rank 0 reports
        return 0
    if as_json:
        emit(result.as_dict(), True)
    elif summary:
        click.echo(format_fit(result))
    return 0


def _labels(values: tuple[str, ...]) -> dict[str | None, list[str]] | None:
    """``--labels [HEAD=]FILE`` as names by head (None: the first head that takes names), for `zoo.fit`."""
    from zoo._core.saving import read_labels

    if not values:
        return None
    found: dict[str | None, list[str]] = {}
    for value in values:
        head, sep, file = value.partition("=")
        found[head if sep else None] = read_labels(file if sep else value)
    return found


@click.command("eval")
@click.argument("model", metavar="FILE|SPEC")
@click.argument("data")
@click.option("--weights", default=None, metavar="SOURCE", help="Weights for a SPEC (as zoo build --weights).")
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--out", default=None, metavar="DIR", help="Write a confusion-matrix PNG per classification head.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="DataLoader worker processes  [default: from the machine]")
@device_option
@click.option("--fast", is_flag=True, help="Compiled, weights frozen, bf16 where native and measured faster "
              "(as zoo predict --fast; metrics may move by bf16's rounding).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def eval_command(ctx: click.Context, model: str, data: str, weights: str | None, batch_size: int, out: str | None,
                 workers: int | None, device: str | None, fast: bool, as_json: bool) -> None:
    """Every head's metrics of MODEL on labelled DATA (as zoo train reads it; a folder's val/ when it has one).

    Under torchrun the processes share the images out; rank 0 prints the metrics of all of them."""
    from zoo._runtime.opening import open_model
    from zoo._runtime.processes import is_rank_zero
    from zoo.training.evaluation import evaluate

    loaded = open_model(model, weights=weights, registry=registry(ctx))
    result = evaluate(loaded, data, batch_size=batch_size, device=device, workers=workers, out=out,
                      progress=None if not as_json else False, fast=fast, registry=registry(ctx))
    if is_rank_zero():
        emit(result, as_json, None if as_json else format_evaluation(result))


COMMANDS = (train, eval_command)
