"""`zoo info`: a backbone's stages, its provider and defaults; a spec's composed summary."""
from __future__ import annotations

import json

from click.testing import CliRunner

import zoo
from zoo.cli import cli


def info_json(*args):
    result = CliRunner().invoke(cli, ["info", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_backbone_info_lists_stages_in_order_with_params_channels_and_stride():
    data = info_json("resnet50")
    assert data["name"] == "torchvision/resnet50" and data["requested"] == "resnet50"
    assert data["provider"] == "zoo" and data["plugin"] == "torchvision"
    assert [s["name"] for s in data["stages"]] == ["stem", "layer1", "layer2", "layer3", "layer4"]
    assert [s["channels"] for s in data["stages"]] == [64, 256, 512, 1024, 2048]
    assert [s["stride"] for s in data["stages"]] == [4, 4, 8, 16, 32]
    assert sum(s["params"] for s in data["stages"]) == data["params"] == 23_508_032
    assert data["pooled_features"] == 2048
    assert data["input_size"] == [3, 224, 224]


def test_info_says_which_provider_a_bare_name_resolved_to():
    text = CliRunner().invoke(cli, ["info", "resnet18"]).output
    assert "'resnet18' resolves to torchvision/resnet18" in text
    assert "stem" in text and "layer4" in text and "pooled features: 512" in text


def test_timm_backbone_info_uses_timm_feature_info_and_config():
    data = info_json("timm/convnext_atto")
    assert [s["name"] for s in data["stages"]] == ["stages.0", "stages.1", "stages.2", "stages.3"]
    assert [s["stride"] for s in data["stages"]] == [4, 8, 16, 32]
    assert data["pooled_features"] == 320


def test_spec_info_is_the_build_summary():
    data = info_json("resnet18+cls10", "--freeze", "layer3")
    assert data["kind"] == "model"
    assert data["frozen_stages"] == ["stem", "layer1", "layer2"]
    assert data == {"kind": "model", **info_json("resnet18+cls10", "--freeze", "before:layer3")}


def test_head_and_policy_info_show_usage_and_options():
    head = info_json("cls")
    assert head["name"] == "zoo/cls" and {o["name"] for o in head["options"]} >= {"hidden", "dropout"}
    assert info_json("last")["usage"] == "last:N"


def test_python_api_matches_the_cli():
    assert zoo.info("resnet18")["stages"] == info_json("resnet18")["stages"]
