"""A backbone written with its weights' tag, ``timm/resnet18.a1_in1k+cls1000``, is that backbone with those
weights, as ``timm.create_model("resnet18.a1_in1k", pretrained=True)`` reads the name; the saved file records it."""
from __future__ import annotations

import pytest
import timm
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

import zoo
from hf_cache import hf_cache
from zoo._modelfile.read import read_header, zoo_metadata
from zoo.cli import cli
from zoo.errors import ZooError
from zoo.testing import isolated_registry

X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def registry():
    return isolated_registry()


@pytest.fixture(autouse=True)
def offline(no_network, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    yield tmp_path
    assert no_network == []


@pytest.fixture
def resnet18_a1(offline, tmp_path) -> torch.nn.Module:
    """timm's resnet18 with weights of its own, cached where timm/resnet18.a1_in1k is looked for."""
    torch.manual_seed(1)
    reference = timm.create_model("resnet18", pretrained=False).eval()
    save_file(reference.state_dict(), tmp_path / "w.safetensors")
    hf_cache(offline / "hf", "timm/resnet18.a1_in1k", (tmp_path / "w.safetensors").read_bytes())
    return reference


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(X)


def test_a_timm_name_with_its_tag_builds_with_those_weights(resnet18_a1, registry):
    model = zoo.build("timm/resnet18.a1_in1k+cls1000", registry=registry)
    torch.testing.assert_close(logits(model), logits(resnet18_a1), atol=1e-5, rtol=0)
    assert model.weights_report.source == "timm/resnet18.a1_in1k"
    assert model.spec == "timm/resnet18.a1_in1k+zoo/cls1000"


def test_a_bare_name_with_a_timm_tag_goes_to_timm(resnet18_a1, registry):
    """torchvision is preferred for resnet18, but only timm knows the tag a1_in1k."""
    model = zoo.build("resnet18.a1_in1k+cls1000", registry=registry)
    assert model.recipe.backbone.qualified_name == "timm/resnet18"
    torch.testing.assert_close(logits(model), logits(resnet18_a1), atol=1e-5, rtol=0)


def test_the_saved_file_records_the_tag_and_loads_offline(resnet18_a1, registry, tmp_path):
    model = zoo.build("timm/resnet18.a1_in1k+cls1000", registry=registry)
    path = zoo.save(model, tmp_path / "tagged.safetensors", registry=registry)
    meta = zoo_metadata(read_header(path), path)
    assert meta["spec"] == "timm/resnet18.a1_in1k+zoo/cls1000"
    assert meta["weights"]["source"] == "timm/resnet18.a1_in1k"
    torch.testing.assert_close(logits(zoo.load(path, registry=registry)), logits(resnet18_a1), atol=1e-5, rtol=0)


def test_a_missing_tagged_file_says_where_it_is_looked_for(offline, registry):
    with pytest.raises(ZooError, match=r"^weights timm/resnet18.a1_in1k are not on this machine and ZOO_OFFLINE is "
                                       rf"set; model.safetensors of timm/resnet18.a1_in1k belongs in the Hugging "
                                       rf"Face cache {offline / 'hf' / 'hub'}"):
        zoo.build("timm/resnet18.a1_in1k+cls2", registry=registry)


def test_an_unknown_tag_offers_close_ones(registry):
    with pytest.raises(ZooError, match=r"^timm/resnet18 has no pretrained tag 'a1_in1kk' \(did you mean a1_in1k"):
        zoo.build("timm/resnet18.a1_in1kk+cls2", registry=registry)


def test_other_weights_beside_a_tagged_spec_are_refused(registry):
    with pytest.raises(ZooError, match=r"timm/resnet18.a1_in1k names its weights \(a1_in1k\) and --weights gives "
                                       r"a2_in1k"):
        zoo.build("timm/resnet18.a1_in1k+cls2", weights="a2_in1k", registry=registry)


def test_cli_info_resolves_a_name_with_its_tag():
    result = CliRunner().invoke(cli, ["info", "resnet18.a1_in1k"])
    assert result.exit_code == 0, result.output
    assert "'resnet18.a1_in1k' resolves to timm/resnet18 with its pretrained weights a1_in1k" in result.output
    assert "layer4" in result.output
