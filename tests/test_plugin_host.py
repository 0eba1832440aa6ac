"""Plugins through entry points: listing, failures that break nothing else, disabling, clashes."""
from __future__ import annotations

import json
import sys
import warnings

import pytest

import zoo
from zoo._registry.registry import Registry
from zoo.errors import ZooError, ZooWarning


def by_name(records):
    return {r.name: r for r in records}


def test_builtins_are_entry_point_plugins_of_the_zoo_distribution():
    records = by_name(Registry.from_environment().plugins)
    assert {"torchvision", "timm", "heads", "freeze"} <= set(records)
    tv = records["torchvision"]
    assert (tv.distribution, tv.version, tv.status) == ("zoo", zoo.__version__, "ok")
    assert tv.hooks == ["zoo_backbones"]
    assert "torchvision/resnet50" in tv.provides["backbone"]
    assert "zoo/cls" in records["heads"].provides["head"]


def test_no_top_level_plugins_module_is_installed(tmp_path):
    import subprocess

    probe = "import importlib.util as u; print(u.find_spec('plugins'), u.find_spec('zoo.plugins.heads.plugin') is not None)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "True"]


def test_broken_plugins_are_listed_with_their_error_and_the_rest_works(with_plugins):
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        registry = Registry.from_environment()
    records = by_name(registry.plugins)
    assert records["badimport"].status == "error"
    assert "zoo_broken_missing_dependency" in records["badimport"].error
    assert records["badhook"].status == "error"
    assert "zoo_heads failed: RuntimeError: head table is corrupt" in records["badhook"].error
    assert records["example"].status == "ok" and records["example"].distribution == "zoo-example"
    assert registry.backbone("tinycnn").qualified_name == "example/tinycnn"


def test_a_name_clash_warns_naming_both_distributions_and_the_first_keeps_it(with_plugins):
    with pytest.warns(ZooWarning, match=r"torchvision/resnet50 is provided by both zoo .* and zoo-broken"):
        registry = Registry.from_environment()
    assert registry.entry("backbone", "torchvision/resnet50").plugin.distribution == "zoo"


def test_strict_mode_makes_a_failing_plugin_fatal(with_plugins, monkeypatch):
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    with pytest.raises(ZooError, match="plugin badimport \\(zoo-broken\\) failed: import failed"):
        Registry.from_environment()


def test_disabled_plugins_are_never_imported(with_plugins, monkeypatch):
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "zoo-broken")
    for module in ("zoo_broken.bad_import", "zoo_broken.bad_hook", "zoo_broken.clash", "zoo_broken.reserved"):
        sys.modules.pop(module, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no clash warning either
        registry = Registry.from_environment()
    assert {r.status for r in registry.plugins if r.distribution == "zoo-broken"} == {"disabled"}
    assert not any(m.startswith("zoo_broken.") for m in sys.modules)


def test_disabling_by_plugin_name_blocks_just_that_plugin(with_plugins, monkeypatch):
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "timm, badimport")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        records = by_name(Registry.from_environment().plugins)
    assert records["timm"].status == "disabled" and records["badimport"].status == "disabled"
    assert records["torchvision"].status == "ok" and records["badhook"].status == "error"


def test_third_party_plugin_works_through_the_cli(plugin_site, run_zoo):
    env = {"ZOO_DISABLE_PLUGINS": "badimport,badhook,clash"}
    listed = run_zoo("list", "--json", "--kind", "backbone", "example/*", env=env, site=plugin_site)
    assert listed.returncode == 0, listed.stderr
    assert [row["name"] for row in json.loads(listed.stdout)] == ["example/flatnet", "example/tinycnn"]
    built = run_zoo("build", "tinycnn:width=4+msp3", "--freeze", "first:1", "--json", env=env, site=plugin_site)
    assert built.returncode == 0, built.stderr
    summary = json.loads(built.stdout)
    assert summary["spec"] == "example/tinycnn:width=4+example/msp3"
    assert summary["frozen_stages"] == ["s1"]
    assert summary["freeze"] == "example/first:1"


def test_plugins_command_shows_every_plugin_with_its_status(plugin_site, run_zoo):
    result = run_zoo("plugins", "--json", site=plugin_site)
    assert result.returncode == 0, result.stderr
    records = {r["name"]: r for r in json.loads(result.stdout)}
    assert records["example"]["version"] == "1.2.0"
    assert records["example"]["provides"] == {"backbone": ["example/tinycnn", "example/flatnet"],
                                              "head": ["example/msp"], "freeze": ["example/first", "example/keepnorms"]}
    assert records["badimport"]["status"] == "error"
    assert "zoo: warning: backbone torchvision/resnet50 is provided by both zoo" in result.stderr
    table = run_zoo("plugins", site=plugin_site)
    assert "badhook" in table.stdout and "head table is corrupt" in table.stdout


def test_a_head_that_needs_stages_is_refused_on_a_flat_backbone(with_plugins, monkeypatch):
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "zoo-broken")
    with pytest.raises(ZooError, match=r"head msp3 needs multi-stage features and example/flatnet has 0 spatial stage"):
        zoo.build("flatnet+msp3", registry=Registry.from_environment())


def test_isolated_registry_fixture_holds_builtins_and_the_given_plugins(zoo_registry, with_plugins):
    import zoo_example

    registry = zoo_registry(zoo_example)
    assert {r.name for r in registry.plugins} == {"torchvision", "timm", "heads", "freeze", "example"}
    model = zoo.build("tinycnn+msp2", freeze="first:2", registry=registry)
    assert model.frozen_stages == ("s1", "s2")
    bare = zoo_registry(zoo_example, builtins=False)
    with pytest.raises(ZooError, match="unknown backbone 'resnet50'"):
        bare.backbone("resnet50")


def test_plugins_table_shows_each_plugins_hooks():
    from click.testing import CliRunner

    from zoo.cli import cli

    lines = CliRunner().invoke(cli, ["plugins"]).output.splitlines()
    assert lines[0].split()[:5] == ["plugin", "distribution", "version", "contract", "hooks"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "zoo_freeze_policies" in rows["freeze"] and "zoo_heads" in rows["heads"]
    assert "zoo_backbones" in rows["timm"] and "zoo_backbones" in rows["torchvision"]
