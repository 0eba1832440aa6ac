"""The device every command runs on: auto takes CUDA, then MPS, else the CPU; names are checked up front."""
from __future__ import annotations

import pytest
import torch

from zoo._runtime.devices import choose_device, describe
from zoo.errors import ZooError


@pytest.fixture
def gpus(monkeypatch):
    """Pretend this machine has ``count`` working CUDA devices."""
    def have(count: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Test GPU")
    return have


@pytest.fixture(autouse=True)
def no_device_variables(monkeypatch):
    for name in ("ZOO_DEVICE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)


def test_auto_is_the_cpu_where_there_is_no_gpu(gpus, monkeypatch):
    gpus(0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert choose_device(None) == torch.device("cpu")
    assert choose_device("auto") == torch.device("cpu")


def test_auto_takes_cuda_when_it_works(gpus):
    gpus(2)
    assert choose_device(None) == torch.device("cuda", 0)
    assert describe(choose_device("auto")) == "cuda:0 (Test GPU)"


def test_auto_takes_mps_before_the_cpu(gpus, monkeypatch):
    gpus(0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert choose_device(None) == torch.device("mps")


def test_under_torchrun_each_process_takes_its_local_rank_gpu(gpus, monkeypatch):
    gpus(4)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert choose_device("auto") == torch.device("cuda", 3)
    assert choose_device("cuda") == torch.device("cuda", 3)
    assert choose_device("cuda:1") == torch.device("cuda", 1)  # a named GPU is kept
    monkeypatch.setenv("LOCAL_RANK", "4")
    with pytest.raises(ZooError, match="LOCAL_RANK 4 but there are 4 CUDA device"):
        choose_device("cuda")


def test_the_environment_variable_sets_the_default_and_the_option_wins(gpus, monkeypatch):
    gpus(1)
    monkeypatch.setenv("ZOO_DEVICE", "cpu")
    assert choose_device(None) == torch.device("cpu")
    assert choose_device("cuda") == torch.device("cuda", 0)
    monkeypatch.setenv("ZOO_DEVICE", "gpu")
    with pytest.raises(ZooError, match=r"^ZOO_DEVICE=gpu: unknown device 'gpu' \(did you mean cuda\?\)"):
        choose_device(None)


def test_cuda_where_there_is_none_is_one_line(gpus):
    gpus(0)
    with pytest.raises(ZooError, match="--device cuda: CUDA is not available here") as caught:
        choose_device("cuda")
    assert "\n" not in str(caught.value)


def test_a_gpu_index_past_the_last_is_refused(gpus):
    gpus(2)
    with pytest.raises(ZooError, match="there are 2 CUDA device"):
        choose_device("cuda:2")


@pytest.mark.parametrize("typo, hint", [("gpu", "cuda"), ("cdua", "cuda"), ("cpuu", "cpu"), ("Auto", None)])
def test_a_misspelt_device_gets_a_suggestion(typo, hint, gpus):
    gpus(0)
    if hint is None:
        assert choose_device(typo) == torch.device("cpu")  # auto in any case
        return
    with pytest.raises(ZooError, match=f"did you mean {hint}"):
        choose_device(typo)


def test_a_device_kind_zoo_does_not_run_on_is_named(gpus):
    gpus(0)
    with pytest.raises(ZooError, match="zoo runs on cpu, cuda or mps, not meta"):
        choose_device("meta")
