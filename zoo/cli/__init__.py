"""The `zoo` command: a thin layer over the Python API.

Every mistake a user can make prints one line on stderr and exits with 2; ``--json`` gives machines
the same data the tables give people.
"""
from __future__ import annotations

import os
import sys
import traceback
import warnings
from typing import Any

import click

from zoo._untrusted import one_line
from zoo._version import __version__
from zoo.cli import _cache, _choose, _deploy, _plugin, _training
from zoo.cli._completion import complete_freeze, complete_spec
from zoo.cli._context import device_option, emit as _emit, registry as _registry
from zoo.cli._format import (format_build, format_info, format_list, format_no_match, format_plugins,
                             format_predictions, format_report)
from zoo.cli._global import hoist
from zoo.errors import EveryProcessError, ZooError, ZooNotice, ZooWarning
from zoo.parts import LISTED_KINDS

MESSAGE_LIMIT = 2000  # an error or warning is one line, whatever a file or a plugin put in it

# Each command imports the part of zoo it runs when it runs, so `zoo --help` and `zoo list` start fast.
ENVIRONMENT = """\b
Environment:
  ZOO_DEVICE=NAME          the default --device (auto: CUDA, then MPS, else the CPU)
  ZOO_OFFLINE=1            download nothing; a missing weights file is an error naming where it goes
  ZOO_REGISTRY=FILE        a registry.toml overlaying the packaged one (as --registry)
  ZOO_CACHE_DIR=DIR        zoo's cache: feature caches, timm's model list, downloads (default ~/.cache/zoo;
                           see it with zoo cache list, clear it with zoo cache clear)
  ZOO_DISABLE_PLUGINS=a,b  skip these plugins (plugin or distribution names) before importing them
  ZOO_STRICT_PLUGINS=1     a plugin that fails to load is an error instead of a status
  ZOO_DEBUG=1              show the traceback behind an error (as --debug)
  TORCH_HOME, HF_HOME      where torchvision and timm weights are looked for
  _ZOO_COMPLETE=bash_source  shell completion: eval "$(_ZOO_COMPLETE=bash_source zoo)"
"""


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    kind = "note" if isinstance(category, type) and issubclass(category, ZooNotice) else "warning"
    return f"zoo: {kind}: {one_line(message, MESSAGE_LIMIT)}\n"


def _is_rank_zero() -> bool:
    from zoo._runtime.processes import is_rank_zero  # torch-free, but only needed on an error

    return is_rank_zero()


def debug_from_env() -> bool:
    return os.environ.get("ZOO_DEBUG", "").strip().lower() in ("1", "true", "yes")


class ZooGroup(click.Group):
    """Turns `ZooError` and click's usage errors into one line on stderr and exit code 2.

    With ``--debug`` or ``ZOO_DEBUG=1`` the traceback (a failing plugin's included) comes first.
    """

    debug = False
    plugin_commands: dict[str, click.Command] | None = None

    def main(self, args=None, prog_name=None, **kwargs: Any):  # type: ignore[override]
        kwargs.pop("standalone_mode", None)
        self.debug = debug_from_env()
        args = hoist(sys.argv[1:] if args is None else list(args), self._own_options)
        previous_format = warnings.formatwarning
        warnings.formatwarning = _one_line_warning
        try:
            result = super().main(args=args, prog_name=prog_name or "zoo", standalone_mode=False, **kwargs)
        except ZooError as exc:
            if isinstance(exc, EveryProcessError) and not _is_rank_zero():
                sys.exit(2)  # under torchrun every process found it: rank 0 says it once
            if self.debug:
                traceback.print_exception(exc)
            click.echo(f"zoo: error: {one_line(exc, MESSAGE_LIMIT)}", err=True)
            sys.exit(2)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"zoo: error: {exc.format_message()}", err=True)
            sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
        except click.exceptions.Abort:
            click.echo("zoo: aborted", err=True)
            sys.exit(1)
        finally:
            warnings.formatwarning = previous_format  # callers in the same process keep their format
        sys.exit(result if isinstance(result, int) else 0)

    def _own_options(self, name: str) -> set[str]:
        """The options a built-in command defines itself (a global option of the same name stays its own)."""
        command = self.commands.get(name)
        return {opt for param in (command.params if command else []) for opt in getattr(param, "opts", [])}

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """A built-in command, else one a plugin adds (plugins are loaded only for a name zoo lacks)."""
        return self.commands.get(name) or plugin_commands(self).get(name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *plugin_commands(self)})


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=ENVIRONMENT)
@click.option("--registry", "registry_file", metavar="FILE", default=None,
              help="A registry.toml overlaying the packaged one (default: $ZOO_REGISTRY).")
