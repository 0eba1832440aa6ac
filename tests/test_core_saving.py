"""Artifacts: one self-describing safetensors file; save atomically, read metadata without building, load strictly."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save

import zoo
from zoo._modelfile.read import describe, read_metadata
from zoo._registry.registry import Registry
from zoo.errors import ZooError, ZooWarning
from zoo.testing import isolated_registry

X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def registry():
    return isolated_registry()


@pytest.fixture(scope="module")
def saved(tmp_path_factory, registry) -> tuple[Path, torch.nn.Module]:
    """resnet18+cls3 with a hidden layer, frozen before layer4, trained one step so no tensor is at its default."""
    model = zoo.build("resnet18+cls3:hidden=16,dropout=0.25", freeze="layer4", registry=registry)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.1)
    model.train()
    torch.nn.functional.cross_entropy(model(X), torch.tensor([0, 2])).backward()
    optimizer.step()
    path = tmp_path_factory.mktemp("artifact") / "model.safetensors"
    zoo.save(model, path, labels=["ant", "bee", "wasp"], registry=registry)
    return path, model


def rewrite(path: Path, target: Path, **changes) -> Path:
    """A copy of an artifact with its zoo metadata changed (the tensors, and their checksum, kept)."""
    tensors = load_file(path)
    meta = {**read_metadata(path), **changes}
    target.write_bytes(save(tensors, metadata={"format": "pt", "zoo": json.dumps(meta)}))
    return target


def outputs(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(X)


def test_build_save_load_gives_identical_outputs_and_frozen_pattern(saved, registry):
    path, model = saved
    loaded = zoo.load(path, registry=registry)
    assert torch.equal(outputs(loaded), outputs(model))
    assert [(n, p.requires_grad) for n, p in loaded.named_parameters()] == \
           [(n, p.requires_grad) for n, p in model.named_parameters()]
    assert (loaded.spec, loaded.freeze_policy, loaded.frozen_stages) == (model.spec, "zoo/before:layer4", model.frozen_stages)
    loaded.train()
    assert not loaded.backbone.bn1.training and loaded.backbone.layer4.training
    assert loaded.labels == {"cls3": ["ant", "bee", "wasp"]}


def test_metadata_describes_the_model(saved):
    path, model = saved
    meta = read_metadata(path)
    assert meta["spec"] == "torchvision/resnet18+zoo/cls3:dropout=0.25,hidden=16"
    assert meta["freeze"] == "zoo/before:layer4" and meta["frozen_stages"] == ["stem", "layer1", "layer2", "layer3"]
    assert meta["heads"][0]["options"]["hidden"] == 16 and meta["heads"][0]["size"] == 3
    assert meta["labels"] == {"cls3": ["ant", "bee", "wasp"]}
    assert (meta["input_size"], meta["mean"]) == ([3, 224, 224], [0.485, 0.456, 0.406])
    assert meta["zoo_version"] == zoo.__version__ and meta["weights"] is None
    assert {(p["kind"], p["part"], p["distribution"]) for p in meta["plugins"]} == {
        ("backbone", "torchvision/resnet18", "zoo"), ("head", "zoo/cls", "zoo"), ("freeze", "zoo/before", "zoo")}
    assert meta["trainable_parameters"] == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_metadata_is_read_without_importing_torch(saved):
    code = ("import sys; from zoo._core.info import info; data = info(sys.argv[1]); "
            "assert 'torch' not in sys.modules, 'torch imported'; print(data['spec'])")
    result = subprocess.run([sys.executable, "-c", code, str(saved[0])], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "torchvision/resnet18+zoo/cls3:dropout=0.25,hidden=16"


def test_weights_source_and_sha256_are_recorded(tmp_path, registry):
    import torchvision

    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pth")
    model = zoo.build("resnet18+cls1000", weights=str(tmp_path / "r18.pth"), registry=registry)
    zoo.save(model, tmp_path / "m.safetensors", registry=registry)
    weights = read_metadata(tmp_path / "m.safetensors")["weights"]
    assert weights == {"source": str(tmp_path / "r18.pth"), "sha256": model.weights_report.sha256}


def test_artifact_as_weights_for_the_same_model_brings_its_labels(saved, registry):
    path, model = saved
    again = zoo.build("resnet18+cls3:hidden=16,dropout=0.25", weights=str(path), registry=registry)
    assert again.labels == {"cls3": ["ant", "bee", "wasp"]} and again.weights_report.fresh_heads == []
    assert torch.equal(outputs(again), outputs(model))


def test_artifact_as_weights_for_another_head_keeps_the_backbone(saved, registry):
    path, model = saved
    with pytest.warns(ZooWarning, match="do not fit head cls3"):
        other = zoo.build("resnet18+cls3:hidden=8", weights=str(path), registry=registry)
    assert other.weights_report.layout == "zoo" and other.labels == {}
    assert all(torch.equal(a, b) for a, b in zip(other.backbone.state_dict().values(), model.backbone.state_dict().values()))


# --- writing ---------------------------------------------------------------------------------------------

def test_existing_file_is_kept_without_force_and_replaced_with_it(saved, tmp_path, registry):
    path, model = saved
    target = tmp_path / "m.safetensors"
    target.write_bytes(b"precious")
    with pytest.raises(ZooError, match="exists; use --force"):
        zoo.save(model, target, registry=registry)
    assert target.read_bytes() == b"precious"
    zoo.save(model, target, force=True, registry=registry)
    assert read_metadata(target)["spec"] == model.spec


def test_interrupted_save_leaves_the_previous_file_and_no_partial_one(saved, tmp_path, registry, monkeypatch):
    path, model = saved
    target = tmp_path / "m.safetensors"
    target.write_bytes(b"previous")

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        zoo.save(model, target, force=True, registry=registry)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_saved_file_gets_the_mode_of_a_plain_new_file(saved, tmp_path, registry):
    umask = os.umask(0o027)
    try:
        zoo.save(saved[1], tmp_path / "m.safetensors", registry=registry)
    finally:
        os.umask(umask)
    assert (tmp_path / "m.safetensors").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("name, message", [
    ("missing/m.safetensors", "folder .*missing does not exist"),
    ("m.pth", "must end in .safetensors"),
])
def test_bad_output_paths_are_refused(saved, tmp_path, registry, name, message):
    with pytest.raises(ZooError, match=message):
        zoo.save(saved[1], tmp_path / name, registry=registry)
    assert list(tmp_path.iterdir()) == []


def test_labels_must_match_the_class_count(saved, tmp_path, registry):
    with pytest.raises(ZooError, match="2 names given for head cls3, which takes 3"):
        zoo.save(saved[1], tmp_path / "m.safetensors", labels=["ant", "bee"], registry=registry)


# --- reading damaged or foreign files --------------------------------------------------------------------

def test_truncated_file_is_refused(saved, tmp_path, registry):
    data = saved[0].read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ZooError, match="is truncated"):
        zoo.load(tmp_path / "cut.safetensors", registry=registry)


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_corrupted_tensor_bytes_are_refused(saved, tmp_path, registry, where):
    data = bytearray(saved[0].read_bytes())
    first = 8 + int.from_bytes(data[:8], "little")  # the tensor bytes start after the header
    data[{"first": first, "middle": (first + len(data)) // 2, "last": len(data) - 1}[where]] ^= 0xFF
    (tmp_path / "bad.safetensors").write_bytes(bytes(data))
    with pytest.raises(ZooError, match="damaged: its tensor bytes do not match"):
        zoo.load(tmp_path / "bad.safetensors", registry=registry)


@pytest.mark.parametrize("content, message", [
    (b"just some text, not tensors", "not a safetensors file"),
    (b"PK\x03\x04" + b"\x00" * 64, "looks like a PyTorch checkpoint"),
    ((20).to_bytes(8, "little") + b"{not json at all}...", "header is not JSON"),
], ids=["text", "zip", "header"])
def test_files_that_are_not_safetensors_are_refused(tmp_path, registry, content, message):
    (tmp_path / "x.safetensors").write_bytes(content)
    with pytest.raises(ZooError, match=message):
        zoo.load(tmp_path / "x.safetensors", registry=registry)


def test_plain_safetensors_without_metadata_points_to_weights(tmp_path, registry):
    (tmp_path / "plain.safetensors").write_bytes(save({"w": torch.zeros(2)}))
    with pytest.raises(ZooError, match="without zoo metadata: load it with --weights"):
        zoo.load(tmp_path / "plain.safetensors", registry=registry)


def test_metadata_naming_an_unknown_spec_is_refused(saved, tmp_path, registry):
    bad = rewrite(saved[0], tmp_path / "bad.safetensors", spec="torchvision/resnet19+zoo/cls3", plugins=[])
    with pytest.raises(ZooError, match="unknown backbone 'torchvision/resnet19'"):
        zoo.load(bad, registry=registry)


def test_metadata_naming_a_missing_plugin_names_its_distribution(saved, tmp_path, registry):
    plugins = [{"kind": "backbone", "part": "acme/supernet", "plugin": "acme", "distribution": "zoo-acme",
                "version": "2.0.1"}]
    bad = rewrite(saved[0], tmp_path / "bad.safetensors", spec="acme/supernet+zoo/cls3", plugins=plugins)
    with pytest.raises(ZooError, match=r"needs backbone acme/supernet .* pip install zoo-acme==2.0.1"):
        zoo.load(bad, registry=registry)


def test_artifact_whose_tensors_do_not_fit_its_spec_names_the_shapes(saved, tmp_path, registry):
    bad = rewrite(saved[0], tmp_path / "bad.safetensors", spec="torchvision/resnet18+zoo/cls5:dropout=0.25,hidden=16")
    with pytest.raises(ZooError, match=r"4 tensor\(s\) missing from the file: heads\.cls5\.hidden\.0\.weight, .*; 4 unexpected tensor\(s\): heads\.cls3\.fc\.bias"):
        zoo.load(bad, registry=registry)
    bad = rewrite(saved[0], tmp_path / "bad2.safetensors", spec="torchvision/resnet18+zoo/cls3:dropout=0.25,hidden=32")
    with pytest.raises(ZooError, match=r"heads.cls3.hidden.0.weight is \(16, 512\) in the file and \(32, 512\)"):
        zoo.load(bad, registry=registry)


def test_a_model_from_a_third_party_plugin_needs_that_plugin(with_plugins, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "zoo-broken")
    made_with = Registry.from_environment()
    model = zoo.build("example/tinycnn+cls2", freeze="first:1", registry=made_with)
    zoo.save(model, tmp_path / "tiny.safetensors", registry=made_with)
    assert torch.equal(outputs(zoo.load(tmp_path / "tiny.safetensors", registry=made_with)), outputs(model))
    with pytest.raises(ZooError, match=r"needs backbone example/tinycnn from plugin example \(zoo-example 1.2.0\)"):
        zoo.load(tmp_path / "tiny.safetensors", registry=isolated_registry())


def test_describe_counts_tensors_and_bytes(saved):
    data = describe(saved[0])
    assert data["kind"] == "artifact" and data["bytes"] == saved[0].stat().st_size
    assert data["tensors"] == len(load_file(saved[0]))
