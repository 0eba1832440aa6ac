"""Weights: faithful loading of torchvision/timm state dicts, offline pretrained sources, checks and refusals."""
from __future__ import annotations

import hashlib
import io
import os
import urllib.error
import warnings
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file

import zoo
from hf_cache import hf_cache
from zoo import hookimpl
from zoo._registry.catalogue import load_catalogue
from zoo.errors import ZooError, ZooWarning
from zoo.files import torch_hub_file
from zoo.parts import BackbonePart
from zoo.testing import isolated_registry

X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def registry():
    return isolated_registry()


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """No test may reach the network: offline, with empty torch.hub and Hugging Face caches of its own.

    The guard records every attempt and the test fails on any, even one zoo's error handling turned into
    a tidy message (a test that replaces the guard with its own fake is not checked)."""
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    attempts: list[str] = []

    def no_network(url, *args, **kwargs):
        attempts.append(str(url))
        raise AssertionError("a test tried to download")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    monkeypatch.setattr("huggingface_hub.hf_hub_download", no_network)
    yield tmp_path
    assert attempts == [], f"tried to download {attempts}"


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(X)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- faithful to the originals --------------------------------------------------------------------------

def test_resnet50_with_torchvision_state_dict_gives_torchvision_logits(tmp_path, registry):
    reference = torchvision.models.resnet50(weights=None)
    torch.save(reference.state_dict(), tmp_path / "resnet50.pth")
    model = zoo.build("resnet50+cls1000", weights=str(tmp_path / "resnet50.pth"), registry=registry)
    torch.testing.assert_close(logits(model), logits(reference), atol=1e-5, rtol=0)
    report = model.weights_report
    assert (report.layout, report.loaded, report.missing, report.unexpected) == ("reference", 320, [], [])
    assert report.sha256 == sha256(tmp_path / "resnet50.pth")


def test_vgg16_with_torchvision_state_dict_gives_torchvision_logits(registry):
    reference = torchvision.models.vgg16(weights=None)
    model = zoo.build("vgg16+cls1000", weights=reference.state_dict(), registry=registry)
    torch.testing.assert_close(logits(model), logits(reference), atol=1e-5, rtol=0)
    assert model.weights_report.unexpected == [] and model.weights_report.fresh_heads == []


def test_timm_convnext_with_timm_safetensors_gives_timm_logits(tmp_path, registry):
    reference = timm.create_model("convnext_atto", pretrained=False)
    save_file(reference.state_dict(), tmp_path / "model.safetensors")  # as timm's weights on the hub
    model = zoo.build("timm/convnext_atto+cls1000", weights=str(tmp_path / "model.safetensors"), registry=registry)
    torch.testing.assert_close(logits(model), logits(reference), atol=1e-5, rtol=0)
    assert model.weights_report.layout == "reference"


def test_resnet50_cls10_takes_whole_backbone_and_keeps_a_fresh_head(tmp_path, registry):
    reference = torchvision.models.resnet50(weights=None)
    torch.save(reference.state_dict(), tmp_path / "resnet50.pth")
    torch.manual_seed(1)
    fresh = zoo.build("resnet50+cls10", registry=registry).heads["cls10"].fc.weight.clone()
    torch.manual_seed(1)
    with pytest.warns(ZooWarning, match=r"fc.weight is \(1000, 2048\) in the file .* \(10, 2048\)"):
        model = zoo.build("resnet50+cls10", weights=str(tmp_path / "resnet50.pth"), registry=registry)
    backbone = model.backbone.state_dict()
    for key, tensor in reference.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(backbone[key], tensor), key
    assert torch.equal(model.heads["cls10"].fc.weight, fresh)
    report = model.weights_report
    assert (report.loaded, report.missing, report.dropped, report.fresh_heads) == (318, [], ["fc.weight", "fc.bias"], ["cls10"])