@click.option("--debug", is_flag=True, help="Show the traceback behind an error (also ZOO_DEBUG=1).")
@click.version_option(__version__, prog_name="zoo")
@click.pass_context
def cli(ctx: click.Context, registry_file: str | None, debug: bool) -> None:
    """Compose pretrained backbones, task heads and freeze policies: SPEC is backbone+head[+head...].

    \b
    zoo list 'resnet*'                       backbones, heads, freeze policies, presets
    zoo info resnet50                        stages, channels, strides, input size
    zoo build resnet50+cls10 --freeze=layer4 what trains and what is frozen
    zoo train resnet18+cls2 photos/ -o m.safetensors  fine-tune: class folders, table, COCO
    zoo eval m.safetensors photos/           every head's metrics on labelled data
    zoo predict model.safetensors cat.jpg    classes, key points, age + gender, boxes
    zoo bench resnet50+cls10 --mode train    images per second, peak memory, GFLOPs
    zoo choose photos/ 'resnet*' --max-ms 20 which backbone for my data, on this machine
    """
    ctx.obj = {"registry_file": registry_file}
    if debug:
        ctx.command.debug = True  # type: ignore[attr-defined]
    else:
        _hide_cpu_build_note()


def _hide_cpu_build_note() -> None:
    """torch built for CUDA logs, when it first compiles on a machine without a GPU, that it found no CUDA
    runtime: expected here, and otherwise the one stray line on stderr of every --fast command (--debug keeps it)."""
    import logging

    logging.getLogger("torch.utils.cpp_extension").addFilter(_not_cpu_build_note)  # once: a filter is kept once


def _not_cpu_build_note(record: Any) -> bool:
    return "No CUDA runtime is found" not in record.getMessage()


