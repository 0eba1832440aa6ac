"""The fast inference path (`zoo._runtime.compiled`): inductor's freezing really applied, bf16 chosen by measuring,
and `zoo predict --fast` giving the answers of the eager fp32 model."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageDraw
from torch import nn
from torch._dynamo.utils import counters

import zoo
from zoo._runtime import compiled as fast
from zoo.benchmark._workload import Workload
from zoo.cli import cli


def conv_bn() -> nn.Module:
    """The smallest model where freezing shows: a BatchNorm that inductor folds into the convolution."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 2))
    model[1].running_mean.uniform_(-1, 1)
    model[1].running_var.uniform_(0.5, 2)
    return model.eval()


@pytest.fixture
def fresh_counters():
    torch._dynamo.reset()
    counters.clear()
    yield counters
    torch._dynamo.reset()


def test_compiled_inference_folds_batchnorm_into_the_convolution(fresh_counters):
    model, x = conv_bn(), torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected = model(x)
    assert not torch._inductor.config.freezing
    output = zoo.compile_for_inference(model)(x)  # the public name of the path
    assert fresh_counters["inductor"]["binary_folding_conv"] >= 1  # only freezing's passes fold BatchNorm into weights
    assert not torch._inductor.config.freezing  # torch's global config is as it was
    torch.testing.assert_close(output, expected, rtol=1e-4, atol=1e-5)


def test_the_benchmarks_compiled_inference_is_frozen(fresh_counters):
    workload = Workload(conv_bn(), "infer", 2, 8, torch.device("cpu"), compile=True)
    workload.step()
    assert fresh_counters["inductor"]["binary_folding_conv"] >= 1
    assert workload.form == "fp32"
    assert not torch._inductor.config.freezing


def test_training_is_compiled_without_freezing(fresh_counters):
    workload = Workload(conv_bn(), "train", 2, 8, torch.device("cpu"), compile=True)
    before = [p.detach().clone() for p in workload.parameters]
    workload.step()
    assert fresh_counters["inductor"]["binary_folding_conv"] == 0
    assert any(not torch.equal(a, p) for a, p in zip(before, workload.parameters))  # the step trained


def test_without_native_bf16_fp32_is_kept_without_measuring(monkeypatch):
    monkeypatch.setattr("zoo._runtime.machine.native_bf16_cpu", lambda: False)

    def never(*args):
        raise AssertionError("nothing to measure with one candidate")

    choice = fast.choose_form(conv_bn(), torch.randn(2, 3, 8, 8), measure=never)
    assert (choice.form, choice.measured) == ("fp32", False)


def test_with_native_bf16_the_faster_form_is_kept(monkeypatch):
    monkeypatch.setattr("zoo._runtime.machine.native_bf16_cpu", lambda: True)
    rates = {"fp32": 30.0, "bf16-autocast": 170.0, "bf16-weights": 172.0}
    model = conv_bn()
    assert fast.candidate_forms(model, torch.device("cpu")) == fast.FORMS
    choice = fast.choose_form(model, torch.randn(2, 3, 8, 8), measure=lambda m, x, form: rates[form])
    assert (choice.form, choice.images_per_s) == ("bf16-weights", rates)
    rates["bf16-autocast"] = 180.0
    assert fast.choose_form(model, torch.randn(2, 3, 8, 8), measure=lambda m, x, form: rates[form]).form \
        == "bf16-autocast"


def test_a_bf16_copy_of_the_weights_answers_in_float32_and_leaves_the_model(fresh_counters):
    model, x = conv_bn(), torch.randn(2, 3, 8, 8)
    output = fast.compile_for_inference(model, "bf16-weights")(x)
    assert output.dtype == torch.float32
    assert next(model.parameters()).dtype == torch.float32
    with torch.no_grad():
        torch.testing.assert_close(output, model(x), rtol=0.05, atol=0.05)


def test_predict_fast_agrees_with_eager_fp32(tmp_path, fresh_counters, monkeypatch):
    monkeypatch.setattr("zoo._runtime.machine.native_bf16_cpu", lambda: False)  # the fp32 form on every CPU: exact answers
    torch.manual_seed(0)
    path = zoo.save(zoo.build("resnet18+cls3"), tmp_path / "cls.safetensors", labels=["ant", "bee", "cat"])
    images = []
    for i, colour in enumerate([(40, 90, 160), (200, 30, 30), (20, 160, 60)]):
        image = Image.new("RGB", (48 + 8 * i, 40), colour)
        ImageDraw.Draw(image).ellipse((8, 6, 30, 30), fill=(240, 200, 30))
        images.append(tmp_path / f"{i}.png")
        image.save(images[-1])
    answers = {}
    for flag in ([], ["--fast"]):
        result = CliRunner().invoke(cli, ["predict", str(path), *map(str, images), "--top-k", "3", "--json", *flag])
        assert result.exit_code == 0, result.output
        answers[bool(flag)] = [a["outputs"]["cls3"]["top_k"] for a in json.loads(result.stdout)]
    assert fresh_counters["inductor"]["binary_folding_conv"] >= 1  # --fast went through the frozen compiled path
    eager, quick = answers[False], answers[True]
    assert [a[0]["index"] for a in quick] == [a[0]["index"] for a in eager]
    difference = max(abs(q["probability"] - e["probability"])
                     for qs, es in zip(quick, eager) for q, e in zip(sorted(qs, key=lambda t: t["index"]),
                                                                     sorted(es, key=lambda t: t["index"])))
    assert difference < 1e-4
