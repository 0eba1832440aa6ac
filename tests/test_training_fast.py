"""``zoo train --fast``: the training form is chosen by timing real steps (bf16 autocast only where native, a
compile only where the run repays it and only kept if faster), measuring changes nothing the run then does, the
model and its file come back in the usual layout and float32, a resumed run keeps its form, and ``zoo bench
--fast --mode train`` makes the same compile decision."""
from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner
from drawn_data import class_folders

import zoo
from zoo._runtime import compiled as _fast
from zoo.benchmark._workload import Workload
from zoo.cli import cli
from zoo.training import fast as fast_training

RUN = dict(epochs=2, batch_size=4, img_size=32, lr=0.05, seed=3)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return class_folders(tmp_path_factory.mktemp("fast") / "shapes", per_class=4)


def _rates(table):
    """A measure giving each form's rate from ``table`` (by form name), recording what was measured."""
    seen = []

    def measure(form):
        seen.append(form.name)
        if table[form.name] is None:
            raise RuntimeError("no bf16 kernel for this operation")
        return table[form.name]

    return measure, seen


def test_bf16_is_a_candidate_only_where_the_hardware_has_it(monkeypatch):
    model = zoo.build("resnet18+cls2")
    monkeypatch.setattr(_fast, "native_bf16", lambda device: False)
    assert [f.name for f in _fast.training_candidates(model, torch.device("cpu"))] == ["fp32+channels-last"]
    monkeypatch.setattr(_fast, "native_bf16", lambda device: True)
    assert [f.name for f in _fast.training_candidates(model, torch.device("cpu"))] == [
        "fp32+channels-last", "bf16-autocast+channels-last"]
    detection = zoo.build("resnet18+det3")
    assert not any(f.channels_last for f in _fast.training_candidates(detection, torch.device("cpu")))


def test_a_compile_is_tried_only_when_the_run_repays_it_and_kept_only_if_faster(monkeypatch):
    model, cpu = zoo.build("resnet18+cls2"), torch.device("cpu")
    monkeypatch.setattr(_fast, "native_bf16", lambda device: True)
    table = {"fp32+channels-last": 10.0, "bf16-autocast+channels-last": 20.0,
             "bf16-autocast+channels-last+compiled": 30.0}
    measure, seen = _rates(table)
    short = _fast.choose_training_form(model, cpu, measure, images_planned=20 * 599)  # 599 s at 20 img/s
    assert short.name == "bf16-autocast+channels-last" and "compiled" not in " ".join(seen)
    assert short.images_per_s == {"fp32+channels-last": 10.0, "bf16-autocast+channels-last": 20.0}
    long = _fast.choose_training_form(model, cpu, measure, images_planned=20 * 600)
    assert long.compiled and long.images_per_s["bf16-autocast+channels-last+compiled"] == 30.0
    table["bf16-autocast+channels-last+compiled"] = 19.0
    assert not _fast.choose_training_form(model, cpu, measure, images_planned=10**9).compiled
    assert not _fast.choose_training_form(model, cpu, measure, images_planned=10**9, may_compile=False).compiled


def test_a_form_that_cannot_run_is_left_out_and_processes_agree_on_summed_rates(monkeypatch):
    model, cpu = zoo.build("resnet18+cls2"), torch.device("cpu")
    monkeypatch.setattr(_fast, "native_bf16", lambda device: True)
    measure, _ = _rates({"fp32+channels-last": 10.0, "bf16-autocast+channels-last": None})
    chosen = _fast.choose_training_form(model, cpu, measure)
    assert chosen.name == "fp32+channels-last" and chosen.images_per_s == {"fp32+channels-last": 10.0}
    measure, _ = _rates({"fp32+channels-last": 10.0, "bf16-autocast+channels-last": 9.0})
    other_process = [0.0, 5.0]  # another process found bf16 faster: summed, bf16 wins on every process
    agreed = _fast.choose_training_form(model, cpu, measure,
                                        agree=lambda rates: [a + b for a, b in zip(rates, other_process)])
    assert agreed.precision == "bf16"


def test_timing_forms_leaves_weights_statistics_gradients_and_random_state_as_they_were():
    model = zoo.build("resnet18+cls2", freeze="layer3").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = (torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 0, 1]))
    random_state = torch.get_rng_state()
    trial = fast_training.FormTrial(model, batch, torch.device("cpu"))
    for form in _fast.training_candidates(model, torch.device("cpu")):
        assert trial(form).images_per_s > 0
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm running statistics included
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), random_state)
    model.eval()  # a model handed over in eval mode (the feature cache's check leaves it so) gets it back
    trial(_fast.TrainingForm())
    assert not model.training


