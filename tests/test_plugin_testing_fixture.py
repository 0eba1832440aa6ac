"""`zoo.testing`: the isolated registry names a plugin as an install does, and a model built in it saves."""
from __future__ import annotations

import torch

import zoo
from zoo._modelfile.read import read_metadata


def test_the_fixture_names_a_plugin_by_its_entry_point_and_distribution(zoo_registry, with_plugins):
    import zoo_example

    registry = zoo_registry(zoo_example)
    record = next(r for r in registry.plugins if r.module == "zoo_example")
    assert (record.name, record.distribution, record.version) == ("example", "zoo-example", "1.2.0")
    assert registry.backbone("tinycnn").qualified_name == "example/tinycnn"
    assert registry.backbone("example/tinycnn").name == "tinycnn"


def test_a_plugin_can_be_named_explicitly(zoo_registry, with_plugins):
    import zoo_example

    registry = zoo_registry(mine=zoo_example)
    assert registry.backbone("tinycnn").qualified_name == "mine/tinycnn"


def test_a_model_built_in_the_fixture_registry_saves_and_refreezes_there(zoo_registry, with_plugins, tmp_path):
    import zoo_example

    registry = zoo_registry(zoo_example)
    model = zoo.build("tinycnn:width=4+msp2", freeze="first:1", registry=registry)
    assert model.registry is registry
    zoo.freeze(model, "keepnorms:s2")  # an example policy, found in the model's registry
    path = zoo.save(model, tmp_path / "tiny.safetensors")
    assert {r["part"] for r in read_metadata(path)["plugins"]} >= {"example/tinycnn", "example/msp"}
    loaded = zoo.load(path, registry=registry)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), model.eval()(x))
    assert loaded.registry is registry