def test_a_distilled_checkpoints_second_classifier_does_not_overwrite_the_first(tmp_path, registry):
    """DeiT's checkpoint holds ``head`` and ``head_dist``: only ``head`` is the classifier the head takes."""
    reference = timm.create_model("deit_tiny_distilled_patch16_224", num_classes=10)
    state = reference.state_dict()
    for prefix, value in (("head.", 1.0), ("head_dist.", 2.0)):
        for key in [k for k in state if k.startswith(prefix)]:
            state[key] = torch.full_like(state[key], value)
    save_file(state, tmp_path / "deit.safetensors")
    with pytest.warns(ZooWarning, match="have no place in the model and were ignored: head_dist.bias, head_dist.weight"):
        model = zoo.build("timm/deit_tiny_distilled_patch16_224+cls10", weights=str(tmp_path / "deit.safetensors"),
                          registry=registry)
    head = model.heads["cls10"].fc
    assert torch.all(head.weight == 1.0) and torch.all(head.bias == 1.0)
    assert model.weights_report.fresh_heads == []
    assert {"head_dist.weight", "head_dist.bias"} <= set(model.weights_report.unexpected)


def test_bare_backbone_state_dict_and_checkpoint_wrappers_load(tmp_path, registry):
    source = zoo.build("timm/resnet18+cls3", registry=registry)
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in source.backbone.state_dict().items()}}
    torch.save(wrapped, tmp_path / "checkpoint.pth")
    model = zoo.build("timm/resnet18+cls5", weights=str(tmp_path / "checkpoint.pth"), registry=registry)
    assert model.weights_report.layout == "backbone" and model.weights_report.fresh_heads == ["cls5"]
    for key, tensor in source.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], tensor), key


def test_missing_and_unexpected_keys_are_named(tmp_path, registry):
    state = torchvision.models.resnet18(weights=None).state_dict()
    del state["layer4.1.bn2.weight"]
    state["extra.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "partial.pt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = zoo.build("resnet18+cls1000", weights=str(tmp_path / "partial.pt"), registry=registry)
    messages = " | ".join(str(w.message) for w in caught if issubclass(w.category, ZooWarning))
    assert "layer4.1.bn2.weight" in messages and "extra.weight" in messages
    assert model.weights_report.missing == ["layer4.1.bn2.weight"]
    assert model.weights_report.unexpected == ["extra.weight"]


# --- refusals --------------------------------------------------------------------------------------------

class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_runs_code_is_refused(tmp_path, registry):
    marker = tmp_path / "pwned"
    torch.save({"conv1.weight": torch.zeros(1), "payload": _RunsCode(marker)}, tmp_path / "evil.pth")
    with pytest.raises(ZooError, match="refused"):
        zoo.build("resnet18+cls2", weights=str(tmp_path / "evil.pth"), registry=registry)
    assert not marker.exists()


def test_backbone_shape_mismatch_names_first_keys_with_both_shapes(tmp_path, registry):
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "resnet18.pth")
    with pytest.raises(ZooError, match=r"layer1.0.conv1.weight is \(64, 64, 3, 3\) in the file .*\(64, 64, 1, 1\)"):
        zoo.build("resnet50+cls10", weights=str(tmp_path / "resnet18.pth"), registry=registry)


def test_weights_fitting_nothing_are_an_error(tmp_path, registry):
    torch.save({"encoder.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    with pytest.raises(ZooError, match="fit none of"):
        zoo.build("resnet18+cls2", weights=str(tmp_path / "other.pt"), registry=registry)


@pytest.mark.parametrize("weights, message", [
    ("missing.pth", "does not exist"),
    ("nonsense", "has no weights 'nonsense'.* a file .* registry.toml"),
    ("IMAGENET1K_V9", "has no weights 'IMAGENET1K_V9'.*IMAGENET1K_V1"),
])
def test_unknown_sources_are_explained(weights, message, registry):
    with pytest.raises(ZooError, match=message):
        zoo.build("resnet18+cls2", weights=weights, registry=registry)


def test_garbage_checkpoint_is_an_error(tmp_path, registry):
    (tmp_path / "garbage.pth").write_bytes(b"this is not a checkpoint")
    with pytest.raises(ZooError, match="not a readable PyTorch checkpoint"):
        zoo.build("resnet18+cls2", weights=str(tmp_path / "garbage.pth"), registry=registry)


# --- pretrained weights through the backbone's plugin, offline -------------------------------------------

def test_torchvision_imagenet_offline_names_the_file_and_where_it_goes(offline, registry):
    folder = offline / "torch" / "hub" / "checkpoints"
    with pytest.raises(ZooError, match=rf"not on this machine and ZOO_OFFLINE is set; put resnet18-f37072fd.pth .* in {folder}/"):
        zoo.build("resnet18+cls2", weights="imagenet", registry=registry)


def test_torchvision_file_failing_its_hash_is_refused(offline, registry):
    folder = offline / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), folder / "resnet18-f37072fd.pth")
    with pytest.raises(ZooError, match="checksum mismatch .* expected f37072fd"):
        zoo.build("resnet18+cls2", weights="IMAGENET1K_V1", registry=registry)


