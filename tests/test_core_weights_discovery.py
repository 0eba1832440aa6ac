"""Which weights a backbone has: `zoo info` lists them, `zoo list --pretrained` finds backbones with them."""
from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from zoo.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_info_lists_torchvision_weights_with_meta_and_whether_they_are_here(no_network):
    data = json.loads(run("info", "resnet50", "--json").output)
    weights = {row["tag"]: row for row in data["weights"]}
    assert list(weights) == ["IMAGENET1K_V2", "IMAGENET1K_V1", "coco"]
    v2 = weights["IMAGENET1K_V2"]
    assert (v2["default"], v2["top1"], v2["size_mb"], v2["classes"]) == (True, 80.858, 97.79, 1000)
    assert v2["source"] == "torchvision/ResNet50_Weights.IMAGENET1K_V2" and v2["on_this_machine"] is False
    assert weights["coco"]["source"] == "torchvision/FasterRCNN_ResNet50_FPN_Weights.COCO_V1"
    assert weights["coco"]["classes"] == 91 and no_network == []


def test_info_says_a_weights_file_is_on_this_machine(no_network, tmp_path):
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "resnet18-f37072fd.pth").write_bytes(b"placed here")
    result = run("info", "resnet18")
    row = next(line for line in result.output.splitlines() if line.startswith("IMAGENET1K_V1"))
    assert row.split()[-1] == "yes" and "69.76" in row


def test_info_lists_timm_tags_with_license_from_its_pretrained_config(no_network):
    data = json.loads(run("info", "timm/resnet18", "--json").output)
    weights = {row["tag"]: row for row in data["weights"]}
    assert data["weights"][0]["tag"] == "a1_in1k" and data["weights"][0]["default"]
    assert weights["a1_in1k"]["license"] == "apache-2.0" and weights["tv_in1k"]["license"] == "bsd-3-clause"
    assert not any(row["on_this_machine"] for row in data["weights"]) and no_network == []


def test_list_pretrained_shows_only_backbones_with_weights_and_their_tags():
    rows = json.loads(run("list", "--pretrained", "resnet18*", "--json").output)
    names = {row["name"]: row["weights"] for row in rows}
    assert names["torchvision/resnet18"] == ["IMAGENET1K_V1"] and names["timm/resnet18"][0] == "a1_in1k"
    assert all(row["kind"] == "backbone" and row["weights"] for row in rows)
    everything = {row["name"] for row in json.loads(run("list", "*convnext_atto*", "--kind", "backbone", "--json").output)}
    pretrained = {row["name"] for row in json.loads(run("list", "*convnext_atto*", "--pretrained", "--json").output)}
    assert pretrained < everything  # convnext_atto_rms has no weights in timm
    table = run("list", "--pretrained", "torchvision/resnet50").output.splitlines()
    assert table[0].split()[:3] == ["kind", "name", "weights"] and "IMAGENET1K_V2 (+2)" in table[1]


def test_list_pretrained_never_imports_torch():
    run("list", "--pretrained")  # the caches are warm from here on, as after a user's first run
    probe = ("import sys\nfrom zoo.cli import cli\n"
             "try:\n    cli.main(['list', '--pretrained', 'resnet*'])\nexcept SystemExit as exit:\n    assert exit.code == 0\n"
             "print('heavy:', sorted(m for m in ('torch', 'torchvision', 'timm') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "torchvision/resnet50" in out.stdout and out.stdout.strip().splitlines()[-1] == "heavy: []"


def test_info_on_a_large_vit_allocates_none_of_its_weights():
    """vit_large_patch16_224 holds 1.2 GB of fp32 weights: describing it must not allocate them."""
    probe = (
        "import resource, json, sys, timm, torch, zoo\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "data = zoo.info('timm/vit_large_patch16_224+cls10')\n"
        "backbone = zoo.info('timm/vit_large_patch16_224')\n"
        "grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
        "print(json.dumps([data['total_params'], backbone['params'], grown * 1024]))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    total, params, grown = json.loads(out.stdout.strip().splitlines()[-1])
    assert params == 303_301_632 and total == params + 10 * 1024 + 10
    assert grown < params * 4 / 10, f"peak memory grew by {grown / 1e6:.0f} MB for {params * 4 / 1e6:.0f} MB of weights"
