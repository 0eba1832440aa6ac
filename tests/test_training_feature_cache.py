"""The feature cache: frozen stages run once per image, training on their cached outputs computes what training
without the cache computes, the cache is rebuilt when what it depends on changes, and a cache that cannot be
written or would be too large leaves training as it was."""
from __future__ import annotations

import os
import shutil

import pytest
from click.testing import CliRunner
from drawn_data import class_folders

import zoo
from zoo.cli import cli

RUN = dict(epochs=2, batch_size=4, img_size=32, augment=False, seed=1, lr=0.05)


@pytest.fixture
def shapes(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    return class_folders(tmp_path / "shapes", per_class=4)


def _metrics(result):
    return [v for row in result.history for k, v in sorted(row.items()) if k.startswith(("train/", "val/"))]


@pytest.mark.parametrize("freeze", ["all", "layer4"])
def test_training_on_cached_features_computes_what_training_without_them_does(shapes, freeze):
    cached = zoo.fit("resnet18+cls2", shapes, freeze=freeze, **RUN)
    plain = zoo.fit("resnet18+cls2", shapes, freeze=freeze, feature_cache=False, **RUN)
    assert cached.feature_cache["built"] and cached.feature_cache["bytes"] > 0
    assert plain.feature_cache is None
    assert _metrics(cached) == pytest.approx(_metrics(plain), rel=1e-3, abs=1e-4)


def test_the_cache_is_reused_and_rebuilt_when_its_inputs_change(shapes, tmp_path):
    first = zoo.fit("resnet18+cls2", shapes, freeze="all", **RUN)
    again = zoo.fit("resnet18+cls2", shapes, freeze="all", **RUN)
    assert again.feature_cache == {**first.feature_cache, "built": False}
    resized = zoo.fit("resnet18+cls2", shapes, freeze="all", **{**RUN, "img_size": 40})
    shutil.copy(shapes / "train" / "red" / "0.png", shapes / "train" / "red" / "extra.png")
    more_data = zoo.fit("resnet18+cls2", shapes, freeze="all", **RUN)
    model = zoo.build("resnet18+cls2", freeze="all")
    with __import__("torch").no_grad():
        model.backbone.layer1[0].conv1.weight.mul_(0.5)
    other_weights = zoo.fit(model, shapes, **RUN)
    files = {r.feature_cache["file"] for r in (first, resized, more_data, other_weights)}
    assert len(files) == 4 and all(r.feature_cache["built"] for r in (resized, more_data, other_weights))
    assert len(os.listdir(tmp_path / "cache" / "features")) == 4


def test_no_cache_when_nothing_is_frozen_or_stages_unfreeze(shapes):
    assert zoo.fit("resnet18+cls2", shapes, **RUN).feature_cache is None
    assert zoo.fit("resnet18+cls2", shapes, freeze="all", unfreeze="2:layer4", **RUN).feature_cache is None


def test_an_unwritable_cache_dir_warns_and_trains_without(shapes, tmp_path, monkeypatch):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("ZOO_CACHE_DIR", str(blocked))
    with pytest.warns(zoo.ZooWarning, match="feature cache cannot be written .*; training without it"):
        result = zoo.fit("resnet18+cls2", shapes, freeze="all", **RUN)
    assert result.feature_cache is None and len(result.history) == 2


def test_a_cache_over_its_limit_is_not_built(shapes, tmp_path):
    with pytest.warns(zoo.ZooWarning, match="would exceed 0.0 GiB; training without it"):
        result = zoo.fit("resnet18+cls2", shapes, freeze="all", feature_cache_limit_gb=1e-6, **RUN)
    assert result.feature_cache is None and not (tmp_path / "cache" / "features").exists()


def test_zoo_train_reports_the_cache_and_no_feature_cache_turns_it_off(shapes, tmp_path):
    args = ["train", "resnet18+cls2", str(shapes), "--epochs", "1", "-b", "4", "--img-size", "32", "--freeze", "all"]
    shown = CliRunner().invoke(cli, args + ["-o", str(tmp_path / "a.safetensors")])
    assert shown.exit_code == 0, shown.output
    assert "feature cache: " in shown.output and "MiB, built)" in shown.output
    off = CliRunner().invoke(cli, args + ["-o", str(tmp_path / "b.safetensors"), "--no-feature-cache"])
    assert off.exit_code == 0 and "feature cache" not in off.output


def test_augmented_views_are_cached_drawn_the_same_each_time_and_taken_in_turn(shapes, monkeypatch):
    import torch
    from safetensors.torch import load_file

    from zoo.training import feature_cache

    spec, settings = "resnet18+cls2:dropout=0.5", {**RUN, "augment": True, "epochs": 3, "feature_cache_views": 2}
    used = []
    set_epoch = feature_cache.CachedDataset.set_epoch

    def record(self, epoch):
        set_epoch(self, epoch)
        used.append(next(i for i, view in enumerate(self.views) if view is self.features))

    monkeypatch.setattr(feature_cache.CachedDataset, "set_epoch", record)
    first = zoo.fit(spec, shapes, freeze="all", **settings)
    assert used == [0, 1, 0] and first.feature_cache["views"] == 2 and first.feature_cache["built"]
    tensors = load_file(first.feature_cache["file"])
    assert {"train", "val", "train.view0", "train.view1"} <= set(tensors)
    view0, view1, plain = tensors["train.view0"], tensors["train.view1"], tensors["train"]
    assert view0.shape == plain.shape and not torch.equal(view0, view1) and not torch.equal(view0, plain)
    # building moved no random state the run uses (dropout here): a run reusing the cache trains the same
    reused = zoo.fit(spec, shapes, freeze="all", **settings)
    assert not reused.feature_cache["built"] and _metrics(reused) == _metrics(first)
    # the views come from their own seed: building them again gives the same tensors
    os.remove(first.feature_cache["file"])
    zoo.fit(spec, shapes, freeze="all", **settings)
    assert torch.equal(load_file(first.feature_cache["file"])["train.view1"], view1)
    # no views is another cache; a different number of views another again
    other = {zoo.fit(spec, shapes, freeze="all", **{**settings, "feature_cache_views": n}).feature_cache["file"]
             for n in (0, 3)}
    assert len(other | {first.feature_cache["file"]}) == 3


def test_views_need_augmentation_a_position_head_trains_on_the_eval_transform(tmp_path, monkeypatch):
    from drawn_data import keypoint_table

    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    table = keypoint_table(tmp_path / "dots")
    result = zoo.fit("resnet18+kp1", table, val_split=0.25, freeze="all", **{**RUN, "feature_cache_views": 2})
    assert result.feature_cache is not None and result.feature_cache["views"] == 0


@pytest.mark.distributed
@pytest.mark.slow
def test_under_torchrun_one_process_builds_the_cache_and_both_train_on_it(shapes, tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    torchrun = str(Path(sys.executable).with_name("torchrun"))
    env = {**os.environ, "ZOO_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([torchrun, "--standalone", "--nproc-per-node", "2", "-m", "zoo", "train", "resnet18+cls2",
                           str(shapes), "-o", str(tmp_path / "m.safetensors"), "--freeze", "all", "--epochs", "2", "-b",
                           "2", "--img-size", "32", "--json"], capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["feature_cache"]["built"] and len(result["history"]) == 2
    assert os.listdir(tmp_path / "cache" / "features") == [Path(result["feature_cache"]["file"]).name]
    saved = zoo.load(tmp_path / "m.safetensors")
    assert saved.record["training"]["train_images"] == 8
    # validated over the cached val images once each, as one process would: the saved metrics are the model's own
    assert saved.record["metrics"]["cls2/accuracy"] == zoo.evaluate(saved, shapes)["metrics"]["cls2/accuracy"]


def _cached_and_plain(spec, data, tmp_path, **settings):
    """The same run with and without the cache, each saved: (result, saved metrics) of both."""
    runs = []
    for name, cache in (("cached", True), ("plain", False)):
        result = zoo.fit(spec, data, output=tmp_path / f"{name}.safetensors", feature_cache=cache, progress=False,
                         **settings)
        runs.append((result, zoo.load(tmp_path / f"{name}.safetensors").record["metrics"]))
    return runs


@pytest.mark.parametrize("spec, table", [("resnet18+kp1", "keypoint_table"), ("resnet18+agegender", "age_gender_table")])
@pytest.mark.parametrize("freeze", ["all", "layer4"])
def test_a_cached_run_reports_and_saves_the_metrics_of_an_uncached_one(tmp_path, monkeypatch, spec, table, freeze):
    """Key points measure in pixels of the images the model ran on: on cached tensors, still the images'."""
    import drawn_data

    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    data = getattr(drawn_data, table)(tmp_path / "data")
    (cached, cached_saved), (plain, plain_saved) = _cached_and_plain(spec, data, tmp_path, val_split=0.25,
                                                                     freeze=freeze, **RUN)
    assert cached.feature_cache is not None and plain.feature_cache is None
    assert _metrics(cached) == pytest.approx(_metrics(plain), rel=1e-3, abs=1e-4)
    assert cached.metrics == pytest.approx(plain.metrics, rel=1e-3, abs=1e-4)
    assert cached_saved == pytest.approx(plain_saved, rel=1e-3, abs=1e-4) and cached_saved == cached.metrics
    if spec.endswith("kp1"):  # a fresh head's points are off by several of the 32 pixels, not a fraction of one
        assert cached.metrics["kp1/pixel_error"] > 2


def test_detection_trains_on_whole_images_without_the_cache(tmp_path, monkeypatch):
    from drawn_data import coco

    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    boxes = coco(tmp_path / "det", 4)
    spec = "resnet18+det2:min_size=64,max_size=64,channels=32"
    settings = dict(val_split=0.5, freeze="all", epochs=1, batch_size=2, seed=1)
    (cached, cached_saved), (plain, plain_saved) = _cached_and_plain(spec, boxes, tmp_path, **settings)
    assert cached.feature_cache is None and not (tmp_path / "cache" / "features").exists()
    assert cached.metrics == plain.metrics and cached_saved == plain_saved and "det2/map" in cached.metrics
