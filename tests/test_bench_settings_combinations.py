"""Every combination of zoo bench's settings finishes with a result: precision x channels-last x compile,
in both modes, on the CPU at a tiny size (bf16 runs there, emulated where the CPU lacks it); fp16 on a CPU
is refused by design. The tests marked ``gpu`` run the combinations on the GPU (``ZOO_GPU_TEST_DEVICE``, as
tests/test_gpu.py), resnet50 in bf16 channels-last at 224 px among them."""
from __future__ import annotations

import itertools
import os
import warnings

import pytest
import torch
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


GPU = os.environ.get("ZOO_GPU_TEST_DEVICE", "cuda")
no_gpu = pytest.mark.skipif(GPU.startswith("cuda") and not torch.cuda.is_available(), reason="no CUDA device here")


@pytest.mark.parametrize(("precision", "channels_last"),
                         list(itertools.product(("fp32", "bf16", "fp16"), (False, True))))
@pytest.mark.gpu
@no_gpu
def test_every_precision_and_layout_finishes_on_the_gpu(precision, channels_last):
    if precision == "fp16" and not GPU.startswith("cuda"):
        pytest.skip("fp16 needs a GPU")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = zoo.bench("resnet18+cls10", device=GPU, mode="both", precision=precision,
                           channels_last=channels_last, **TINY)
    assert all(run.images_per_s > 0 and run.precision == precision for run in report.runs)


@pytest.mark.gpu
@no_gpu
def test_resnet50_in_bf16_channels_last_finishes_on_the_gpu():
    size, batch = (224, 64) if GPU.startswith("cuda") else (32, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = zoo.bench("resnet50+cls1000", device=GPU, mode="both", precision="bf16", channels_last=True,
                           img_size=size, batch_size=batch, warmup=2, iters=2, repeats=2, vs_reference=True)
    assert len(report.runs) == 4 and all(run.images_per_s > 0 for run in report.runs)


@pytest.mark.gpu
@no_gpu
def test_fast_with_cuda_graph_candidates_finishes_on_the_gpu():
    report = zoo.bench(_small_network(), device=GPU, mode="both", fast=True, **TINY)
    assert all(run.images_per_s > 0 and run.form for run in report.runs)