@click.command("list")
@click.argument("pattern", required=False)
@click.option("--kind", type=click.Choice(LISTED_KINDS), help="Only this kind of part.")
@click.option("--pretrained", is_flag=True, help="Only backbones with pretrained weights, and their tags.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_command(ctx: click.Context, pattern: str | None, kind: str | None, pretrained: bool, as_json: bool) -> None:
    """List parts whose name matches PATTERN (wildcards as in timm: 'resnet*')."""
    rows = _registry(ctx).find(pattern, kind, pretrained)
    if not rows:  # an empty list is an answer, as in ls and pip list: a note on stderr, exit 0
        click.echo(format_no_match(pattern, kind, pretrained), err=True)
    if as_json:
        _emit(rows, True)
        return
    if not rows:
        return
    click.echo(format_list(rows, pretrained))


@click.command()
@click.argument("name", shell_complete=complete_spec)
@click.option("--freeze", default=None, metavar="POLICY", help="Freeze policy, for a spec.", shell_complete=complete_freeze)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def info(ctx: click.Context, name: str, freeze: str | None, as_json: bool) -> None:
    """Describe a backbone (its stages), a head, a freeze policy, a preset or a whole SPEC."""
    from zoo._core.info import info as describe

    data = describe(name, freeze=freeze, registry=_registry(ctx))
    _emit(data, as_json, None if as_json else format_info(data))


@click.command()
@click.argument("spec", shell_complete=complete_spec)
@click.option("--freeze", default=None, metavar="POLICY", shell_complete=complete_freeze,
              help="none, all, a stage name (freeze everything before it), last:N, ...")
@click.option("--weights", default=None, metavar="SOURCE",
              help="imagenet, a tag of the backbone's plugin (IMAGENET1K_V2, ResNet50_Weights.IMAGENET1K_V2, "
                   "timm/resnet50.a1_in1k, hf-hub:timm/resnet50.a1_in1k, coco for det91), a name in registry.toml "
                   "[weights], or a .safetensors/.pth/.pt file. Offline with ZOO_OFFLINE=1.")
@click.option("-o", "--output", default=None, metavar="FILE", help="Save the model to FILE.safetensors.")
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@click.option("--labels", "labels_file", default=None, metavar="FILE", help="Class labels, one a line, saved with -o.")
@click.option("--img-size", type=click.IntRange(min=1), default=None,
              help="Square image size the model is for (default: the backbone's); saved with -o.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def build(ctx: click.Context, spec: str, freeze: str | None, weights: str | None, output: str | None,
          force: bool, labels_file: str | None, img_size: int | None, as_json: bool) -> None:
    """Build SPEC (a preset, or a saved FILE.safetensors), show what trains, and save it with -o."""
    from zoo._core.build import build as build_model
    from zoo._core.saving import check_output, load, read_labels, save
    from zoo._core.summary import model_summary
    from zoo._modelfile.read import model_file

    if labels_file and not output:
        raise click.UsageError("--labels is saved with the model: give -o FILE.safetensors too")
    if output:
        check_output(output, force)  # before the build, which may take a while
        labels = read_labels(labels_file) if labels_file else None
    path = model_file(spec, "build")
    if path is not None:  # a saved model: rebuild it, to check it or save it anew
        if freeze or weights or img_size:
            raise click.UsageError(f"{spec} brings its own freeze policy, weights and image size; "
                                   "drop --freeze, --weights and --img-size")
        model = load(path, registry=_registry(ctx))
    else:
        model = build_model(spec, freeze=freeze, weights=weights, registry=_registry(ctx), img_size=img_size)
    summary = model_summary(model)
    if model.weights_report is not None:
        summary["weights"] = model.weights_report.as_dict()
    if output:
        summary["saved"] = str(save(model, output, labels=labels, force=force, registry=_registry(ctx)))
    _emit(summary, as_json, None if as_json else format_build(summary))


@click.command()
@click.argument("model", shell_complete=complete_spec)
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--weights", default=None, metavar="SOURCE", help="Weights for a SPEC (as zoo build --weights).")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="Detection: keep boxes scoring at least this.")
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True, help="Classification: classes shown.")
@click.option("--labels", multiple=True, metavar="[HEAD=]FILE", help="Class names, one a line (default: the model file's).")
@click.option("--out", default=None, metavar="DIR", help="Write per image a PNG with the answers drawn.")
@device_option
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=8, show_default=True, help="Images per batch.")
@click.option("--fast", is_flag=True, help="Compiled, weights frozen, bf16 where native and measured faster.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def predict(ctx: click.Context, model: str, images: tuple[str, ...], weights: str | None, threshold: float,
            top_k: int, labels: tuple[str, ...], out: str | None, device: str | None, batch_size: int, fast: bool,
            as_json: bool) -> int:
    """Predict with MODEL (a .safetensors model file, or a SPEC with --weights) on each IMAGE (a file, a
    folder of images, or a quoted glob such as 'photos/*.jpg').

    Any size is resized to the model's. An image that cannot be read is skipped with a warning; the exit code
    is then 1. A named file or folder that does not exist is an error before anything runs.
    Under torchrun the processes share the images out and rank 0 prints every answer, in order.
    """
    from zoo._modelfile.read import model_file
    from zoo._runtime.opening import open_model
    from zoo._runtime.processes import is_rank_zero
    from zoo.inference.predict import expand_images, predict as run, read_labels as read_head_labels

    model_file(model, "predict")  # the model's mistakes first (a missing file, a bare weights file), then the images'
    files = expand_images(images)
    loaded = open_model(model, weights=weights, registry=_registry(ctx))
    results = run(loaded, files, threshold=threshold, top_k=top_k,
                  labels=read_head_labels(labels, loaded, _registry(ctx)),
                  out=out, device=device, batch_size=batch_size, progress=None, fast=fast)
    if is_rank_zero():
        done = [r.as_dict() for r in results]
        _emit(done, as_json, None if as_json else format_predictions(results, loaded))
    return 1 if any(r.error for r in results) else 0


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """Installed plugins, what each provides, how long it takes to load, and whether it loaded.

    With ZOO_STRICT_PLUGINS=1 every plugin is listed first, then a failed one is an error.
    """
    from zoo._registry.plugin_host import strict_from_env

    registry = _registry(ctx, strict=False)
    registry.manager.collect_commands(click.Group(), reserved=ctx.find_root().command.commands)
    records = [r.as_dict() for r in registry.plugins]
    for r in records:
        if r["imports_torch"]:
            warnings.warn(f"plugin {r['name']} ({r['distribution']}) imports torch when it loads ({r['load_ms']:.0f} ms), "
                          "so every zoo command waits for torch; import it inside the builders", ZooWarning)
    if as_json:
        _emit(records, True)
    else:
        click.echo(format_plugins(records))
    if strict_from_env():
        registry.manager.strict = True
        registry.manager.raise_failures()


