"""CUDA graphs join the forms ``--fast`` measures: inductor's ``reduce-overhead`` and ``max-autotune`` modes
are candidates on a GPU (CUDA's availability patched here) for inference and for the training step, never on
a CPU or for a detection model, and a candidate is kept only where it measures faster; a training compile is
kept only where its measured compile time is less than the time its faster steps save."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo._runtime import compiled
from zoo.benchmark._workload import Workload

CUDA, CPU = torch.device("cuda"), torch.device("cpu")


@pytest.fixture
def one_gpu(monkeypatch):
    """torch.cuda as it answers on a machine with one bf16 GPU; nothing here runs on it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)


def _rates(table):
    """A measure reading each form's images per second from ``table``; None raises as a failed compile."""
    seen = []

    def measure(model, inputs, form):
        seen.append(form)
        if table[form] is None:
            raise RuntimeError("CUDA graphs cannot capture this")
        return table[form]

    return measure, seen


def test_cuda_graph_modes_are_candidates_on_a_gpu_only(one_gpu):
    model = zoo.build("resnet18+cls2")
    assert compiled.graph_modes(model, CUDA) == ("reduce-overhead", "max-autotune")
    assert compiled.graph_modes(model, CPU) == ()
    assert compiled.graph_modes(zoo.build("resnet18+det3"), CUDA) == ()  # images of any size: no static shapes


def test_cuda_graphs_are_no_candidate_where_cuda_is_not_there(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert compiled.graph_modes(zoo.build("resnet18+cls2"), CUDA) == ()


def test_inference_keeps_the_fastest_form_cuda_graphs_included(one_gpu):
    model = zoo.build("resnet18+cls2")
    measure, seen = _rates({"fp32": 1.0, "bf16-autocast": 2.0, "bf16-weights": 3.0,
                            "bf16-weights+reduce-overhead": 5.0, "bf16-weights+max-autotune": 4.0})
    choice = compiled.choose_form(model, None, measure=measure, device=CUDA)
    assert seen == ["fp32", "bf16-autocast", "bf16-weights", "bf16-weights+reduce-overhead",
                    "bf16-weights+max-autotune"]  # the graph modes on the fastest precision form only
    assert choice.form == "bf16-weights+reduce-overhead" and choice.images_per_s["bf16-weights+max-autotune"] == 4.0


def test_inference_keeps_no_cuda_graph_that_is_slower_or_fails(one_gpu):
    model = zoo.build("resnet18+cls2")
    measure, _ = _rates({"fp32": 1.0, "bf16-autocast": 2.0, "bf16-weights": 3.0,
                         "bf16-weights+reduce-overhead": None, "bf16-weights+max-autotune": 2.5})
    choice = compiled.choose_form(model, None, measure=measure, device=CUDA)
    assert choice.form == "bf16-weights" and choice.images_per_s["bf16-weights+reduce-overhead"] == 0.0


def test_inference_on_a_cpu_measures_no_cuda_graph(monkeypatch):
    monkeypatch.setattr(compiled, "native_bf16", lambda device: True)
    measure, seen = _rates({"fp32": 1.0, "bf16-autocast": 2.0, "bf16-weights": 3.0})
    assert compiled.choose_form(zoo.build("resnet18+cls2"), None, measure=measure, device=CPU).form == "bf16-weights"
    assert not any("+" in form for form in seen)


def test_a_single_precision_form_on_a_gpu_still_tries_cuda_graphs(one_gpu):
    measure, seen = _rates({"fp32": 1.0, "fp32+reduce-overhead": 1.5, "fp32+max-autotune": 1.2})
    choice = compiled.choose_form(zoo.build("resnet18+cls2"), None, ("fp32",), measure=measure, device=CUDA)
    assert choice.form == "fp32+reduce-overhead" and len(seen) == 3
    assert compiled.choose_form(zoo.build("resnet18+cls2"), None, ("fp32",), modes=(), device=CUDA).form == "fp32"


def test_a_cuda_graph_form_runs_and_hands_back_outputs_of_its_own():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2)).eval()
    runner = compiled.compile_for_inference(model, "fp32+reduce-overhead")  # on a CPU inductor skips the graphs
    first, second = runner(torch.ones(1, 3, 8, 8)), runner(torch.zeros(1, 3, 8, 8))
    with torch.no_grad():
        assert torch.allclose(first, model(torch.ones(1, 3, 8, 8)), atol=1e-5)
        assert torch.allclose(second, model(torch.zeros(1, 3, 8, 8)), atol=1e-5)
    with pytest.raises(ValueError, match="reduce-overhead"):
        compiled.compile_for_inference(model, "fp32+fastest")
    torch._dynamo.reset()


