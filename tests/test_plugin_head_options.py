"""Every head's reserved ``weight`` option: shown by `zoo info`, refused when a head declares its own."""
from __future__ import annotations

import json
import warnings

import pytest

from zoo._core.info import info
from zoo._registry.registry import Registry
from zoo.parts import HeadPart, Option


def test_a_head_declaring_weight_is_refused_when_it_is_made():
    with pytest.raises(ValueError, match=r"head 'mine': option 'weight' is reserved .* name your option differently"):
        HeadPart("mine", lambda features, size: None, options=(Option("weight", float, 0.5),))


def test_an_installed_plugin_with_such_a_head_is_listed_as_failed_naming_the_option(with_plugins):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        registry = Registry.from_environment()
    record = next(r for r in registry.plugins if r.name == "reserved")
    assert record.status == "error" and "option 'weight' is reserved" in record.error


def test_zoo_info_shows_the_reserved_weight_of_every_head(run_zoo):
    result = run_zoo("info", "cls", "--json")
    assert result.returncode == 0, result.stderr
    options = {o["name"]: o for o in json.loads(result.stdout)["options"]}
    assert options["weight"]["reserved"] and options["weight"]["default"] == 1.0
    assert not options["dropout"]["reserved"]
    assert "weight=float (default 1.0)" in run_zoo("info", "kp").stdout
    assert info("all").get("options") is None
