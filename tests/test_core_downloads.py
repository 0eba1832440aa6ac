"""Downloads, when zoo is online: progress on stderr, and a file kept only once its sha256 is checked.

No test reaches the network: files come from file:// URLs or a replaced opener, and the socket guard
(`no_network`) must record no connection.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file

import zoo
from zoo import hookimpl
from zoo._registry.catalogue import load_catalogue
from zoo.errors import ZooError
from zoo.files import cache_dir, torch_hub_file
from zoo.parts import BackbonePart
from zoo.testing import isolated_registry


@pytest.fixture(autouse=True)
def online(no_network, monkeypatch):
    monkeypatch.delenv("ZOO_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield
    assert no_network == [], f"a test opened a connection: {no_network}"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pinned(tmp_path: Path, url: str, digest: str):
    toml = tmp_path / "registry.toml"
    toml.write_text(f'[weights.mine]\nurl = "{url}"\nsha256 = "{digest}"\n')
    return isolated_registry(catalogue=load_catalogue(toml))


def test_a_pinned_download_shows_progress_and_is_kept_once_checked(tmp_path, capsys):
    reference = torchvision.models.resnet18(weights=None)
    served = tmp_path / "served" / "resnet18-mine.pth"
    served.parent.mkdir()
    torch.save(reference.state_dict(), served)
    registry = pinned(tmp_path, served.as_uri(), sha256(served.read_bytes()))
    model = zoo.build("resnet18+cls1000", weights="mine", registry=registry)
    kept = cache_dir() / "weights" / "resnet18-mine.pth"
    assert kept.read_bytes() == served.read_bytes() and model.weights_report.path == str(kept)
    err = capsys.readouterr().err
    assert f"zoo: downloading resnet18-mine.pth ({served.stat().st_size / 1e6:.1f} MB) from {served.as_uri()}" in err
    assert "zoo: resnet18-mine.pth: 100%" in err and "checked" in err
    zoo.build("resnet18+cls1000", weights="mine", registry=registry)  # kept: not downloaded again
    assert "downloading" not in capsys.readouterr().err
    kept.unlink()


def test_a_download_failing_its_checksum_is_not_kept(tmp_path):
    served = tmp_path / "w.pth"
    served.write_bytes(b"not the weights that were pinned")
    registry = pinned(tmp_path, served.as_uri(), "0" * 64)
    with pytest.raises(ZooError, match=r"registry:mine: the download from .* has sha256 .*, expected 0000.*not kept"):
        zoo.build("resnet18+cls2", weights="mine", registry=registry)
    assert not (cache_dir() / "weights").exists() or list((cache_dir() / "weights").iterdir()) == []


class _HubPlugin:
    def __init__(self, url: str) -> None:
        self.url = url

    @hookimpl
    def zoo_backbones(self):
        yield BackbonePart("hubnet", _resnet18, "resnet18, weights kept by torch.hub", namespace="acme",
                           pretrained=lambda tag: torch_hub_file(f"acme/hubnet.{tag}", self.url))


def _resnet18():
    from zoo.plugins.torchvision.resnet import ResNetBackbone

    return ResNetBackbone("resnet18")


def test_torch_hub_weights_are_downloaded_into_torch_hubs_folder(tmp_path, monkeypatch, capsys):
    reference = torchvision.models.resnet18(weights=None)
    staging = tmp_path / "staging.pth"
    torch.save(reference.state_dict(), staging)
    name = f"hubnet-{sha256(staging.read_bytes())[:8]}.pth"
    opened = []

    def opener(url, timeout=None):  # the URL a plugin names, served from a local file
        opened.append(url)
        return open(staging, "rb")

    monkeypatch.setattr("zoo.files.open_url", opener)
    registry = isolated_registry(_HubPlugin(f"https://example.invalid/{name}"))
    model = zoo.build("acme/hubnet+cls1000", weights="imagenet", registry=registry)
    assert opened == [f"https://example.invalid/{name}"]
    assert (tmp_path / "torch" / "hub" / "checkpoints" / name).read_bytes() == staging.read_bytes()
    assert model.weights_report.missing == [] and f"downloading {name}" in capsys.readouterr().err


def _hub_metadata(monkeypatch, data: bytes, served: Path, etag: str | None = None):
    """What the hub answers for a file: its sha256 as the etag, the commit, and where to download it."""
    from huggingface_hub.file_download import HfFileMetadata

    commit = "89abcdef0123456789abcdef0123456789abcdef"
    answer = HfFileMetadata(commit_hash=commit, etag=etag or sha256(data), location=served.as_uri(), size=len(data),
                            xet_file_data=None)
    monkeypatch.setattr("huggingface_hub.get_hf_file_metadata", lambda url, **kwargs: answer)
    return commit


def test_timm_weights_download_into_the_hugging_face_cache_and_are_found_offline(tmp_path, monkeypatch):
    reference = timm.create_model("resnet18", pretrained=False)
    served = tmp_path / "model.safetensors"
    save_file(reference.state_dict(), served)
    data = served.read_bytes()
    commit = _hub_metadata(monkeypatch, data, served)
    model = zoo.build("timm/resnet18+cls1000", weights="a1_in1k", registry=isolated_registry())
    folder = tmp_path / "hf" / "hub" / "models--timm--resnet18.a1_in1k"
    assert (folder / "blobs" / sha256(data)).read_bytes() == data
    assert (folder / "snapshots" / commit / "model.safetensors").resolve() == folder / "blobs" / sha256(data)
    assert (folder / "refs" / "main").read_text() == commit
    assert model.weights_report.sha256 == sha256(data)
    monkeypatch.setenv("ZOO_OFFLINE", "1")  # found in the cache from now on
    again = zoo.build("timm/resnet18+cls1000", weights="timm/resnet18.a1_in1k", registry=isolated_registry())
    assert again.weights_report.path == model.weights_report.path


def test_a_hub_download_not_matching_its_sha256_is_not_kept(tmp_path, monkeypatch):
    served = tmp_path / "model.safetensors"
    served.write_bytes(b"damaged on the way")
    _hub_metadata(monkeypatch, served.read_bytes(), served, etag="ab" * 32)
    with pytest.raises(ZooError, match="expected abababab.*not kept"):
        zoo.build("timm/resnet18+cls2", weights="a1_in1k", registry=isolated_registry())
    blobs = tmp_path / "hf" / "hub" / "models--timm--resnet18.a1_in1k" / "blobs"
    assert not blobs.exists() or list(blobs.iterdir()) == []