def test_a_failed_download_names_the_file_and_leaves_nothing(offline, registry, monkeypatch):
    def unreachable(url, timeout):
        raise urllib.error.URLError("no route to host")

    monkeypatch.delenv("ZOO_OFFLINE")
    monkeypatch.setattr("urllib.request.urlopen", unreachable)
    with pytest.raises(ZooError, match="could not be fetched .*no route to host.*put resnet18-f37072fd.pth"):
        zoo.build("resnet18+cls2", weights="imagenet", registry=registry)
    assert list((offline / "torch" / "hub" / "checkpoints").iterdir()) == []


def test_a_download_failing_its_hash_is_not_kept(offline, registry, monkeypatch):
    monkeypatch.delenv("ZOO_OFFLINE")
    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout: io.BytesIO(b"not the weights"))
    with pytest.raises(ZooError, match="expected f37072fd"):
        zoo.build("resnet18+cls2", weights="imagenet", registry=registry)
    assert list((offline / "torch" / "hub" / "checkpoints").iterdir()) == []


def test_weights_from_a_url_must_be_pinned(registry):
    with pytest.raises(ZooError, match=r"must be pinned with their sha256: add \[weights.NAME\]"):
        zoo.build("resnet18+cls2", weights="https://example.invalid/w.pth", registry=registry)


class _HubPlugin:
    """A third-party style backbone; ``url`` names its weights file, None means it has no pretrained weights."""

    def __init__(self, url: str | None = None, labels: tuple[str, ...] = ()) -> None:
        self.url, self.labels = url, labels

    @hookimpl
    def zoo_backbones(self):
        pretrained = (lambda tag: torch_hub_file(f"acme/hubnet.{tag}", self.url, self.labels)) if self.url else None
        yield BackbonePart("hubnet", _resnet18, "resnet18 with weights in torch.hub's folder", namespace="acme",
                           pretrained=pretrained)


def _resnet18():
    from zoo.plugins.torchvision.resnet import ResNetBackbone

    return ResNetBackbone("resnet18")


def test_imagenet_through_a_plugin_loads_the_checked_file_and_its_labels(offline):
    reference = torchvision.models.resnet18(weights=None)
    folder = offline / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(reference.state_dict(), folder / "staging.pth")
    name = f"hubnet-{sha256(folder / 'staging.pth')[:8]}.pth"  # torch.hub's naming: the hash prefix
    (folder / "staging.pth").rename(folder / name)
    labels = tuple(f"class {i}" for i in range(1000))
    registry = isolated_registry(_HubPlugin(f"https://example.invalid/{name}", labels))
    model = zoo.build("acme/hubnet+cls1000", weights="imagenet", registry=registry)
    torch.testing.assert_close(logits(model), logits(reference), atol=1e-5, rtol=0)
    assert model.weights_report.source == "acme/hubnet.default"
    assert model.labels == {"cls1000": list(labels)}


def _serve(monkeypatch, path: Path) -> list[str]:
    """urllib answering with ``path``'s bytes, recording the URLs asked for."""
    asked: list[str] = []

    def urlopen(url, timeout):
        asked.append(url)
        return io.BytesIO(path.read_bytes())

    monkeypatch.delenv("ZOO_OFFLINE")
    monkeypatch.setattr("urllib.request.urlopen", urlopen)
    return asked


def test_a_download_that_passes_its_hash_is_kept_where_torch_hub_looks(offline, monkeypatch, tmp_path):
    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "served.pth")
    name = f"hubnet-{sha256(tmp_path / 'served.pth')[:8]}.pth"
    asked = _serve(monkeypatch, tmp_path / "served.pth")
    registry = isolated_registry(_HubPlugin(f"https://example.invalid/{name}"))
    model = zoo.build("acme/hubnet+cls1000", weights="imagenet", registry=registry)
    kept = offline / "torch" / "hub" / "checkpoints" / name
    assert asked == [f"https://example.invalid/{name}"]
    assert kept.read_bytes() == (tmp_path / "served.pth").read_bytes()
    assert [p.name for p in kept.parent.iterdir()] == [name]  # no partial file left beside it
    assert model.weights_report.path == str(kept)
    torch.testing.assert_close(logits(model), logits(reference), atol=1e-5, rtol=0)
    zoo.build("acme/hubnet+cls1000", weights="imagenet", registry=registry)
    assert len(asked) == 1  # the kept file serves the next build