def _training(table):
    seen = []

    def measure(form):
        seen.append(form.name)
        return table[form.name]

    return measure, seen


def test_training_tries_cuda_graphs_on_a_gpu_and_keeps_the_largest_saving(one_gpu, monkeypatch):
    monkeypatch.setattr(compiled, "native_bf16", lambda device: False)
    model = zoo.build("resnet18+cls2")
    table = {"fp32+channels-last": compiled.Measured(100.0),
             "fp32+channels-last+compiled": compiled.Measured(150.0, 20.0),
             "fp32+channels-last+compiled+reduce-overhead": compiled.Measured(200.0, 30.0),
             "fp32+channels-last+compiled+max-autotune": compiled.Measured(210.0, 300.0)}
    measure, seen = _training(table)
    chosen = compiled.choose_training_form(model, CUDA, measure, images_planned=100 * 120)  # 120 s eagerly
    assert seen == list(table)
    # saved: 40 s - 20 s, 60 s - 30 s, 62.9 s - 300 s: the CUDA graphs of reduce-overhead repay their compile most
    assert chosen.compiled and chosen.compile_mode == "reduce-overhead"
    assert chosen.compile_seconds["fp32+channels-last+compiled+max-autotune"] == 300.0
    assert chosen.as_dict()["compile_mode"] == "reduce-overhead"


def test_training_compiles_on_a_gpu_only_when_the_saving_exceeds_the_compile(one_gpu, monkeypatch):
    monkeypatch.setattr(compiled, "native_bf16", lambda device: False)
    model = zoo.build("resnet18+cls2")
    table = {"fp32+channels-last": compiled.Measured(100.0),
             "fp32+channels-last+compiled": compiled.Measured(150.0, 50.0),
             "fp32+channels-last+compiled+reduce-overhead": compiled.Measured(160.0, 60.0),
             "fp32+channels-last+compiled+max-autotune": compiled.Measured(170.0, 90.0)}
    measure, seen = _training(table)
    chosen = compiled.choose_training_form(model, CUDA, measure, images_planned=100 * 120)
    assert not chosen.compiled and len(seen) == 4  # tried (120 s may repay a GPU compile), none repaid it
    short, seen = _training(table)
    assert not compiled.choose_training_form(model, CUDA, short, images_planned=100 * 119).compiled
    assert seen == ["fp32+channels-last"]  # 119 s eagerly: too short to try


def test_training_on_a_cpu_tries_no_cuda_graph(monkeypatch):
    monkeypatch.setattr(compiled, "native_bf16", lambda device: False)
    measure, seen = _training({"fp32+channels-last": 10.0, "fp32+channels-last+compiled": 20.0})
    chosen = compiled.choose_training_form(zoo.build("resnet18+cls2"), CPU, measure, images_planned=10 * 10**4)
    assert chosen.compiled and chosen.compile_mode is None
    assert seen == ["fp32+channels-last", "fp32+channels-last+compiled"]


def test_bench_fast_training_step_keeps_the_fastest_cuda_graph_form(monkeypatch):
    monkeypatch.setattr(compiled, "graph_modes", lambda model, device: compiled.GRAPH_MODES)
    rates = iter([10.0, 12.0, 15.0, 11.0])  # eager, compiled, reduce-overhead, max-autotune
    monkeypatch.setattr(Workload, "_rate", lambda self, warm_up, steps: next(rates))
    model = zoo.build("resnet18+cls2")
    workload = Workload(model, "train", 2, 32, CPU, compile=True, compile_if_faster=True)
    assert workload.graphs and workload.form == "fp32+reduce-overhead" and workload.forward is not model
