"""`zoo bench` from the shell: a table for people, JSON for machines, one line and exit 2 for mistakes."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from zoo.cli import cli

TINY = ["--img-size", "32", "-b", "2", "--warmup", "1", "--iters", "1", "--repeats", "1"]


def fails(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zoo: error: "), result.output
    return lines[0]


@pytest.mark.parametrize(("args", "expected"), [
    (["--precision", "fp16"], "--precision fp16 needs a GPU (--device cuda)"),
    (["--precision", "fp8"], "Invalid value for '--precision'"),
    (["-b", "0"], "--batch-size must be a whole number of 1 or more, not 0"),
    (["--batch-size", "-4"], "--batch-size must be a whole number of 1 or more, not -4"),
    (["--img-size", "0"], "--img-size must be a whole number of 1 or more, not 0"),
    (["--iters", "0"], "--iters must be a whole number of 1 or more, not 0"),
    (["--repeats", "-1"], "--repeats must be a whole number of 1 or more, not -1"),
    (["--warmup", "-1"], "--warmup must be a whole number of 0 or more, not -1"),
    (["--threads", "0"], "--threads must be a whole number of 1 or more, not 0"),
    (["-b", "two"], "'two' is not a valid integer"),
    (["--device", "gpu"], "unknown device 'gpu' (did you mean cuda?); use auto, cpu, cuda, cuda:N or mps"),
    (["--mode", "eval"], "Invalid value for '--mode'"),
    (["--compile", "--warmup", "0"], "--compile needs --warmup 1 or more"),
    (["--freeze", "layer9"], "unknown freeze policy 'layer9'"),
])
def test_bad_input_is_one_line_and_exit_code_2(args, expected):
    assert expected in fails("bench", "resnet18+cls10", *args)


def test_unknown_spec_is_one_line_with_suggestions():
    assert "unknown backbone 'resnt18' (did you mean resnet18" in fails("bench", "resnt18+cls10")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown where CUDA is missing")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_cuda_is_one_line(device):
    line = fails("bench", "resnet18+cls10", "--device", device)
    assert f"--device {device}: CUDA is not available here" in line and line.endswith("use --device cpu")


def test_vs_reference_needs_a_counterpart():
    assert "no torchvision or timm counterpart" in fails("bench", "resnet18+cls10:hidden=8", "--vs-reference", *TINY)


def test_json_output_holds_runs_machine_and_matmul():
    result = CliRunner().invoke(cli, ["bench", "resnet18+cls10", "--mode", "train", "--freeze", "all", "--json", *TINY])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["freeze"] == "zoo/all" and data["settings"]["mode"] == "train"
    [run] = data["runs"]
    assert run["mode"] == "train" and run["trainable_params"] == 5130 and run["batch_size"] == 2
    assert data["matmul"]["gflops"] > 0 and data["machine"]["torch_threads"] >= 1


def test_table_output_for_people():
    result = CliRunner().invoke(cli, ["bench", "resnet18+cls10", "--mode", "infer", "--vs-reference", *TINY])
    assert result.exit_code == 0, result.output
    assert "torchvision/resnet18+zoo/cls10  (freeze: zoo/none) at 32px on cpu" in result.output
    assert "fp32 NCHW eager" in result.output
    assert "img/s" in result.output and "of matmul" in result.output
    assert "infer: zoo / torchvision = " in result.output


def test_a_file_that_is_not_an_artifact_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a model")
    line = fails("bench", str(path), *TINY)
    assert str(path) in line


def test_a_saved_model_is_benchmarked_as_saved_or_refrozen(tmp_path):
    import zoo

    path = zoo.save(zoo.build("resnet18+cls10", freeze="all"), tmp_path / "model.safetensors")
    result = CliRunner().invoke(cli, ["bench", str(path), "--mode", "train", "--json", *TINY])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["spec"] == "torchvision/resnet18+zoo/cls10" and data["freeze"] == "zoo/all"
    assert data["runs"][0]["trainable_params"] == 5130
    result = CliRunner().invoke(cli, ["bench", str(path), "--mode", "train", "--freeze", "none", "--json", *TINY])
    run = json.loads(result.output)["runs"][0]
    assert run["trainable_params"] == run["params"] == 11_181_642


def test_a_missing_model_file_is_named():
    line = fails("bench", "no-such-model.safetensors", *TINY)
    assert "model file no-such-model.safetensors does not exist" in line
