"""Backbone options: listed with their choices, accepted by `zoo info`, recorded with their defaults in saved
files, and a file that no longer fits names the plugin version it was made with."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save

import zoo
from zoo._modelfile.read import read_metadata
from zoo._registry.registry import Registry
from zoo.errors import ZooError
from zoo.parts import Option

ENV = {"ZOO_DISABLE_PLUGINS": "zoo-broken"}


@pytest.fixture
def registry(with_plugins, monkeypatch):
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "zoo-broken")
    return Registry.from_environment()


def rewrite(path, target, **changes):
    meta = {**read_metadata(path), **changes}
    target.write_bytes(save(load_file(path), metadata={"format": "pt", "zoo": json.dumps(meta)}))
    return target


def test_an_option_with_choices_refuses_other_values():
    option = Option("act", str, "relu", choices=("relu", "gelu"))
    assert option.convert("gelu", "mynet") == "gelu"
    with pytest.raises(ZooError, match=r"mynet: option act=tanh is not one of relu, gelu"):
        option.convert("tanh", "mynet")
    with pytest.raises(ValueError, match="default 'tanh' is not one of its choices"):
        Option("act", str, "tanh", choices=("relu", "gelu"))


def test_zoo_list_and_info_show_backbone_options_with_choices(plugin_site, run_zoo):
    listed = json.loads(run_zoo("list", "tinycnn", "--json", env=ENV, site=plugin_site).stdout)
    assert listed[0]["usage"] == "tinycnn[:width=,act=relu|gelu]"
    shown = run_zoo("info", "tinycnn", env=ENV, site=plugin_site)
    assert "act=str (default relu, one of relu|gelu)" in shown.stdout, shown.stderr
    data = json.loads(run_zoo("info", "tinycnn:width=4", "--json", env=ENV, site=plugin_site).stdout)
    assert data["resolved_options"] == {"width": 4, "act": "relu"}
    assert [s["channels"] for s in data["stages"]] == [4, 8, 16]
    wrong = run_zoo("info", "tinycnn:act=tanh", env=ENV, site=plugin_site)
    assert wrong.returncode == 2 and "not one of relu, gelu" in wrong.stderr


def test_a_saved_file_records_backbone_options_with_defaults_and_loads_with_them(registry, tmp_path):
    model = zoo.build("tinycnn:width=4+cls2", registry=registry)
    path = tmp_path / "tiny.safetensors"
    zoo.save(model, path, registry=registry)
    assert read_metadata(path)["backbone_options"] == {"width": 4, "act": "relu"}
    # the spec alone says nothing about width: the recorded options still rebuild the same model
    bare = rewrite(path, tmp_path / "bare.safetensors", spec="example/tinycnn+zoo/cls2")
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(zoo.load(bare, registry=registry).eval()(x), model.eval()(x))


def test_a_file_that_does_not_fit_names_the_plugin_version_it_was_made_with(registry, tmp_path):
    model = zoo.build("tinycnn:width=4+cls2", registry=registry)
    path = tmp_path / "tiny.safetensors"
    zoo.save(model, path, registry=registry)
    meta = read_metadata(path)
    plugins = [{**r, "version": "1.1.0"} if r["distribution"] == "zoo-example" else r for r in meta["plugins"]]
    old = {k: v for k, v in meta.items() if k != "backbone_options"}  # as saved before options were recorded
    older = tmp_path / "older.safetensors"
    older.write_bytes(save(load_file(path), metadata={"format": "pt", "zoo": json.dumps(
        {**old, "spec": "example/tinycnn+zoo/cls2", "plugins": plugins})}))
    with pytest.raises(ZooError, match=r"does not fit .*\(made with zoo-example 1.1.0, installed 1.2.0\)"):
        zoo.load(older, registry=registry)
