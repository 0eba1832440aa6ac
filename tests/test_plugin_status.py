"""Plugin failures are visible outside `zoo plugins` too: in unknown-name errors, in strict mode's listing,
for mistyped ZOO_DISABLE_PLUGINS names; one failing hook keeps the others; load times and torch at load."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from zoo._registry.registry import Registry
from zoo.errors import ZooError, ZooWarning


def quietly(**kwargs) -> Registry:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Registry.from_environment(**kwargs)


def test_an_unknown_name_mentions_the_plugins_that_failed_or_are_disabled(with_plugins, monkeypatch):
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "clash")
    registry = quietly()
    with pytest.raises(ZooError, match=r"unknown head 'okhead'.*; not loaded: badhook \(zoo-broken, failed\), "
                                       r"badimport \(zoo-broken, failed\), clash \(zoo-broken, disabled\), "
                                       r"reserved \(zoo-broken, failed\) \(see zoo plugins\)"):
        registry.entry("head", "okhead")
    with pytest.raises(ZooError, match=r"unknown backbone 'clash/net'.*not loaded: .*clash \(zoo-broken, disabled\)"):
        registry.backbone("clash/net")


def test_strict_plugins_lists_every_plugin_then_fails(plugin_site, run_zoo):
    result = run_zoo("plugins", env={"ZOO_STRICT_PLUGINS": "1"}, site=plugin_site)
    assert result.returncode == 2
    assert "badimport" in result.stdout and "head table is corrupt" in result.stdout and "example" in result.stdout
    assert result.stderr.rstrip().splitlines()[-1].startswith(
        "zoo: error: plugin badhook (zoo-broken) failed: zoo_heads failed: RuntimeError: head table is corrupt; "
        "plugin badimport (zoo-broken) failed: import failed: ModuleNotFoundError"), result.stderr
    assert "Traceback" not in result.stderr


def test_a_disabled_name_that_matches_no_plugin_warns(with_plugins, monkeypatch):
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "zoo_broken,example")
    with pytest.warns(ZooWarning, match=r"ZOO_DISABLE_PLUGINS names 'zoo_broken', which is no installed plugin or "
                                        r"distribution \(did you mean zoo-broken\?\)"):
        registry = Registry.from_environment()
    assert {r.name: r.status for r in registry.plugins}["example"] == "disabled"


def test_one_failing_hook_keeps_the_plugins_working_hooks(contract_site, monkeypatch):
    monkeypatch.syspath_prepend(str(contract_site))
    registry = quietly()
    half = {r.name: r for r in registry.plugins}["halfok"]
    assert half.status == "error" and half.error == "zoo_heads failed: KeyError: 'heads.yaml'"
    assert half.provides == {"backbone": ["halfok/halfnet"]}
    assert registry.backbone("halfnet").qualified_name == "halfok/halfnet"


def test_plugins_shows_load_times_and_warns_about_a_plugin_importing_torch(contract_site, run_zoo):
    result = run_zoo("plugins", "--json", site=contract_site)
    assert result.returncode == 0, result.stderr
    records = {r["name"]: r for r in json.loads(result.stdout)}
    assert records["heavy"]["imports_torch"] and records["heavy"]["load_ms"] > 0
    assert not any(records[name]["imports_torch"] for name in ("torchvision", "timm", "heads", "freeze", "faulty"))
    assert "zoo: warning: plugin heavy (zoo-faulty) imports torch when it loads" in result.stderr
    table = run_zoo("plugins", site=contract_site)
    row = next(line for line in table.stdout.splitlines() if line.startswith("heavy "))
    assert " ms (torch)" in row
