"""`zoo export` and `zoo env`: shipping a model out, and describing the machine for a bug report.

Defined on the `zoo` group of `zoo.cli`, which imports this module once its group exists.
"""
from __future__ import annotations

from typing import Any

import click

from zoo.cli import _emit, _registry, cli
from zoo.completion import complete_spec


@cli.command()
@click.argument("model", shell_complete=complete_spec)
@click.option("-o", "--output", required=True, metavar="FILE", help="FILE.onnx (ONNX) or FILE.pt2 (torch.export).")
@click.option("--weights", default=None, metavar="SOURCE", help="Weights for a SPEC (as zoo build --weights).")
@click.option("--check", is_flag=True, help="Run the export (onnxruntime, or torch.export.load) on random batches "
                                            "and compare with the model before writing it.")
@click.option("--int8", is_flag=True, help="int8 weights and activations (PT2E, x86 quantizer), for CPUs with "
                                           "VNNI or AMX; writes a .pt2.")
@click.option("--calibrate", default=None, metavar="DIR", help="Images to calibrate --int8 on.")
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def export(ctx: click.Context, model: str, output: str, weights: str | None, check: bool, int8: bool,
           calibrate: str | None, force: bool, as_json: bool) -> None:
    """Export MODEL (a .safetensors model file, or a SPEC) to ONNX or .pt2, with a dynamic batch.

    One named output per head; labels, input size, mean and std in the file's metadata.
    """
    from zoo._export import export as run

    report = run(model, output, weights=weights, check=check, int8=int8, calibrate=calibrate, force=force,
                 registry=_registry(ctx))
    _emit(report.as_dict(), as_json, None if as_json else _format_export(report.as_dict()))


def _format_export(data: dict[str, Any]) -> str:
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
                     f"max difference {check['max_difference']:.3g} (at most {check['tolerance']:g})")
        if "max_difference_vs_fp32" in check:
            lines.append(f"          vs the fp32 model: max difference {check['max_difference_vs_fp32']:.3g}")
    return "\n".join(lines)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def env(as_json: bool) -> None:
    """Versions, CPU capability (AVX2, AVX-512, VNNI, AMX, bf16), CUDA and GPUs: for a bug report."""
    from zoo._environment import environment, format_environment

    data = environment()
    _emit(data, as_json, None if as_json else format_environment(data))