@click.command()
@click.argument("target", metavar="SPEC|ARTIFACT", shell_complete=complete_spec)
@device_option
@click.option("--mode", type=click.Choice(["infer", "train", "both"]), default="both", show_default=True,
              help="Time inference, a training step (forward, backward, optimizer step), or both.")
@click.option("-b", "--batch-size", type=int, default=None, help="Images per batch (default: 32 on CPU, 256 on CUDA).")
@click.option("--img-size", type=int, default=None, help="Square input size (default: the backbone's).")
@click.option("--freeze", default=None, metavar="POLICY", help="Freeze policy: frozen stages cost no backward pass.",
              shell_complete=complete_freeze)
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default=None,
              help="fp32 (default), or bf16/fp16 autocast.")
@click.option("--channels-last/--no-channels-last", default=None, help="Memory layout of weights and input.")
@click.option("--compile/--no-compile", "compile_", default=None, help="torch.compile with inductor.")
@click.option("--fast", is_flag=True, help="What is fastest here: channels-last, compile, low precision where native.")
@click.option("--threads", type=int, default=None, help="torch.set_num_threads(N).")
@click.option("--warmup", type=int, default=None, help="Untimed steps first (default: 1 on CPU, 10 on CUDA).")
@click.option("--iters", type=int, default=None, help="Timed steps per repeat (default: 2 on CPU, 20 on CUDA).")
@click.option("--repeats", type=int, default=None, help="Repeats giving median and spread (default: 3 on CPU, 5 on CUDA).")
@click.option("--vs-reference", is_flag=True, help="Also time the model built directly with torchvision/timm.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def bench(ctx: click.Context, target: str, compile_: bool | None, as_json: bool, **options: Any) -> None:
    """Images per second, ms per batch, peak memory and GFLOPs of SPEC (or a saved model) on CPU or GPU."""
    from zoo.benchmark import bench as measure

    report = measure(target, compile=compile_, registry=_registry(ctx), **options)
    _emit(report.as_dict(), as_json, None if as_json else format_report(report))


def plugin_commands(group: ZooGroup) -> dict[str, click.Command]:
    """Commands the plugins' ``zoo_commands`` hooks add, loaded once per process; a failing hook adds none."""
    if group.plugin_commands is None:
        from zoo._registry.plugin_host import PluginHost

        host = PluginHost(strict=False)
        host.load_entry_points()
        group.plugin_commands = host.collect_commands(click.Group(), reserved=group.commands)
    return group.plugin_commands


def main() -> None:
    cli.main(prog_name="zoo")


# One way to add a command, built-in or a plugin's: a click command added to the group (a plugin's through
# its `zoo_commands` hook, see `plugin_commands`). Its text for people lives in `zoo.cli._format`.
COMMANDS = (list_command, info, build, predict, plugins, bench, *_training.COMMANDS, _deploy.export, _deploy.env,
            _choose.choose, _cache.cache, _plugin.plugin)
for _command in COMMANDS:
    cli.add_command(_command)
