"""`zoo choose`: a thin command over `zoo.choose`; registered on the `zoo` group by `zoo.cli`."""
from __future__ import annotations

import click

from zoo.cli._context import emit, registry
from zoo.cli._format import format_choice
from zoo.errors import ZooError

_SUFFIXES = {"k": 1e3, "m": 1e6, "g": 1e9}


def _count(text: str | None) -> float | None:
    """5e6, 5000000 or 5M (k, M, G)."""
    if text is None:
        return None
    scale = _SUFFIXES.get(text[-1:].lower(), 1)
    try:
        return float(text[:-1] if scale != 1 else text) * scale
    except ValueError:
        raise ZooError(f"--max-params {text!r} is not a number (such as 5M, 25e6 or 1.5G)") from None


def _weights(values: tuple[str, ...]) -> str | dict[str, str] | None:
    """``--weights TAG`` for every backbone, ``--weights NAME=SOURCE`` for one."""
    own = {}
    for value in values:
        name, equals, source = value.partition("=")
        if not equals:
            name, source = "*", value
        if not name or not source:
            raise ZooError(f"--weights {value!r}: give a tag or file (imagenet), or BACKBONE=SOURCE")
        own[name] = source
    if not own:
        return None
    return own["*"] if list(own) == ["*"] else own


@click.command()
@click.argument("data")
@click.argument("patterns", nargs=-1, metavar="[PATTERN|FILE]...")
@click.option("--head", default=None, metavar="HEAD",
              help="The head to choose for, as zoo train takes it after the '+': kp5, agegender, cls10 "
                   "(default: cls<N> from a folder of class folders; a table needs it).")
@click.option("--val", default=None, metavar="TABLE", help="Validation table (default: fold by fold).")
@click.option("--metric", default=None, metavar="NAME",
              help="Rank by another of the head's metrics (knn_accuracy; knn_pixel_error; gender_accuracy, ...).")
@click.option("--weights", multiple=True, metavar="SOURCE|NAME=SOURCE",
              help="Weights of every backbone (default: imagenet, the plugin's default tag), or of one "
                   "(resnet50=my.pth); repeat for several.")
@click.option("--allow-random", is_flag=True, help="Measure backbones whose weights are not here with random weights.")
@click.option("--img-size", type=int, default=224, show_default=True, help="Square image size, for quality and cost.")
@click.option("-b", "--batch-size", type=int, default=32, show_default=True, help="Batch of the throughput figure.")
@click.option("--device", default=None, help="cpu, cuda, ... (as zoo bench).")
@click.option("--max-ms", type=float, default=None, help="Budget: latency at batch 1, in milliseconds.")
@click.option("--min-img-s", type=float, default=None, help="Budget: images per second at the batch.")
@click.option("--max-mb", type=float, default=None, help="Budget: peak memory in MB.")
@click.option("--max-params", default=None, metavar="N", help="Budget: parameters (25e6 or 25M).")
@click.option("--plot", default=None, metavar="FILE.png", help="Draw accuracy against throughput, the front and budgets.")
@click.option("--force", is_flag=True, help="Replace an existing --plot file.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def choose(ctx: click.Context, data: str, patterns: tuple[str, ...], weights: tuple[str, ...], max_params: str | None,
           quiet: bool, as_json: bool, **options) -> int:
    """Which backbone for DATA on this machine: each candidate's transfer quality from frozen features (a
    linear probe and k-NN), and its cost here, along the quality/throughput Pareto front.

    DATA: a folder of class folders (classification: probe and k-NN accuracy), or a CSV or JSON-lines table as
    zoo train reads it, with --head: kp<N> (mean point error in pixels at --img-size) or agegender (age error in
    years, gender accuracy). Errors rank lowest first.

    PATTERN: backbone names or wildcards ('resnet*'), presets, or saved model files (a backbone fine-tuned on a
    related task); none: a shortlist spanning sizes. Results are kept per candidate, so a re-run measures only
    what is new. Under torchrun the processes share the candidates out, each on its own device, and rank 0
    prints. Exit code 1 when no candidate is within the budget.
    """
    from zoo._runtime.processes import is_rank_zero
    from zoo.choosing import choose as run

    choice = run(data, patterns, weights=_weights(weights), max_params=_count(max_params),
                 progress=False if quiet or as_json else None, registry=registry(ctx), **options)
    if is_rank_zero():  # under torchrun only rank 0 reports
        emit(choice.as_dict(), as_json, None if as_json else format_choice(choice.as_dict()))
    return 0 if choice.best is not None else 1
