"""One answer to "a saved model file or a spec?" for every command, with advice that fits the command."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from test_cli_bench import fails as _fails

from zoo._modelfile.read import model_file
from zoo.errors import ZooError

COMMANDS = {  # each command's arguments after MODEL, and the advice it gives for a file of plain weights
    "build": ([], "zoo build SPEC --weights"),
    "info": ([], "zoo build SPEC --weights"),
    "predict": (["image.png"], "zoo predict SPEC --weights"),
    "bench": (["--img-size", "32", "-b", "1"], "-o model.safetensors"),
    "export": (["-o", "never-written.onnx"], "zoo export SPEC --weights"),
}


@pytest.fixture
def weights_files(tmp_path: Path) -> dict[str, Path]:
    """A PyTorch checkpoint and a safetensors file without zoo metadata: weights, not saved models."""
    pth, plain = tmp_path / "r18.pth", tmp_path / "plain.safetensors"
    torch.save({"conv1.weight": torch.zeros(2, 3, 1, 1)}, pth)
    save_file({"conv1.weight": torch.zeros(2, 3, 1, 1)}, plain)
    return {"pth": pth, "plain": plain}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("kind", ["pth", "plain"])
def test_a_weights_file_gets_advice_for_its_command(command, kind, weights_files):
    after, advice = COMMANDS[command]
    line = _fails(command, str(weights_files[kind]), *after)
    assert "not a saved zoo model" in line or "without zoo metadata" in line
    assert advice in line
    if command == "bench":  # zoo bench has no --weights: it must not be told to pass one
        assert f"zoo bench {weights_files[kind]} --weights" not in line and "pass it with --weights" not in line


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_missing_model_file_reads_the_same_for_every_command(command, tmp_path):
    after, _ = COMMANDS[command]
    missing = tmp_path / "gone.safetensors"
    line = _fails(command, str(missing), *after)
    assert line == (f"zoo: error: model file {missing} does not exist; give a saved model "
                    "(zoo build SPEC -o FILE.safetensors) or a spec such as resnet50+cls10")


def test_a_spec_or_preset_is_not_a_file():
    assert model_file("resnet18+cls2", "build") is None
    assert model_file("timm/resnet18+cls2:dropout=0.5", "bench") is None
    assert model_file("resnet18-feature-extractor", "info") is None


def test_a_folder_named_like_a_model_is_refused(tmp_path):
    folder = tmp_path / "m.safetensors"
    folder.mkdir()
    with pytest.raises(ZooError, match="is a folder"):
        model_file(folder, "predict")


def test_a_saved_model_is_a_file(tmp_path):
    import zoo

    path = zoo.save(zoo.build("resnet18+cls2"), tmp_path / "m.safetensors")
    assert model_file(str(path), "bench") == path
