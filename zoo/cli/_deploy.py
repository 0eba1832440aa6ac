"""`zoo export` and `zoo env`: shipping a model out, and describing the machine for a bug report.

Registered on the `zoo` group by `zoo.cli`; each command imports what it runs when it runs.
"""
from __future__ import annotations

import click

from zoo.cli._completion import complete_spec
from zoo.cli._context import device_option, emit, registry
from zoo.cli._format import format_environment, format_export


@click.command()
@click.argument("model", shell_complete=complete_spec)
@click.option("-o", "--output", required=True, metavar="FILE", help="FILE.onnx (ONNX) or FILE.pt2 (torch.export).")
@click.option("--weights", default=None, metavar="SOURCE", help="Weights for a SPEC (as zoo build --weights).")
@click.option("--check", is_flag=True, help="Run the export (onnxruntime, or torch.export.load) on random batches "
                                            "and compare with the model before writing it.")
@click.option("--int8", is_flag=True, help="int8 weights and activations (PT2E, x86 quantizer), for CPUs with "
                                           "VNNI or AMX; writes a .pt2.")
@click.option("--calibrate", default=None, metavar="DIR", help="Images to calibrate --int8 on.")
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@device_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def export(ctx: click.Context, model: str, output: str, weights: str | None, check: bool, int8: bool,
           calibrate: str | None, force: bool, device: str | None, as_json: bool) -> None:
    """Export MODEL (a .safetensors model file, or a SPEC) to ONNX or .pt2, with a dynamic batch.

    One named output per head; labels, input size, mean and std in the file's metadata.
    """
    from zoo.inference.export import export as run

    report = run(model, output, weights=weights, check=check, int8=int8, calibrate=calibrate, force=force,
                 device=device, registry=registry(ctx))
    emit(report.as_dict(), as_json, None if as_json else format_export(report.as_dict()))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def env(as_json: bool) -> None:
    """Versions, CPU capability (AVX2, AVX-512, VNNI, AMX, bf16), CUDA and GPUs: for a bug report."""
    from zoo._runtime.environment import environment

    data = environment()
    emit(data, as_json, None if as_json else format_environment(data))
