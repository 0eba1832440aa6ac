"""`zoo list`: every part with its provider, timm-style wildcards, and no torch import."""
from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from zoo.cli import cli


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_wildcards_match_bare_and_qualified_names():
    rows = json.loads(run("list", "resnet5*", "--json").output)
    names = {row["name"] for row in rows}
    assert {"torchvision/resnet50", "timm/resnet50", "timm/resnet50d"} <= names
    assert all(row["name"].split("/")[-1].startswith("resnet5") or row["kind"] == "preset" for row in rows)
    assert [r["name"] for r in json.loads(run("list", "torchvision/vgg16*", "--json").output)] == [
        "torchvision/vgg16", "torchvision/vgg16_bn"]


def test_every_timm_model_is_reachable_under_timm():
    import timm

    listed = {row["name"] for row in json.loads(run("list", "--kind", "backbone", "--json").output)}
    assert {f"timm/{name}" for name in timm.list_models()} <= listed
    assert "timm/convnext_tiny" in listed


def test_kinds_filter_and_presets_are_listed():
    heads = {r["name"]: r for r in json.loads(run("list", "--kind", "head", "--json").output)}
    assert {r["kind"] for r in heads.values()} == {"head"}
    assert heads["zoo/cls"]["usage"].startswith("cls<classes>[:hidden=,dropout=")
    policies = {r["name"] for r in json.loads(run("list", "--kind", "freeze", "--json").output)}
    assert policies == {"zoo/none", "zoo/all", "zoo/before", "zoo/last", "zoo/norms", "zoo/bias"}
    presets = {r["name"]: r for r in json.loads(run("list", "--kind", "preset", "--json").output)}
    assert presets["resnet50-layer4"]["usage"] == "resnet50+cls10 --freeze=layer4"
    assert presets["resnet50-layer4"]["provider"] == "registry.toml"


def test_table_shows_provider_and_backbones_prefer_torchvision_first():
    result = run("list", "resnet50")
    lines = result.output.splitlines()
    assert lines[0].split() == ["kind", "name", "usage", "provider", "description"]
    assert "torchvision/resnet50" in lines[1] and "torchvision (zoo)" in lines[1]
    assert "timm/resnet50" in lines[2]


def test_listing_never_imports_torch(tmp_path):
    probe = (
        "import sys\n"
        "from zoo.cli import cli\n"
        "for args in (['list', 'resnet*'], ['list', '--kind', 'head'], ['plugins'], ['--help']):\n"
        "    try:\n"
        "        cli.main(args)\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code == 0, (args, exit.code)\n"
        "heavy = sorted(m for m in ('torch', 'torchvision', 'timm') if m in sys.modules)\n"
        "print('heavy:', heavy)\n"
    )
    run("list")  # the timm name cache is warm from here on, as after a user's first run
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "heavy: []"


def test_nothing_matching_is_an_empty_list_with_or_without_json():
    table, as_json = run("list", "no-such-model*"), run("list", "no-such-model*", "--json")
    assert (table.exit_code, as_json.exit_code) == (0, 0)
    assert table.stdout == "" and json.loads(as_json.stdout) == []
    assert table.stderr.strip() == as_json.stderr.strip() == "zoo: nothing matches 'no-such-model*'"


def test_timms_model_list_is_cached_per_timm_version(tmp_path, monkeypatch):
    """A list cached for another timm version is never read: an upgrade brings its own models."""
    from importlib.metadata import version

    from zoo.plugins.timm import plugin as timm_plugin

    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path))
    (tmp_path / "timm-0.0.1-models.json").write_text(json.dumps({"models": ["stale_net"], "pretrained": {}}))
    names = timm_plugin.catalogue()["models"]
    assert "stale_net" not in names and "resnet50" in names
    current = tmp_path / f"timm-{version('timm')}-models.json"
    assert json.loads(current.read_text())["models"] == names
    current.write_text(json.dumps({"models": ["cached_net"], "pretrained": {}, "modules": {}}))  # the current one is read
    assert timm_plugin.catalogue()["models"] == ["cached_net"]


def test_the_table_fits_the_terminal_and_json_keeps_the_whole_text(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    lines = run("list").output.splitlines()
    assert len(lines) > 1000 and max(map(len, lines)) <= 100
    detection = next(line for line in lines if line.startswith("head") and "zoo/det" in line)
    assert "\u2026" in detection  # its long usage is cut with an ellipsis
    whole = {r["name"]: r for r in json.loads(run("list", "--kind", "head", "--json").output)}
    assert len(whole["zoo/det"]["usage"]) > 60 and "\u2026" not in whole["zoo/det"]["usage"]


def test_a_wide_terminal_shows_every_cell_whole(monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    lines = run("list", "--kind", "head").output.splitlines()
    assert not any("\u2026" in line for line in lines)
    rows = json.loads(run("list", "--kind", "head", "--json").output)
    assert all(row["usage"] in "\n".join(lines) for row in rows)


def test_timm_backbones_say_which_family_they_are():
    rows = {r["name"]: r["description"] for r in json.loads(run("list", "--kind", "backbone", "--json").output)}
    assert rows["timm/convnext_tiny"].startswith("ConvNeXt: a ConvNet for the 2020s")
    assert rows["timm/resnet50"].startswith("ResNet family")
    assert rows["timm/vit_tiny_patch16_224"].startswith("ViT: an image is worth 16x16 words")
    assert rows["timm/mobilenetv3_small_050"].startswith("MobileNetV3")
    assert "timm model" not in {d for n, d in rows.items() if n.startswith("timm/")}


def test_every_timm_module_has_a_family_description():
    import timm

    from zoo.plugins.timm.families import FAMILIES

    assert set(timm.list_modules()) <= set(FAMILIES)


def test_a_timm_list_cached_without_modules_is_read_again(tmp_path, monkeypatch):
    """A cache written before zoo recorded each model's module is an older format: read afresh."""
    from importlib.metadata import version

    from zoo.plugins.timm.plugin import catalogue

    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path))
    (tmp_path / f"timm-{version('timm')}-models.json").write_text(
        json.dumps({"models": ["resnet50"], "pretrained": {"resnet50": ["a1_in1k"]}}))
    found = catalogue()
    assert found["modules"]["resnet50"] == "resnet" and len(found["models"]) > 1000


def test_backbones_that_take_options_show_their_usage(plugin_site, run_zoo):
    env = {"ZOO_DISABLE_PLUGINS": "badimport,badhook,clash", "COLUMNS": "200"}
    listed = run_zoo("list", "example/*", "--kind", "backbone", env=env, site=plugin_site)
    assert listed.returncode == 0, listed.stderr
    tinycnn = next(line for line in listed.stdout.splitlines() if "example/tinycnn" in line)
    assert "tinycnn[:width=" in tinycnn and "act=" in tinycnn
    plain = run("list", "torchvision/resnet50").output.splitlines()[1]
    assert plain.split()[:3] == ["backbone", "torchvision/resnet50", "torchvision"]  # no options: no usage
