"""A run survives being stopped: a checkpoint after every epoch, --resume ends where an uninterrupted run ends,
Ctrl-C exits 130 keeping the checkpoint, a loss that is not finite stops with the last good checkpoint kept, and
a checkpoint of another run is refused, naming what differs."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from drawn_data import class_folders

import zoo
from zoo.cli import cli
from zoo.errors import ZooError
from zoo.training import checkpoint as checkpoint_module

RUN = dict(epochs=3, batch_size=4, img_size=32, freeze="layer4", lr=0.05, seed=5)


def _stop_at(epoch):
    def stop(row):
        if row["epoch"] == epoch:
            raise KeyboardInterrupt
    return stop


def _metrics(history):
    return [v for row in history for k, v in sorted(row.items()) if k.startswith(("train/", "val/"))]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return class_folders(tmp_path_factory.mktemp("resume") / "shapes", per_class=4)


def test_resume_ends_with_the_result_of_an_uninterrupted_run(shapes, tmp_path):
    whole = zoo.fit("resnet18+cls2", shapes, output=tmp_path / "whole.safetensors", **RUN)
    out = tmp_path / "stopped.safetensors"
    with pytest.raises(KeyboardInterrupt, match="checkpoint of epoch 2 is kept"):
        zoo.fit("resnet18+cls2", shapes, output=out, on_epoch=_stop_at(2), **RUN)
    assert (tmp_path / "stopped.checkpoint.pt").is_file() and not out.exists()
    resumed = zoo.fit("resnet18+cls2", shapes, output=out, resume=True, **RUN)
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3]
    assert _metrics(resumed.history) == pytest.approx(_metrics(whole.history), rel=1e-5, abs=1e-6)
    assert resumed.best_epoch == whole.best_epoch
    expected, found = zoo.load(tmp_path / "whole.safetensors").state_dict(), zoo.load(out).state_dict()
    assert all(torch.allclose(expected[k].float(), found[k].float(), atol=1e-5) for k in expected)
    assert not (tmp_path / "stopped.checkpoint.pt").exists()  # a finished run leaves no checkpoint


def test_a_left_checkpoint_is_not_overwritten_by_a_fresh_run(shapes, tmp_path):
    out = tmp_path / "m.safetensors"
    with pytest.raises(KeyboardInterrupt):
        zoo.fit("resnet18+cls2", shapes, output=out, on_epoch=_stop_at(1), **RUN)
    with pytest.raises(ZooError, match="left by a stopped run; continue it with --resume"):
        zoo.fit("resnet18+cls2", shapes, output=out, **RUN)


class NanInEpoch:
    """Batches of drawn tensors whose images turn NaN from a given epoch on (a run that diverges)."""

    def __init__(self, epoch):
        self.epoch, self.seen = epoch, 0
        self.images, self.labels = torch.randn(8, 3, 32, 32), torch.tensor([0, 1] * 4)

    def __len__(self):
        return 2

    def __iter__(self):
        self.seen += 1
        images = self.images * float("nan") if self.seen >= self.epoch else self.images
        return iter([(images[:4], self.labels[:4]), (images[4:], self.labels[4:])])


def test_a_loss_that_is_not_finite_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    torch.manual_seed(0)
    val = [(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 0, 1]))]
    out = tmp_path / "m.safetensors"
    with pytest.raises(ZooError, match=r"epoch 2: the training loss is nan; stopped \(the checkpoint of epoch 1 is kept"):
        zoo.fit(zoo.build("resnet18+cls2"), NanInEpoch(2), val, epochs=3, output=out)
    assert torch.load(tmp_path / "m.checkpoint.pt", weights_only=True)["epoch"] == 1
    assert not out.exists()


def test_a_failed_checkpoint_write_keeps_the_previous_one(shapes, tmp_path, monkeypatch):
    write, calls = checkpoint_module.atomic_write_bytes, []

    def disk_full_after_one(path, data):
        calls.append(path)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write(path, data)

    monkeypatch.setattr(checkpoint_module, "atomic_write_bytes", disk_full_after_one)
    with pytest.warns(zoo.ZooWarning, match="No space left on device.*checkpoint of epoch 1 is kept"):
        with pytest.raises(KeyboardInterrupt, match="checkpoint of epoch 1 is kept"):
            zoo.fit("resnet18+cls2", shapes, output=tmp_path / "m.safetensors", on_epoch=_stop_at(2), **RUN)
    assert torch.load(tmp_path / "m.checkpoint.pt", weights_only=True)["epoch"] == 1


def _train_args(data, out, *extra):
    return ["train", "resnet18+cls2", str(data), "-o", str(out), "--epochs", "3", "-b", "4", "--img-size", "32",
            "--freeze", "layer4", "--lr", "0.05", "--seed", "5", *extra]


@pytest.fixture
def stopped(shapes, tmp_path):
    data = tmp_path / "shapes"
    import shutil

    shutil.copytree(shapes, data)
    out = tmp_path / "m.safetensors"
    with pytest.raises(KeyboardInterrupt):
        zoo.fit("resnet18+cls2", data, output=out, on_epoch=_stop_at(1), **RUN)
    return data, out


@pytest.mark.parametrize("change, differs", [
    (["--lr", "0.1"], "the setting lr (0.05 in the checkpoint, 0.1 now) differs"),
    (["--freeze", "layer3"], "the freeze (zoo/before:layer4 in the checkpoint, zoo/before:layer3 now) differs"),
    ("data", "the data (its files changed, or it is another data set) differs"),
    ("version", f"the zoo version ({zoo.__version__} in the checkpoint, 9.9 now) differs"),
])
def test_resume_refuses_the_checkpoint_of_another_run(stopped, change, differs, monkeypatch):
    data, out = stopped
    args = _train_args(data, out, "--resume")
    if change == "data":
        (data / "train" / "red" / "0.png").unlink()
    elif change == "version":
        monkeypatch.setattr("zoo.training.checkpoint.__version__", "9.9")
    else:
        args += change
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"zoo: error: cannot resume from {out.with_suffix('.checkpoint.pt')}: " \
                                    f"it belongs to another run; {differs}"


def test_resume_without_a_checkpoint_is_one_line(shapes, tmp_path):
    result = CliRunner().invoke(cli, _train_args(shapes, tmp_path / "m.safetensors", "--resume"))
    assert result.exit_code == 2
    assert result.output.strip() == f"zoo: error: nothing to resume: {tmp_path / 'm.checkpoint.pt'} does not exist"


def test_ctrl_c_exits_130_keeping_the_checkpoint_and_resume_finishes(shapes, tmp_path):
    out = tmp_path / "m.safetensors"
    zoo_command = [str(Path(sys.executable).with_name("zoo"))]
    args = _train_args(shapes, out)
    # an epoch of these tiny images can take a tenth of a second on a quiet machine: many epochs left, so the
    # signal sent as soon as the first checkpoint appears always lands before the run ends
    args[args.index("3")] = "40"
    args.append("--no-feature-cache")  # epochs on cached features would end before the signal comes
    # a shell that starts a job in the background ignores SIGINT for it (and so for us): Ctrl-C is restored
    process = subprocess.Popen(zoo_command + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    checkpoint = tmp_path / "m.checkpoint.pt"
    deadline = time.monotonic() + 600
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate()
    assert process.returncode == 130, stderr
    # after the notes said before training (random weights, the device): one line, the last
    assert stderr.strip().splitlines()[-1].startswith("zoo: interrupted; the checkpoint of epoch "), stderr
    assert all(line.startswith("zoo: note: ") for line in stderr.strip().splitlines()[:-1]), stderr
    epoch = torch.load(checkpoint, weights_only=True)["epoch"]
    assert epoch >= 1 and f"epoch {epoch} is kept in {checkpoint} (continue with --resume)" in stderr
    finished = CliRunner().invoke(cli, args + ["--resume"])
    assert finished.exit_code == 0, finished.output
    assert out.exists() and not checkpoint.exists()
