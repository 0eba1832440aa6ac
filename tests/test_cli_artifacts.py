"""`zoo build --weights ... -o FILE`, `zoo info FILE.safetensors`, `zoo build FILE.safetensors`: the shell's view.

Every bad input is one line on stderr, exit code 2, and no file left behind.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torchvision

from cli_helpers import one_line_error, zoo


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """torchvision's resnet18 state dict, a labels file, and a model saved from them by the CLI."""
    folder = tmp_path_factory.mktemp("cli")
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), folder / "r18.pth")
    (folder / "labels.txt").write_text("ants\nbees\n")
    result = zoo("build", "resnet18+cls2", "--freeze=layer4", "--weights", str(folder / "r18.pth"),
                 "-o", str(folder / "model.safetensors"), "--labels", str(folder / "labels.txt"))
    assert result.exit_code == 0, result.stderr
    return folder


def test_build_with_weights_saves_one_file_and_says_so(files, tmp_path):
    target = tmp_path / "saved.safetensors"
    result = zoo("build", "resnet18+cls2", "--weights", str(files / "r18.pth"), "-o", str(target), "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    report = summary["weights"]
    assert report["loaded"] == 120 and report["dropped"] == ["fc.weight", "fc.bias"] and report["fresh_heads"] == ["cls2"]
    assert summary["saved"] == str(target) and target.is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["saved.safetensors"]
    text = zoo("build", "resnet18+cls2", "-o", str(tmp_path / "again.safetensors"))
    assert text.exit_code == 0 and text.stdout.splitlines()[-1] == f"saved: {tmp_path / 'again.safetensors'}"


def test_info_prints_the_metadata_without_building(files):
    result = zoo("info", str(files / "model.safetensors"))
    assert result.exit_code == 0, result.stderr
    for expected in ("spec:         torchvision/resnet18+zoo/cls2", "freeze:       zoo/before:layer4", "labels cls2: ants, bees",
                     f"weights:      {files / 'r18.pth'} (sha256 ", "input size:   3x224x224", "torchvision/resnet18  torchvision  zoo"):
        assert expected in result.stdout
    data = json.loads(zoo("info", str(files / "model.safetensors"), "--json").stdout)
    assert data["kind"] == "artifact" and data["labels"] == {"cls2": ["ants", "bees"]}


def test_build_from_a_saved_model_rebuilds_it_with_its_freeze_policy(files):
    result = zoo("build", str(files / "model.safetensors"), "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["spec"] == "torchvision/resnet18+zoo/cls2" and summary["frozen_stages"] == ["stem", "layer1", "layer2", "layer3"]
    assert summary["weights"]["layout"] == "zoo"


def test_existing_output_needs_force(files, tmp_path):
    target = tmp_path / "m.safetensors"
    target.write_bytes(b"keep me")
    one_line_error(zoo("build", "resnet18+cls2", "-o", str(target)), "exists; use --force")
    assert target.read_bytes() == b"keep me"
    assert zoo("build", "resnet18+cls2", "-o", str(target), "--force").exit_code == 0
    assert zoo("info", str(target)).exit_code == 0


def test_missing_output_folder_is_one_line(tmp_path):
    one_line_error(zoo("build", "resnet18+cls2", "-o", str(tmp_path / "nowhere" / "m.safetensors")),
                   "folder .*nowhere does not exist")
    assert not (tmp_path / "nowhere").exists()


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in: chmod for a user; for root (whom chmod does not stop),
    a kernel file system that refuses new files, or the test is skipped."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    for folder in (Path("/sys"), Path("/proc")):
        try:
            os.close(os.open(folder / ".zoo-write-probe", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
        except OSError:
            if folder.is_dir():
                return folder
        else:
            (folder / ".zoo-write-probe").unlink()
    pytest.skip("running as root and no read-only folder is available to simulate one")


def test_read_only_output_folder_is_one_line(tmp_path):
    folder = _unwritable_folder(tmp_path)
    before = set(os.listdir(folder))
    one_line_error(zoo("build", "resnet18+cls2", "-o", str(folder / "m.safetensors")), "cannot write .*m.safetensors")
    assert set(os.listdir(folder)) == before


def test_damaged_and_foreign_files_are_one_line(files, tmp_path):
    data = (files / "model.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:4096])
    (tmp_path / "notes.safetensors").write_text("a shopping list")
    flipped = bytearray(data)
    flipped[-10] ^= 0xFF
    (tmp_path / "flipped.safetensors").write_bytes(bytes(flipped))
    one_line_error(zoo("info", str(tmp_path / "cut.safetensors")), "is truncated")
    one_line_error(zoo("build", str(tmp_path / "cut.safetensors")), "is truncated")
    one_line_error(zoo("info", str(tmp_path / "notes.safetensors")), "is not a safetensors file")
    one_line_error(zoo("build", str(tmp_path / "flipped.safetensors")), "do not match the checksum")
    one_line_error(zoo("build", "resnet18+cls2", "--weights", str(tmp_path / "cut.safetensors"),
                       "-o", str(tmp_path / "out.safetensors")), "is truncated")
    assert not (tmp_path / "out.safetensors").exists()


def _with_metadata(files: Path, target: Path, **changes) -> Path:
    from safetensors.torch import load_file, save

    from zoo._modelfile.read import read_metadata

    meta = {**read_metadata(files / "model.safetensors"), **changes}
    target.write_bytes(save(load_file(files / "model.safetensors"), metadata={"format": "pt", "zoo": json.dumps(meta)}))
    return target


def test_metadata_naming_a_missing_spec_or_plugin_is_one_line(files, tmp_path):
    spec = _with_metadata(files, tmp_path / "spec.safetensors", spec="torchvision/resnet9+zoo/cls2", plugins=[])
    one_line_error(zoo("build", str(spec)), "unknown backbone 'torchvision/resnet9'")
    plugins = [{"kind": "head", "part": "acme/cls", "plugin": "acme", "distribution": "zoo-acme", "version": "1.0"}]
    plugin = _with_metadata(files, tmp_path / "plugin.safetensors", plugins=plugins)
    one_line_error(zoo("build", str(plugin)), "needs head acme/cls from plugin acme .*pip install zoo-acme==1.0")


def test_shape_mismatch_is_one_line_with_both_shapes_and_writes_nothing(files, tmp_path):
    out = tmp_path / "m.safetensors"
    one_line_error(zoo("build", "resnet50+cls2", "--weights", str(files / "r18.pth"), "-o", str(out)),
                   r"is \(64, 64, 3, 3\) in the file and .* \(64, 64, 1, 1\) in the model")
    assert not out.exists()


def test_label_mistakes_are_one_line(files, tmp_path):
    out = tmp_path / "m.safetensors"
    one_line_error(zoo("build", "resnet18+cls3", "--labels", str(files / "labels.txt")), "--labels .* -o")
    one_line_error(zoo("build", "resnet18+cls3", "-o", str(out), "--labels", str(files / "labels.txt")),
                   "2 names given for head cls3, which takes 3")
    one_line_error(zoo("build", "resnet18+cls2", "-o", str(out), "--labels", str(tmp_path / "none.txt")),
                   "labels file .* does not exist")
    assert not out.exists()


def test_pretrained_weights_offline_is_one_line_naming_the_file(offline):
    line = one_line_error(zoo("build", "resnet18+cls2", "--weights", "imagenet"), "ZOO_OFFLINE")
    assert f"put resnet18-f37072fd.pth (from https://download.pytorch.org/models/resnet18-f37072fd.pth) in " \
           f"{offline / 'torch' / 'hub' / 'checkpoints'}/" in line