def test_fast_training_sees_the_images_of_a_plain_run_and_saves_an_ordinary_file(shapes, tmp_path, monkeypatch):
    monkeypatch.setattr(_fast, "native_bf16", lambda device: False)  # fp32 either way: only the layout differs
    run = {**RUN, "freeze": "layer4", "lr": 0.01, "feature_cache": False, "progress": False}
    plain = zoo.fit("resnet18+cls2", shapes, **run)
    fast = zoo.fit("resnet18+cls2", shapes, fast=True, output=tmp_path / "m.safetensors", **run)
    assert fast.form["form"] == "fp32+channels-last" and fast.form["images_per_s"]["fp32+channels-last"] > 0
    # same images in the same order (drawing the trial batch moved no random state): the same losses
    losses = [row[k] for row in (plain.history + fast.history) for k in ("train/loss", "val/loss")]
    assert losses[4:] == pytest.approx(losses[:4], rel=1e-3)
    assert all(p.is_contiguous() and p.dtype == torch.float32 for p in fast.model.parameters())
    saved = zoo.load(tmp_path / "m.safetensors")
    assert saved.record["training"]["fast"] is True and saved.record["training"]["form"]["form"] == "fp32+channels-last"
    images = torch.randn(2, 3, 32, 32)
    assert torch.allclose(saved.eval()(images), fast.model.eval()(images), atol=1e-5)


def test_a_compiled_form_that_wins_trains_the_run(shapes, monkeypatch):
    monkeypatch.setattr(_fast, "COMPILE_GUESS_SECONDS", 0.0)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    timed = fast_training.FormTrial.__call__
    monkeypatch.setattr(fast_training.FormTrial, "__call__",  # the real trial, with the compiled form winning
                        lambda self, form: _fast.Measured(timed(self, form).images_per_s * (1000 if form.compiled else 1)))
    result = zoo.fit("resnet18+cls2", shapes, freeze="layer4", progress=False, fast=True, **{**RUN, "epochs": 1})
    assert result.form["compiled"] and result.form["form"].endswith("+compiled")
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
    assert math.isfinite(result.history[0]["train/loss"])
    assert all(p.is_contiguous() for p in result.model.parameters())
    torch._dynamo.reset()


def test_a_resumed_fast_run_keeps_the_form_it_began_with(shapes, tmp_path, monkeypatch):
    out = tmp_path / "m.safetensors"

    def stop(row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        zoo.fit("resnet18+cls2", shapes, output=out, fast=True, progress=False, on_epoch=stop, **RUN)
    began = torch.load(tmp_path / "m.checkpoint.pt", weights_only=False)["form"]
    monkeypatch.setattr(fast_training, "choose_training_form",
                        lambda *a, **k: pytest.fail("a resumed run measured its form again"))
    resumed = zoo.fit("resnet18+cls2", shapes, output=out, fast=True, resume=True, progress=False, **RUN)
    assert resumed.form == began and len(resumed.history) == 2


def test_zoo_train_fast_says_which_form_it_trained_in(shapes, tmp_path):
    args = ["train", "resnet18+cls2", str(shapes), "--epochs", "1", "-b", "4", "--img-size", "32", "--fast"]
    done = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "a.safetensors")])
    assert done.exit_code == 0, done.output
    line = next(line for line in done.output.splitlines() if line.startswith("trained as "))
    assert "channels-last" in line and "img/s on the first batch: fp32+channels-last" in line
    done = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "b.safetensors"), "--json"])
    assert json.loads(done.output)["form"]["channels_last"] is True


@pytest.mark.parametrize(("eager", "compiled", "kept"), [(10.0, 5.0, False), (5.0, 10.0, True)])
def test_bench_fast_keeps_a_compiled_training_step_only_if_faster(monkeypatch, eager, compiled, kept):
    rates = iter([eager, compiled])
    monkeypatch.setattr(Workload, "_rate", lambda self, warm_up, steps: next(rates))
    model = zoo.build("resnet18+cls2")
    workload = Workload(model, "train", 2, 32, torch.device("cpu"), compile=True, compile_if_faster=True)
    assert (workload.forward is not model) is kept and workload.form == "fp32"