def test_url_pinned_weights_are_downloaded_checked_and_kept_in_the_cache(offline, monkeypatch, tmp_path):
    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "served.pth")
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    asked = _serve(monkeypatch, tmp_path / "served.pth")
    toml = tmp_path / "registry.toml"
    toml.write_text(f'[weights.remote]\nurl = "https://example.invalid/files/r18.pth"\n'
                    f'sha256 = "{sha256(tmp_path / "served.pth")}"\n')
    registry = isolated_registry(catalogue=load_catalogue(toml))
    model = zoo.build("resnet18+cls1000", weights="remote", registry=registry)
    assert asked == ["https://example.invalid/files/r18.pth"]
    assert (tmp_path / "cache" / "weights" / "r18.pth").read_bytes() == (tmp_path / "served.pth").read_bytes()
    torch.testing.assert_close(logits(model), logits(reference), atol=1e-5, rtol=0)


def test_backbone_without_pretrained_weights_says_so():
    registry = isolated_registry(_HubPlugin())
    with pytest.raises(ZooError, match="has no pretrained weights in its plugin"):
        zoo.build("acme/hubnet+cls2", weights="imagenet", registry=registry)


def test_timm_pretrained_tag_comes_from_the_hugging_face_cache(offline, tmp_path, registry):
    reference = timm.create_model("resnet18", pretrained=False)
    save_file(reference.state_dict(), tmp_path / "w.safetensors")
    hf_cache(offline / "hf", "timm/resnet18.a1_in1k", (tmp_path / "w.safetensors").read_bytes())
    for weights in ("imagenet", "a1_in1k", "timm/resnet18.a1_in1k"):
        model = zoo.build("timm/resnet18+cls1000", weights=weights, registry=registry)
        torch.testing.assert_close(logits(model), logits(reference), atol=1e-5, rtol=0)
        assert model.weights_report.source == "timm/resnet18.a1_in1k"


def test_timm_file_not_matching_its_blob_hash_is_refused(offline, registry):
    hf_cache(offline / "hf", "timm/resnet18.a1_in1k", b"damaged", blob_name="ab" * 32)
    with pytest.raises(ZooError, match="checksum mismatch"):
        zoo.build("timm/resnet18+cls2", weights="imagenet", registry=registry)


def test_timm_offline_names_the_hub_file_and_cache(offline, registry):
    with pytest.raises(ZooError, match=rf"ZOO_OFFLINE is set; model.safetensors of timm/resnet18.a1_in1k belongs in the Hugging Face cache {offline / 'hf' / 'hub'}"):
        zoo.build("timm/resnet18+cls2", weights="imagenet", registry=registry)


# --- weights pinned in registry.toml ---------------------------------------------------------------------

def test_pinned_weights_load_and_a_wrong_checksum_is_refused(tmp_path):
    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "mine.pth")
    digest = sha256(tmp_path / "mine.pth")
    toml = tmp_path / "registry.toml"
    toml.write_text(f'[weights.mine]\npath = "mine.pth"\nsha256 = "{digest}"\n'
                    f'[weights.bad]\npath = "mine.pth"\nsha256 = "{"0" * 64}"\n')
    registry = isolated_registry(catalogue=load_catalogue(toml))
    model = zoo.build("resnet18+cls1000", weights="mine", registry=registry)
    torch.testing.assert_close(logits(model), logits(reference), atol=1e-5, rtol=0)
    assert (model.weights_report.source, model.weights_report.sha256) == ("registry:mine", digest)
    with pytest.raises(ZooError, match="registry:bad: checksum mismatch"):
        zoo.build("resnet18+cls1000", weights="bad", registry=registry)


def test_pinned_weights_need_a_full_sha256(tmp_path):
    toml = tmp_path / "registry.toml"
    toml.write_text('[weights.mine]\npath = "mine.pth"\nsha256 = "f37072fd"\n')
    with pytest.raises(ZooError, match=r"registry.toml, line 1: weights mine needs sha256"):
        load_catalogue(toml)
