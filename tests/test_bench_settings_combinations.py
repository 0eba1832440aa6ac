"""Every combination of zoo bench's settings finishes with a result: precision x channels-last x compile,
in both modes, on the CPU at a tiny size (bf16 runs there, emulated where the CPU lacks it); fp16 on a CPU
is refused by design."""
from __future__ import annotations

import itertools
import warnings

import pytest
from torch import nn

import zoo
from zoo.errors import ZooError

TINY = {"img_size": 16, "batch_size": 2, "warmup": 1, "iters": 1, "repeats": 1}


def _small_network() -> nn.Module:
    """Convolution, BatchNorm and a linear layer: what weight folding and channels-last act on."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 4))


@pytest.mark.parametrize(("precision", "channels_last", "compile"),
                         list(itertools.product(("fp32", "bf16"), (False, True), (False, True))))
def test_every_combination_of_settings_finishes_in_both_modes(precision, channels_last, compile):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bf16 emulated on this CPU is warned about, and still runs
        report = zoo.bench(_small_network(), mode="both", precision=precision, channels_last=channels_last,
                           compile=compile, **TINY)
    assert [run.mode for run in report.runs] == ["infer", "train"]
    for run in report.runs:
        assert run.images_per_s > 0 and run.gflops_per_image > 0 and run.fraction_of_matmul > 0
        assert (run.precision, run.channels_last, run.batch_size) == (precision, channels_last, TINY["batch_size"])
    assert report.run("infer").compiled == compile  # inference keeps the form it was asked for
    assert report.matmul["dtype"] == {"fp32": "float32", "bf16": "bfloat16"}[precision]


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_fp16_on_a_cpu_is_refused_before_anything_runs(mode):
    with pytest.raises(ZooError, match="fp16 needs a GPU"):
        zoo.bench(_small_network(), mode=mode, precision="fp16", device="cpu", **TINY)


def test_fast_finishes_in_both_modes_with_the_form_it_chose():
    report = zoo.bench(_small_network(), mode="both", fast=True, **TINY)
    assert report.settings["compile"] and report.settings["channels_last"]
    assert all(run.images_per_s > 0 and run.form for run in report.runs)
